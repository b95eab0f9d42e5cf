/**
 * The DeliveryQueue layer: order, retries, back-off, the breaker and concurrency, over one
 * storage (memory, or the durable outbox: the same queue either way). It takes events from the
 * storage's front, has the Renderer turn them into a request (once: a retry resends the same
 * bytes under the same webhook id), hands the request to the Sender, and decides from the answer:
 * done, retry later, or give up (dead-letter file where there is one, else a counted, logged
 * loss).
 *
 * Retries: exponential back-off with full jitter after every failure, for the whole sink (one
 * request in flight by default, so a failed request is retried before anything newer is sent,
 * and events arrive in order). After `breakerThreshold` failures in a row the breaker is open:
 * one probe at a time, and while the sink is unavailable (network error, time-out, 429,
 * 502/503/504) a failure spends none of the request's attempts; only its time budget
 * (`maxElapsedMs`, default 1 h) runs. So an outage of any length within the budget loses
 * nothing and keeps order. A sink that answers 410 (or whose renderer says it is gone) is
 * disabled.
 *
 * `enqueue` never throws and never waits; the time (`Clock`) is injectable.
 */
import type { CloudEventV1 } from 'cloudevents';
import type { Logger } from 'pino';
import type { ShutdownSummary, SinkStats } from '../sink.ts';
import type { CaoCloudEventLike, RenderContext, Renderer, ResponseVerdict, TransformResponse } from '../renderers/types.ts';
import { type Clock, systemClock } from './clock.ts';
import type { LossLog } from './loss-log.ts';
import type { GiveUp, QueueStorage, QueuedEvent } from './queue-storage.ts';
import {
  DEFAULT_RETRY_POLICY,
  type RetryPolicy,
  type Verdict,
  backoffDelay,
  budgetSpent,
  parseRetryAfter,
  spendsAttempt,
  verdictFor,
} from './retry-policy.ts';
import type { Sender } from './sender.ts';
import { webhookIdOf } from './signing.ts';

export interface DeliveryQueueOptions {
  /** The sink's name (logs). */
  name: string;
  /** Where requests go unless the renderer names another URL. */
  url: string;
  renderer: Renderer;
  context: RenderContext;
  sender: Sender;
  storage: QueueStorage;
  losses: LossLog;
  logger: Logger;
  retry?: Partial<RetryPolicy>;
  /** Requests in flight at once (default 1: events arrive in order). */
  concurrency?: number;
  clock?: Clock;
  /** Called with the events a sink acknowledged (for the latency histogram). */
  onDelivered?: (events: readonly CloudEventV1<unknown>[]) => void;
}

interface Delivery {
  items: QueuedEvent[];
  /** Rendered at the first attempt, reused by every retry. */
  request?: { url: string; headers: Record<string, string>; body: string; webhookId: string };
  /** Attempts spent (see spendsAttempt). */
  attempts: number;
  tries: number;
  firstAttemptAt?: number;
  aborted?: boolean;
}

/** How long a shutdown waits for attempts under way to end once they are aborted. */
const TASK_SETTLE_MS = 2_000;

type Counters = Pick<SinkStats, 'enqueued' | 'delivered' | 'skipped' | 'retried' | 'failed' | 'deadLettered' | 'dropped'>;

export class DeliveryQueue {
  readonly #name: string;
  readonly #url: string;
  readonly #renderer: Renderer;
  readonly #context: RenderContext;
  readonly #sender: Sender;
  readonly #storage: QueueStorage;
  readonly #losses: LossLog;
  readonly #log: Logger;
  readonly #policy: RetryPolicy;
  readonly #concurrency: number;
  readonly #clock: Clock;
  readonly #onDelivered: DeliveryQueueOptions['onDelivered'];
  readonly #abort = new AbortController();

  #retrying: Delivery[] = [];
  readonly #inFlight = new Set<Delivery>();
  readonly #tasks = new Set<Promise<void>>();
  #consecutiveFailures = 0;
  /** Nothing is sent before this: back-off after a failure, a renderer's pause, its spacing. */
  #blockedUntil = 0;
  #timer: unknown;
  #timerDue = 0;
  #closing = false;
  #stopped = false;
  #disabled = false;
  #idleWaiters: Array<() => void> = [];
  #shutdown: ShutdownSummary | undefined;
  readonly #counters: Counters = { enqueued: 0, delivered: 0, skipped: 0, retried: 0, failed: 0, deadLettered: 0, dropped: 0 };

  constructor(options: DeliveryQueueOptions) {
    this.#name = options.name;
    this.#url = options.url;
    this.#renderer = options.renderer;
    this.#context = options.context;
    this.#sender = options.sender;
    this.#storage = options.storage;
    this.#losses = options.losses;
    this.#log = options.logger;
    this.#policy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.#concurrency = Math.max(1, options.concurrency ?? 1);
    this.#clock = options.clock ?? systemClock;
    this.#onDelivered = options.onDelivered;
    // An outbox may start with events from before a restart: deliver them first.
    if (this.#storage.waiting > 0) this.#pump();
  }

  get stats(): Omit<SinkStats, 'filtered'> {
    let inFlight = 0;
    for (const d of this.#inFlight) inFlight += d.items.length;
    let retrying = 0;
    for (const d of this.#retrying) retrying += d.items.length;
    const outbox = this.#storage.stats();
    return {
      ...this.#counters,
      lost: this.#losses.total,
      lostBy: this.#losses.byReason,
      queued: this.#storage.waiting + retrying,
      inFlight,
      disabled: this.#disabled,
      breaker: this.#breakerOpen() ? 'open' : 'closed',
      ...(outbox ? { outbox } : {}),
      ...(this.#shutdown ? { shutdown: this.#shutdown } : {}),
    };
  }

  /** Accepts events for delivery. Never throws, never waits. */
  enqueue(events: readonly CloudEventV1<unknown>[]): void {
    if (events.length === 0) return;
    if (this.#closing) {
      this.#counters.dropped += events.length;
      this.#losses.lost(events.length, 'sink_closed');
      return;
    }
    if (this.#disabled && this.#storage.kind === 'memory') {
      this.#counters.dropped += events.length;
      this.#losses.lost(events.length, 'sink_gone');
      return;
    }
    const lostBefore = this.#losses.total;
    this.#storage.append(events);
    const refused = this.#losses.total - lostBefore;
    this.#counters.dropped += refused;
    this.#counters.enqueued += events.length - refused;
    this.#pump();
  }

  /** Resolves when nothing waits and nothing is in flight, or when the bound passes. */
  async forceFlush(timeoutMs = 10_000): Promise<void> {
    if (this.#isIdle()) return;
    await new Promise<void>((resolve) => {
      // A referenced timer: while a flush waits (at shutdown, the sink in back-off), the
      // process must not end before the flush does and says what it left.
      const timer = setTimeout(done, timeoutMs);
      const waiter = (): void => done();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#idleWaiters.push(waiter);
    });
  }

  /**
   * Stops accepting events, flushes (bounded), aborts what is still in flight, and accounts for
   * everything not delivered: kept in the outbox, or lost (counted, logged).
   */
  async shutdown(timeoutMs = 10_000): Promise<ShutdownSummary> {
    if (this.#shutdown) return this.#shutdown;
    this.#closing = true;
    await this.forceFlush(timeoutMs);
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort.abort();
    // Requests end at once when aborted; a user renderer that never returns must not hold the shutdown.
    let settleTimer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.#tasks]),
      new Promise<void>((resolve) => (settleTimer = setTimeout(resolve, TASK_SETTLE_MS))),
    ]);
    clearTimeout(settleTimer);
    await this.#sender.close();
    const taken = [
      ...this.#retrying.flatMap((d) => d.items),
      ...[...this.#inFlight].flatMap((d) => d.items),
    ];
    this.#retrying = [];
    this.#inFlight.clear();
    const { keptOnDisk, lost } = this.#storage.close(taken);
    if (lost > 0) {
      this.#counters.dropped += lost;
      this.#losses.lost(lost, 'shutdown');
    }
    this.#losses.flush();
    const outbox = this.#storage.stats();
    this.#shutdown = { undelivered: keptOnDisk + lost, keptOnDisk, lost, ...(outbox ? { outboxDir: outbox.dir } : {}) };
    if (lost > 0) {
      this.#log.error({ undelivered: keptOnDisk + lost, lost, keptOnDisk, ...(outbox ? { outbox: outbox.dir } : {}) }, `shutdown: ${lost} cloudevent(s) not delivered and lost`);
    } else if (keptOnDisk > 0) {
      this.#log.warn({ undelivered: keptOnDisk, keptOnDisk, outbox: outbox?.dir }, `shutdown: ${keptOnDisk} cloudevent(s) not delivered; kept in the outbox for the next start`);
    }
    this.#notifyIdle();
    return this.#shutdown;
  }

  #breakerOpen(): boolean {
    return this.#consecutiveFailures >= this.#policy.breakerThreshold;
  }

  #isIdle(): boolean {
    return this.#inFlight.size === 0 && (this.#stopped || (this.#retrying.length === 0 && (this.#storage.waiting === 0 || this.#disabled)));
  }

  #notifyIdle(): void {
    if (!this.#isIdle()) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  #pump(): void {
    if (this.#stopped || this.#disabled) return;
    const now = this.#clock.now();
    if (this.#blockedUntil > now) {
      this.#wakeAt(this.#blockedUntil);
      return;
    }
    while (this.#inFlight.size < this.#concurrency) {
      if (this.#breakerOpen() && this.#inFlight.size > 0) break; // one probe at a time
      const delivery = this.#retrying.shift() ?? this.#takeNext();
      if (!delivery) break;
      this.#inFlight.add(delivery);
      const task = this.#attempt(delivery)
        .catch((err: unknown) => {
          // A bug, not a delivery outcome: say so, keep the events for the shutdown accounting.
          this.#log.error({ error: String((err as Error)?.message ?? err).slice(0, 200) }, 'delivery queue error');
          if (!this.#stopped) this.#retrying.unshift(delivery);
        })
        .finally(() => {
          if (!delivery.aborted) this.#inFlight.delete(delivery);
          this.#tasks.delete(task);
          this.#pump();
          this.#notifyIdle();
        });
      this.#tasks.add(task);
    }
  }

  #wakeAt(due: number): void {
    if (this.#timer !== undefined && this.#timerDue <= due) return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timerDue = due;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#pump();
    }, Math.max(0, due - this.#clock.now()));
  }

  #takeNext(): Delivery | undefined {
    const { maxBatch = 1, groupBy, grouping } = this.#renderer;
    const items = this.#storage.take(
      Math.max(1, maxBatch),
      groupBy && ((event) => groupBy(event as CaoCloudEventLike)),
      grouping === 'run',
    );
    return items.length > 0 ? { items, attempts: 0, tries: 0 } : undefined;
  }

  /** Shut down while this delivery was being rendered: shutdown() counts it with what was in flight. */
  #abandon(delivery: Delivery): false {
    delivery.aborted = true;
    return false;
  }

  /** Renders a delivery's request. False when there is nothing to send (skipped, or given up). */
  async #render(delivery: Delivery): Promise<boolean> {
    const events = delivery.items.map((i) => i.event) as CaoCloudEventLike[];
    let output;
    try {
      output = await this.#renderer.encode(events, this.#context);
      if (output !== null && output !== undefined && (typeof output !== 'object' || !('body' in output))) {
        throw new TypeError('encode() must return {body, headers?, url?} or null');
      }
    } catch (err) {
      if (this.#stopped) return this.#abandon(delivery);
      const reason = `transform failed: ${String((err as Error)?.message ?? err).slice(0, 200)}`;
      this.#log.warn({ transform: this.#renderer.name, events: events.length, error: String((err as Error)?.message ?? err).slice(0, 200) }, 'sink transform failed, events not delivered');
      this.#giveUp(delivery, { kind: 'render_failed', reason });
      return false;
    }
    if (this.#stopped) return this.#abandon(delivery);
    if (output === null || output === undefined) {
      this.#counters.skipped += events.length;
      this.#storage.done(delivery.items);
      return false;
    }
    const consumed = output.consumed;
    if (consumed !== undefined && Number.isInteger(consumed) && consumed >= 1 && consumed < delivery.items.length) {
      // What did not fit goes back to the front of the queue, in order, for the next request.
      this.#storage.putBack(delivery.items.splice(consumed));
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(output.headers ?? {})) headers[k.toLowerCase()] = String(v);
    let body: string;
    if (typeof output.body === 'string') body = output.body;
    else {
      body = JSON.stringify(output.body);
      headers['content-type'] ??= 'application/json; charset=utf-8';
    }
    delivery.request = {
      url: output.url ?? this.#url,
      headers,
      body,
      webhookId: webhookIdOf(delivery.items.map((i) => i.event.id)),
    };
    return true;
  }

  async #attempt(delivery: Delivery): Promise<void> {
    if (!delivery.request && !(await this.#render(delivery))) return;
    const request = delivery.request!;
    delivery.firstAttemptAt ??= this.#clock.now();
    delivery.tries += 1;
    const breakerWasOpen = this.#breakerOpen();
    const result = await this.#sender.send({ ...request, readBody: this.#renderer.onResponse !== undefined }, this.#abort.signal);
    if (result.error === 'aborted') {
      delivery.aborted = true; // shutdown: accounted for by shutdown()
      return;
    }
    const now = this.#clock.now();
    if (this.#renderer.minIntervalMs) this.#blockedUntil = Math.max(this.#blockedUntil, now + this.#renderer.minIntervalMs);
    let verdict = verdictFor(result.status, result.error);
    let retryAfterMs = parseRetryAfter(result.headers['retry-after'], Date.now());
    if (this.#renderer.onResponse && result.status !== undefined) {
      const answer: TransformResponse = { status: result.status, headers: result.headers, body: result.body };
      let said: ResponseVerdict | undefined | void;
      try {
        said = this.#renderer.onResponse(answer, delivery.items.map((i) => i.event) as CaoCloudEventLike[], this.#context);
      } catch (err) {
        this.#log.warn({ transform: this.#renderer.name, error: (err as Error).message }, 'sink transform onResponse failed');
      }
      if (said) {
        verdict = overrideVerdict(verdict, said);
        if (said.retryAfterMs !== undefined) retryAfterMs = said.retryAfterMs;
        if (said.pauseMs !== undefined && said.pauseMs > 0) this.#blockedUntil = Math.max(this.#blockedUntil, now + said.pauseMs);
      }
    }
    const events = delivery.items.length;
    const context = { status: result.status, attempt: delivery.tries, events, id: events === 1 ? delivery.items[0]!.event.id : undefined };
    switch (verdict.kind) {
      case 'delivered':
        this.#consecutiveFailures = 0;
        this.#counters.delivered += events;
        this.#storage.done(delivery.items);
        try {
          this.#onDelivered?.(delivery.items.map((i) => i.event));
        } catch {
          // an observer's mistake is not a delivery's
        }
        return;
      case 'reject':
        this.#consecutiveFailures = 0; // the sink answered: it is up
        this.#log.warn({ ...context, reason: verdict.reason }, 'cloudevent rejected by sink, not retried');
        this.#giveUp(delivery, { kind: 'rejected', reason: verdict.reason });
        return;
      case 'gone':
        this.#disabled = true;
        this.#log.error(
          { ...context, reason: verdict.reason, waiting: this.#storage.waiting, outbox: this.#storage.kind === 'outbox' },
          `sink disabled: ${verdict.reason}${this.#storage.kind === 'outbox' ? '; waiting events stay in the outbox for the next start' : ''}`,
        );
        this.#giveUp(delivery, { kind: 'gone', reason: verdict.reason });
        for (const d of this.#retrying.splice(0)) this.#giveUp(d, { kind: 'gone', reason: verdict.reason });
        if (this.#storage.kind === 'memory') {
          const left = this.#storage.take(Number.MAX_SAFE_INTEGER);
          this.#counters.dropped += left.length;
          this.#losses.lost(left.length, 'sink_gone');
        }
        return;
      case 'retry': {
        this.#consecutiveFailures += 1;
        const spends = spendsAttempt(verdict, breakerWasOpen);
        if (spends) delivery.attempts += 1;
        const spent = budgetSpent(this.#policy, delivery.attempts, now - delivery.firstAttemptAt);
        if (spent) {
          const budget = spent === 'attempts' ? `${delivery.attempts} attempts` : `retry budget of ${Math.round(this.#policy.maxElapsedMs / 1000)} s`;
          this.#log.warn({ ...context, reason: verdict.reason, budget }, 'cloudevent delivery failed, retries exhausted');
          this.#giveUp(delivery, { kind: 'exhausted', reason: `${verdict.reason} (${budget} spent)` });
          return;
        }
        const delay = backoffDelay(this.#policy, Math.max(delivery.attempts, this.#consecutiveFailures), retryAfterMs);
        this.#counters.retried += events;
        this.#log.warn(
          { ...context, reason: verdict.reason, retryInMs: delay, breaker: this.#breakerOpen() ? 'open' : 'closed', attemptSpent: spends },
          'cloudevent delivery failed, will retry',
        );
        this.#blockedUntil = Math.max(this.#blockedUntil, now + delay);
        this.#retrying.push(delivery);
        return;
      }
    }
  }

  /** Gives up on a delivery: into the dead-letter file where there is one, else counted and logged as lost. */
  #giveUp(delivery: Delivery, failure: GiveUp): void {
    const n = delivery.items.length;
    if (n === 0) return;
    this.#counters.failed += n;
    const kept = this.#storage.deadLetter(delivery.items, failure);
    this.#counters.deadLettered += kept;
    if (kept < n) {
      const reason = failure.kind === 'exhausted' ? 'retries_exhausted' : failure.kind === 'gone' ? 'sink_gone' : failure.kind === 'render_failed' ? 'render_failed' : 'rejected';
      this.#losses.lost(n - kept, reason, failure.reason);
    }
  }
}

function overrideVerdict(verdict: Verdict, said: ResponseVerdict): Verdict {
  const reason = said.reason ?? ('reason' in verdict ? verdict.reason : 'answer read by the transform');
  switch (said.outcome) {
    case 'delivered':
      return { kind: 'delivered' };
    case 'retry':
      return { kind: 'retry', reason, unavailable: verdict.kind === 'retry' ? verdict.unavailable : /429|rate/i.test(reason) };
    case 'reject':
      return { kind: 'reject', reason };
    case 'gone':
      return { kind: 'gone', reason };
    default:
      return verdict.kind === 'delivered' ? verdict : { ...verdict, reason };
  }
}
