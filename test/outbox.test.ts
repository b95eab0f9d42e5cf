/**
 * The durable outbox is the sink's queue: pending events survive a restart (delivered first, in
 * order, ids unchanged), an overflow beyond maxQueue waits on disk and is read back as the queue
 * drains (while running and after a restart), a torn last record is skipped, the byte bound
 * holds (beyond it events wait in memory, then are lost and counted), failures go to the
 * dead-letter file and replay re-sends them with their ids. Real HTTP on 127.0.0.1, real files.
 */
import assert from 'node:assert/strict';
import { appendFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { CloudEventV1 } from 'cloudevents';
import { LossLog } from '../exporters/delivery/loss-log.ts';
import { OutboxStorage } from '../exporters/delivery/outbox.ts';
import { readDeadLetters } from '../exporters/delivery/outbox-files.ts';
import { replayDeadLetters } from '../exporters/delivery/replay.ts';
import { spanEventToCloudEvent } from '../exporters/transform.ts';
import { createLogger } from '../src/logger.ts';
import { startReceiver } from '../src/receiver.ts';
import { cloudEventsSinkSpec, createDeliveryQueue, createWebhookSink, outboxDirOf } from '../src/sink-factory.ts';
import { JumpClock } from './helpers/jump-clock.ts';
import { logCapture } from './helpers/log-capture.ts';
import { scratchDir } from './helpers/scratch-dir.ts';

const logger = createLogger('silent');

function events(n: number, from = 0, session = 'cao-outbox'): CloudEventV1<unknown>[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return spanEventToCloudEvent(
      { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: (i + 1).toString(16).padStart(16, '0'), traceFlags: 1 },
      { name: 'cao.message_sent', time: [1_764_000_000 + i, 123_456_789], attributes: { 'cao.session.name': session, 'cao.message.sender': 'a1b2c3d4', 'cao.orchestration.type': 'send_message', 'cao.orchestration.phase': 'dispatched', 'cao.message.content': `message ${i}`, 'cao.event.sequence': i + 1 } },
      0,
    )!;
  });
}

async function freeUrl(): Promise<{ url: string; port: number }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise((r) => server.close(r));
  return { url: `http://127.0.0.1:${port}/`, port };
}

const dir = () => scratchDir('cao-events-outbox-');

function storage(d: string, memoryEvents = 100, maxBytes = 1 << 30, log = logger) {
  return OutboxStorage.open({ dir: d, sink: 'test', maxBytes, memoryEvents, logger: log, losses: new LossLog(log) });
}

/** Waits until the queue waits on a back-off timer, then jumps to it; until `done()`. */
async function jumpUntil(clock: JumpClock, inFlight: () => number, done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    if (inFlight() === 0 && clock.pendingTimers > 0) clock.jumpToNextTimer();
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('outbox storage', () => {
  it('keeps pending events across a restart, in order, and forgets done ones', () => {
    const d = dir();
    const first = storage(d);
    const evs = events(5);
    first.append(evs);
    const taken = first.take(5);
    first.done([taken[1]!, taken[3]!]);
    first.close(taken);
    const second = storage(d);
    assert.equal(second.stats().pending, 3);
    const back = second.take(10);
    assert.deepEqual(back.map((i) => i.event.id), [evs[0]!.id, evs[2]!.id, evs[4]!.id]);
    assert.equal(back[0]!.event.time, evs[0]!.time, 'the event is unchanged, nanosecond time included');
    assert.deepEqual(back[0]!.event.data, evs[0]!.data);
    second.done(back);
    assert.deepEqual(second.close([]), { keptOnDisk: 0, lost: 0 });
    assert.deepEqual(readdirSync(d).filter((f) => f !== 'dead-letter.jsonl'), [], 'an outbox with nothing pending leaves no log behind');
  });

  it('skips a torn last record (a crash mid-write) and says so', () => {
    const d = dir();
    const first = storage(d);
    first.append(events(2));
    first.close(first.take(2));
    const segment = readdirSync(d).find((f) => f.startsWith('seg-'))!;
    appendFileSync(join(d, segment), '{"seq":3,"event":{"id":"torn');
    const logs = logCapture();
    const reopened = storage(d, 100, 1 << 30, createLogger('info', logs.stream));
    assert.equal(reopened.stats().pending, 2);
    assert.equal(reopened.take(10).length, 2);
    assert.ok(logs.lines().some((l) => l.torn === 1));
    // new events after the restart go to a new segment, never after the torn bytes
    reopened.append(events(1, 2));
    assert.equal(reopened.take(10).length, 1);
  });

  it('holds at most memoryEvents in memory; the rest is read back from disk in order as the window drains', () => {
    const d = dir();
    const box = storage(d, 3);
    const evs = events(20);
    box.append(evs);
    assert.equal(box.stats().pending, 20);
    assert.equal(box.waiting, 20);
    const seen: string[] = [];
    for (;;) {
      const items = box.take(2);
      if (items.length === 0) break;
      seen.push(...items.map((i) => i.event.id));
      box.done(items);
    }
    assert.deepEqual(seen, evs.map((e) => e.id));
    assert.equal(box.stats().pending, 0);
  });

  it('beyond maxBytes: events wait in memory (an ERROR line), beyond memory they are lost and counted', () => {
    const d = dir();
    const logs = logCapture();
    const log = createLogger('info', logs.stream);
    const losses = new LossLog(log);
    const box = OutboxStorage.open({ dir: d, sink: 'test', maxBytes: 2_000, memoryEvents: 3, logger: log, losses });
    box.append(events(20));
    const stats = box.stats();
    const onDisk = stats.pending;
    assert.ok(onDisk > 0 && onDisk < 20, `${onDisk} on disk`);
    assert.ok(stats.bytes <= 2_000 + 100);
    assert.equal(stats.degraded, true);
    assert.equal(stats.memoryOnly, 3);
    assert.equal(losses.total, 20 - onDisk - 3);
    assert.deepEqual(losses.byReason, { outbox_full: 20 - onDisk - 3 });
    assert.equal(logs.lines().filter((l) => l.level === 50 && String(l.msg).startsWith('outbox full')).length, 1);
    assert.equal(logs.lines().filter((l) => l.level === 50 && l.reason === 'outbox_full').length, 1, 'the loss: one ERROR line with its count');
    // order: what is on disk first, then what waited in memory
    const ids: string[] = [];
    for (let items = box.take(100); items.length > 0; items = box.take(100)) {
      ids.push(...items.map((i) => i.event.id));
      box.done(items);
    }
    assert.deepEqual(ids, events(20).slice(0, onDisk + 3).map((e) => e.id));
  });
});

describe('outbox as the sink queue', () => {
  it('an overflow far beyond maxQueue waits on disk while the sink is down, and all of it arrives, once, in order', async (t) => {
    const d = dir();
    const { url, port } = await freeUrl();
    const clock = new JumpClock();
    const sink = createWebhookSink(cloudEventsSinkSpec({ url, maxQueue: 3 }), { logger, outbox: { dir: d }, clock });
    t.after(() => sink.shutdown());
    const evs = events(200);
    sink.enqueue(evs);
    assert.equal(sink.stats.outbox?.pending, 200);
    assert.equal(sink.stats.queued + sink.stats.inFlight, 200);
    assert.equal(sink.stats.lost, 0);
    const receiver = await startReceiver({ port });
    t.after(() => receiver.close());
    // the receiver has the last event before the sink has its answer: wait for both
    await jumpUntil(clock, () => sink.stats.inFlight, () => receiver.received.length >= 200 && sink.stats.inFlight === 0 && sink.stats.queued === 0, 'all 200');
    assert.deepEqual(receiver.received.map((r) => r.event.id), evs.map((e) => e.id));
    assert.equal(sink.stats.outbox?.pending, 0);
    assert.equal(sink.stats.delivered, 200);
  });

  it('a restart re-queues everything the outbox holds (not only maxQueue), first and in order, ids unchanged', async () => {
    const d = dir();
    const { url, port } = await freeUrl();
    const spec = cloudEventsSinkSpec({ url, maxQueue: 3, retry: { initialDelayMs: 10, maxDelayMs: 20 } });
    const down = createWebhookSink(spec, { logger, outbox: { dir: d } });
    down.enqueue(events(40));
    await down.shutdown(100); // the process stops while the sink is down
    assert.deepEqual(down.stats.shutdown, { undelivered: 40, keptOnDisk: 40, lost: 0, outboxDir: outboxDirOf(d, spec.name) });
    const receiver = await startReceiver({ port });
    const up = createWebhookSink(spec, { logger, outbox: { dir: d } });
    up.enqueue(events(2, 40)); // new events after the restart
    await up.forceFlush();
    assert.deepEqual(receiver.received.map((r) => r.event.id), events(42).map((e) => e.id), 'recovered first, in order, then new');
    assert.equal(up.stats.outbox?.pending, 0);
    await up.shutdown();
    await receiver.close();
  });

  it('dead-letters what the sink refuses, and replay re-sends it through the sink with the same ids', async () => {
    const d = dir();
    const refusing = createServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(422).end()); });
    await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
    const spec = cloudEventsSinkSpec({ url: `http://127.0.0.1:${(refusing.address() as AddressInfo).port}/`, name: 'audit' });
    const sink = createWebhookSink(spec, { logger, outbox: { dir: d } });
    const evs = events(3);
    sink.enqueue(evs);
    await sink.forceFlush();
    assert.equal(sink.stats.deadLettered, 3);
    assert.equal(sink.stats.lost, 0, 'kept in the dead-letter file: not lost');
    await sink.shutdown();
    refusing.close();
    const sinkDir = outboxDirOf(d, 'audit');
    const dead = readDeadLetters(sinkDir);
    assert.deepEqual(dead.map((x) => x.event.id), evs.map((e) => e.id));
    assert.equal(dead[0]!.error, 'HTTP 422');
    assert.equal(dead[0]!.sink, 'audit');
    const receiver = await startReceiver();
    const replaySpec = { ...spec, url: receiver.url };
    const since = new Date(Date.parse(String(evs[1]!.time)));
    const result = await replayDeadLetters(
      { name: 'audit', dir: sinkDir, maxQueue: 10, maxBytes: 1 << 30, queue: (s, l) => createDeliveryQueue(replaySpec, s, l, { logger }) },
      { since, logger },
    );
    assert.deepEqual(result, { sink: 'audit', selected: 2, delivered: 2, failed: 0 });
    assert.deepEqual(receiver.received.map((r) => r.event.id), evs.slice(1).map((e) => e.id));
    assert.deepEqual(readDeadLetters(sinkDir).map((x) => x.event.id), [evs[0]!.id], 'delivered entries leave the dead-letter file');
    await receiver.close();
  });
});
