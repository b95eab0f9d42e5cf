/**
 * A real OTLP trace receiver for tests, on loopback: OTLP/HTTP with JSON or protobuf bodies at
 * /v1/traces, and OTLP/gRPC over HTTP/2. It decodes the export requests (protobuf with a small
 * wire-format reader written here) into plain spans, so tests can assert what a collector got.
 */
import { createServer as createHttp2Server } from 'node:http2';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  /** Unix nanoseconds, as a decimal string (beyond Number's precision). */
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Record<string, unknown>;
  events: Array<{ name: string; attributes: Record<string, unknown> }>;
  links: Array<{ traceId: string; spanId: string }>;
  resource: Record<string, unknown>;
}

export interface OtlpReceiver {
  /** Base endpoint (as OTEL_EXPORTER_OTLP_ENDPOINT). */
  url: string;
  spans: ReceivedSpan[];
  requests: Array<{ protocol: string; headers: Record<string, unknown> }>;
  close(): Promise<void>;
}

// ---- protobuf wire format ------------------------------------------------------------------
type Field = { no: number; wire: number; value: bigint | Buffer };

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    const byte = buf[pos++]!;
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [result, pos];
    shift += 7n;
  }
}

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [key, p1] = readVarint(buf, pos);
    pos = p1;
    const no = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const [v, p2] = readVarint(buf, pos);
      out.push({ no, wire, value: v });
      pos = p2;
    } else if (wire === 1) {
      out.push({ no, wire, value: buf.readBigUInt64LE(pos) });
      pos += 8;
    } else if (wire === 2) {
      const [len, p2] = readVarint(buf, pos);
      const end = p2 + Number(len);
      out.push({ no, wire, value: buf.subarray(p2, end) });
      pos = end;
    } else if (wire === 5) {
      out.push({ no, wire, value: BigInt(buf.readUInt32LE(pos)) });
      pos += 4;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
  }
  return out;
}

const sub = (f: Field[], no: number): Buffer[] =>
  f.filter((x) => x.no === no && Buffer.isBuffer(x.value)).map((x) => x.value as Buffer);
const one = (f: Field[], no: number): Buffer | undefined => sub(f, no)[0];

function anyValue(buf: Buffer): unknown {
  const f = fields(buf)[0];
  if (!f) return undefined;
  if (f.no === 1) return (f.value as Buffer).toString('utf8');
  if (f.no === 2) return f.value !== 0n;
  if (f.no === 3) return Number(BigInt.asIntN(64, f.value as bigint));
  if (f.no === 4) return Buffer.from((f.value as bigint).toString(16).padStart(16, '0'), 'hex').readDoubleBE();
  return undefined;
}

function keyValues(bufs: Buffer[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of bufs) {
    const f = fields(kv);
    const key = one(f, 1)?.toString('utf8') ?? '';
    const value = one(f, 2);
    out[key] = value ? anyValue(value) : undefined;
  }
  return out;
}

function decodeProtobuf(body: Buffer): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const rs of sub(fields(body), 1)) {
    const rsf = fields(rs);
    const resourceBuf = one(rsf, 1);
    const resource = resourceBuf ? keyValues(sub(fields(resourceBuf), 1)) : {};
    for (const ss of sub(rsf, 2)) {
      for (const sp of sub(fields(ss), 2)) {
        const f = fields(sp);
        const parent = one(f, 4);
        spans.push({
          traceId: one(f, 1)!.toString('hex'),
          spanId: one(f, 2)!.toString('hex'),
          ...(parent && parent.length ? { parentSpanId: parent.toString('hex') } : {}),
          name: one(f, 5)?.toString('utf8') ?? '',
          startTimeUnixNano: String((f.find((x) => x.no === 7)?.value as bigint | undefined) ?? 0n),
          endTimeUnixNano: String((f.find((x) => x.no === 8)?.value as bigint | undefined) ?? 0n),
          attributes: keyValues(sub(f, 9)),
          events: sub(f, 11).map((e) => {
            const ef = fields(e);
            return { name: one(ef, 2)?.toString('utf8') ?? '', attributes: keyValues(sub(ef, 3)) };
          }),
          links: sub(f, 13).map((l) => {
            const lf = fields(l);
            return { traceId: one(lf, 1)!.toString('hex'), spanId: one(lf, 2)!.toString('hex') };
          }),
          resource,
        });
      }
    }
  }
  return spans;
}

// ---- OTLP/JSON -----------------------------------------------------------------------------
type JsonKv = { key: string; value: Record<string, unknown> };
function jsonAttrs(list: JsonKv[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) {
    const v = value.stringValue ?? value.boolValue ?? value.doubleValue ?? value.intValue;
    out[key] = typeof v === 'string' && value.intValue !== undefined ? Number(v) : v;
  }
  return out;
}

function decodeJson(body: Buffer): ReceivedSpan[] {
  const parsed = JSON.parse(body.toString('utf8')) as {
    resourceSpans?: Array<{
      resource?: { attributes?: JsonKv[] };
      scopeSpans?: Array<{ spans?: Array<Record<string, unknown>> }>;
    }>;
  };
  const spans: ReceivedSpan[] = [];
  for (const rs of parsed.resourceSpans ?? []) {
    const resource = jsonAttrs(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        spans.push({
          traceId: s.traceId as string,
          spanId: s.spanId as string,
          ...(s.parentSpanId ? { parentSpanId: s.parentSpanId as string } : {}),
          name: s.name as string,
          startTimeUnixNano: String(BigInt((s.startTimeUnixNano as string | number | undefined) ?? 0)),
          endTimeUnixNano: String(BigInt((s.endTimeUnixNano as string | number | undefined) ?? 0)),
          attributes: jsonAttrs(s.attributes as JsonKv[]),
          events: ((s.events as Array<{ name: string; attributes?: JsonKv[] }>) ?? []).map((e) => ({
            name: e.name,
            attributes: jsonAttrs(e.attributes),
          })),
          links: ((s.links as Array<{ traceId: string; spanId: string }>) ?? []).map((l) => ({
            traceId: l.traceId,
            spanId: l.spanId,
          })),
          resource,
        });
      }
    }
  }
  return spans;
}

function maybeGunzip(body: Buffer, encoding: unknown): Buffer {
  return encoding === 'gzip' ? gunzipSync(body) : body;
}

/** OTLP over HTTP (JSON or protobuf, chosen by content-type). */
export async function startOtlpHttpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests: OtlpReceiver['requests'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      const body = maybeGunzip(Buffer.concat(chunks), req.headers['content-encoding']);
      const json = (req.headers['content-type'] ?? '').includes('json');
      requests.push({ protocol: json ? 'http/json' : 'http/protobuf', headers: { ...req.headers } });
      spans.push(...(json ? decodeJson(body) : decodeProtobuf(body)));
      res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
      res.end(json ? '{}' : Buffer.alloc(0));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    requests,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** OTLP over gRPC (HTTP/2, unary TraceService/Export). */
export async function startOtlpGrpcReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests: OtlpReceiver['requests'] = [];
  const server = createHttp2Server();
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const path = headers[':path'];
      if (path !== '/opentelemetry.proto.collector.trace.v1.TraceService/Export') {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' }, { endStream: true });
        return;
      }
      requests.push({ protocol: 'grpc', headers: { ...headers } });
      const frame = Buffer.concat(chunks);
      let pos = 0;
      while (pos + 5 <= frame.length) {
        const compressed = frame[pos] === 1;
        const len = frame.readUInt32BE(pos + 1);
        const message = frame.subarray(pos + 5, pos + 5 + len);
        spans.push(...decodeProtobuf(compressed ? gunzipSync(message) : message));
        pos += 5 + len;
      }
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    requests,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Resolves once `predicate` holds, polling; rejects after `timeoutMs` (a bound, not a measurement). */
export async function waitFor(predicate: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
