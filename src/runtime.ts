/**
 * The sidecar's runtime: telemetry built from the validated Config (the callback URL's sink, the
 * config file's `sinks:`, redaction), and `record()`, the one
 * door through which every source (gateway, poller, plugin ingest) hands in CaoEvents. A
 * source's mistake is a WARN line, never an exception into the source.
 */
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import type { CloudEventSink } from '../exporters/sink.ts';
import type { Config } from './config.ts';
import { CaoMetrics } from './metrics.ts';
import { routeOtelDiagnostics } from './otel-diag.ts';
import { compileRedaction } from './redact.ts';
import type { SinkEnvironment } from './sink-factory.ts';
import { buildSinks, sinkSpecs } from './sinks.ts';
import type { CaoEvent } from './core/events.ts';
import type { Logger } from './logger.ts';
import type { RecordedEvent } from './core/recorder.ts';
import { DEFAULT_MESSAGE_WINDOW_MS } from './core/ledger.ts';
import { defaultSource } from './core/source-id.ts';
import { type CaoStateView, DEFAULT_GRACE_MS } from './core/state.ts';
import { type CaoTelemetry, createCaoTelemetry } from './core/telemetry.ts';

export interface Runtime {
  telemetry: CaoTelemetry;
  /** Self-observability (undefined when turned off). */
  metrics?: CaoMetrics;
  logger: Logger;
  /** Records an event from a source; returns what was recorded, or undefined (duplicate or invalid). */
  record(event: CaoEvent): RecordedEvent | undefined;
  /** What the core knows of sessions and terminals: sources ask it before asking CAO. */
  state: CaoStateView;
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
  /** For tests: the sinks' retry clock, outbox file system, sender. */
  delivery?: Pick<SinkEnvironment, 'clock' | 'fs' | 'sender'>;
}

function otlpOptions(config: Config): Config['otlp'] | undefined {
  return config.otlp.endpoint || config.otlp.protocol ? config.otlp : undefined;
}

/** One line for the operator: how many events the sinks did not deliver at shutdown, and where they are. */
function logShutdownAccount(logger: Logger, sinks: readonly CloudEventSink[]): void {
  let lost = 0;
  let keptOnDisk = 0;
  const bySink: Record<string, { lost: number; keptOnDisk: number; outbox?: string }> = {};
  for (const sink of sinks) {
    const summary = sink.stats.shutdown;
    if (!summary || summary.undelivered === 0) continue;
    lost += summary.lost;
    keptOnDisk += summary.keptOnDisk;
    bySink[sink.name] = { lost: summary.lost, keptOnDisk: summary.keptOnDisk, ...(summary.outboxDir ? { outbox: summary.outboxDir } : {}) };
  }
  const undelivered = lost + keptOnDisk;
  const line = { undelivered, lost, keptOnDisk, sinks: bySink };
  if (lost > 0) logger.error(line, `shutdown: ${undelivered} cloudevent(s) not delivered: ${lost} lost, ${keptOnDisk} kept in the outbox`);
  else if (keptOnDisk > 0) logger.warn(line, `shutdown: ${undelivered} cloudevent(s) not delivered, all kept in the outbox for the next start`);
  else if (sinks.length > 0) logger.info({ undelivered: 0 }, 'shutdown: every cloudevent delivered');
}

export function startRuntime(config: Config, logger: Logger, extras: RuntimeExtras = {}): Runtime {
  // Throws ConfigError (a transform module that does not load, an outbox directory that
  // cannot be written) before anything starts.
  const stopDiagnostics = routeOtelDiagnostics(logger);
  const outbox = config.outbox.dir
    ? { dir: config.outbox.dir, maxBytes: config.outbox.maxBytes, onStartError: config.outbox.onStartError }
    : undefined;
  const metrics = extras.metrics === false ? undefined : new CaoMetrics({ otlp: otlpOptions(config), env: extras.env });
  let built;
  try {
    built = buildSinks(sinkSpecs(config), { logger, metrics, outbox, ...extras.delivery });
  } catch (err) {
    stopDiagnostics();
    void metrics?.shutdown();
    throw err;
  }
  const configured = built.slice(0, (config.sinks ?? []).length);
  const callback = built.slice(configured.length);
  const sinks: CloudEventSink[] = [...configured, ...(extras.sinks ?? []), ...callback];
  const telemetry = createCaoTelemetry({
    source: config.source ?? defaultSource(config.gateway.upstream),
    // Late facts come from the poller: keep a killed session's trace and a message's occurrences
    // open well past its slowest report (`confirmations` cycles to confirm a kill, plus margin).
    graceMs: Math.max(DEFAULT_GRACE_MS, (config.poller.confirmations + 2) * config.poller.intervalMs),
    messageWindowMs: Math.max(DEFAULT_MESSAGE_WINDOW_MS, 4 * config.poller.intervalMs),
    typePrefix: config.typePrefix,
    dataschemaBase: config.dataschemaBase,
    otlp: otlpOptions(config),
    metrics,
    spanExporters: extras.spanExporters,
    sinks,
    redaction: config.redaction ? compileRedaction(config.redaction) : undefined,
    logger,
    env: extras.env,
  });
  const sinkNote = configured.length > 0 ? `sinks ${configured.map((s) => s.name).join(', ')}` : '';
  const deliveryNote = callback[0]
    ? `CloudEvents to sink ${callback[0].name} (${config.mode})${sinkNote ? `; ${sinkNote}` : ''}`
    : sinkNote ||
      'no callback URL (set CAO_EVENT_CALLBACK_URL or --callback-url): CloudEvents delivery is off';
  return {
    telemetry,
    metrics,
    logger,
    deliveryNote,
    state: telemetry.state,
    record(event: CaoEvent): RecordedEvent | undefined {
      try {
        return telemetry.emit(event);
      } catch (err) {
        logger.warn({ type: event.type, source: event.source, error: (err as Error).message }, 'event not recorded');
        return undefined;
      }
    },
    close: async () => {
      // The sources are stopped: every event recorded is in the sinks already (the CloudEvents
      // exporter runs as each span ends). The sinks flush, all at once, for the configured
      // bound, then count what they could not deliver; the rest of the shutdown finds them done.
      await Promise.all(telemetry.sinks.map((s) => s.shutdown(config.shutdownTimeoutMs).catch(() => undefined)));
      await telemetry.shutdown();
      logShutdownAccount(logger, telemetry.sinks);
      await metrics?.shutdown();
      stopDiagnostics();
    },
  };
}
