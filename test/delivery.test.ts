/**
 * Webhook delivery against misbehaving sinks, all real HTTP servers on 127.0.0.1: a sink that
 * hangs (time-out), refuses connections, answers 500, 429 with Retry-After, 410, or 400. In
 * every case emit() returns at once and the failure is a WARN line without message bodies.
 */
import assert from 'node:assert/strict';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { cloudEventsSinkSpec, createCaoTelemetry, createWebhookSink } from '../src/index.ts';
import { createLogger } from '../src/logger.ts';
import type { SinkStats } from '../exporters/sink.ts';
import { logCapture } from './helpers/log-capture.ts';
import { waitFor } from './helpers/otlp-receiver.ts';

interface Hit {
  at: number;
  body: string;
  id: string | undefined;
}

async function sink(handler: (hit: number, req: IncomingMessage, res: ServerResponse) => void) {
  const hits: Hit[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const id = (JSON.parse(body) as { id?: string }).id;
      hits.push({ at: Date.now(), body, id });
      handler(hits.length, req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?token=s3cret-query`;
  return {
    url,
    hits,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

const SECRET_MESSAGE = 'TOP-SECRET message body';
const fastRetry = { initialDelayMs: 20, maxDelayMs: 100, maxAttempts: 4 };

function setup(url: string, extra: Parameters<typeof createCaoTelemetry>[0] = {}) {
  const logs = logCapture();
  const telemetry = createCaoTelemetry({
    callbackUrl: url,
    otlp: false,
    retry: fastRetry,
    logger: createLogger('info', logs.stream),
    ...extra,
  });
  return { logs, telemetry };
}

let emitted = 0;
function emitMessage(telemetry: ReturnType<typeof createCaoTelemetry>, session = 'cao-faults') {
  emitted += 1;
  return telemetry.emit({
    type: 'message_sent', sessionName: session, sender: 'aaaaaaaa', receiver: 'bbbbbbbb',
    orchestrationType: 'send_message', phase: 'dispatched', message: `${SECRET_MESSAGE} #${emitted}`,
  });
}

function assertNoSecretsLogged(text: string): void {
  assert.ok(!text.includes(SECRET_MESSAGE), 'message bodies never logged');
  assert.ok(!text.includes('s3cret-query'), 'query strings never logged');
}

describe('delivery faults', () => {
  it('a sink that hangs: the request times out, is retried, and emit() returned at once', async () => {
    const s = await sink(() => undefined); // never answers
    const { logs, telemetry } = setup(s.url, { timeoutMs: 200, retry: { ...fastRetry, maxElapsedMs: 1_000 } });
    const recorded = emitMessage(telemetry);
    assert.ok(recorded, 'emit returned synchronously while the sink hangs');
    await waitFor(() => s.hits.length >= 2, 10_000, 'a retry after the time-out');
    await waitFor(() => logs.lines().some((l) => l.reason === 'time-out'), 5_000, 'time-out warning');
    const warn = logs.lines().find((l) => l.reason === 'time-out')!;
    assert.equal(warn.level, 40);
    assert.equal(s.hits[0]!.id, s.hits[1]!.id, 'a retry carries the same CloudEvent id');
    assertNoSecretsLogged(logs.text());
    await telemetry.shutdown();
    await s.close();
  });

  it('a sink that refuses connections: retried past maxAttempts while the breaker is open, given up when the time budget is spent, the loss an ERROR line', async () => {
    const s = await sink(() => undefined);
    const url = s.url;
    await s.close(); // nothing listens there now
    const { logs, telemetry } = setup(url, { retry: { ...fastRetry, maxElapsedMs: 600 } });
    assert.ok(emitMessage(telemetry));
    await telemetry.forceFlush();
    const stats: SinkStats = telemetry.sinks[0]!.stats;
    assert.equal(stats.failed, 1);
    assert.equal(stats.delivered, 0);
    assert.ok(stats.retried > fastRetry.maxAttempts, `connection errors with the breaker open spend no attempts (${stats.retried} retries)`);
    const warns = logs.lines().filter((l) => l.level === 40);
    assert.match(String(warns[0]!.reason), /ECONNREFUSED/);
    assert.match(String(warns.at(-1)!.msg), /retries exhausted/);
    assert.match(String(warns.at(-1)!.budget), /retry budget/);
    const loss = logs.lines().find((l) => l.level === 50);
    assert.equal(loss?.lost, 1);
    assert.equal(loss?.reason, 'retries_exhausted');
    assert.deepEqual(stats.lostBy, { retries_exhausted: 1 });
    assertNoSecretsLogged(logs.text());
    await telemetry.shutdown();
  });

  it('500 is retried with the same id until the sink recovers', async () => {
    const s = await sink((n, _req, res) => res.writeHead(n < 3 ? 500 : 204).end());
    const { telemetry } = setup(s.url);
    emitMessage(telemetry);
    await telemetry.forceFlush();
    assert.equal(s.hits.length, 3);
    assert.equal(new Set(s.hits.map((h) => h.id)).size, 1);
    const stats = telemetry.sinks[0]!.stats;
    assert.equal(stats.delivered, 1);
    assert.equal(stats.retried, 2);
    await telemetry.shutdown();
    await s.close();
  });

  it('429 with Retry-After is honoured (waits at least that long, longer than the back-off)', async () => {
    const s = await sink((n, _req, res) => {
      if (n === 1) res.writeHead(429, { 'retry-after': '1' }).end();
      else res.writeHead(200).end();
    });
    const { telemetry } = setup(s.url);
    emitMessage(telemetry);
    await telemetry.forceFlush();
    assert.equal(s.hits.length, 2);
    // behaviour, not speed: the second attempt came no earlier than the server asked
    assert.ok(s.hits[1]!.at - s.hits[0]!.at >= 950, `retry waited ${s.hits[1]!.at - s.hits[0]!.at} ms`);
    await telemetry.shutdown();
    await s.close();
  });

  it('410 disables the sink: no more requests, later events dropped and counted', async () => {
    const s = await sink((_n, _req, res) => res.writeHead(410).end());
    const { logs, telemetry } = setup(s.url);
    emitMessage(telemetry, 'cao-gone');
    await telemetry.forceFlush();
    emitMessage(telemetry, 'cao-gone-2');
    await telemetry.forceFlush();
    assert.equal(s.hits.length, 1);
    const stats = telemetry.sinks[0]!.stats;
    assert.equal(stats.disabled, true);
    assert.equal(stats.dropped, 1, 'the event after the 410');
    assert.equal(stats.lostBy.sink_gone, 2, 'the refused event and the later one: no outbox keeps them');
    assert.ok(logs.lines().some((l) => String(l.msg).includes('410')));
    await telemetry.shutdown();
    await s.close();
  });

  it('other 4xx are not retried', async () => {
    const s = await sink((_n, _req, res) => res.writeHead(400).end('bad'));
    const { logs, telemetry } = setup(s.url);
    emitMessage(telemetry);
    await telemetry.forceFlush();
    assert.equal(s.hits.length, 1);
    assert.ok(logs.lines().some((l) => l.status === 400 && String(l.msg).includes('not retried')));
    await telemetry.shutdown();
    await s.close();
  });

  it('a full queue loses new events: counted, the first an ERROR line at once, the rest summed into one line, the total at shutdown', async () => {
    const s = await sink(() => undefined); // hangs, so the queue fills
    const { logs, telemetry } = setup(s.url, { maxQueue: 3, timeoutMs: 60_000 });
    for (let i = 0; i < 10; i++) {
      telemetry.emit({ type: 'session_created', sessionName: `cao-q${i}` });
    }
    const stats = telemetry.sinks[0]!.stats;
    // one in flight, three queued, the rest lost
    assert.equal(stats.dropped, 6);
    assert.equal(stats.inFlight, 1);
    assert.equal(stats.queued, 3);
    assert.deepEqual(stats.lostBy, { queue_full: 6 });
    const errors = () => logs.lines().filter((l) => l.level === 50);
    assert.equal(errors().length, 1, 'one line now, not one per event');
    assert.equal(errors()[0]!.lost, 1);
    assert.equal(errors()[0]!.reason, 'queue_full');
    await telemetry.sinks[0]!.shutdown(100);
    await telemetry.shutdown();
    await s.close();
    const summed = errors().find((l) => (l.byReason as Record<string, number> | undefined)?.queue_full === 5);
    assert.ok(summed, 'the other five are reported, at the latest at shutdown (never swallowed)');
    const atShutdown = errors().find((l) => String(l.msg).startsWith('shutdown:'));
    assert.equal(atShutdown?.lost, 4, 'the in-flight and the three queued events, lost at shutdown without an outbox');
  });

  it('forceFlush() and shutdown() are bounded while a sink hangs, and count what is left', async () => {
    const s = await sink(() => undefined);
    const logs = logCapture();
    const httpSink = createWebhookSink(cloudEventsSinkSpec({ url: s.url, timeoutMs: 60_000 }), { logger: createLogger('info', logs.stream) });
    const telemetry = createCaoTelemetry({ sinks: [httpSink], otlp: false });
    emitMessage(telemetry);
    emitMessage(telemetry, 'cao-second');
    await waitFor(() => s.hits.length === 1, 5_000, 'the first request to arrive');
    await httpSink.forceFlush(100); // returns although the request is still in flight
    assert.equal(httpSink.stats.inFlight, 1);
    assert.equal(httpSink.stats.queued, 1);
    await httpSink.shutdown(100);
    assert.equal(httpSink.stats.dropped, 2, 'the queued and the aborted in-flight event are counted as dropped');
    assert.equal(httpSink.stats.inFlight, 0);
    assert.deepEqual(httpSink.stats.shutdown, { undelivered: 2, keptOnDisk: 0, lost: 2 });
    assert.ok(logs.lines().some((l) => l.level === 50 && l.undelivered === 2 && l.lost === 2 && String(l.msg).startsWith('shutdown:')));
    await telemetry.shutdown();
    await s.close();
  });

  it('a dead sink is not hammered: back-off grows across events, and what is given up is counted by reason', async () => {
    const s = await sink(() => undefined);
    const url = s.url;
    await s.close();
    const logs = logCapture();
    const httpSink = createWebhookSink(
      cloudEventsSinkSpec({ url, retry: { initialDelayMs: 20, maxDelayMs: 60_000, maxAttempts: 2, maxElapsedMs: 1_000 } }),
      { logger: createLogger('info', logs.stream) },
    );
    const telemetry = createCaoTelemetry({ sinks: [httpSink], otlp: false });
    emitMessage(telemetry, 'cao-dead-1');
    await httpSink.forceFlush();
    emitMessage(telemetry, 'cao-dead-2');
    await httpSink.forceFlush();
    const delays = logs.lines().filter((l) => l.msg === 'cloudevent delivery failed, will retry').map((l) => Number(l.retryInMs));
    // first event, first retry: attempt 1 → 10..20 ms; second event, first retry: third failure in a row → 40..80 ms
    assert.ok(delays[0]! <= 20, `first back-off ${delays[0]}`);
    assert.ok(delays[1]! >= 40, `second back-off ${delays[1]} follows the sink's failures, not the event's attempts`);
    assert.equal(httpSink.stats.failed, 2);
    assert.deepEqual(httpSink.stats.lostBy, { retries_exhausted: 2 });
    await telemetry.shutdown();
  });

  it('a sink that closes the connection mid-response: retried, then delivered once it answers', async () => {
    const s = await sink((n, _req, res) => {
      if (n === 1) {
        res.writeHead(200, { 'content-length': '100' });
        res.write('{"partial":');
        setTimeout(() => res.socket?.destroy(), 10);
      } else {
        res.writeHead(204).end();
      }
    });
    const { logs, telemetry } = setup(s.url);
    emitMessage(telemetry, 'cao-midway');
    await telemetry.forceFlush();
    // A 2xx status is the sink's acknowledgement even when its body is cut short: the event counts
    // as delivered (not sent twice), and the broken body neither throws nor stalls the sink.
    const stats = telemetry.sinks[0]!.stats;
    assert.equal(stats.delivered, 1);
    assert.equal(stats.failed, 0);
    emitMessage(telemetry, 'cao-midway-2');
    await telemetry.forceFlush();
    assert.equal(telemetry.sinks[0]!.stats.delivered, 2, 'the sink keeps working');
    assertNoSecretsLogged(logs.text());
    await telemetry.shutdown();
    await s.close();
  });

  it('a sink that closes the connection before any answer: retried with the same id', async () => {
    const s = await sink((n, req, res) => {
      if (n === 1) req.socket.destroy();
      else res.writeHead(202).end();
    });
    const { telemetry } = setup(s.url);
    emitMessage(telemetry, 'cao-closed');
    await telemetry.forceFlush();
    assert.equal(s.hits.length, 2);
    assert.equal(s.hits[0]!.id, s.hits[1]!.id);
    assert.equal(telemetry.sinks[0]!.stats.delivered, 1);
    await telemetry.shutdown();
    await s.close();
  });
});
