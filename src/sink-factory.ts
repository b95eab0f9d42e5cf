/**
 * Builds one webhook sink from its parts, the same way for the callback URL's sink and for
 * every configured sink: a DeliveryQueue with the sink's renderer, an HttpSender (time-out,
 * headers, Standard Webhooks signing) and its storage (the durable outbox when one is
 * configured, else memory), behind the sink's filter and content policy, reporting to the
 * metrics. An outbox directory that cannot be used at start-up is a ConfigError naming
 * `outbox.dir` (exit 2), unless the operator asked for a degraded start.
 */
import { join } from 'node:path';
import type { CloudEventV1 } from 'cloudevents';
import type { Logger } from 'pino';
import type { ContentMode } from '../exporters/cloudevents/encode.ts';
import type { ContentPolicy } from '../exporters/content-policy.ts';
import type { Clock } from '../exporters/delivery/clock.ts';
import { DeliveryQueue } from '../exporters/delivery/delivery-queue.ts';
import { LossLog } from '../exporters/delivery/loss-log.ts';
import { MemoryStorage } from '../exporters/delivery/memory-storage.ts';
import { OutboxLockedError, OutboxStorage, OutboxUnavailableError } from '../exporters/delivery/outbox.ts';
import type { OutboxFs } from '../exporters/delivery/outbox-files.ts';
import type { QueueStorage } from '../exporters/delivery/queue-storage.ts';
import type { RetryPolicy } from '../exporters/delivery/retry-policy.ts';
import { HttpSender, type Sender } from '../exporters/delivery/sender.ts';
import { defaultSinkName, withoutCredentials } from '../exporters/delivery/sink-url.ts';
import { WebhookSink } from '../exporters/delivery/webhook-sink.ts';
import { cloudEventsRenderer } from '../exporters/renderers/cloudevents.ts';
import type { Renderer } from '../exporters/renderers/types.ts';
import type { CloudEventSink } from '../exporters/sink.ts';
import type { EventFilter } from '../exporters/sink-filter.ts';
import { ConfigError } from './config-error.ts';
import type { CaoMetrics } from './metrics.ts';

/** Everything one sink is made of. */
export interface SinkSpec {
  name: string;
  /** Without credentials (see withoutCredentials). */
  url: string;
  renderer: Renderer;
  headers: Record<string, string>;
  signingSecrets?: readonly string[];
  timeoutMs: number;
  maxQueue: number;
  retry?: Partial<RetryPolicy>;
  filter?: EventFilter;
  content?: ContentPolicy;
  /** The `options` a user renderer gets. */
  options?: Record<string, unknown>;
  concurrency?: number;
  /**
   * A sender around the HTTP one, for a service that needs several calls per request and keeps
   * state of its own (the Slack Web API: channels, threads, edits).
   */
  sender?: (http: Sender, logger: Logger) => Sender;
}

export interface OutboxSettings {
  dir: string;
  maxBytes?: number;
  onStartError?: 'exit' | 'degrade';
}

/** What every sink of a process shares. */
export interface SinkEnvironment {
  logger: Logger;
  metrics?: CaoMetrics;
  outbox?: OutboxSettings;
  /** Told about every event a sink acknowledged (the demo prints them). */
  onDelivered?: (sink: string, events: readonly CloudEventV1<unknown>[]) => void;
  /** For tests: the retry clock, the outbox's file system, the sender. */
  clock?: Clock;
  fs?: OutboxFs;
  sender?: (spec: SinkSpec) => Sender;
}

export const DEFAULT_OUTBOX_MAX_BYTES = 1024 * 1024 * 1024;

/** A sink's outbox directory: one per sink, named after the sink. */
export function outboxDirOf(base: string, sinkName: string): string {
  return join(base, sinkName);
}

export function createSender(spec: SinkSpec, logger: Logger, clock?: Clock): Sender {
  const http = new HttpSender({
    timeoutMs: spec.timeoutMs,
    headers: spec.headers,
    signingSecrets: spec.signingSecrets,
    connections: spec.concurrency ?? 1,
    now: clock ? () => clock.now() : undefined,
  });
  return spec.sender ? spec.sender(http, logger) : http;
}

/** The sink's queue over a given storage (the sidecar's, or a replay's). */
export function createDeliveryQueue(
  spec: SinkSpec,
  storage: QueueStorage,
  losses: LossLog,
  env: SinkEnvironment,
): DeliveryQueue {
  const logger = env.logger.child({ sink: spec.name });
  const { metrics, onDelivered } = env;
  return new DeliveryQueue({
    name: spec.name,
    url: spec.url,
    renderer: spec.renderer,
    context: { sink: spec.name, url: spec.url, options: Object.freeze({ ...(spec.options ?? {}) }) },
    sender: env.sender?.(spec) ?? createSender(spec, logger, env.clock),
    storage,
    losses,
    logger,
    retry: spec.retry,
    concurrency: spec.concurrency,
    clock: env.clock,
    onDelivered:
      metrics || onDelivered
        ? (events) => {
            const at = Date.now();
            if (metrics) for (const e of events) metrics.delivered(spec.name, at - Date.parse(String(e.time)));
            onDelivered?.(spec.name, events);
          }
        : undefined,
  });
}

/** Opens a sink's outbox; a directory that cannot be used is a ConfigError naming the key. */
export function openOutbox(spec: SinkSpec, settings: OutboxSettings, losses: LossLog, env: SinkEnvironment): OutboxStorage {
  const dir = outboxDirOf(settings.dir, spec.name);
  try {
    return OutboxStorage.open({
      dir,
      sink: spec.name,
      maxBytes: settings.maxBytes ?? DEFAULT_OUTBOX_MAX_BYTES,
      memoryEvents: spec.maxQueue,
      logger: env.logger.child({ sink: spec.name }),
      losses,
      degradedStart: settings.onStartError === 'degrade',
      fs: env.fs,
      clock: env.clock,
    });
  } catch (err) {
    if (err instanceof OutboxUnavailableError) {
      throw new ConfigError(
        `outbox.dir: ${err.message} (sink ${spec.name}). Make the directory writable, point outbox.dir elsewhere, ` +
          'or set outbox.onStartError: degrade (--outbox-on-start-error degrade) to start anyway, delivering from memory',
      );
    }
    if (err instanceof OutboxLockedError) throw new ConfigError(`outbox.dir: ${err.message}`);
    throw err;
  }
}

/** One sink, ready for the CloudEvents span exporter. Throws ConfigError (outbox directory). */
export function createWebhookSink(spec: SinkSpec, env: SinkEnvironment): WebhookSink {
  const logger = env.logger.child({ sink: spec.name });
  const losses = new LossLog(logger, { clock: env.clock });
  const storage = env.outbox ? openOutbox(spec, env.outbox, losses, env) : new MemoryStorage({ maxEvents: spec.maxQueue, losses });
  const sink = new WebhookSink({
    name: spec.name,
    queue: createDeliveryQueue(spec, storage, losses, env),
    filter: spec.filter,
    content: spec.content,
  });
  env.metrics?.observeSink(sink);
  return sink;
}

/** A plain CloudEvents sink for a URL (the callback URL, a library user's). */
export interface CloudEventsSinkOptions {
  url: string;
  name?: string;
  mode?: ContentMode;
  timeoutMs?: number;
  maxQueue?: number;
  retry?: Partial<RetryPolicy>;
  headers?: Record<string, string>;
}

/** The spec of a plain CloudEvents sink for a URL. */
export function cloudEventsSinkSpec(options: CloudEventsSinkOptions): SinkSpec {
  const { url, authorization } = withoutCredentials(options.url);
  return {
    name: options.name ?? defaultSinkName(url),
    url,
    renderer: cloudEventsRenderer(options.mode ?? 'structured'),
    headers: { ...(options.headers ?? {}), ...(authorization ? { authorization } : {}) },
    timeoutMs: options.timeoutMs ?? 5_000,
    maxQueue: options.maxQueue ?? 10_000,
    retry: options.retry,
  };
}

/** The options createCaoTelemetry gives for its `callbackUrl`. */
export interface DeliverySinkOptions extends Omit<CloudEventsSinkOptions, 'headers'> {
  logger: Logger;
}

export interface DeliveryExtras {
  outbox?: { dir: string; maxBytes?: number };
  metrics?: CaoMetrics;
  logger: Logger;
}

/** createCaoTelemetry's callback-URL sink (the library path). */
export function createDeliverySink(options: DeliverySinkOptions, extras: DeliveryExtras): CloudEventSink {
  return createWebhookSink(cloudEventsSinkSpec(options), { logger: extras.logger, metrics: extras.metrics, outbox: extras.outbox });
}
