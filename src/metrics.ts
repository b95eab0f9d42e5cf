/**
 * Self-observability with the OpenTelemetry metrics SDK: events by type and source (recorded,
 * duplicate, invalid), deliveries per sink (ok, failed, retried, dropped), queue depth, outbox
 * size, and a delivery-latency histogram. Served as Prometheus text (`GET /metrics`) through the
 * SDK's Prometheus exporter, and pushed over OTLP when an OTLP endpoint is configured.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import type { Resource } from '@opentelemetry/resources';
import { type MetricReader, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import type { SinkStats } from '../exporters/delivery/delivery-queue.ts';
import { type OtlpOptions, metricExporterFrom } from './otlp.ts';

/** What metrics read from a sink at collection time. */
export interface ObservedSink {
  name: string;
  stats: SinkStats;
  outbox?: { size: { events: number; bytes: number } };
}

export type EventOutcome = 'recorded' | 'duplicate' | 'invalid';

export interface CaoMetricsOptions {
  otlp?: OtlpOptions | false;
  env?: Record<string, string | undefined>;
  resource?: Resource;
  /** OTLP push interval. */
  exportIntervalMs?: number;
}

const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class CaoMetrics {
  readonly #provider: MeterProvider;
  readonly #prometheus: PrometheusExporter;
  readonly #sinks: ObservedSink[] = [];
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
    this.#latency = meter.createHistogram('cao_events.delivery.latency', {
      unit: 's',
      description: 'Time from the event to its acknowledgement by the sink',
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS_S },
    });
    const deliveries = meter.createObservableCounter('cao_events.deliveries', { description: 'CloudEvents per sink and outcome' });
    const queue = meter.createObservableGauge('cao_events.queue.depth', { description: 'CloudEvents waiting in a sink queue' });
    const outboxEvents = meter.createObservableGauge('cao_events.outbox.events', { description: 'CloudEvents pending in a sink outbox' });
    const outboxBytes = meter.createObservableGauge('cao_events.outbox.size', { unit: 'By', description: 'Bytes pending in a sink outbox' });
    meter.addBatchObservableCallback((result) => {
      for (const sink of this.#sinks) {
        const s = sink.stats;
        for (const outcome of ['delivered', 'failed', 'retried', 'dropped'] as const) {
          result.observe(deliveries, s[outcome], { sink: sink.name, outcome });
        }
        result.observe(queue, s.queued, { sink: sink.name });
        if (sink.outbox) {
          result.observe(outboxEvents, sink.outbox.size.events, { sink: sink.name });
          result.observe(outboxBytes, sink.outbox.size.bytes, { sink: sink.name });
        }
      }
    }, [deliveries, queue, outboxEvents, outboxBytes]);
  }

  observeSink(sink: ObservedSink): void {
    this.#sinks.push(sink);
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

  health(): { ok: boolean; sinks: Array<{ name: string; disabled: boolean; queued: number; inFlight: number }> } {
    const sinks = this.#sinks.map((s) => ({ name: s.name, disabled: s.stats.disabled, queued: s.stats.queued, inFlight: s.stats.inFlight }));
    return { ok: sinks.every((s) => !s.disabled), sinks };
  }

  shutdown(): Promise<void> {
    return this.#provider.shutdown();
  }
}
