/**
 * Self-observability with the OpenTelemetry metrics SDK: events by type and source (recorded,
 * duplicate, invalid), deliveries per sink and outcome, events lost per sink and reason, queue
 * depth, outbox size and health, and a delivery-latency histogram. Served as Prometheus text
 * (`GET /metrics`) through the SDK's Prometheus exporter, and pushed over OTLP when an OTLP
 * endpoint is configured. Everything per sink is read from the sink's own `stats` at collection
 * time; the only label a sink contributes is its name (never its URL).
 *
 * Names carry their unit as OpenMetrics asks (`_seconds`, `_bytes`; counters get `_total`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import type { Resource } from '@opentelemetry/resources';
import { type MetricReader, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { type CloudEventSink, LOSS_REASONS } from '../exporters/sink.ts';
import { type OtlpOptions, metricExporterFrom } from './otlp.ts';

export type EventOutcome = 'recorded' | 'duplicate' | 'invalid';

export interface CaoMetricsOptions {
  otlp?: OtlpOptions | false;
  env?: Record<string, string | undefined>;
  resource?: Resource;
  /** OTLP push interval. */
  exportIntervalMs?: number;
}

export interface SinkHealth {
  name: string;
  disabled: boolean;
  breaker: 'closed' | 'open';
  queued: number;
  inFlight: number;
  lost: number;
  outbox?: { pending: number; degraded: boolean };
}

const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
const DELIVERY_OUTCOMES = [
  ['delivered', 'delivered'],
  ['skipped', 'skipped'],
  ['retried', 'retried'],
  ['failed', 'failed'],
  ['deadLettered', 'dead_lettered'],
  ['dropped', 'dropped'],
] as const;

export class CaoMetrics {
  readonly #provider: MeterProvider;
  readonly #prometheus: PrometheusExporter;
  readonly #sinks: CloudEventSink[] = [];
  readonly #events;
  readonly #latency;

  constructor(options: CaoMetricsOptions = {}) {
    this.#prometheus = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true });
    const readers: MetricReader[] = [this.#prometheus];
    const otlp = metricExporterFrom(options.otlp, options.env ?? process.env);
    if (otlp) {
      readers.push(new PeriodicExportingMetricReader({ exporter: otlp, exportIntervalMillis: options.exportIntervalMs ?? 10_000 }));
    }
    this.#provider = new MeterProvider({ readers, resource: options.resource });
    const meter = this.#provider.getMeter('cao-events');
    this.#events = meter.createCounter('cao_events.events', { description: 'CAO events handed to cao-events, by type, source and outcome' });
    this.#latency = meter.createHistogram('cao_events.delivery.latency_seconds', {
      description: 'Seconds from the event to its acknowledgement by the sink',
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS_S },
    });
    const deliveries = meter.createObservableCounter('cao_events.deliveries', {
      description: 'CloudEvents per sink and outcome: delivered, skipped (nothing to send), retried (per failed attempt), failed (given up), dead_lettered (given up, kept in the dead-letter file), dropped (never attempted, not kept)',
    });
    const lost = meter.createObservableCounter('cao_events.lost', {
      description: 'CloudEvents neither delivered nor kept anywhere, per sink and reason (every one is also an ERROR log line)',
    });
    const queue = meter.createObservableGauge('cao_events.queue.depth', { description: 'CloudEvents waiting in a sink queue (memory and outbox), not in flight' });
    const inFlight = meter.createObservableGauge('cao_events.in_flight', { description: 'CloudEvents in requests under way' });
    const disabled = meter.createObservableGauge('cao_events.sink.disabled', { description: '1 when a sink is disabled (HTTP 410 or the service said it is gone)' });
    const breaker = meter.createObservableGauge('cao_events.sink.breaker_open', { description: '1 while a sink fails in a row: one probe at a time' });
    const outboxEvents = meter.createObservableGauge('cao_events.outbox.events', { description: 'CloudEvents pending in a sink outbox' });
    const outboxBytes = meter.createObservableGauge('cao_events.outbox.size_bytes', { description: 'Bytes a sink outbox takes on disk' });
    const outboxMemory = meter.createObservableGauge('cao_events.outbox.memory_only', { description: 'CloudEvents waiting in memory because the outbox could not take them' });
    const outboxDegraded = meter.createObservableGauge('cao_events.outbox.degraded', { description: '1 while a sink outbox cannot be written (events wait in memory, up to maxQueue)' });
    const outboxErrors = meter.createObservableCounter('cao_events.outbox.write_errors', { description: 'Outbox writes that failed (appends, acknowledgements, dead letters)' });
    meter.addBatchObservableCallback((result) => {
      for (const sink of this.#sinks) {
        const s = sink.stats;
        const attrs = { sink: sink.name };
        for (const [key, outcome] of DELIVERY_OUTCOMES) result.observe(deliveries, s[key], { ...attrs, outcome });
        for (const reason of LOSS_REASONS) result.observe(lost, s.lostBy[reason] ?? 0, { ...attrs, reason });
        result.observe(queue, s.queued, attrs);
        result.observe(inFlight, s.inFlight, attrs);
        result.observe(disabled, s.disabled ? 1 : 0, attrs);
        result.observe(breaker, s.breaker === 'open' ? 1 : 0, attrs);
        if (s.outbox) {
          result.observe(outboxEvents, s.outbox.pending, attrs);
          result.observe(outboxBytes, s.outbox.bytes, attrs);
          result.observe(outboxMemory, s.outbox.memoryOnly, attrs);
          result.observe(outboxDegraded, s.outbox.degraded ? 1 : 0, attrs);
          result.observe(outboxErrors, s.outbox.writeErrors, attrs);
        }
      }
    }, [deliveries, lost, queue, inFlight, disabled, breaker, outboxEvents, outboxBytes, outboxMemory, outboxDegraded, outboxErrors]);
  }

  /** Reads the sink's stats at every collection. */
  observeSink(sink: CloudEventSink): void {
    if (!this.#sinks.includes(sink)) this.#sinks.push(sink);
  }

  event(type: string, source: string, outcome: EventOutcome): void {
    this.#events.add(1, { type, source, outcome });
  }

  delivered(sink: string, latencyMs: number): void {
    this.#latency.record(Math.max(0, latencyMs) / 1000, { sink });
  }

  /** Prometheus text exposition. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    this.#prometheus.getMetricsRequestHandler(req, res);
  }

  /** Not ok when a sink is disabled; a degraded outbox is reported, and left to the operator. */
  health(): { ok: boolean; sinks: SinkHealth[] } {
    const sinks = this.#sinks.map((sink): SinkHealth => {
      const s = sink.stats;
      return {
        name: sink.name,
        disabled: s.disabled,
        breaker: s.breaker,
        queued: s.queued,
        inFlight: s.inFlight,
        lost: s.lost,
        ...(s.outbox ? { outbox: { pending: s.outbox.pending, degraded: s.outbox.degraded } } : {}),
      };
    });
    return { ok: sinks.every((s) => !s.disabled), sinks };
  }

  shutdown(): Promise<void> {
    return this.#provider.shutdown();
  }
}
