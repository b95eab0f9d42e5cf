/**
 * Sink transforms: the middleware between a sink's queue and its HTTP request. A transform
 * receives CloudEvents (already filtered and content-policed for its sink) and returns the
 * request to send, or null to skip them. Built-ins: `slack` and `discord`; users name a module
 * in the config file (see README, "Sinks, transforms, signing and privacy").
 */
import type { CloudEventV1 } from 'cloudevents';
import type { CaoEventData } from '../transform.ts';

export type CaoCloudEventLike = CloudEventV1<CaoEventData>;

/** What a transform gets besides the events. */
export interface TransformContext {
  /** The sink's name (config `name`). */
  readonly sink: string;
  /** The sink's URL. */
  readonly url: string;
  /** The sink's `options` mapping from the config file (free-form, for user transforms). */
  readonly options: Readonly<Record<string, unknown>>;
  /** The agent profile of a terminal, as learned from the events this sink has seen. */
  agentName(terminalId: string | undefined): string | undefined;
}

/** The request a transform asks for. */
export interface TransformOutput {
  /** Defaults to the sink's URL. */
  url?: string;
  headers?: Record<string, string>;
  /** A string is sent as is; anything else as JSON (content-type application/json). */
  body: unknown;
  /**
   * How many of the offered events this request carries (a prefix; default all). The rest go
   * back to the front of the queue for the next request, e.g. when a message would exceed the
   * receiving service's size limits.
   */
  consumed?: number;
}

/** What the service answered, for `onResponse`. */
export interface TransformResponse {
  status: number;
  headers: Readonly<Record<string, string | undefined>>;
  /** The response body (first 64 KiB). */
  body: string;
}

/** How a transform reads an answer; anything left out keeps the default (2xx ok, 408/429/5xx retried, …). */
export interface ResponseVerdict {
  outcome?: 'delivered' | 'retry' | 'reject' | 'gone';
  /** Logged with the outcome: a short reason, never message content. */
  reason?: string;
  /** Wait at least this long before the retry (a Retry-After carried in the body). */
  retryAfterMs?: number;
  /** Send nothing more for this long (a rate-limit bucket that is empty). */
  pauseMs?: number;
}

export interface SinkTransform {
  readonly name: string;
  /** Render events into one request, or null/undefined to skip them (counted as skipped). */
  encode(
    events: readonly CaoCloudEventLike[],
    context: TransformContext,
  ): TransformOutput | null | undefined | Promise<TransformOutput | null | undefined>;
  /** Events offered to one encode() at most (default 1). */
  maxBatch?: number;
  /** Events offered together share this key (e.g. the session: one Slack thread per session). */
  groupBy?: (event: CaoCloudEventLike) => string;
  /**
   * With groupBy: `gather` (default) takes the queued events of the first one's group wherever
   * they are (order kept within a group, e.g. a thread); `run` takes only the unbroken run at
   * the head of the queue (order kept across groups, e.g. one channel).
   */
  grouping?: 'gather' | 'run';
  /** At least this long between the end of one request and the start of the next; bursts coalesce meanwhile. */
  minIntervalMs?: number;
  /** Reads the service's answer (errors in a 200 body, a retry_after in JSON, thread ids…). */
  onResponse?(
    response: TransformResponse,
    events: readonly CaoCloudEventLike[],
    context: TransformContext,
  ): ResponseVerdict | undefined | void;
}

/** The simplest user transform: one event in, one request (or null) out. */
export type EventTransformFunction = (
  event: CaoCloudEventLike,
  context: TransformContext,
) => TransformOutput | null | undefined | Promise<TransformOutput | null | undefined>;
