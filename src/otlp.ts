/**
 * The OTLP side: which trace exporter the standard OTEL_* variables (or explicit options) ask
 * for. OTLP export is opt-in: it is built only when an endpoint is configured (option,
 * OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or OTEL_TRACES_EXPORTER
 * names otlp, so nothing is silently pointed at localhost. OTEL_SDK_DISABLED=true or
 * OTEL_TRACES_EXPORTER=none turn it off. The exporters themselves read the remaining
 * OTEL_EXPORTER_OTLP_* variables (headers, time-out, compression).
 */
import { createRequire } from 'node:module';
import type { PushMetricExporter } from '@opentelemetry/sdk-metrics';
import { ConsoleSpanExporter, type SpanExporter } from '@opentelemetry/sdk-trace';

// The exporter packages (gRPC above all) are large: load only the one the configuration names.
const load = createRequire(import.meta.url);
type Exporter<T> = new (config?: { url?: string; headers?: Record<string, string> }) => T;
function traceExporterClass(protocol: OtlpProtocol): Exporter<SpanExporter> {
  const name = { grpc: 'grpc', 'http/json': 'http', 'http/protobuf': 'proto' }[protocol];
  return (load(`@opentelemetry/exporter-trace-otlp-${name}`) as { OTLPTraceExporter: Exporter<SpanExporter> }).OTLPTraceExporter;
}
function metricExporterClass(protocol: OtlpProtocol): Exporter<PushMetricExporter> {
  const name = { grpc: 'grpc', 'http/json': 'http', 'http/protobuf': 'proto' }[protocol];
  return (load(`@opentelemetry/exporter-metrics-otlp-${name}`) as { OTLPMetricExporter: Exporter<PushMetricExporter> }).OTLPMetricExporter;
}

export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json', 'grpc'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

export interface OtlpOptions {
  /** Base endpoint, as OTEL_EXPORTER_OTLP_ENDPOINT (`/v1/traces` is appended for HTTP). */
  endpoint?: string;
  protocol?: OtlpProtocol;
  headers?: Record<string, string>;
}

export class OtlpConfigError extends Error {
  override name = 'OtlpConfigError';
}

type Env = Record<string, string | undefined>;

function envValue(env: Env, key: string): string | undefined {
  const value = env[key]?.trim();
  return value ? value : undefined;
}

export function protocolFrom(options: OtlpOptions | undefined, env: Env): OtlpProtocol {
  const key = envValue(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL')
    ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'
    : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const value = options?.protocol ?? envValue(env, key) ?? 'http/protobuf';
  if (!(OTLP_PROTOCOLS as readonly string[]).includes(value)) {
    throw new OtlpConfigError(
      `${options?.protocol ? 'otlp.protocol' : key}: unsupported OTLP protocol ${JSON.stringify(value)} (use ${OTLP_PROTOCOLS.join(', ')})`,
    );
  }
  return value as OtlpProtocol;
}

/** The trace exporters to attach (empty when OTLP is not configured or disabled). */
export function traceExportersFrom(
  options: OtlpOptions | false | undefined,
  env: Env = process.env,
): SpanExporter[] {
  if (options === false) return [];
  if (envValue(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return [];
  const names = (envValue(env, 'OTEL_TRACES_EXPORTER') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.includes('none')) return [];
  const exporters: SpanExporter[] = [];
  if (names.includes('console')) exporters.push(new ConsoleSpanExporter());
  const configured =
    options?.endpoint !== undefined ||
    envValue(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') !== undefined ||
    envValue(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') !== undefined ||
    names.includes('otlp');
  if (!configured) return exporters;
  const protocol = protocolFrom(options || undefined, env);
  const config: { url?: string; headers?: Record<string, string> } = {};
  if (options?.endpoint) {
    let base: URL;
    try {
      base = new URL(options.endpoint);
    } catch {
      throw new OtlpConfigError(`otlp.endpoint: not a URL: ${JSON.stringify(options.endpoint)}`);
    }
    config.url =
      protocol === 'grpc' ? base.toString() : base.toString().replace(/\/?$/, '/v1/traces');
  }
  if (options?.headers) config.headers = options.headers;
  const TraceExporter = traceExporterClass(protocol);
  exporters.push(new TraceExporter(protocol === 'grpc' ? (config.url ? { url: config.url } : {}) : config));
  return exporters;
}

/**
 * The OTLP metrics exporter, under the same rule as traces: only when an endpoint is configured
 * (option, OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_METRICS_ENDPOINT) and not disabled
 * (OTEL_SDK_DISABLED, OTEL_METRICS_EXPORTER=none).
 */
export function metricExporterFrom(
  options: OtlpOptions | false | undefined,
  env: Env = process.env,
): PushMetricExporter | undefined {
  if (options === false) return undefined;
  if (envValue(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return undefined;
  if (envValue(env, 'OTEL_METRICS_EXPORTER') === 'none') return undefined;
  const configured =
    options?.endpoint !== undefined ||
    envValue(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') !== undefined ||
    envValue(env, 'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT') !== undefined;
  if (!configured) return undefined;
  const protocol = protocolFrom(options || undefined, env);
  let url: string | undefined;
  if (options && options.endpoint) {
    const base = new URL(options.endpoint).toString();
    url = protocol === 'grpc' ? base : base.replace(/\/?$/, '/v1/metrics');
  }
  const MetricExporter = metricExporterClass(protocol);
  return new MetricExporter(url ? { url } : {});
}
