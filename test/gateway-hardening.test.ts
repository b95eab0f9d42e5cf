/**
 * The gateway against misbehaving clients, with real sockets on 127.0.0.1: a client that never
 * finishes its request headers is cut off (slow headers cannot hold connections forever), while
 * slow request bodies and slow responses are never timed out; a client's `Connection` header
 * cannot name away Host, Origin or Authorization; response trailers pass through.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { request } from 'undici';
import { type GatewayProxy, startGatewayProxy } from '../src/sources/gateway-proxy.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function upstreamWith(handler: Handler): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Resolves with how the socket ended, or 'still open' if it is open after `withinMs`. */
function socketEnd(socket: net.Socket, withinMs: number): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    socket.on('data', (c: Buffer) => (data += c.toString('latin1')));
    const timer = setTimeout(() => resolve('still open'), withinMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(`closed${data ? `: ${data.split('\r\n')[0]}` : ''}`);
    });
  });
}

describe('gateway hardening', () => {
  const cleanup: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  async function gateway(handler: Handler, clientHeadersTimeoutMs?: number): Promise<GatewayProxy> {
    const upstream = await upstreamWith(handler);
    const proxy = await startGatewayProxy({
      upstream: upstream.url,
      port: 0,
      logger: pino({ level: 'silent' }),
      ...(clientHeadersTimeoutMs ? { clientHeadersTimeoutMs } : {}),
    });
    cleanup.push(async () => {
      await proxy.close();
      await upstream.close();
    });
    return proxy;
  }

  it('cuts off a client whose request headers never finish, and one that sends nothing', async () => {
    const proxy = await gateway((_req, res) => res.end('ok'), 1_000);
    const partial = net.connect(proxy.port, '127.0.0.1');
    await once(partial, 'connect');
    partial.write('GET /sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: '); // and never the end of the headers
    const silent = net.connect(proxy.port, '127.0.0.1');
    await once(silent, 'connect');
    // a bound far above the 1 s time-out (and Node's check interval): the test waits for the close
    const [slowHeaders, nothing] = await Promise.all([socketEnd(partial, 20_000), socketEnd(silent, 20_000)]);
    partial.destroy();
    silent.destroy();
    assert.match(slowHeaders, /^closed/, 'a slow-header connection is closed');
    assert.match(nothing, /^closed/, 'an idle connection that never sent a request is closed');
  });

  it('never times out a slow request body or a slow response (run-step, SSE)', async () => {
    const proxy = await gateway((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first ');
        setTimeout(() => res.end(`got ${body}`), 2_500); // longer than the headers time-out
      });
    }, 1_000);
    const socket = net.connect(proxy.port, '127.0.0.1');
    await once(socket, 'connect');
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
    socket.write('POST /terminals/run-step HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\nConnection: close\r\n\r\n');
    for (const piece of ['01234', '56789']) {
      await new Promise((r) => setTimeout(r, 1_300)); // each pause longer than the headers time-out
      socket.write(piece);
    }
    await once(socket, 'close');
    assert.match(answer, /^HTTP\/1\.1 200/);
    assert.match(answer, /first [\s\S]*got 0123456789/);
  });

  it('keeps Host, Origin and Authorization whatever the client names in Connection; drops what it may', async () => {
    let seen: IncomingHttpHeaders = {};
    const proxy = await gateway((req, res) => {
      seen = req.headers;
      res.end('ok');
    });
    // raw bytes: HTTP clients rewrite Connection themselves
    const socket = net.connect(proxy.port, '127.0.0.1');
    await once(socket, 'connect');
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
    socket.write(
      'POST /sessions HTTP/1.1\r\nHost: localhost:9889\r\nOrigin: http://localhost:9889\r\nAuthorization: Bearer abc\r\n' +
        'Connection: close, Host, Origin, Authorization, X-Forwarded-For, Content-Type, X-Drop-Me\r\n' +
        'Content-Type: application/json\r\nX-Drop-Me: gone\r\nContent-Length: 2\r\n\r\n{}',
    );
    await once(socket, 'close');
    assert.match(answer, /^HTTP\/1\.1 200/);
    assert.equal(seen.host, 'localhost:9889');
    assert.equal(seen.origin, 'http://localhost:9889');
    assert.equal(seen.authorization, 'Bearer abc');
    assert.equal(seen['content-type'], 'application/json');
    assert.equal(seen['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen['x-drop-me'], undefined, 'a header the client declared hop-by-hop is still dropped');
  });

  it('passes response trailers (and the Trailer header announcing them) through', async () => {
    const proxy = await gateway((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
      res.write('part one, ');
      res.addTrailers({ 'x-checksum': 'sha256=abc' });
      res.end('part two');
    });
    const res = await request(`${proxy.url}/stream`);
    assert.equal(await res.body.text(), 'part one, part two');
    assert.equal(res.headers.trailer, 'x-checksum');
    assert.equal(res.trailers['x-checksum'], 'sha256=abc');
  });
});
