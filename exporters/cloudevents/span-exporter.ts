/**
 * An OpenTelemetry SpanExporter that turns the `cao.*` span events of exported spans into
 * CloudEvents (pure transform) and hands them to sinks, each with its own queue. `export`
 * returns at once: the OTel processors may call it concurrently, drop on overflow and never
 * retry, so delivery, retries and back-pressure live in the sinks, not here.
 */
import type { ExportResult } from '@opentelemetry/core';
import { ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import type { CloudEventV1 } from 'cloudevents';
import type { Logger } from 'pino';
import { type TransformOptions, spanToCloudEvents } from '../transform.ts';

/** Where converted CloudEvents go. `HttpSink` is one. */
export interface CloudEventSink {
  readonly name: string;
  enqueue(events: readonly CloudEventV1<unknown>[]): void;
  forceFlush(timeoutMs?: number): Promise<void>;
  shutdown(timeoutMs?: number): Promise<void>;
}

export interface CloudEventsSpanExporterOptions extends TransformOptions {
  sinks: CloudEventSink[];
  logger: Logger;
  /** Bound for forceFlush()/shutdown(). */
  flushTimeoutMs?: number;
}

export class CloudEventsSpanExporter implements SpanExporter {
  readonly #sinks: CloudEventSink[];
  readonly #transform: TransformOptions;
  readonly #log: Logger;
  readonly #flushTimeoutMs: number;
  #shutdown = false;

  constructor(options: CloudEventsSpanExporterOptions) {
    this.#sinks = options.sinks;
    this.#transform = {
      typePrefix: options.typePrefix,
      source: options.source,
      dataschemaBase: options.dataschemaBase,
    };
    this.#log = options.logger;
    this.#flushTimeoutMs = options.flushTimeoutMs ?? 10_000;
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    if (this.#shutdown) {
      resultCallback({ code: ExportResultCode.FAILED, error: new Error('exporter shut down') });
      return;
    }
    const events: CloudEventV1<unknown>[] = [];
    for (const span of spans) {
      try {
        events.push(...spanToCloudEvents(span, this.#transform));
      } catch (err) {
        // A span event that cannot form a valid CloudEvent is a bug upstream; say so, keep going.
        this.#log.warn({ err, span: span.name }, 'span event could not be converted to a CloudEvent');
      }
    }
    for (const sink of this.#sinks) sink.enqueue(events);
    resultCallback({ code: ExportResultCode.SUCCESS });
  }

  async forceFlush(): Promise<void> {
    await Promise.all(this.#sinks.map((s) => s.forceFlush(this.#flushTimeoutMs)));
  }

  async shutdown(): Promise<void> {
    if (this.#shutdown) return;
    this.#shutdown = true;
    await Promise.all(this.#sinks.map((s) => s.shutdown(this.#flushTimeoutMs)));
  }
}
