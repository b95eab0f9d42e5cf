/**
 * An OpenTelemetry SpanExporter that turns the `cao.*` span events of exported spans into
 * CloudEvents (pure transform) and hands them to sinks, each with its own queue. `export`
 * returns at once: the OTel processors may call it concurrently, drop on overflow and never
 * retry, so delivery, retries and back-pressure live in the sinks, not here. One sink's
 * failure never reaches another: a sink that throws (a bug; ours never do) is an ERROR line
 * with the number of events it did not take, and the next sink still gets them.
 */
import type { ExportResult } from '@opentelemetry/core';
import { ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import type { CloudEventV1 } from 'cloudevents';
import type { Logger } from 'pino';
import type { CloudEventSink } from '../sink.ts';
import { type TransformOptions, spanToCloudEvents } from '../transform.ts';

export type { CloudEventSink } from '../sink.ts';

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
    if (events.length > 0) {
      for (const sink of this.#sinks) {
        try {
          sink.enqueue(events);
        } catch (err) {
          this.#log.error(
            { sink: sink.name, lost: events.length, error: String((err as Error)?.message ?? err).slice(0, 200) },
            `sink failed to accept ${events.length} cloudevent(s); they are lost for this sink`,
          );
        }
      }
    }
    resultCallback({ code: ExportResultCode.SUCCESS });
  }

  async forceFlush(): Promise<void> {
    await Promise.all(this.#sinks.map((s) => this.#isolated(s, 'forceFlush', () => s.forceFlush(this.#flushTimeoutMs))));
  }

  async shutdown(): Promise<void> {
    if (this.#shutdown) return;
    this.#shutdown = true;
    await Promise.all(this.#sinks.map((s) => this.#isolated(s, 'shutdown', () => s.shutdown(this.#flushTimeoutMs))));
  }

  async #isolated(sink: CloudEventSink, what: string, run: () => Promise<void>): Promise<void> {
    try {
      await run();
    } catch (err) {
      this.#log.error({ sink: sink.name, error: String((err as Error)?.message ?? err).slice(0, 200) }, `sink ${what} failed`);
    }
  }
}
