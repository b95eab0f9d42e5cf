/**
 * The Renderer layer: what turns a sink's CloudEvents into the request body and headers, and
 * reads the service's answer. Every sink has exactly one: the CloudEvents content modes
 * (structured, binary, batch: renderers/cloudevents.ts), `slack`, `discord`, or a user module
 * named as `transform:` in the config file (see README, "Sinks, transforms, signing and
 * privacy"). A renderer receives events already filtered and content-policed for its sink and
 * returns the request to send, or null to skip them; the delivery queue decides when and how
 * often it is sent, the sender sends (and signs) it.
 */
import type { CloudEventV1 } from 'cloudevents';
import type { CaoEventData } from '../transform.ts';

export type CaoCloudEventLike = CloudEventV1<CaoEventData>;

/** What a renderer gets besides the events. */
export interface RenderContext {
  /** The sink's name (config `name`). */
  readonly sink: string;
  /** The sink's URL. */
  readonly url: string;
  /** The sink's `options` mapping from the config file (free-form, for user transforms). */
  readonly options: Readonly<Record<string, unknown>>;
}

/** The request a renderer asks for. */
export interface RenderedRequest {
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

export interface Renderer {
  readonly name: string;
  /** Render events into one request, or null/undefined to skip them (counted as skipped). */
  encode(
    events: readonly CaoCloudEventLike[],
    context: RenderContext,
  ): RenderedRequest | null | undefined | Promise<RenderedRequest | null | undefined>;
  /** Events offered to one encode() at most (default 1). */
  maxBatch?: number;
  /** Events offered together share this key (e.g. the session: one Slack thread per session). */
  groupBy?: (event: CaoCloudEventLike) => string;
  /**
   * With groupBy: `gather` (default) takes the queued events of the first one's group wherever
   * they are in memory (up to maxQueue events; order kept within a group, e.g. a thread); `run` takes only the unbroken run at
   * the head of the queue (order kept across groups, e.g. one channel).
   */
  grouping?: 'gather' | 'run';
  /** At least this long between the end of one request and the start of the next; bursts coalesce meanwhile. */
  minIntervalMs?: number;
  /** Reads the service's answer (errors in a 200 body, a retry_after in JSON, thread ids…). */
  onResponse?(
    response: TransformResponse,
    events: readonly CaoCloudEventLike[],
    context: RenderContext,
  ): ResponseVerdict | undefined | void;
}

/** The simplest user transform: one event in, one request (or null) out. */
export type EventTransformFunction = (
  event: CaoCloudEventLike,
  context: RenderContext,
) => RenderedRequest | null | undefined | Promise<RenderedRequest | null | undefined>;

/** The names the config file and the README use for user renderers ("transforms"). */
export type SinkTransform = Renderer;
export type TransformContext = RenderContext;
export type TransformOutput = RenderedRequest;
