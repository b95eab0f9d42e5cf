/**
 * Counting and telling about lost events: every event that is neither delivered nor kept
 * (outbox, dead-letter file) passes through `lost()`. It is counted at once (by reason, for
 * metrics and the sink's stats) and logged at ERROR: the first loss of an interval right away,
 * later ones of the same interval summed into one line when the interval ends, and whatever is
 * still unreported when the sink shuts down (`flush()`). Rate-limited, never swallowed.
 */
import type { Logger } from 'pino';
import type { LossReason } from '../sink.ts';
import { type Clock, systemClock } from './clock.ts';

export const LOSS_LOG_INTERVAL_MS = 10_000;

export class LossLog {
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #intervalMs: number;
  readonly #byReason: Partial<Record<LossReason, number>> = {};
  #total = 0;
  #lastLoggedAt = Number.NEGATIVE_INFINITY;
  /** Losses since the last line, by reason. */
  #unreported: Partial<Record<LossReason, number>> = {};
  #timer: unknown;

  constructor(logger: Logger, options: { clock?: Clock; intervalMs?: number } = {}) {
    this.#log = logger;
    this.#clock = options.clock ?? systemClock;
    this.#intervalMs = options.intervalMs ?? LOSS_LOG_INTERVAL_MS;
  }

  get total(): number {
    return this.#total;
  }

  get byReason(): Partial<Record<LossReason, number>> {
    return { ...this.#byReason };
  }

  /** Counts `count` lost events. `detail` (an error code, a status) goes into the log line, never content. */
  lost(count: number, reason: LossReason, detail?: string): void {
    if (count <= 0) return;
    this.#total += count;
    this.#byReason[reason] = (this.#byReason[reason] ?? 0) + count;
    const now = this.#clock.now();
    if (now - this.#lastLoggedAt >= this.#intervalMs && this.#timer === undefined) {
      this.#lastLoggedAt = now;
      this.#log.error({ lost: count, reason, ...(detail ? { detail } : {}), totalLost: this.#total }, `${count} cloudevent(s) lost: ${describe(reason)}`);
      return;
    }
    this.#unreported[reason] = (this.#unreported[reason] ?? 0) + count;
    if (this.#timer === undefined) {
      const wait = Math.max(0, this.#lastLoggedAt + this.#intervalMs - now);
      this.#timer = this.#clock.setTimeout(() => {
        this.#timer = undefined;
        this.#report();
      }, wait);
    }
  }

  /** Logs what has not been reported yet (at shutdown). */
  flush(): void {
    if (this.#timer !== undefined) {
      this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#report();
  }

  #report(): void {
    const reasons = this.#unreported;
    const count = Object.values(reasons).reduce((a, b) => a + (b ?? 0), 0);
    if (count === 0) return;
    this.#unreported = {};
    this.#lastLoggedAt = this.#clock.now();
    this.#log.error(
      { lost: count, byReason: reasons, totalLost: this.#total },
      `${count} more cloudevent(s) lost: ${Object.keys(reasons).map((r) => describe(r as LossReason)).join('; ')}`,
    );
  }
}

export function describe(reason: LossReason): string {
  switch (reason) {
    case 'queue_full':
      return 'the memory queue is full (maxQueue; set outbox.dir to queue on disk)';
    case 'outbox_full':
      return 'the outbox reached outbox.maxBytes and the memory queue is full';
    case 'outbox_write_failed':
      return 'the outbox cannot be written and the memory queue is full';
    case 'rejected':
      return 'rejected by the sink (not retried) and no dead-letter file to keep them';
    case 'retries_exhausted':
      return 'the retry budget is spent and no dead-letter file to keep them';
    case 'sink_gone':
      return 'the sink is gone (HTTP 410 or the service said so)';
    case 'render_failed':
      return 'the transform failed and no dead-letter file to keep them';
    case 'sink_closed':
      return 'the sink is shut down';
    case 'shutdown':
      return 'not delivered before shutdown and not kept on disk';
  }
}
