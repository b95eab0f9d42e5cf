/**
 * The durable outbox: events survive a restart (pending ones delivered first, in order, ids
 * unchanged), a torn last record is skipped, the byte bound holds, failures go to the
 * dead-letter file and `replay` re-sends them with their ids. Real HTTP on 127.0.0.1, real files.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CloudEventV1 } from 'cloudevents';
import { HttpSink } from '../exporters/delivery/delivery-queue.ts';
import { DurableSink, OUTBOX_FILE, Outbox, readDeadLetters } from '../exporters/delivery/outbox.ts';
import { replay } from '../exporters/delivery/replay.ts';
import { spanEventToCloudEvent } from '../exporters/transform.ts';
import { createLogger } from '../src/logger.ts';
import { startReceiver } from '../src/receiver.ts';
import { logCapture } from './helpers/log-capture.ts';

const logger = createLogger('silent');

function events(n: number, session = 'cao-outbox'): CloudEventV1<unknown>[] {
  return Array.from({ length: n }, (_, i) =>
    spanEventToCloudEvent(
      { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: (i + 1).toString(16).padStart(16, '0'), traceFlags: 1 },
      { name: 'cao.message_sent', time: [1_764_000_000 + i, 0], attributes: { 'cao.session.name': session, 'cao.message.sender': 'a1b2c3d4', 'cao.orchestration.type': 'send_message', 'cao.orchestration.phase': 'dispatched', 'cao.message.content': `message ${i}`, 'cao.event.sequence': i + 1 } },
      0,
    )!,
  );
}

async function refusingUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  await new Promise((r) => server.close(r));
  return url;
}

const dir = () => mkdtempSync(join(tmpdir(), 'cao-events-outbox-'));

describe('outbox', () => {
  it('keeps pending events across a restart, in order, and forgets acknowledged ones', () => {
    const d = dir();
    const first = new Outbox({ dir: d, logger });
    const evs = events(5);
    assert.equal(first.add(evs).length, 5);
    first.ack([evs[1]!.id, evs[3]!.id]);
    const second = new Outbox({ dir: d, logger });
    assert.deepEqual(second.recovered().map((e) => e.id), [evs[0]!.id, evs[2]!.id, evs[4]!.id]);
    assert.equal(second.recovered()[0]!.time, evs[0]!.time, 'the event is unchanged, time included');
    assert.deepEqual(second.recovered()[0]!.data, evs[0]!.data);
    // the log was compacted to the pending events
    assert.equal(readFileSync(join(d, OUTBOX_FILE), 'utf8').trim().split('\n').length, 3);
  });

  it('skips a torn last record (a crash mid-write) and says so', () => {
    const d = dir();
    new Outbox({ dir: d, logger }).add(events(2));
    appendFileSync(join(d, OUTBOX_FILE), '{"add":{"id":"torn');
    const logs = logCapture();
    const reopened = new Outbox({ dir: d, logger: createLogger('info', logs.stream) });
    assert.equal(reopened.recovered().length, 2);
    assert.ok(logs.lines().some((l) => l.bad === 1));
  });

  it('refuses events beyond its byte bound and counts them', () => {
    const d = dir();
    const box = new Outbox({ dir: d, logger, maxBytes: 1500 });
    const accepted = box.add(events(10));
    assert.ok(accepted.length > 0 && accepted.length < 10);
    assert.equal(box.size.refused, 10 - accepted.length);
    assert.ok(box.size.bytes <= 1500);
  });

  it('a sidecar restart loses nothing: events held while the sink was down arrive after, ids unchanged', async () => {
    const d = dir();
    const deadUrl = await refusingUrl();
    const make = (url: string) => new DurableSink(new Outbox({ dir: d, logger }), (hooks) =>
      new HttpSink({ url, logger, retry: { initialDelayMs: 10, maxDelayMs: 20, maxAttempts: 1000 }, ...hooks }));
    const evs = events(4);
    const down = make(deadUrl);
    down.enqueue(evs);
    await down.shutdown(100); // the process stops while the sink is down
    const receiver = await startReceiver();
    const up = make(receiver.url);
    up.enqueue(events(6).slice(4)); // new events after the restart
    await up.forceFlush();
    assert.deepEqual(receiver.received.map((r) => r.event.id), events(6).map((e) => e.id), 'recovered first, in order, then new');
    assert.equal(up.outbox.size.events, 0);
    await up.shutdown();
    await receiver.close();
    assert.equal(new Outbox({ dir: d, logger }).recovered().length, 0);
  });

  it('dead-letters what the sink refuses, and replay re-sends it with the same ids', async () => {
    const d = dir();
    const refusing = createServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(422).end()); });
    await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(refusing.address() as AddressInfo).port}/`;
    const sink = new DurableSink(new Outbox({ dir: d, logger }), (hooks) => new HttpSink({ url, logger, ...hooks }));
    const evs = events(3);
    sink.enqueue(evs);
    await sink.forceFlush();
    await sink.shutdown();
    refusing.close();
    const dead = readDeadLetters(d);
    assert.deepEqual(dead.map((x) => x.event.id), evs.map((e) => e.id));
    assert.equal(dead[0]!.error, 'HTTP 422');
    const receiver = await startReceiver();
    const since = new Date(Date.parse(String(evs[1]!.time)));
    const partial = await replay({ dir: d, url: receiver.url, deadLetter: true, since, logger });
    assert.deepEqual(partial, { selected: 2, delivered: 2, failed: 0 });
    assert.deepEqual(receiver.received.map((r) => r.event.id), evs.slice(1).map((e) => e.id));
    assert.deepEqual(readDeadLetters(d).map((x) => x.event.id), [evs[0]!.id], 'delivered entries leave the dead-letter file');
    await receiver.close();
  });
});
