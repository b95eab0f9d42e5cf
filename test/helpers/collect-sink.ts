/** Sinks for core tests without HTTP. A CloudEventSink that keeps what it is given, in order: the CloudEvents side of a core test without HTTP. */
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import type { CloudEventV1 } from 'cloudevents';
import { type CloudEventSink, emptySinkStats } from '../../exporters/sink.ts';

export class CollectSink implements CloudEventSink {
  readonly name = 'collect';
  readonly stats = emptySinkStats();
  readonly events: CloudEventV1<unknown>[] = [];
  enqueue(events: readonly CloudEventV1<unknown>[]): void {
    this.events.push(...events);
    this.stats.enqueued += events.length;
    this.stats.delivered += events.length;
  }
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}

/**
 * A SpanExporter that keeps every span it is given, also after shutdown (the SDK's
 * InMemorySpanExporter forgets them at shutdown, which a test reading the spans of a closed
 * telemetry needs).
 */
export class CollectSpans implements SpanExporter {
  readonly spans: ReadableSpan[] = [];
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.spans.push(...spans);
    done({ code: ExportResultCode.SUCCESS });
  }
  async shutdown(): Promise<void> {}
  async forceFlush(): Promise<void> {}
}
