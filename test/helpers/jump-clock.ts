/**
 * A clock for delivery queues that runs in real time and can jump forward: `jumpToNextTimer()`
 * moves "now" to the earliest pending timer and fires it, so a test goes through a 40 s (or
 * 5 min) back-off schedule in milliseconds while the queue, its retry policy and its breaker run
 * unchanged against real sockets. Timers also fire on their own in real time.
 */
import type { Clock } from '../../exporters/delivery/clock.ts';

interface Timer {
  due: number;
  fn: () => void;
  real: NodeJS.Timeout;
}

export class JumpClock implements Clock {
  #offset = 0;
  #id = 0;
  readonly #timers = new Map<number, Timer>();

  now(): number {
    return Date.now() + this.#offset;
  }

  /** Milliseconds jumped so far. */
  get jumped(): number {
    return this.#offset;
  }

  get pendingTimers(): number {
    return this.#timers.size;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#id;
    const real = setTimeout(() => this.#fire(id), Math.max(0, ms));
    real.unref();
    this.#timers.set(id, { due: this.now() + Math.max(0, ms), fn, real });
    return id;
  }

  clearTimeout(handle: unknown): void {
    const timer = this.#timers.get(handle as number);
    if (!timer) return;
    clearTimeout(timer.real);
    this.#timers.delete(handle as number);
  }

  /** Milliseconds until the earliest pending timer (undefined: none). */
  nextDueIn(): number | undefined {
    let earliest = Number.POSITIVE_INFINITY;
    for (const t of this.#timers.values()) earliest = Math.min(earliest, t.due);
    return earliest === Number.POSITIVE_INFINITY ? undefined : Math.max(0, earliest - this.now());
  }

  /** Jumps to the earliest pending timer and fires every timer due by then; returns the ms jumped (0: none pending). */
  jumpToNextTimer(): number {
    const delta = this.nextDueIn();
    if (delta === undefined) return 0;
    this.jumpBy(delta);
    return delta;
  }

  /** Moves "now" forward by `ms` and fires every timer due by then. */
  jumpBy(ms: number): void {
    this.#offset += Math.max(0, ms);
    const now = this.now();
    for (const [id, t] of [...this.#timers]) if (t.due <= now) this.#fire(id);
  }

  #fire(id: number): void {
    const timer = this.#timers.get(id);
    if (!timer) return;
    clearTimeout(timer.real);
    this.#timers.delete(id);
    timer.fn();
  }
}
