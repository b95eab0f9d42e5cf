/**
 * Builds one delivery sink the way the runtime wants it: an HttpSink, behind a durable outbox
 * when one is configured, reporting deliveries to the metrics. Used for the callback URL's sink
 * and for every configured sink, so both behave alike.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { CloudEventSink } from '../exporters/cloudevents/span-exporter.ts';
import { HttpSink, type HttpSinkOptions, type SinkStats } from '../exporters/delivery/delivery-queue.ts';
import { DurableSink, Outbox } from '../exporters/delivery/outbox.ts';
import type { CaoMetrics } from './metrics.ts';

export interface DeliveryExtras {
  outbox?: { dir: string; maxBytes?: number };
  metrics?: CaoMetrics;
  logger: Logger;
}

export type DeliverySink = CloudEventSink & { readonly stats: SinkStats };

/** A stable directory name for a sink's outbox: its name, and a hash of its URL. */
export function outboxDirName(name: string, url: string): string {
  const safe = name.replace(/^https?:\/\//, '').replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 48);
  return `${safe}-${createHash('sha1').update(url).digest('hex').slice(0, 8)}`;
}

export function createDeliverySink(options: HttpSinkOptions, extras: DeliveryExtras): DeliverySink {
  const { metrics } = extras;
  const withMetrics = (onDelivered: HttpSinkOptions['onDelivered']): HttpSinkOptions['onDelivered'] =>
    metrics
      ? (events, at) => {
          for (const e of events) metrics.delivered(sinkName, at - Date.parse(String(e.time)));
          onDelivered?.(events, at);
        }
      : onDelivered;
  let http: HttpSink | undefined;
  const sinkName = options.name ?? new URL(options.url).origin;
  if (!extras.outbox) {
    http = new HttpSink({ ...options, onDelivered: withMetrics(options.onDelivered) });
    metrics?.observeSink(http);
    return http;
  }
  const outbox = new Outbox({
    dir: join(extras.outbox.dir, outboxDirName(sinkName, options.url)),
    maxBytes: extras.outbox.maxBytes,
    logger: extras.logger,
  });
  const durable = new DurableSink(outbox, (hooks) => {
    http = new HttpSink({
      ...options,
      onDelivered: withMetrics((events, at) => {
        hooks.onDelivered(events);
        options.onDelivered?.(events, at);
      }),
      onFailed: (events, failure) => {
        hooks.onFailed(events, failure);
        options.onFailed?.(events, failure);
      },
    });
    return http;
  });
  metrics?.observeSink({ name: durable.name, get stats() { return durable.stats!; }, outbox });
  return durable as DeliverySink;
}
