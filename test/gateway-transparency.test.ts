/**
 * The gateway proxy is transparent: bytes, headers, streams, upgrades and failures, against real
 * local upstream servers. Behaviour only: no wall-clock thresholds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { IncomingMessage, ServerResponse, IncomingHttpHeaders } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { pino } from 'pino';
import { startGatewayProxy } from '../src/sources/gateway-proxy.ts';
import type { Exchange, GatewayProxy, GatewayProxyOptions } from '../src/sources/gateway-proxy.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface Upstream {
  server: http.Server;
  url: string;
  port: number;
  close(): Promise<void>;
}

async function startUpstream(handler: Handler): Promise<Upstream> {
  const server = http.createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

interface Setup {
  upstream: Upstream;
  proxy: GatewayProxy;
  exchanges: Exchange[];
  nextExchange(): Promise<Exchange>;
  close(): Promise<void>;
}

async function setup(handler: Handler, opts: Partial<GatewayProxyOptions> = {}): Promise<Setup> {
  const upstream = await startUpstream(handler);
  const exchanges: Exchange[] = [];
  const waiters: ((e: Exchange) => void)[] = [];
  let read = 0;
  const proxy = await startGatewayProxy({
    upstream: upstream.url,
    port: 0,
    logger: pino({ level: 'silent' }),
    ...opts,
    onExchange: (e) => {
      exchanges.push(e);
      opts.onExchange?.(e);
      waiters.shift()?.(e);
    },
  });
  return {
    upstream,
    proxy,
    exchanges,
    nextExchange: () => {
      const i = read++;
      if (exchanges[i]) return Promise.resolve(exchanges[i]);
      return new Promise((r) => waiters.push(r));
    },
    close: async () => {
      await proxy.close();
      await upstream.close();
    },
  };
}

interface Reply {
  status: number;
  statusMessage: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

function send(
  base: string,
  path: string,
  opts: { method?: string; headers?: http.OutgoingHttpHeaders; body?: Buffer | string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      new URL(path, base),
      { method: opts.method ?? 'GET', headers: opts.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            statusMessage: res.statusMessage ?? '',
            headers: res.headers,
            rawHeaders: res.rawHeaders,
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

test('chunked upload arrives byte-for-byte and streamed (upstream sees chunk 1 before chunk 2 is sent)', async () => {
  const firstSeen = deferred();
  let seenHeaders: IncomingHttpHeaders = {};
  const s = await setup((req, res) => {
    seenHeaders = req.headers;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      chunks.push(c);
      firstSeen.resolve();
    });
    req.on('end', () => {
      const all = Buffer.concat(chunks);
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`${all.length}:${sha256(all)}`);
    });
  });
  try {
    const part1 = randomBytes(1000);
    const part2 = randomBytes(70_000);
    const result = new Promise<Reply>((resolve, reject) => {
      const req = http.request(
        `${s.proxy.url}/upload`,
        { method: 'POST', agent: false, headers: { 'content-type': 'application/octet-stream' } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, statusMessage: '', headers: res.headers, rawHeaders: [], body: Buffer.concat(chunks) }),
          );
        },
      );
      req.on('error', reject);
      req.write(part1);
      // Only once the upstream has the first chunk do we send the rest: a buffering proxy would hang here.
      void firstSeen.promise.then(() => req.end(part2));
    });
    const reply = await result;
    const all = Buffer.concat([part1, part2]);
    assert.equal(reply.status, 200);
    assert.equal(reply.body.toString(), `${all.length}:${sha256(all)}`);
    assert.equal(seenHeaders['transfer-encoding'], 'chunked');
    assert.equal(seenHeaders['content-type'], 'application/octet-stream');
  } finally {
    await s.close();
  }
});

test('SSE passes event by event: the client has event 1 before the upstream sends event 2', async () => {
  const clientGotFirst = deferred();
  const s = await setup((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write('event: a\ndata: one\n\n');
    void clientGotFirst.promise.then(() => {
      res.write('event: b\ndata: two\n\n');
      res.end();
    });
  });
  try {
    const received: string[] = [];
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.get(`${s.proxy.url}/events?token=abc`, { agent: false }, (res) => {
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          buf += c;
          let i: number;
          while ((i = buf.indexOf('\n\n')) !== -1) {
            received.push(buf.slice(0, i));
            buf = buf.slice(i + 2);
            if (received.length === 1) clientGotFirst.resolve();
          }
        });
        res.on('end', () => resolve(res.statusCode ?? 0));
        assert.equal(res.headers['content-type'], 'text/event-stream');
      });
      req.on('error', reject);
    });
    assert.equal(status, 200);
    assert.deepEqual(received, ['event: a\ndata: one', 'event: b\ndata: two']);
  } finally {
    await s.close();
  }
});

test('SSE headers reach the client before any event is sent', async () => {
  const clientGotHeaders = deferred();
  const s = await setup((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.flushHeaders();
    void clientGotHeaders.promise.then(() => res.end('data: late\n\n'));
  });
  try {
    const body = await new Promise<string>((resolve, reject) => {
      const req = http.get(`${s.proxy.url}/events`, { agent: false }, (res) => {
        clientGotHeaders.resolve();
        let b = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (b += c));
        res.on('end', () => resolve(b));
      });
      req.on('error', reject);
    });
    assert.equal(body, 'data: late\n\n');
  } finally {
    await s.close();
  }
});

test('a long-held request (3 s upstream delay) completes with default time-outs', async () => {
  const s = await setup((req, res) => {
    void readBody(req).then((b) => {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ terminal_id: 'abcd1234', echoed: JSON.parse(b.toString()) }));
      }, 3000);
    });
  });
  try {
    const reply = await send(s.proxy.url, '/terminals/run-step', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'go' }),
    });
    assert.equal(reply.status, 200);
    assert.deepEqual(JSON.parse(reply.body.toString()), { terminal_id: 'abcd1234', echoed: { prompt: 'go' } });
  } finally {
    await s.close();
  }
});

test('WebSocket echo through the proxy keeps ?token, Origin and Host; X-Forwarded-For is the real peer', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(426);
    res.end();
  });
  const wss = new WebSocketServer({ server: upstream.server });
  let seen: { url: string | undefined; headers: IncomingHttpHeaders } | undefined;
  wss.on('connection', (ws, req) => {
    seen = { url: req.url, headers: req.headers };
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  const proxy = await startGatewayProxy({ upstream: upstream.url, port: 0, logger: pino({ level: 'silent' }) });
  try {
    const origin = `http://127.0.0.1:${proxy.port}`;
    const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}/terminals/abcd1234/ws?token=tok-123`, {
      origin,
      headers: { Authorization: 'Bearer jwt.jwt.jwt', 'X-Forwarded-For': '6.6.6.6' },
    });
    await once(ws, 'open');
    const replies: string[] = [];
    const gotTwo = new Promise<void>((resolve) => {
      ws.on('message', (d: Buffer, isBinary: boolean) => {
        replies.push(isBinary ? `bin:${d.toString('hex')}` : d.toString());
        if (replies.length === 2) resolve();
      });
    });
    ws.send('hello terminal');
    ws.send(Buffer.from([0, 1, 2, 255]));
    await gotTwo;
    assert.deepEqual(replies, ['hello terminal', 'bin:000102ff']);
    ws.close();
    await once(ws, 'close');
    assert.ok(seen);
    assert.equal(seen.url, '/terminals/abcd1234/ws?token=tok-123');
    assert.equal(seen.headers.origin, origin);
    assert.equal(seen.headers.host, `127.0.0.1:${proxy.port}`);
    assert.equal(seen.headers.authorization, 'Bearer jwt.jwt.jwt');
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
  } finally {
    await proxy.close();
    wss.close();
    await upstream.close();
  }
});

test('WebSocket upgrade with the upstream down gets a 502', async () => {
  const dead = await startUpstream(() => {});
  const deadUrl = dead.url;
  await dead.close();
  const proxy = await startGatewayProxy({ upstream: deadUrl, port: 0, logger: pino({ level: 'silent' }) });
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}/terminals/abcd1234/ws`);
    ws.on('error', () => {}); // terminate() before open reports an error we expect
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage];
    assert.equal(res.statusCode, 502);
    const body = await readBody(res);
    assert.match(JSON.parse(body.toString()).detail, /unreachable: ECONNREFUSED/);
    ws.terminate();
  } finally {
    await proxy.close();
  }
});

test('1 MiB body both directions is identical (sha256)', async () => {
  const down = randomBytes(1024 * 1024);
  let upHash = '';
  const s = await setup((req, res) => {
    void readBody(req).then((b) => {
      upHash = sha256(b);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': down.length });
      res.end(down);
    });
  });
  try {
    const up = randomBytes(1024 * 1024);
    const reply = await send(s.proxy.url, '/blob', {
      method: 'PUT',
      headers: { 'content-length': up.length, 'content-type': 'application/octet-stream' },
      body: up,
    });
    assert.equal(reply.status, 200);
    assert.equal(upHash, sha256(up));
    assert.equal(reply.body.length, down.length);
    assert.equal(sha256(reply.body), sha256(down));
    assert.equal(reply.headers['content-length'], String(down.length));
  } finally {
    await s.close();
  }
});

test('a 404 with body, status text and multiple Set-Cookie passes unchanged', async () => {
  const s = await setup((_req, res) => {
    res.writeHead(404, 'Nope', [
      'Content-Type', 'application/json',
      'Set-Cookie', 'a=1; Path=/',
      'Set-Cookie', 'b=2; HttpOnly',
      'X-Custom', 'kept',
      'Keep-Alive', 'timeout=5',
    ]);
    res.end('{"detail":"Terminal not found"}');
  });
  try {
    const reply = await send(s.proxy.url, '/terminals/deadbeef');
    assert.equal(reply.status, 404);
    assert.equal(reply.statusMessage, 'Nope');
    assert.equal(reply.body.toString(), '{"detail":"Terminal not found"}');
    assert.deepEqual(reply.headers['set-cookie'], ['a=1; Path=/', 'b=2; HttpOnly']);
    assert.equal(reply.headers['x-custom'], 'kept');
    assert.equal(reply.headers['content-type'], 'application/json');
    assert.ok(reply.rawHeaders.includes('X-Custom'), 'header name case is kept');
    const ex = await s.nextExchange();
    assert.equal(ex.status, 404);
    assert.equal(ex.path, '/terminals/deadbeef');
    assert.equal(ex.responseBody, undefined);
  } finally {
    await s.close();
  }
});

test('Host, Authorization, method, path and query are preserved; hop-by-hop headers are dropped', async () => {
  let seen: { method?: string; url?: string; headers: IncomingHttpHeaders } = { headers: {} };
  const s = await setup((req, res) => {
    seen = { method: req.method, url: req.url, headers: req.headers };
    res.end('ok');
  });
  try {
    const reply = await send(s.proxy.url, '/sessions?agent_profile=dev&working_directory=%2Ftmp%2Fx&x=a%20b', {
      method: 'POST',
      headers: {
        Host: 'localhost:9889',
        Origin: 'http://localhost:9889',
        Authorization: 'Bearer abc.def.ghi',
        Connection: 'keep-alive, X-Drop-Me',
        'X-Drop-Me': 'gone',
        TE: 'trailers',
        'Proxy-Authorization': 'Basic eHg=',
        'X-Keep-Me': 'here',
      },
    });
    assert.equal(reply.status, 200);
    assert.equal(seen.method, 'POST');
    assert.equal(seen.url, '/sessions?agent_profile=dev&working_directory=%2Ftmp%2Fx&x=a%20b');
    assert.equal(seen.headers.host, 'localhost:9889');
    assert.equal(seen.headers.origin, 'http://localhost:9889');
    assert.equal(seen.headers.authorization, 'Bearer abc.def.ghi');
    assert.equal(seen.headers['x-keep-me'], 'here');
    assert.equal(seen.headers['x-drop-me'], undefined);
    assert.equal(seen.headers.te, undefined);
    assert.equal(seen.headers['proxy-authorization'], undefined);
    assert.equal(seen.headers['x-forwarded-host'], 'localhost:9889');
    const ex = await s.nextExchange();
    assert.equal(ex.method, 'POST');
    assert.equal(ex.path, '/sessions');
    assert.equal(ex.query.get('working_directory'), '/tmp/x');
    assert.equal(ex.query.get('x'), 'a b');
    assert.equal(ex.requestHeaders.host, 'localhost:9889');
  } finally {
    await s.close();
  }
});

test('X-Forwarded-* cannot be spoofed: the upstream sees the real peer', async () => {
  let seen: IncomingHttpHeaders = {};
  const s = await setup((req, res) => {
    seen = req.headers;
    res.end();
  });
  try {
    await send(s.proxy.url, '/health', {
      headers: {
        'X-Forwarded-For': '6.6.6.6',
        'X-Forwarded-Host': 'evil.example',
        'X-Forwarded-Proto': 'https',
        'X-Forwarded-Port': '443',
        Forwarded: 'for=6.6.6.6;proto=https',
        'X-Real-IP': '6.6.6.6',
      },
    });
    assert.equal(seen['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen['x-forwarded-proto'], 'http');
    assert.equal(seen['x-forwarded-host'], `127.0.0.1:${s.proxy.port}`);
    assert.equal(seen['x-forwarded-port'], undefined);
    assert.equal(seen.forwarded, undefined);
    assert.equal(seen['x-real-ip'], undefined);
  } finally {
    await s.close();
  }
});

test('upstream down: 502 JSON, and the exchange reports 502 with upstreamError', async () => {
  const dead = await startUpstream(() => {});
  const deadUrl = dead.url;
  await dead.close();
  const exchanges: Exchange[] = [];
  const proxy = await startGatewayProxy({
    upstream: deadUrl,
    port: 0,
    logger: pino({ level: 'silent' }),
    onExchange: (e) => exchanges.push(e),
  });
  try {
    const reply = await send(proxy.url, '/sessions');
    assert.equal(reply.status, 502);
    assert.equal(reply.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(reply.body.toString()), {
      detail: `cao-events gateway: upstream ${deadUrl} unreachable: ECONNREFUSED`,
    });
    while (exchanges.length === 0) await new Promise((r) => setImmediate(r));
    assert.equal(exchanges[0]?.status, 502);
    assert.equal(exchanges[0]?.upstreamError, 'ECONNREFUSED');
  } finally {
    await proxy.close();
  }
});

test('client disconnect aborts the upstream request', async () => {
  const upstreamSawAbort = deferred();
  const arrived = deferred();
  const s = await setup((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: hi\n\n');
    arrived.resolve();
    res.on('close', () => upstreamSawAbort.resolve());
  });
  try {
    const req = http.get(`${s.proxy.url}/events`, { agent: false }, (res) => {
      res.once('data', () => req.destroy());
    });
    req.on('error', () => {});
    await arrived.promise;
    await upstreamSawAbort.promise;
    const ex = await s.nextExchange();
    assert.equal(ex.clientAborted, true);
    assert.equal(ex.status, 200);
  } finally {
    await s.close();
  }
});

test('onExchange gets captured bodies for captured routes only, with truncation above the cap', async () => {
  const s = await setup(
    (req, res) => {
      void readBody(req).then((b) => {
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ got: b.length, pad: 'x'.repeat(b.length) }));
      });
    },
    { capture: (method, path) => method === 'POST' && path.startsWith('/terminals/'), maxCaptureBytes: 64 },
  );
  try {
    const small = '{"message":"hi"}';
    await send(s.proxy.url, '/terminals/abcd1234/inbox/messages?sender_id=x', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: small,
    });
    const e1 = await s.nextExchange();
    assert.equal(e1.path, '/terminals/abcd1234/inbox/messages');
    assert.equal(e1.requestBody?.toString(), small);
    assert.equal(e1.requestBodyTruncated, false);
    assert.equal(e1.responseBody?.toString(), JSON.stringify({ got: small.length, pad: 'x'.repeat(small.length) }));
    assert.equal(e1.responseBodyTruncated, false);
    assert.equal(e1.status, 201);
    assert.equal(e1.query.get('sender_id'), 'x');
    assert.ok(e1.startedAt instanceof Date);

    const big = 'y'.repeat(500);
    const r2 = await send(s.proxy.url, '/terminals/run-step', { method: 'POST', body: big });
    assert.equal(r2.body.length, JSON.stringify({ got: 500, pad: 'x'.repeat(500) }).length, 'the client still gets everything');
    const e2 = await s.nextExchange();
    assert.equal(e2.requestBody?.length, 64);
    assert.equal(e2.requestBody?.toString(), big.slice(0, 64));
    assert.equal(e2.requestBodyTruncated, true);
    assert.equal(e2.responseBody?.length, 64);
    assert.equal(e2.responseBodyTruncated, true);

    await send(s.proxy.url, '/sessions', { method: 'POST', body: small });
    const e3 = await s.nextExchange();
    assert.equal(e3.path, '/sessions');
    assert.equal(e3.requestBody, undefined);
    assert.equal(e3.responseBody, undefined);
    assert.equal(e3.requestBodyTruncated, undefined);
  } finally {
    await s.close();
  }
});

test('an onExchange that throws never affects traffic', async () => {
  const s = await setup((_req, res) => res.end('fine'), {
    onExchange: () => {
      throw new Error('classifier bug');
    },
  });
  try {
    const a = await send(s.proxy.url, '/a');
    const b = await send(s.proxy.url, '/b');
    assert.equal(a.body.toString(), 'fine');
    assert.equal(b.body.toString(), 'fine');
  } finally {
    await s.close();
  }
});

test('query strings and bodies never appear in logs (debug level, errors included)', async () => {
  const lines: string[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  const logger = pino({ level: 'debug' }, dest);
  const secret = 'SECRET-QUERY-VALUE-42';
  const bodySecret = 'SECRET-BODY-VALUE-43';
  const s = await setup(
    (req, res) => {
      void readBody(req).then(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ echo: bodySecret }));
      });
    },
    {
      logger,
      capture: () => true,
      onExchange: () => {
        throw new Error(`classifier failed on ${bodySecret} ${secret}`);
      },
    },
  );
  const dead = await startUpstream(() => {});
  const deadUrl = dead.url;
  await dead.close();
  const deadProxy = await startGatewayProxy({ upstream: deadUrl, port: 0, logger });
  try {
    await send(s.proxy.url, `/terminals/abcd1234/input?message=${secret}&token=${secret}`, {
      method: 'POST',
      body: bodySecret,
    });
    await s.nextExchange();
    await send(deadProxy.url, `/terminals/abcd1234/input?message=${secret}`, { method: 'POST', body: bodySecret });
    const ws = new WebSocket(`ws://127.0.0.1:${deadProxy.port}/terminals/abcd1234/ws?token=${secret}`);
    ws.on('error', () => {}); // terminate() before open reports an error we expect
    await once(ws, 'unexpected-response');
    ws.terminate();
    await new Promise((r) => setImmediate(r));
    const all = lines.join('');
    assert.ok(all.includes('"path":"/terminals/abcd1234/input"'), 'the request was logged, by path');
    assert.ok(all.includes('"level":40'), 'the upstream failure was logged at warn');
    assert.ok(!all.includes(secret), 'no query value in logs');
    assert.ok(!all.includes(bodySecret), 'no body in logs');
    assert.ok(!all.includes('?'), 'no query string at all');
  } finally {
    await deadProxy.close();
    await s.close();
  }
});
