/**
 * createCaoTelemetry: the library entry point and the heart of every cao-events process.
 * emit(event) → validate → redact secrets from the message → the core (emit.ts: state, ledger,
 * recorder) → span processors: the CloudEvents exporter (exported as each span ends, so
 * webhooks get events in real time) and, when configured, OTLP (batched). The tracer provider
 * is private to this object: a host's own global OpenTelemetry setup is left alone.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace';
import {
  AlwaysOnSampler,
  BatchSpanProcessor,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import type { Logger } from 'pino';
import {
  type CloudEventSink,
  CloudEventsSpanExporter,
} from '../../exporters/cloudevents/span-exporter.ts';
import type { ContentMode } from '../../exporters/cloudevents/encode.ts';
import type { RetryPolicy } from '../../exporters/delivery/retry-policy.ts';
import type { TransformOptions } from '../../exporters/transform.ts';
import { EventCore } from './emit.ts';
import { type CaoEvent, type ValidCaoEvent, validateCaoEvent } from './events.ts';
import { FactLedger } from './ledger.ts';
import { defaultSource } from './source-id.ts';
import { CaoState, type CaoStateView } from './state.ts';
import { silentLogger } from '../logger.ts';
import { DEFAULT_REDACTION_RULES, type RedactionRule, redact } from '../redact.ts';
import type { CaoMetrics } from '../metrics.ts';
import { type OtlpOptions, traceExportersFrom } from '../otlp.ts';
import { withTraceSampler } from '../otlp-sampler.ts';
import { createDeliverySink } from '../sink-factory.ts';
import { type RecordedEvent, Recorder } from './recorder.ts';

export const DEFAULT_SERVICE_NAME = 'cao-events';

export interface CaoTelemetryOptions extends TransformOptions {
  /** The callback URL: one CloudEvents sink. Without it (and without `sinks`) the CloudEvents path is a no-op. */
  callbackUrl?: string;
  /** Content mode of the callback sink. */
  mode?: ContentMode;
  /** Per-request time-out of the callback sink. */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  maxQueue?: number;
  /** A durable outbox for the callback URL's sink (events survive a restart; dead letters kept). */
  outbox?: { dir: string; maxBytes?: number };
  /** Where to count events and deliveries (see metrics.ts). */
  metrics?: CaoMetrics;
  /** Extra sinks (any object implementing CloudEventSink). */
  sinks?: CloudEventSink[];
  /** OTLP export; `false` turns it off whatever the environment says. */
  otlp?: OtlpOptions | false;
  /** Extra span exporters (batched), e.g. an in-memory one in tests or a file exporter. */
  spanExporters?: SpanExporter[];
  /** service.name; default `cao-events`, OTEL_SERVICE_NAME overrides the default. */
  serviceName?: string;
  /**
   * Redaction rules applied to message content before recording, so spans and every sink see
   * the redacted text; default the built-in rules (AWS keys, bearer tokens, …), `false` off.
   */
  redaction?: readonly RedactionRule[] | false;
  /** Collapse repeated reports of one fact (default true). */
  dedupe?: boolean;
  /**
   * How long a killed session or terminal keeps its trace and sequence for facts reported late
   * (default 60 000 ms; keep it above a few poller intervals).
   */
  graceMs?: number;
  /** How long one message occurrence waits for other sources' reports of it (default 10 min). */
  messageWindowMs?: number;
  logger?: Logger;
  env?: Record<string, string | undefined>;
}

export interface CaoTelemetry {
  /**
   * Records one CAO event. Throws CaoEventError when the event is invalid (nothing is
   * recorded); returns undefined when it repeats a fact already recorded. Never waits for,
   * nor fails because of, a sink.
   */
  emit(event: CaoEvent): RecordedEvent | undefined;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
  readonly sinks: readonly CloudEventSink[];
  /** What the core knows of sessions and terminals (read-only): sources ask it before asking CAO. */
  readonly state: CaoStateView;
  /** The CloudEvents `source` in use. */
  readonly source: string;
}

export function createCaoTelemetry(options: CaoTelemetryOptions = {}): CaoTelemetry {
  const log = options.logger ?? silentLogger;
  const env = options.env ?? process.env;
  const sinks: CloudEventSink[] = [...(options.sinks ?? [])];
  const source = options.source ?? defaultSource();
  if (options.callbackUrl) {
    sinks.push(
      createDeliverySink(
        {
          url: options.callbackUrl,
          mode: options.mode,
          timeoutMs: options.timeoutMs,
          retry: options.retry,
          maxQueue: options.maxQueue,
          logger: log,
        },
        { outbox: options.outbox, metrics: options.metrics, logger: log },
      ),
    );
  }
  const processors: SpanProcessor[] = [];
  if (sinks.length > 0) {
    const exporter = new CloudEventsSpanExporter({
      sinks,
      logger: log,
      typePrefix: options.typePrefix,
      source,
      dataschemaBase: options.dataschemaBase,
    });
    processors.push(new SimpleSpanProcessor({ exporter }));
  }
  const otlp = traceExportersFrom(options.otlp, env);
  for (const exporter of [...otlp, ...(options.spanExporters ?? [])]) {
    const batch = new BatchSpanProcessor({ exporter, scheduledDelayMillis: 1000 });
    processors.push(otlp.includes(exporter) ? withTraceSampler(batch, env) : batch); // OTEL_TRACES_SAMPLER: OTLP only
  }

  // host.name: every span of this process comes from one host (trace viewers compare clocks per
  // host); service.instance.id: tells two sidecars (or a restart) apart.
  let resource = defaultResource()
    .merge(resourceFromAttributes({ 'service.name': DEFAULT_SERVICE_NAME, 'host.name': hostname(), 'service.instance.id': randomUUID() }))
    .merge(detectResources({ detectors: [envDetector] }));
  if (options.serviceName) {
    resource = resource.merge(resourceFromAttributes({ 'service.name': options.serviceName }));
  }
  const provider = new TracerProvider({
    resource,
    sampler: new AlwaysOnSampler(),
    spanProcessors: processors,
  });
  const state = new CaoState({ graceMs: options.graceMs });
  const core = new EventCore({
    state,
    ledger: new FactLedger({ state, messageWindowMs: options.messageWindowMs }),
    recorder: new Recorder({ tracer: provider.getTracer('cao-events') }),
    dedupe: options.dedupe,
  });
  const redaction = options.redaction ?? DEFAULT_REDACTION_RULES;
  let closed = false;

  return {
    sinks,
    state,
    source,
    emit(input: CaoEvent): RecordedEvent | undefined {
      let event: ValidCaoEvent;
      try {
        event = redact(validateCaoEvent(input), redaction);
      } catch (err) {
        options.metrics?.event(String(input?.type), String(input?.source ?? 'api'), 'invalid');
        throw err;
      }
      if (closed) {
        log.warn({ type: event.type }, 'event emitted after shutdown, not recorded');
        return undefined;
      }
      const observer = event.source ?? 'api';
      const outcome = core.emit(event);
      if ('duplicate' in outcome) {
        options.metrics?.event(event.type, observer, 'duplicate');
        return undefined;
      }
      options.metrics?.event(event.type, observer, 'recorded');
      return outcome.recorded;
    },
    async forceFlush(): Promise<void> {
      await provider.forceFlush();
    },
    async shutdown(): Promise<void> {
      if (closed) return;
      closed = true;
      await provider.forceFlush().catch(() => undefined);
      await provider.shutdown();
    },
  };
}
