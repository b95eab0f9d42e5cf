/**
 * Transparent reverse proxy core of `cao-events gateway`.
 *
 * A node:http server in front of cao-server. Every request is forwarded through an undici Pool with
 * `pool.dispatch` and a small per-request handler object (no closures, no whole-body buffering):
 * method, path, query, headers (case kept, Host kept, Authorization untouched) and body bytes pass
 * as they are; hop-by-hop headers (RFC 9110 §7.6.1: connection and the headers it names,
 * keep-alive, proxy-*, te, transfer-encoding, upgrade) are dropped on both legs — except that a
 * Connection header can never name away an end-to-end header the request depends on (Host,
 * Origin, Authorization, Cookie, Content-*, Sec-*): `Connection: Host` from a client would
 * otherwise let it hide its Host (and CAO's Host/Origin checks) behind the gateway's.
 * Client-supplied X-Forwarded-* / Forwarded / X-Real-IP are dropped and X-Forwarded-For/Proto/Host
 * are set from the real peer socket. Responses stream chunk by chunk with back-pressure; headers of
 * responses whose body does not follow at once (SSE, long-held calls) are flushed on the next tick;
 * response trailers (and the Trailer header announcing them) pass through. A client has
 * `clientHeadersTimeoutMs` (default 60 s) to send its request headers, so slow-header connections
 * cannot pile up; request bodies and responses are never timed out (`run-step` may take many
 * minutes, SSE streams forever). A client disconnect aborts the upstream request. WebSocket (any
 * `Upgrade`) requests are tunnelled over a raw TCP connection to the upstream.
 *
 * The proxy classifies nothing: after each exchange is over it hands an `Exchange` to `onExchange`
 * (bodies only for routes `capture` selects, capped). Logs never contain query strings or bodies.
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { Transform, pipeline } from 'node:stream';
import type { Duplex, TransformCallback } from 'node:stream';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { listenError } from '../listen-error.ts';

export interface Exchange {
  method: string;
  /** Path without the query string. */
  path: string;
  query: URLSearchParams;
  requestHeaders: Record<string, string | string[] | undefined>;
  /** Only when `capture(method, path)` said yes; at most `maxCaptureBytes`. */
  requestBody?: Buffer;
  requestBodyTruncated?: boolean;
  /** Upstream status, or 502 when the upstream failed before a response started. */
  status: number;
  responseHeaders: Record<string, string | string[] | undefined>;
  responseBody?: Buffer;
  responseBodyTruncated?: boolean;
  startedAt: Date;
  upstreamError?: string;
  /** The client went away before the response was complete (the upstream request was aborted). */
  clientAborted?: boolean;
}

/** A request that has fully arrived (captured routes only), reported before its response. */
export type RequestArrival = Pick<
  Exchange,
  'method' | 'path' | 'query' | 'requestHeaders' | 'requestBody' | 'requestBodyTruncated' | 'startedAt'
>;

export interface GatewayProxyOptions {
  upstream: string;
  /** Called once a captured request's body has fully arrived, before the response (e.g. a long run-step). */
  onRequest?: (request: RequestArrival) => void;
  host?: string;
  port?: number;
  capture?: (method: string, path: string) => boolean;
  maxCaptureBytes?: number;
  onExchange?: (exchange: Exchange) => void;
  logger?: Logger;
  /** Time-outs of the upstream leg (undici); 0 (default): none. */
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
  /** How long a client may take to send its request headers (default 60 000 ms); bodies are unbounded. */
  clientHeadersTimeoutMs?: number;
  connections?: number;
}

export interface GatewayProxy {
  url: string;
  port: number;
  close(): Promise<void>;
}

const DEFAULT_PORT = 9889;
const DEFAULT_MAX_CAPTURE = 1024 * 1024;
const DEFAULT_CONNECTIONS = 128;
const DEFAULT_CLIENT_HEADERS_TIMEOUT = 60_000;

/** Lower-cased request/response header names that never cross the proxy. */
const HOP_BY_HOP: Record<string, true> = Object.assign(Object.create(null) as Record<string, true>, {
  connection: true,
  'keep-alive': true,
  te: true,
  'transfer-encoding': true,
  upgrade: true,
});
/**
 * End-to-end headers a Connection option can never remove: the request means something else, or
 * a check upstream (CAO's TrustedHost and Origin checks, its auth) is bypassed, without them.
 */
const PROTECTED: Record<string, true> = Object.assign(Object.create(null) as Record<string, true>, {
  host: true,
  origin: true,
  referer: true,
  authorization: true,
  cookie: true,
  'set-cookie': true,
  'content-length': true,
  'content-type': true,
  'content-encoding': true,
  'content-range': true,
  'www-authenticate': true,
  location: true,
  date: true,
});
/** Client-supplied forwarding headers: always dropped, the proxy sets its own. */
const FORWARDING: Record<string, true> = Object.assign(Object.create(null) as Record<string, true>, {
  'x-forwarded-for': true,
  'x-forwarded-host': true,
  'x-forwarded-proto': true,
  'x-forwarded-port': true,
  forwarded: true,
  'x-real-ip': true,
});

/** Path without query; origin-form expected, absolute-form tolerated. Pure. */
export function pathOf(url: string): string {
  if (url.charCodeAt(0) !== 47 /* / */) {
    try {
      return new URL(url).pathname;
    } catch {
      return url.split('?', 1)[0] ?? '';
    }
  }
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

function queryOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? '' : url.slice(q + 1);
}

/** Connection-option tokens other than the standard ones (they name more hop-by-hop headers). */
function connectionTokens(value: string): string[] | null {
  if (value.length <= 10) {
    const v = value.toLowerCase(); // fast path for the usual single option
    if (v === 'keep-alive' || v === 'close' || v === 'upgrade') return null;
  }
  let out: string[] | null = null;
  for (const raw of value.split(',')) {
    const t = raw.trim().toLowerCase();
    if (t === '' || t === 'close' || t === 'keep-alive' || t === 'upgrade' || HOP_BY_HOP[t]) continue;
    if (PROTECTED[t] || t.startsWith('sec-') || t.startsWith('x-forwarded-')) continue;
    (out ??= []).push(t);
  }
  return out;
}

function dropNamed(flat: string[], names: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    if (!names.includes(flat[i]!.toLowerCase())) out.push(flat[i]!, flat[i + 1]!);
  }
  return out;
}

export interface ForwardedRequestHeaders {
  /** Flat [name, value, …] list, case kept. */
  headers: string[];
  hasBody: boolean;
  host: string | undefined;
}

/**
 * Request headers for the upstream leg, from Node's flat `rawHeaders`. Pure.
 * `upgrade` keeps Connection/Upgrade (needed for the WebSocket handshake).
 */
export function forwardRequestHeaders(
  raw: string[],
  peer: string | undefined,
  proto: string,
  upgrade: boolean,
): ForwardedRequestHeaders {
  const headers: string[] = [];
  let hasBody = false;
  let host: string | undefined;
  let nominated: string[] | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lk = name.toLowerCase();
    if (FORWARDING[lk]) continue;
    if (HOP_BY_HOP[lk]) {
      if (lk === 'transfer-encoding') hasBody = true;
      if (lk === 'connection') nominated = connectionTokens(value);
      if (!upgrade || (lk !== 'connection' && lk !== 'upgrade')) continue;
    } else if (lk.startsWith('proxy-') || lk === 'expect' || lk === 'trailer') {
      // proxy-* is for this hop; Expect: 100-continue was already answered by node:http; request
      // trailers are not forwarded (the upstream client cannot send them), so none is announced.
      continue;
    } else if (lk === 'content-length') {
      if (value !== '0') hasBody = true;
    } else if (lk === 'host') {
      host = value;
    }
    headers.push(name, value);
  }
  const out = nominated ? dropNamed(headers, nominated) : headers;
  if (peer !== undefined) out.push('x-forwarded-for', peer);
  out.push('x-forwarded-proto', proto);
  if (host !== undefined) out.push('x-forwarded-host', host);
  return { headers: out, hasBody, host };
}

/** Response headers for the client leg from undici's raw list (Buffers or strings). Pure. */
export function forwardResponseHeaders(raw: ReadonlyArray<Buffer | string>): string[] {
  const out: string[] = [];
  let nominated: string[] | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!;
    const v = raw[i + 1]!;
    const name = typeof k === 'string' ? k : k.toString('latin1');
    const value = typeof v === 'string' ? v : v.toString('latin1');
    const lk = name.toLowerCase();
    if (HOP_BY_HOP[lk]) {
      if (lk === 'connection') nominated = connectionTokens(value);
      continue;
    }
    if (lk.startsWith('proxy-')) continue;
    out.push(name, value);
  }
  return nominated ? dropNamed(out, nominated) : out;
}

/** Flat header list from undici's parsed headers (fallback when raw headers are unavailable). */
function flattenParsed(headers: Record<string, string | string[] | undefined>): string[] {
  const flat: (Buffer | string)[] = [];
  for (const k of Object.keys(headers)) {
    const v = headers[k];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) flat.push(k, x);
    else flat.push(k, v);
  }
  return forwardResponseHeaders(flat);
}

/** A side copy of a body, at most `max` bytes. */
class Capture {
  readonly max: number;
  chunks: Buffer[] = [];
  size = 0;
  truncated = false;
  constructor(max: number) {
    this.max = max;
  }
  add(chunk: Buffer): void {
    const room = this.max - this.size;
    if (chunk.length > room) this.truncated = true;
    if (room <= 0) return;
    const take = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(Buffer.from(take)); // copy: the source buffer may be reused by its owner
    this.size += take.length;
  }
  result(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}

/** Pass-through that copies what flows into a Capture (only used for captured routes). */
class CaptureTap extends Transform {
  readonly capture: Capture;
  constructor(capture: Capture) {
    super();
    this.capture = capture;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.capture.add(chunk);
    cb(null, chunk);
  }
}

/** Error code of an upstream failure, for the 502 body and logs (never a message with data in it). */
export function errorCode(err: unknown): string {
  const e = err as { code?: unknown; name?: unknown; errors?: unknown } | null;
  if (e && typeof e.code === 'string') return e.code;
  if (e && Array.isArray(e.errors)) {
    const first = e.errors[0] as { code?: unknown } | undefined;
    if (first && typeof first.code === 'string') return first.code;
  }
  return e && typeof e.name === 'string' ? e.name : 'Error';
}

function noop(): void {}

interface Shared {
  pool: Pool;
  origin: string;
  logger: Logger;
  capture: ((method: string, path: string) => boolean) | undefined;
  maxCaptureBytes: number;
  onExchange: ((exchange: Exchange) => void) | undefined;
  onRequest: ((request: RequestArrival) => void) | undefined;
  headersTimeout: number;
  bodyTimeout: number;
}

const kExchange = Symbol('cao-gateway-exchange');
type ProxiedResponse = ServerResponse & { [kExchange]?: ProxyExchange };

function onResponseClose(this: ProxiedResponse): void {
  this[kExchange]?.onClientClose();
}
function onResponseDrain(this: ProxiedResponse): void {
  this[kExchange]?.controller?.resume();
}
function flushHeadersIfNoBody(ex: ProxyExchange): void {
  if (!ex.bodyStarted && !ex.res.writableEnded && !ex.res.destroyed) ex.res.flushHeaders();
}

/** One proxied request: the undici dispatch handler and the bookkeeping for its Exchange. */
class ProxyExchange implements Dispatcher.DispatchHandler {
  readonly shared: Shared;
  readonly req: IncomingMessage;
  readonly res: ProxiedResponse;
  readonly started: number;
  readonly startedAt: number;
  controller: Dispatcher.DispatchController | null = null;
  status = 0;
  responseHeaders: Record<string, string | string[] | undefined> | undefined = undefined;
  upstreamError: string | undefined = undefined;
  bodyStarted = false;
  clientClosed = false;
  upstreamDone = false;
  reqCapture: Capture | null = null;
  resCapture: Capture | null = null;

  constructor(shared: Shared, req: IncomingMessage, res: ServerResponse) {
    this.shared = shared;
    this.req = req;
    this.res = res as ProxiedResponse;
    this.started = performance.now();
    this.startedAt = Date.now();
  }

  start(): void {
    const { shared, req, res } = this;
    const method = req.method ?? 'GET';
    let url = req.url ?? '/';
    if (url.charCodeAt(0) !== 47 && url !== '*') {
      try {
        const u = new URL(url);
        url = u.pathname + u.search;
      } catch {
        /* leave as is; undici will reject it and the client gets a 502 */
      }
    }
    if (shared.capture !== undefined && shared.onExchange !== undefined) {
      let wanted = false;
      try {
        wanted = shared.capture(method, pathOf(url));
      } catch (err) {
        logCallbackError(shared.logger, 'capture', method, pathOf(url), err);
      }
      if (wanted) {
        this.reqCapture = new Capture(shared.maxCaptureBytes);
        this.resCapture = new Capture(shared.maxCaptureBytes);
      }
    }
    const fwd = forwardRequestHeaders(req.rawHeaders, req.socket.remoteAddress, 'http', false);
    let body: Dispatcher.DispatchOptions['body'] = null;
    if (fwd.hasBody) {
      if (this.reqCapture !== null) {
        const tap = new CaptureTap(this.reqCapture);
        pipeline(req, tap, noop);
        body = tap;
      } else {
        body = req;
      }
    }
    if (this.reqCapture !== null && shared.onRequest !== undefined) {
      // The tap has seen every byte once its writable side finishes.
      if (body !== null && body !== req) (body as Transform).once('finish', () => this.reportArrival());
      else process.nextTick(() => this.reportArrival());
    }
    res.sendDate = false; // the upstream's Date header (if any) passes; none is invented
    res[kExchange] = this;
    res.once('close', onResponseClose);
    shared.pool.dispatch(
      {
        origin: shared.origin,
        method,
        path: url,
        headers: fwd.headers,
        body,
        headersTimeout: shared.headersTimeout,
        bodyTimeout: shared.bodyTimeout,
      },
      this,
    );
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.clientClosed) controller.abort(new Error('client closed the connection'));
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    if (statusCode < 200) return; // 1xx informational: not relayed
    const raw = controller.rawHeaders;
    const out = Array.isArray(raw)
      ? forwardResponseHeaders(raw as ReadonlyArray<Buffer | string>)
      : flattenParsed(headers);
    const res = this.res;
    if (statusMessage) res.writeHead(statusCode, statusMessage, out);
    else res.writeHead(statusCode, out);
    // Set only once writeHead accepted the headers: if it threw, undici aborts and the client gets a 502.
    this.status = statusCode;
    this.responseHeaders = headers;
    // Streams (SSE, chunked, long-held) get their headers at once even before a first body byte;
    // fixed-length responses go out with their body in one write.
    const ct = headers['content-type'];
    if (typeof ct === 'string' && ct.startsWith('text/event-stream')) res.flushHeaders();
    else if (headers['content-length'] === undefined) process.nextTick(flushHeadersIfNoBody, this);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.bodyStarted = true;
    if (this.resCapture !== null) this.resCapture.add(chunk);
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', onResponseDrain);
    }
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers?: Record<string, string | string[] | undefined>): void {
    this.bodyStarted = true;
    this.upstreamDone = true;
    if (trailers) {
      const out: Array<[string, string]> = [];
      for (const [name, value] of Object.entries(trailers)) {
        if (value === undefined || HOP_BY_HOP[name.toLowerCase()]) continue;
        for (const v of Array.isArray(value) ? value : [value]) out.push([name, v]);
      }
      if (out.length > 0) this.res.addTrailers(out);
    }
    this.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, err: Error): void {
    this.upstreamDone = true;
    if (this.clientClosed) return;
    const code = errorCode(err);
    this.upstreamError = code;
    const { shared, req, res } = this;
    shared.logger.warn(
      { method: req.method, path: pathOf(req.url ?? '/'), upstream: shared.origin, code, responseStarted: this.status !== 0 },
      'cao-events gateway: upstream request failed',
    );
    if (this.status === 0 && !res.headersSent) {
      this.status = 502;
      const payload = JSON.stringify({ detail: `cao-events gateway: upstream ${shared.origin} unreachable: ${code}` });
      res.writeHead(502, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
      res.end(payload);
    } else {
      res.destroy(); // the client must see a broken response, not a silently truncated one
    }
  }

  onClientClose(): void {
    const { res, shared } = this;
    res[kExchange] = undefined;
    if (!res.writableFinished) {
      this.clientClosed = true;
      if (!this.upstreamDone && this.controller !== null) {
        this.controller.abort(new Error('client closed the connection'));
      }
    }
    if (shared.logger.isLevelEnabled('debug')) {
      shared.logger.debug(
        {
          method: this.req.method,
          path: pathOf(this.req.url ?? '/'),
          status: this.status,
          durationMs: Math.round((performance.now() - this.started) * 1000) / 1000,
          ...(this.clientClosed ? { clientAborted: true } : {}),
        },
        'proxied',
      );
    }
    if (shared.onExchange !== undefined) this.report(shared.onExchange);
  }

  reportArrival(): void {
    const onRequest = this.shared.onRequest;
    if (onRequest === undefined || this.reqCapture === null) return;
    const url = this.req.url ?? '/';
    const arrival: RequestArrival = {
      method: this.req.method ?? 'GET',
      path: pathOf(url),
      query: new URLSearchParams(queryOf(url)),
      requestHeaders: this.req.headers,
      requestBody: this.reqCapture.result(),
      requestBodyTruncated: this.reqCapture.truncated,
      startedAt: new Date(this.startedAt),
    };
    try {
      onRequest(arrival);
    } catch (err) {
      logCallbackError(this.shared.logger, 'onRequest', arrival.method, arrival.path, err);
    }
  }

  report(onExchange: (exchange: Exchange) => void): void {
    const { req } = this;
    const url = req.url ?? '/';
    const exchange: Exchange = {
      method: req.method ?? 'GET',
      path: pathOf(url),
      query: new URLSearchParams(queryOf(url)),
      requestHeaders: req.headers,
      status: this.status,
      responseHeaders: this.responseHeaders ?? {},
      startedAt: new Date(this.startedAt),
    };
    if (this.reqCapture !== null) {
      exchange.requestBody = this.reqCapture.result();
      exchange.requestBodyTruncated = this.reqCapture.truncated;
    }
    if (this.resCapture !== null) {
      exchange.responseBody = this.resCapture.result();
      exchange.responseBodyTruncated = this.resCapture.truncated;
    }
    if (this.upstreamError !== undefined) exchange.upstreamError = this.upstreamError;
    if (this.clientClosed) exchange.clientAborted = true;
    try {
      onExchange(exchange);
    } catch (err) {
      logCallbackError(this.shared.logger, 'onExchange', exchange.method, exchange.path, err);
    }
  }
}

/** Logs a failing callback by name and stack frames only (messages may quote bodies). */
function logCallbackError(logger: Logger, where: string, method: string, path: string, err: unknown): void {
  const e = err instanceof Error ? err : new Error('non-error thrown');
  logger.error(
    { where, method, path, errorName: e.name, stack: (e.stack ?? '').split('\n').slice(1, 6).join('\n') },
    'cao-events gateway: callback threw (traffic unaffected)',
  );
}

function ending(socket: Duplex): void {
  if (socket.destroyed) return;
  if (socket.writableLength === 0) {
    socket.destroy();
    return;
  }
  socket.end();
  const t = setTimeout(() => socket.destroy(), 5000);
  t.unref();
  socket.once('close', () => clearTimeout(t));
}

export async function startGatewayProxy(opts: GatewayProxyOptions): Promise<GatewayProxy> {
  const upstreamUrl = new URL(opts.upstream);
  if (upstreamUrl.protocol !== 'http:' && upstreamUrl.protocol !== 'https:') {
    throw new Error(`gateway upstream must be an http(s) URL, got protocol ${upstreamUrl.protocol}`);
  }
  const origin = upstreamUrl.origin;
  const upstreamTls = upstreamUrl.protocol === 'https:';
  const upstreamHost = upstreamUrl.hostname.replace(/^\[|\]$/g, '');
  const upstreamPort = Number(upstreamUrl.port || (upstreamTls ? 443 : 80));
  const logger = opts.logger ?? pino({ name: 'cao-events-gateway', level: 'warn' });
  const headersTimeout = opts.headersTimeoutMs ?? 0;
  const bodyTimeout = opts.bodyTimeoutMs ?? 0;
  const pool = new Pool(origin, {
    connections: opts.connections ?? DEFAULT_CONNECTIONS,
    pipelining: 1,
    headersTimeout,
    bodyTimeout,
  });
  const shared: Shared = {
    pool,
    origin,
    logger,
    capture: opts.capture,
    maxCaptureBytes: opts.maxCaptureBytes ?? DEFAULT_MAX_CAPTURE,
    onExchange: opts.onExchange,
    onRequest: opts.onRequest,
    headersTimeout,
    bodyTimeout,
  };

  // requestTimeout 0 (bodies may stream for hours) would also turn off headersTimeout: set it.
  const clientHeadersTimeout = opts.clientHeadersTimeoutMs ?? DEFAULT_CLIENT_HEADERS_TIMEOUT;
  const server = http.createServer(
    {
      noDelay: true,
      keepAlive: true,
      requestTimeout: 0,
      headersTimeout: clientHeadersTimeout,
      connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(clientHeadersTimeout / 4))),
    },
    (req: IncomingMessage, res: ServerResponse) => {
      new ProxyExchange(shared, req, res).start();
    },
  );

  const tunnels = new Set<Duplex>();
  server.on('upgrade', (req: IncomingMessage, client: Duplex, head: Buffer) => {
    const started = performance.now();
    const method = req.method ?? 'GET';
    const path = pathOf(req.url ?? '/');
    const fwd = forwardRequestHeaders(req.rawHeaders, req.socket.remoteAddress, 'http', true);
    let block = `${method} ${req.url ?? '/'} HTTP/1.1\r\n`;
    const h = fwd.headers;
    for (let i = 0; i < h.length; i += 2) block += `${h[i]}: ${h[i + 1]}\r\n`;
    block += '\r\n';

    const upstream: net.Socket = upstreamTls
      ? tls.connect({ host: upstreamHost, port: upstreamPort, servername: net.isIP(upstreamHost) ? undefined : upstreamHost })
      : net.connect({ host: upstreamHost, port: upstreamPort });
    upstream.setNoDelay(true);
    if (client instanceof net.Socket) {
      client.setNoDelay(true);
      client.setTimeout(0);
    }
    tunnels.add(client);
    tunnels.add(upstream);
    let connected = false;
    upstream.once(upstreamTls ? 'secureConnect' : 'connect', () => {
      connected = true;
      upstream.write(block, 'latin1');
      if (head.length > 0) upstream.write(head);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    upstream.on('error', (err: Error) => {
      const code = errorCode(err);
      logger.warn({ method, path, upstream: origin, code, upgrade: true, connected }, 'cao-events gateway: upstream tunnel failed');
      if (!connected && client.writable) {
        const payload = JSON.stringify({ detail: `cao-events gateway: upstream ${origin} unreachable: ${code}` });
        client.end(
          `HTTP/1.1 502 Bad Gateway\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\nconnection: close\r\n\r\n${payload}`,
        );
      } else {
        client.destroy();
      }
    });
    client.on('error', () => upstream.destroy());
    upstream.on('close', () => {
      tunnels.delete(upstream);
      if (connected) ending(client);
    });
    client.on('close', () => {
      tunnels.delete(client);
      ending(upstream);
      if (logger.isLevelEnabled('debug')) {
        logger.debug(
          { method, path, upgrade: true, durationMs: Math.round((performance.now() - started) * 1000) / 1000 },
          'tunnel closed',
        );
      }
    });
  });

  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error) => reject(listenError(err, { host: 'gateway.host', port: 'gateway.port' }, host, opts.port ?? DEFAULT_PORT));
    server.once('error', failed);
    server.listen(opts.port ?? DEFAULT_PORT, host, () => {
      server.off('error', failed);
      resolve();
    });
  }).catch(async (err: unknown) => {
    await pool.destroy();
    throw err;
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : (opts.port ?? DEFAULT_PORT);
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.debug({ url, upstream: origin }, 'cao-events gateway listening');

  let closing: Promise<void> | null = null;
  return {
    url,
    port,
    close(): Promise<void> {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        for (const s of tunnels) s.destroy();
        tunnels.clear();
        await closed;
        await pool.destroy();
      })();
      return closing;
    },
  };
}
