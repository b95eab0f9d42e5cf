/**
 * The OTLP side: which trace exporter the standard OTEL_* variables (or explicit options) ask
 * for. OTLP export is opt-in: it is built only when an endpoint is configured (option,
 * OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or OTEL_TRACES_EXPORTER
 * names otlp, so nothing is silently pointed at localhost. OTEL_SDK_DISABLED=true or
 * OTEL_TRACES_EXPORTER=none turn it off. The exporters themselves read the remaining
 * OTEL_EXPORTER_OTLP_* variables (headers, time-out, compression).
 *
 * Nothing OpenTelemetry is loaded by this module itself: the configuration (and `--help`) can use
 * its constants and checks cheaply. Exporter packages are loaded when built, and only the one the
 * configured protocol names. The gRPC exporters are optional peer packages (gRPC is large and
 * rarely needed): when one is missing, the error names the protocol, the key and the package.
 */
import { createRequire } from 'node:module';
import type { PushMetricExporter } from '@opentelemetry/sdk-metrics';
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import { packageInfo } from './package-info.ts';

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
type Signal = 'traces' | 'metrics';
type Exporter<T> = new (config?: { url?: string; headers?: Record<string, string> }) => T;

const load = createRequire(import.meta.url);
const PACKAGE_SUFFIX: Record<OtlpProtocol, string> = { grpc: 'grpc', 'http/json': 'http', 'http/protobuf': 'proto' };

function exporterPackage(signal: Signal, protocol: OtlpProtocol): string {
  return `@opentelemetry/exporter-${signal === 'traces' ? 'trace' : 'metrics'}-otlp-${PACKAGE_SUFFIX[protocol]}`;
}

/** The install command for the optional gRPC exporters, at the versions this package was built with. */
export function grpcInstallHint(): string {
  const peers = packageInfo().peerDependencies ?? {};
  const pkgs = (['traces', 'metrics'] as const).map((signal) => {
    const name = exporterPackage(signal, 'grpc');
    return peers[name] ? `${name}@${peers[name]}` : name;
  });
  return `npm install ${pkgs.join(' ')}`;
}

/** Loads one exporter class; a missing optional package is an OtlpConfigError naming the protocol and key. */
function exporterClass<T>(signal: Signal, protocol: OtlpProtocol, key: string, exportName: string): Exporter<T> {
  const name = exporterPackage(signal, protocol);
  let mod: Record<string, unknown>;
  try {
    mod = load(name) as Record<string, unknown>;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'MODULE_NOT_FOUND' && code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new OtlpConfigError(
      `${key}: OTLP protocol ${protocol} needs the optional package ${name}, which is not installed. ` +
        `Install it beside cao-events (${grpcInstallHint()}, with -g for a global install) or use http/protobuf.`,
    );
  }
  return mod[exportName] as Exporter<T>;
}

function envValue(env: Env, key: string): string | undefined {
  const value = env[key]?.trim();
  return value ? value : undefined;
}

/** The protocol and the key it came from (for error messages). */
function protocolSetting(options: OtlpOptions | undefined, env: Env, signal: Signal): { protocol: OtlpProtocol; key: string } {
  const signalKey = `OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_PROTOCOL`;
  const key = options?.protocol ? 'otlp.protocol' : envValue(env, signalKey) ? signalKey : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const value = options?.protocol ?? envValue(env, key) ?? 'http/protobuf';
  if (!(OTLP_PROTOCOLS as readonly string[]).includes(value)) {
    throw new OtlpConfigError(`${key}: unsupported OTLP protocol ${JSON.stringify(value)} (use ${OTLP_PROTOCOLS.join(', ')})`);
  }
  return { protocol: value as OtlpProtocol, key };
}

export function protocolFrom(options: OtlpOptions | undefined, env: Env): OtlpProtocol {
  return protocolSetting(options, env, 'traces').protocol;
}

function baseUrl(endpoint: string): URL {
  try {
    return new URL(endpoint);
  } catch {
    throw new OtlpConfigError(`otlp.endpoint: not a URL: ${JSON.stringify(endpoint)}`);
  }
}

function tracesWanted(options: OtlpOptions | false | undefined, env: Env): { console: boolean; otlp: boolean } {
  if (options === false || envValue(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return { console: false, otlp: false };
  const names = (envValue(env, 'OTEL_TRACES_EXPORTER') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (names.includes('none')) return { console: false, otlp: false };
  const otlp =
    options?.endpoint !== undefined ||
    envValue(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') !== undefined ||
    envValue(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') !== undefined ||
    names.includes('otlp');
  return { console: names.includes('console'), otlp };
}

function metricsWanted(options: OtlpOptions | false | undefined, env: Env): boolean {
  if (options === false) return false;
  if (envValue(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return false;
  if (envValue(env, 'OTEL_METRICS_EXPORTER') === 'none') return false;
  return (
    options?.endpoint !== undefined ||
    envValue(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') !== undefined ||
    envValue(env, 'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT') !== undefined
  );
}

/**
 * Checks the OTLP settings without building or loading anything heavy, so a command can refuse a
 * bad configuration before it starts servers: the protocol, the endpoint, that the exporter
 * package of the protocol is installed, and OTEL_TRACES_SAMPLER(_ARG). Throws OtlpConfigError.
 */
export function checkOtlpConfig(options: OtlpOptions | false | undefined, env: Env = process.env): void {
  const traces = tracesWanted(options, env);
  const metrics = metricsWanted(options, env);
  if (options && options.endpoint) baseUrl(options.endpoint);
  if (traces.otlp || traces.console) traceSamplerSetting(env);
  for (const [signal, wanted] of [['traces', traces.otlp], ['metrics', metrics]] as const) {
    if (!wanted) continue;
    const { protocol, key } = protocolSetting(options || undefined, env, signal);
    try {
      load.resolve(exporterPackage(signal, protocol));
    } catch {
      exporterClass(signal, protocol, key, 'unused'); // throws the OtlpConfigError naming the package
    }
  }
}

export const TRACE_SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;
export type TraceSamplerName = (typeof TRACE_SAMPLERS)[number];

export interface TraceSamplerSetting {
  name: TraceSamplerName;
  /** The ratio of the ratio samplers. */
  ratio?: number;
}

/**
 * Reads and checks OTEL_TRACES_SAMPLER(_ARG), applied to the OTLP path only (see otlp-sampler.ts).
 * Pure; throws OtlpConfigError naming the variable.
 */
export function traceSamplerSetting(env: Env): TraceSamplerSetting {
  const raw = env.OTEL_TRACES_SAMPLER?.trim().toLowerCase() || 'parentbased_always_on';
  if (!(TRACE_SAMPLERS as readonly string[]).includes(raw)) {
    throw new OtlpConfigError(
      `OTEL_TRACES_SAMPLER: unsupported sampler ${JSON.stringify(env.OTEL_TRACES_SAMPLER)} (use ${TRACE_SAMPLERS.join(', ')})`,
    );
  }
  const name = raw as TraceSamplerName;
  if (!name.endsWith('traceidratio')) return { name };
  const arg = env.OTEL_TRACES_SAMPLER_ARG?.trim();
  if (!arg) return { name, ratio: 1 };
  const ratio = Number(arg);
  if (!/^\d*\.?\d+(e-?\d+)?$/i.test(arg) || !(ratio >= 0 && ratio <= 1)) {
    throw new OtlpConfigError(`OTEL_TRACES_SAMPLER_ARG: the ratio of ${name} must be a number from 0 to 1 (got ${JSON.stringify(arg)})`);
  }
  return { name, ratio };
}

/** The trace exporters to attach (empty when OTLP is not configured or disabled). */
export function traceExportersFrom(options: OtlpOptions | false | undefined, env: Env = process.env): SpanExporter[] {
  const wanted = tracesWanted(options, env);
  const exporters: SpanExporter[] = [];
  if (wanted.console) {
    const { ConsoleSpanExporter } = load('@opentelemetry/sdk-trace') as typeof import('@opentelemetry/sdk-trace');
    exporters.push(new ConsoleSpanExporter());
  }
  if (!wanted.otlp) return exporters;
  const { protocol, key } = protocolSetting(options || undefined, env, 'traces');
  const config: { url?: string; headers?: Record<string, string> } = {};
  if (options && options.endpoint) {
    const base = baseUrl(options.endpoint).toString();
    config.url = protocol === 'grpc' ? base : base.replace(/\/?$/, '/v1/traces');
  }
  if (options && options.headers) config.headers = options.headers;
  const TraceExporter = exporterClass<SpanExporter>('traces', protocol, key, 'OTLPTraceExporter');
  exporters.push(new TraceExporter(protocol === 'grpc' ? (config.url ? { url: config.url } : {}) : config));
  return exporters;
}

/**
 * The OTLP metrics exporter, under the same rule as traces: only when an endpoint is configured
 * (option, OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_METRICS_ENDPOINT) and not disabled
 * (OTEL_SDK_DISABLED, OTEL_METRICS_EXPORTER=none).
 */
export function metricExporterFrom(options: OtlpOptions | false | undefined, env: Env = process.env): PushMetricExporter | undefined {
  if (!metricsWanted(options, env)) return undefined;
  const { protocol, key } = protocolSetting(options || undefined, env, 'metrics');
  let url: string | undefined;
  if (options && options.endpoint) {
    const base = baseUrl(options.endpoint).toString();
    url = protocol === 'grpc' ? base : base.replace(/\/?$/, '/v1/metrics');
  }
  const MetricExporter = exporterClass<PushMetricExporter>('metrics', protocol, key, 'OTLPMetricExporter');
  return new MetricExporter(url ? { url } : {});
}
