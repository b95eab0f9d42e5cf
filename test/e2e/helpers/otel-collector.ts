/**
 * A real OpenTelemetry Collector (otelcol-cao-events, built by .ci/install-otelcol) running the
 * repository's otel-collector.yaml unchanged, on free loopback ports given through the
 * environment variables the file reads.
 */
import { freePort } from '../../helpers/free-port.ts';
import { COLLECTOR_READY, type RunningBinary, installBinary, startBinary } from './go-binary.ts';

export const COLLECTOR_CONFIG = 'otel-collector.yaml';

export interface OtelCollector {
  /** OTLP endpoints cao-events sends to (as OTEL_EXPORTER_OTLP_ENDPOINT for each protocol). */
  otlpHttp: string;
  otlpGrpc: string;
  process: RunningBinary;
  stop(): Promise<void>;
}

/** Installs (cached) and starts the collector, forwarding to Jaeger's OTLP/gRPC port. */
export async function startOtelCollector(jaegerOtlpGrpcPort: number): Promise<OtelCollector> {
  const bin = await installBinary('install-otelcol');
  const ports = {
    OTELCOL_OTLP_GRPC_PORT: await freePort(),
    OTELCOL_OTLP_HTTP_PORT: await freePort(),
    OTELCOL_METRICS_PORT: await freePort(),
    JAEGER_OTLP_GRPC_PORT: jaegerOtlpGrpcPort,
  };
  const collector = await startBinary({
    name: 'otelcol-cao-events',
    command: bin,
    args: ['--config', COLLECTOR_CONFIG],
    env: Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
    ready: COLLECTOR_READY,
  });
  return {
    otlpHttp: `http://127.0.0.1:${ports.OTELCOL_OTLP_HTTP_PORT}`,
    otlpGrpc: `http://127.0.0.1:${ports.OTELCOL_OTLP_GRPC_PORT}`,
    process: collector,
    stop: () => collector.stop(),
  };
}
