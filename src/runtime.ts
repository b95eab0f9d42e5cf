/**
 * The sidecar's runtime: telemetry built from the validated Config (the callback URL's sink, the
 * config file's `sinks:`, redaction), and `record()`, the one
 * door through which every source (gateway, poller, plugin ingest) hands in CaoEvents. A
 * source's mistake is a WARN line, never an exception into the source.
 */
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import type { CloudEventSink } from '../exporters/cloudevents/span-exporter.ts';
import { redactUrl } from '../exporters/delivery/delivery-queue.ts';
import type { Config } from './config.ts';
import { CaoMetrics } from './metrics.ts';
import { compileRedaction } from './redact.ts';
import { buildSinks } from './sinks.ts';
import type { CaoEvent } from './events.ts';
import type { Logger } from './logger.ts';
import type { RecordedEvent } from './recorder.ts';
import { type CaoTelemetry, createCaoTelemetry } from './telemetry.ts';

export interface Runtime {
  telemetry: CaoTelemetry;
  /** Self-observability (undefined when turned off). */
  metrics?: CaoMetrics;
  logger: Logger;
  /** Records an event from a source; returns what was recorded, or undefined (duplicate or invalid). */
  record(event: CaoEvent): RecordedEvent | undefined;
  /** One phrase for the start-up line: where CloudEvents go. */
  deliveryNote: string;
  close(): Promise<void>;
}

export interface RuntimeExtras {
  spanExporters?: SpanExporter[];
  /** Sinks beside the callback URL's. */
  sinks?: CloudEventSink[];
  /** OTLP endpoint override (the demo's --otlp-endpoint). */
  env?: Record<string, string | undefined>;
  /** false: no metrics. */
  metrics?: false;
}

function otlpOptions(config: Config): Config['otlp'] | undefined {
  return config.otlp.endpoint || config.otlp.protocol ? config.otlp : undefined;
}

export function startRuntime(config: Config, logger: Logger, extras: RuntimeExtras = {}): Runtime {
  // Throws ConfigError (a transform module that does not load) before anything starts.
  const outbox = config.outbox.dir ? { dir: config.outbox.dir, maxBytes: config.outbox.maxBytes } : undefined;
  const metrics = extras.metrics === false ? undefined : new CaoMetrics({ otlp: otlpOptions(config), env: extras.env });
  const configured = buildSinks(config.sinks ?? [], logger, { timeoutMs: config.timeoutMs, maxQueue: config.maxQueue, outbox, metrics });
  const telemetry = createCaoTelemetry({
    callbackUrl: config.callbackUrl,
    mode: config.mode,
    timeoutMs: config.timeoutMs,
    maxQueue: config.maxQueue,
    source: config.source ?? `http://${config.gateway.host}:${config.gateway.port}`,
    typePrefix: config.typePrefix,
    dataschemaBase: config.dataschemaBase,
    otlp: otlpOptions(config),
    outbox,
    metrics,
    spanExporters: extras.spanExporters,
    sinks: [...configured, ...(extras.sinks ?? [])],
    redaction: config.redaction ? compileRedaction(config.redaction) : undefined,
    logger,
    env: extras.env,
  });
  const sinkNote = configured.length > 0 ? `sinks ${configured.map((s) => s.name).join(', ')}` : '';
  const deliveryNote = config.callbackUrl
    ? `CloudEvents to ${redactUrl(config.callbackUrl)} (${config.mode})${sinkNote ? `; ${sinkNote}` : ''}`
    : sinkNote ||
      'no callback URL (set CAO_EVENT_CALLBACK_URL or --callback-url): CloudEvents delivery is off';
  return {
    telemetry,
    metrics,
    logger,
    deliveryNote,
    record(event: CaoEvent): RecordedEvent | undefined {
      try {
        return telemetry.emit(event);
      } catch (err) {
        logger.warn({ type: event.type, source: event.source, error: (err as Error).message }, 'event not recorded');
        return undefined;
      }
    },
    close: async () => {
      await telemetry.shutdown();
      await metrics?.shutdown();
    },
  };
}
