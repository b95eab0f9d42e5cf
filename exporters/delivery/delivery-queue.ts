/**
 * One webhook sink: its own bounded queue, delivery with undici (time-out on every request),
 * retries per the retry policy, and counters. Nothing here ever throws into, or waits inside,
 * the code that emitted an event: `enqueue` only appends and wakes the pump.
 *
 * Optionally a transform (exporters/transforms) renders the events into the request instead of
 * a CloudEvents content mode — it may coalesce a burst into one request, space requests out
 * (minIntervalMs) and read the service's answer (onResponse) — and every request can carry a
 * Standard Webhooks signature (exporters/signing.ts), computed afresh for each attempt.
 */
import type { CloudEventV1 } from 'cloudevents';
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import { type ContentMode, type EncodedRequest, encodeRequests } from '../cloudevents/encode.ts';
import { signatureHeaders, webhookIdOf } from './signing.ts';
import type {
  CaoCloudEventLike,
  ResponseVerdict,
  SinkTransform,
  TransformContext,
  TransformResponse,
} from '../renderers/types.ts';
import {
  DEFAULT_RETRY_POLICY,
  type RetryPolicy,
  type Verdict,
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
  /** Renders events into the request (Slack, Discord, a user module) instead of `mode`. */
  transform?: SinkTransform;
  /** The `options` a transform gets, and who is who (see TransformContext). */
  transformOptions?: Record<string, unknown>;
  agentName?: (terminalId: string | undefined) => string | undefined;
  /** Standard Webhooks secrets (`whsec_…`): every request then carries webhook-id/-timestamp/-signature. */
  signingSecrets?: readonly string[];
  /**
   * Called when the sink acknowledged a request (2xx), with the time it did; also for events a
   * transform skipped (nothing to send for them: they are done).
   */
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
  /** Events a transform returned null for (nothing sent, nothing wrong). */
  skipped: number;
  queued: number;
  inFlight: number;
  disabled: boolean;
}

interface Delivery {
  events: CloudEventV1<unknown>[];
  /** Encoded at the first attempt (a transform renders at send time: thread ids, coalescing). */
  request?: EncodedRequest & { url?: string };
  attempt: number;
}

const RESPONSE_BODY_LIMIT = 64 * 1024;

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
  readonly #transform: SinkTransform | undefined;
  readonly #context: TransformContext;
  readonly #secrets: readonly string[];
  /** No request starts before this (the transform's minIntervalMs after the previous one ended). */
  #nextSendAt = 0;
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
  readonly #stats = { enqueued: 0, delivered: 0, retried: 0, failed: 0, dropped: 0, skipped: 0 };

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
    this.#transform = options.transform;
    this.#secrets = options.signingSecrets ?? [];
    const agentName = options.agentName ?? (() => undefined);
    this.#context = {
      sink: this.name,
      url: this.url,
      options: Object.freeze({ ...(options.transformOptions ?? {}) }),
      agentName,
    };
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
    if (this.#transform) {
      const { maxBatch = 1, groupBy, grouping } = this.#transform;
      const events = takeGroup(this.#pending, maxBatch, groupBy, grouping === 'run');
      return { events, attempt: 0 };
    }
    const take = this.mode === 'batch' ? this.#maxBatchSize : 1;
    const events = this.#pending.splice(0, take);
    const [encoded] = encodeRequests(events, this.mode);
    if (!encoded) return undefined;
    return { events, request: encoded, attempt: 0 };
  }

  #pump(): void {
    if (this.#closed || this.#disabled) return;
    const wait = Math.max(this.#pausedUntil, this.#nextSendAt) - Date.now();
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

  /**
   * Renders a transform's request for a delivery. Returns false when there is nothing to send:
   * the transform skipped the events, or failed (both counted; a failure is a WARN line).
   */
  async #encode(delivery: Delivery): Promise<boolean> {
    const transform = this.#transform!;
    const events = delivery.events as CaoCloudEventLike[];
    let output;
    try {
      output = await transform.encode(events, this.#context);
      if (output !== null && output !== undefined && (typeof output !== 'object' || !('body' in output))) {
        throw new TypeError('encode() must return {body, headers?, url?} or null');
      }
    } catch (err) {
      this.#stats.failed += events.length;
      this.#log.warn(
        { transform: transform.name, events: events.length, error: String((err as Error)?.message ?? err).slice(0, 200) },
        'sink transform failed, events not delivered',
      );
      this.#fail(events, { kind: 'rejected', reason: `transform failed: ${String((err as Error)?.message ?? err).slice(0, 200)}` });
      return false;
    }
    if (output === null || output === undefined) {
      this.#stats.skipped += events.length;
      this.#acknowledge(events);
      return false;
    }
    const consumed = output.consumed;
    if (consumed !== undefined && Number.isInteger(consumed) && consumed >= 1 && consumed < events.length) {
      // What did not fit goes back to the front of the queue, in order, for the next request.
      this.#pending.unshift(...delivery.events.splice(consumed));
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(output.headers ?? {})) headers[k.toLowerCase()] = String(v);
    let body: string;
    if (typeof output.body === 'string') {
      body = output.body;
    } else {
      body = JSON.stringify(output.body);
      headers['content-type'] ??= 'application/json; charset=utf-8';
    }
    delivery.request = { headers, body, ...(output.url ? { url: output.url } : {}) };
    return true;
  }

  #acknowledge(events: readonly CloudEventV1<unknown>[]): void {
    try {
      this.#onDelivered?.(events, Date.now());
    } catch (err) {
      this.#log.warn({ error: (err as Error).message }, 'onDelivered callback failed');
    }
  }

  async #attempt(delivery: Delivery): Promise<void> {
    if (!delivery.request && !(await this.#encode(delivery))) return;
    const encoded = delivery.request!;
    delivery.attempt += 1;
    let status: number | undefined;
    let retryAfter: string | undefined;
    let error: string | undefined;
    let answer: TransformResponse | undefined;
    const signing =
      this.#secrets.length > 0
        ? signatureHeaders(webhookIdOf(delivery.events.map((e) => e.id)), encoded.body, this.#secrets)
        : {};
    try {
      const response = await request(encoded.url ?? this.url, {
        method: 'POST',
        dispatcher: this.#agent,
        headers: { ...this.#headers, ...encoded.headers, ...signing },
        body: encoded.body,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      status = response.statusCode;
      const header = response.headers['retry-after'];
      retryAfter = Array.isArray(header) ? header[0] : header;
      if (this.#transform?.onResponse) {
        answer = { status, headers: flatHeaders(response.headers), body: await readLimited(response.body) };
      } else {
        await response.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
      }
    } catch (err) {
      error = describeError(err);
    }
    if (this.#transform?.minIntervalMs) this.#nextSendAt = Date.now() + this.#transform.minIntervalMs;
    let verdict = verdictFor(status, error);
    let retryAfterMs = parseRetryAfter(retryAfter, Date.now());
    if (answer) {
      let said: ResponseVerdict | undefined | void;
      try {
        said = this.#transform!.onResponse!(answer, delivery.events as CaoCloudEventLike[], this.#context);
      } catch (err) {
        this.#log.warn({ transform: this.#transform!.name, error: (err as Error).message }, 'sink transform onResponse failed');
      }
      if (said) {
        verdict = overrideVerdict(verdict, said);
        if (said.retryAfterMs !== undefined) retryAfterMs = said.retryAfterMs;
        if (said.pauseMs !== undefined && said.pauseMs > 0) {
          this.#pausedUntil = Math.max(this.#pausedUntil, Date.now() + said.pauseMs);
        }
      }
    }
    const ids = delivery.events.length === 1 ? delivery.events[0]?.id : undefined;
    const context = { status, attempt: delivery.attempt, events: delivery.events.length, id: ids };
    switch (verdict.kind) {
      case 'delivered':
        this.#consecutiveFailures = 0;
        this.#stats.delivered += delivery.events.length;
        this.#acknowledge(delivery.events);
        return;
      case 'reject':
        this.#stats.failed += delivery.events.length;
        this.#log.warn({ ...context, reason: verdict.reason }, 'cloudevent rejected by sink, not retried');
        this.#fail(delivery.events, { kind: 'rejected', reason: verdict.reason });
        return;
      case 'gone':
        this.#stats.failed += delivery.events.length;
        this.#disabled = true;
        this.#log.warn({ ...context, reason: verdict.reason }, `sink disabled: ${verdict.reason}`);
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
          retryAfterMs,
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

/**
 * Takes the next request's events: up to `max`, all sharing the first one's group key, in
 * order; with `runOnly`, only the unbroken run of them at the head of the queue.
 */
export function takeGroup<E extends CloudEventV1<unknown>>(
  pending: E[],
  max: number,
  groupBy?: (event: CaoCloudEventLike) => string,
  runOnly = false,
): E[] {
  if (!groupBy) return pending.splice(0, Math.max(1, max));
  const key = groupBy(pending[0] as unknown as CaoCloudEventLike);
  if (runOnly) {
    let n = 1;
    while (n < max && n < pending.length && groupBy(pending[n] as unknown as CaoCloudEventLike) === key) n += 1;
    return pending.splice(0, n);
  }
  const taken: E[] = [];
  let kept = 0;
  for (let i = 0; i < pending.length; i++) {
    const event = pending[i]!;
    if (taken.length < max && groupBy(event as unknown as CaoCloudEventLike) === key) taken.push(event);
    else pending[kept++] = event;
  }
  pending.length = kept;
  return taken;
}

function overrideVerdict(verdict: Verdict, said: ResponseVerdict): Verdict {
  const reason = said.reason ?? ('reason' in verdict ? verdict.reason : 'answer read by the transform');
  switch (said.outcome) {
    case 'delivered':
      return { kind: 'delivered' };
    case 'retry':
      return { kind: 'retry', reason };
    case 'reject':
      return { kind: 'reject', reason };
    case 'gone':
      return { kind: 'gone', reason };
    default:
      return verdict.kind === 'delivered' ? verdict : { ...verdict, reason };
  }
}

function flatHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/** The response body as text, its first 64 KiB; the rest is discarded. */
async function readLimited(body: AsyncIterable<Buffer | Uint8Array> & { dump(o?: { limit?: number }): Promise<void> }): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const buf = Buffer.from(chunk);
      chunks.push(buf);
      size += buf.length;
      if (size >= RESPONSE_BODY_LIMIT) break;
    }
  } catch {
    // a body cut short still tells what it told so far
  }
  return Buffer.concat(chunks).subarray(0, RESPONSE_BODY_LIMIT).toString('utf8');
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: string }).code;
    if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'time-out';
    return code ? `${code}` : err.message;
  }
  return String(err);
}
