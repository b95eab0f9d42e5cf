/**
 * A real Jaeger v2 (built from the Go module proxy by .ci/install-jaeger) for end-to-end tests:
 * all-in-one with in-memory storage from test/e2e/jaeger-all-in-one.yaml on free loopback ports,
 * and a client for its HTTP query API (api/v3, which answers in OTLP JSON) that flattens what it
 * returns into plain spans.
 */
import { request } from 'undici';
import { freePort } from '../../helpers/free-port.ts';
import { COLLECTOR_READY, type RunningBinary, installBinary, startBinary } from './go-binary.ts';

export const JAEGER_CONFIG = 'test/e2e/jaeger-all-in-one.yaml';

/** An attribute value as OTLP types it: int64 as bigint, so an int and a double stay apart. */
export type AttributeValue = string | bigint | number | boolean | AttributeValue[] | undefined;
export type Attributes = Record<string, AttributeValue>;

export interface JaegerSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: Attributes;
  events: Array<{ name: string; timeUnixNano: bigint; attributes: Attributes }>;
  links: Array<{ traceId: string; spanId: string; attributes: Attributes }>;
  resource: Attributes;
}

export interface Jaeger {
  /** OTLP endpoints (as OTEL_EXPORTER_OTLP_ENDPOINT for each protocol). */
  otlpHttp: string;
  otlpGrpc: string;
  /** Port of the OTLP/gRPC receiver (what a collector's otlp_grpc exporter dials). */
  otlpGrpcPort: number;
  /** Base URL of the UI and the HTTP query API. */
  queryUrl: string;
  process: RunningBinary;
  services(): Promise<string[]>;
  /** Every span of the traces of `service` that started in [since, until]. */
  findSpans(service: string, since: Date, until: Date): Promise<JaegerSpan[]>;
  trace(traceId: string): Promise<JaegerSpan[]>;
  stop(): Promise<void>;
}

// ---- OTLP JSON (as api/v3 returns it) → plain spans: pure ------------------------------------
interface OtlpAnyValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: OtlpAnyValue[] };
}
interface OtlpKeyValue {
  key: string;
  value?: OtlpAnyValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  startTimeUnixNano?: string;
  endTimeUnixNano?: string;
  attributes?: OtlpKeyValue[];
  events?: Array<{ name: string; timeUnixNano?: string; attributes?: OtlpKeyValue[] }>;
  links?: Array<{ traceId: string; spanId: string; attributes?: OtlpKeyValue[] }>;
}
export interface OtlpTracesData {
  resourceSpans?: Array<{
    resource?: { attributes?: OtlpKeyValue[] };
    scopeSpans?: Array<{ spans?: OtlpSpan[] }>;
  }>;
}

function anyValue(v: OtlpAnyValue | undefined): AttributeValue {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return BigInt(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(anyValue);
  return undefined;
}

function attributes(list: OtlpKeyValue[] | undefined): Attributes {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, anyValue(kv.value)]));
}

/** Jaeger's api/v3 writes ids as hex; accept base64 too (what a plain protobuf JSON mapping writes). */
function hexId(id: string | undefined, bytes: number): string | undefined {
  if (!id) return undefined;
  if (new RegExp(`^[0-9a-f]{${bytes * 2}}$`).test(id)) return id;
  const hex = Buffer.from(id, 'base64').toString('hex');
  return hex.length === bytes * 2 ? hex : id;
}

export function flattenTraces(data: OtlpTracesData): JaegerSpan[] {
  const out: JaegerSpan[] = [];
  for (const rs of data.resourceSpans ?? []) {
    const resource = attributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: hexId(s.traceId, 16)!,
          spanId: hexId(s.spanId, 8)!,
          parentSpanId: hexId(s.parentSpanId, 8),
          name: s.name,
          startTimeUnixNano: BigInt(s.startTimeUnixNano ?? 0),
          endTimeUnixNano: BigInt(s.endTimeUnixNano ?? 0),
          attributes: attributes(s.attributes),
          events: (s.events ?? []).map((e) => ({ name: e.name, timeUnixNano: BigInt(e.timeUnixNano ?? 0), attributes: attributes(e.attributes) })),
          links: (s.links ?? []).map((l) => ({ traceId: hexId(l.traceId, 16)!, spanId: hexId(l.spanId, 8)!, attributes: attributes(l.attributes) })),
          resource,
        });
      }
    }
  }
  return out;
}

// ---- the process and its query API ---------------------------------------------------------
async function getJson(url: URL): Promise<{ status: number; body: unknown }> {
  const res = await request(url, { signal: AbortSignal.timeout(10_000) });
  const text = await res.body.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.statusCode, body };
}

/** Installs (cached) and starts Jaeger v2 all-in-one on free loopback ports. */
export async function startJaeger(): Promise<Jaeger> {
  const bin = await installBinary('install-jaeger');
  const ports = {
    JAEGER_OTLP_GRPC_PORT: await freePort(),
    JAEGER_OTLP_HTTP_PORT: await freePort(),
    JAEGER_QUERY_HTTP_PORT: await freePort(),
    JAEGER_QUERY_GRPC_PORT: await freePort(),
  };
  const jaeger = await startBinary({
    name: 'jaeger',
    command: bin,
    args: ['--config', JAEGER_CONFIG],
    env: Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
    ready: COLLECTOR_READY,
  });
  const queryUrl = `http://127.0.0.1:${ports.JAEGER_QUERY_HTTP_PORT}`;

  async function traces(url: URL): Promise<JaegerSpan[]> {
    const { status, body } = await getJson(url);
    if (status === 404) return []; // api/v3 answers 404 when nothing matches
    if (status !== 200) throw new Error(`GET ${url.pathname} → ${status}: ${JSON.stringify(body).slice(0, 500)}`);
    return flattenTraces((body as { result?: OtlpTracesData }).result ?? {});
  }

  return {
    otlpHttp: `http://127.0.0.1:${ports.JAEGER_OTLP_HTTP_PORT}`,
    otlpGrpc: `http://127.0.0.1:${ports.JAEGER_OTLP_GRPC_PORT}`,
    otlpGrpcPort: ports.JAEGER_OTLP_GRPC_PORT,
    queryUrl,
    process: jaeger,
    async services(): Promise<string[]> {
      const { status, body } = await getJson(new URL('/api/v3/services', queryUrl));
      if (status !== 200) throw new Error(`GET /api/v3/services → ${status}`);
      return (body as { services?: string[] }).services ?? [];
    },
    findSpans(service: string, since: Date, until: Date): Promise<JaegerSpan[]> {
      const url = new URL('/api/v3/traces', queryUrl);
      url.searchParams.set('query.service_name', service);
      url.searchParams.set('query.start_time_min', since.toISOString());
      url.searchParams.set('query.start_time_max', until.toISOString());
      url.searchParams.set('query.num_traces', '1000');
      return traces(url);
    },
    trace(traceId: string): Promise<JaegerSpan[]> {
      return traces(new URL(`/api/v3/traces/${traceId}`, queryUrl));
    },
    stop: () => jaeger.stop(),
  };
}
