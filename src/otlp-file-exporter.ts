/**
 * A span exporter that appends OTLP/JSON export requests to a file, one per line (the format of
 * the OpenTelemetry Collector's file exporter), so a trace can be inspected or replayed into a
 * collector without one running. Serialization is the OTel SDK's own JsonTraceSerializer.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import { JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';

export class OtlpJsonFileExporter implements SpanExporter {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
    mkdirSync(dirname(path), { recursive: true });
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    try {
      const bytes = JsonTraceSerializer.serializeRequest(spans);
      if (bytes) appendFileSync(this.path, Buffer.concat([Buffer.from(bytes), Buffer.from('\n')]));
      resultCallback({ code: ExportResultCode.SUCCESS });
    } catch (error) {
      resultCallback({ code: ExportResultCode.FAILED, error: error as Error });
    }
  }

  async shutdown(): Promise<void> {}
}
