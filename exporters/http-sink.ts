/**
 * One webhook sink: its own bounded queue, delivery with undici (time-out on every request),
 * retries per the retry policy, and counters. Nothing here ever throws into, or waits inside,
 * the code that emitted an event: `enqueue` only appends and wakes the pump.
 */
import type { CloudEventV1 } from 'cloudevents';
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import { type ContentMode, type EncodedRequest, encodeRequests } from './encode.ts';
import {
  DEFAULT_RETRY_POLICY,
  type RetryPolicy,
  backoffDelay,
  parseRetryAfter,
  verdictFor,
} from './retry-policy.ts';

export interface HttpSinkOptions {
  url: string;
  /** Name used in logs and metrics; defaults to the URL's origin. */
  name?: string;
  mode?: ContentMode;
  /** Per-request time-out (connect + headers + body). */
  timeoutMs?: number;
  /** Events held in memory at most; beyond it new events are dropped and counted. */
  maxQueue?: number;
  /** Events per request in batch mode. */
  maxBatchSize?: number;
  /** Requests in flight at once (default 1: events arrive in order). */
  concurrency?: number;
  headers?: Record<string, string>;
  retry?: Partial<RetryPolicy>;
  logger: Logger;
  /** Called when the sink acknowledged a request (2xx), with the time it did. */
  onDelivered?: (events: readonly CloudEventV1<unknown>[], at: number) => void;
  /** Called for events given up on: rejected (4xx), retries exhausted, sink gone (410), or dropped. */
  onFailed?: (events: readonly CloudEventV1<unknown>[], failure: SinkFailure) => void;
}

export interface SinkFailure {
  kind: 'rejected' | 'exhausted' | 'gone' | 'dropped';
  reason: string;
}

export interface SinkStats {
  enqueued: number;
  delivered: number;
  retried: number;
  failed: number;
  dropped: number;
  queued: number;
  inFlight: number;
  disabled: boolean;
}

interface Delivery {
  events: CloudEventV1<unknown>[];
  request: EncodedRequest;
  attempt: number;
}

/** A URL safe to log: no query string, no credentials. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '<invalid url>';
  }
}

const DROP_LOG_INTERVAL_MS = 10_000;

export class HttpSink {
  readonly name: string;
  readonly url: string;
  readonly mode: ContentMode;
  readonly #timeoutMs: number;
  readonly #maxQueue: number;
  readonly #maxBatchSize: number;
  readonly #concurrency: number;
  readonly #headers: Record<string, string>;
  readonly #policy: RetryPolicy;
  readonly #log: Logger;
  readonly #agent: Agent;
  readonly #onDelivered: HttpSinkOptions['onDelivered'];
  readonly #onFailed: HttpSinkOptions['onFailed'];
  /** Failed attempts in a row across deliveries: the back-off grows with it (circuit breaker). */
  #consecutiveFailures = 0;
  /** Events not yet encoded into a request. */
  #pending: CloudEventV1<unknown>[] = [];
  /** Requests waiting for a retry, oldest first. */
  #retrying: Delivery[] = [];
  #inFlight = new Set<Promise<void>>();
  #pausedUntil = 0;
  #wakeTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #disabled = false;
  #lastDropLog = 0;
  #dropsSinceLog = 0;
  #idleWaiters: Array<() => void> = [];
  readonly #stats = { enqueued: 0, delivered: 0, retried: 0, failed: 0, dropped: 0 };

  constructor(options: HttpSinkOptions) {
    this.url = options.url;
    this.name = options.name ?? redactUrl(options.url);
    this.mode = options.mode ?? 'structured';
    this.#timeoutMs = options.timeoutMs ?? 5_000;
    this.#maxQueue = options.maxQueue ?? 10_000;
    this.#maxBatchSize = options.maxBatchSize ?? 100;
    this.#concurrency = options.concurrency ?? 1;
    this.#headers = options.headers ?? {};
    this.#policy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.#log = options.logger.child({ sink: this.name });
    this.#onDelivered = options.onDelivered;
    this.#onFailed = options.onFailed;
    this.#agent = new Agent({
      connections: this.#concurrency,
      connectTimeout: this.#timeoutMs,
      headersTimeout: this.#timeoutMs,
      bodyTimeout: this.#timeoutMs,
    });
  }

  get stats(): SinkStats {
    return {
      ...this.#stats,
      queued: this.#queuedEvents(),
      inFlight: this.#inFlight.size,
      disabled: this.#disabled,
    };
  }

  /** Accepts events for delivery. Never throws, never waits. */
  enqueue(events: readonly CloudEventV1<unknown>[]): void {
    if (events.length === 0) return;
    if (this.#closed || this.#disabled) {
      this.#drop(events, this.#disabled ? 'sink disabled (HTTP 410)' : 'sink shut down');
      return;
    }
    const room = this.#maxQueue - this.#queuedEvents();
    const accepted = room >= events.length ? events : events.slice(0, Math.max(0, room));
    if (accepted.length < events.length) {
      this.#drop(events.slice(accepted.length), 'queue full');
    }
    this.#stats.enqueued += accepted.length;
    for (const event of accepted) this.#pending.push(event);
    this.#pump();
  }

  /** Resolves when everything queued was delivered or given up, or when the bound passes. */
  async forceFlush(timeoutMs = 10_000): Promise<void> {
    if (this.#isIdle()) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      timer.unref();
      const waiter = (): void => done();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#idleWaiters.push(waiter);
    });
  }

  /**
   * Stops accepting events, waits (bounded) for what is queued, then aborts what is still in
   * flight; everything undelivered is counted as dropped and logged.
   */
  async shutdown(timeoutMs = 10_000): Promise<void> {
    if (this.#closed) return;
    await this.forceFlush(timeoutMs);
    this.#closed = true;
    clearTimeout(this.#wakeTimer);
    this.#drop(this.#takeQueued(), 'undelivered at shutdown');
    await this.#agent.destroy().catch(() => undefined);
    await Promise.allSettled([...this.#inFlight]);
    if (this.#dropsSinceLog > 0) {
      this.#log.warn({ dropped: this.#dropsSinceLog, total: this.#stats.dropped }, 'cloudevents dropped');
      this.#dropsSinceLog = 0;
    }
    this.#notifyIdle();
  }

  #queuedEvents(): number {
    let n = this.#pending.length;
    for (const d of this.#retrying) n += d.events.length;
    return n;
  }

  #isIdle(): boolean {
    return this.#queuedEvents() === 0 && this.#inFlight.size === 0;
  }

  #notifyIdle(): void {
    if (!this.#isIdle() && !this.#closed) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Empties the queue, returning what was in it. */
  #takeQueued(): CloudEventV1<unknown>[] {
    const events = [...this.#retrying.flatMap((d) => d.events), ...this.#pending];
    this.#pending = [];
    this.#retrying = [];
    return events;
  }

  #fail(events: readonly CloudEventV1<unknown>[], failure: SinkFailure): void {
    if (events.length === 0) return;
    try {
      this.#onFailed?.(events, failure);
    } catch (err) {
      this.#log.warn({ error: (err as Error).message }, 'onFailed callback failed');
    }
  }

  #drop(events: readonly CloudEventV1<unknown>[], reason: string): void {
    const count = events.length;
    if (count === 0) return;
    this.#fail(events, { kind: 'dropped', reason });
    this.#stats.dropped += count;
    this.#dropsSinceLog += count;
    const now = Date.now();
    if (now - this.#lastDropLog >= DROP_LOG_INTERVAL_MS) {
      this.#log.warn({ dropped: this.#dropsSinceLog, reason }, 'cloudevents dropped');
      this.#lastDropLog = now;
      this.#dropsSinceLog = 0;
    }
  }

  #next(): Delivery | undefined {
    const retry = this.#retrying.shift();
    if (retry) return retry;
    if (this.#pending.length === 0) return undefined;
    const take = this.mode === 'batch' ? this.#maxBatchSize : 1;
    const events = this.#pending.splice(0, take);
    const [encoded] = encodeRequests(events, this.mode);
    if (!encoded) return undefined;
    return { events, request: encoded, attempt: 0 };
  }

  #pump(): void {
    if (this.#closed || this.#disabled) return;
    const wait = this.#pausedUntil - Date.now();
    if (wait > 0) {
      if (!this.#wakeTimer) {
        this.#wakeTimer = setTimeout(() => {
          this.#wakeTimer = undefined;
          this.#pump();
        }, wait);
        this.#wakeTimer.unref();
      }
      return;
    }
    while (this.#inFlight.size < this.#concurrency) {
      const delivery = this.#next();
      if (!delivery) break;
      const task = this.#attempt(delivery).finally(() => {
        this.#inFlight.delete(task);
        this.#pump();
        this.#notifyIdle();
      });
      this.#inFlight.add(task);
    }
  }

  async #attempt(delivery: Delivery): Promise<void> {
    delivery.attempt += 1;
    let status: number | undefined;
    let retryAfter: string | undefined;
    let error: string | undefined;
    try {
      const response = await request(this.url, {
        method: 'POST',
        dispatcher: this.#agent,
        headers: { ...this.#headers, ...delivery.request.headers },
        body: delivery.request.body,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      status = response.statusCode;
      const header = response.headers['retry-after'];
      retryAfter = Array.isArray(header) ? header[0] : header;
      await response.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
    } catch (err) {
      error = describeError(err);
    }
    const verdict = verdictFor(status, error);
    const ids = delivery.events.length === 1 ? delivery.events[0]?.id : undefined;
    const context = { status, attempt: delivery.attempt, events: delivery.events.length, id: ids };
    switch (verdict.kind) {
      case 'delivered':
        this.#consecutiveFailures = 0;
        this.#stats.delivered += delivery.events.length;
        try {
          this.#onDelivered?.(delivery.events, Date.now());
        } catch (err) {
          this.#log.warn({ error: (err as Error).message }, 'onDelivered callback failed');
        }
        return;
      case 'reject':
        this.#stats.failed += delivery.events.length;
        this.#log.warn({ ...context, reason: verdict.reason }, 'cloudevent rejected by sink, not retried');
        this.#fail(delivery.events, { kind: 'rejected', reason: verdict.reason });
        return;
      case 'gone':
        this.#stats.failed += delivery.events.length;
        this.#disabled = true;
        this.#log.warn({ ...context, reason: verdict.reason }, 'sink answered 410 Gone: sink disabled');
        this.#fail(delivery.events, { kind: 'gone', reason: verdict.reason });
        this.#drop(this.#takeQueued(), 'sink disabled (HTTP 410)');
        return;
      case 'retry': {
        if (this.#closed) {
          this.#drop(delivery.events, 'undelivered at shutdown');
          return;
        }
        this.#consecutiveFailures += 1;
        if (delivery.attempt >= this.#policy.maxAttempts) {
          this.#stats.failed += delivery.events.length;
          this.#log.warn(
            { ...context, reason: verdict.reason },
            'cloudevent delivery failed, retries exhausted',
          );
          this.#fail(delivery.events, { kind: 'exhausted', reason: verdict.reason });
          return;
        }
        // A dead sink is not hammered: the back-off follows the sink's failures in a row, not
        // only this request's attempts, and the next attempt is the probe that closes it again.
        const delay = backoffDelay(
          this.#policy,
          Math.max(delivery.attempt, this.#consecutiveFailures),
          parseRetryAfter(retryAfter, Date.now()),
        );
        this.#stats.retried += delivery.events.length;
        this.#log.warn(
          { ...context, reason: verdict.reason, retryInMs: delay },
          'cloudevent delivery failed, will retry',
        );
        this.#pausedUntil = Math.max(this.#pausedUntil, Date.now() + delay);
        this.#retrying.push(delivery);
        return;
      }
    }
  }
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: string }).code;
    if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'time-out';
    return code ? `${code}` : err.message;
  }
  return String(err);
}
