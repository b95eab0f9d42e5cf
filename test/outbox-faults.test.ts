/**
 * The outbox on a disk that fails: it fills up mid-stream, it is read-only at start-up, the
 * sidecar restarts on a full disk. Every event is delivered, kept, or counted and logged as
 * lost; another sink never notices; an unwritable directory at start-up is a configuration
 * error naming outbox.dir (exit 2), or, when the operator asks for it, a degraded start.
 *
 * The disk is a real small tmpfs (mounted as root) filled up or remounted read-only; where
 * mounting is not allowed the same errors are injected at the outbox's file-system seam, and
 * the test says so in its diagnostics.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { request } from 'undici';
import type { CaoEventData } from '../exporters/transform.ts';
import { ConfigError, loadConfig } from '../src/config.ts';
import { startCaoSimulator } from '../src/demo/cao-simulator.ts';
import { createLogger } from '../src/logger.ts';
import { CaoMetrics } from '../src/metrics.ts';
import { startRuntime } from '../src/runtime.ts';
import type { OutboxFs } from '../exporters/delivery/outbox-files.ts';
import { cloudEventsSinkSpec, createWebhookSink } from '../src/sink-factory.ts';
import { createCaoTelemetry } from '../src/core/telemetry.ts';
import { startCli } from './helpers/cli-process.ts';
import { freePort } from './helpers/free-port.ts';
import { JumpClock } from './helpers/jump-clock.ts';
import { logCapture } from './helpers/log-capture.ts';
import { pendingIds } from './helpers/outbox-contents.ts';
import { waitFor } from './helpers/otlp-receiver.ts';
import { faultyFs, smallDisk } from './helpers/small-disk.ts';
import { startSwitchableReceiver } from './helpers/switchable-receiver.ts';
import { scratchDir } from './helpers/scratch-dir.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A disk to break: a real tmpfs when root may mount one, else the fs seam. */
function brokenDisk(t: { diagnostic(m: string): void; after(fn: () => void): void }) {
  const disk = smallDisk(1024 * 1024);
  if (disk) {
    t.diagnostic('real tmpfs (1 MiB), filled up / remounted read-only');
    t.after(() => disk.close());
    return {
      base: disk.dir,
      fs: undefined as OutboxFs | undefined,
      full: () => disk.fill(),
      room: () => disk.free(),
      readOnly: () => disk.readOnly(),
    };
  }
  t.diagnostic('mount not allowed here: ENOSPC / EROFS injected at the outbox file-system seam');
  const seam = faultyFs();
  return {
    base: scratchDir('cao-events-seam-'),
    fs: seam.fs,
    full: () => seam.failWrites('ENOSPC'),
    room: () => seam.failWrites(undefined),
    readOnly: () => seam.failWrites('EROFS'),
  };
}

const messageOf = (e: { data?: unknown }) => (e.data as CaoEventData).message;

function lossLines(lines: Array<Record<string, unknown>>): number {
  return lines
    .filter((l) => l.level === 50 && / cloudevent\(s\) lost/.test(String(l.msg)))
    .reduce((n, l) => n + Number(l.lost), 0);
}

describe('outbox on a failing disk', () => {
  it('the disk fills up mid-stream: events wait in memory, the loss beyond that is logged and counted, another sink is untouched, and the outbox resumes when there is room', async (t) => {
    const disk = brokenDisk(t);
    const down = await startSwitchableReceiver();
    await down.down();
    const other = await startSwitchableReceiver();
    const logs = logCapture();
    const logger = createLogger('info', logs.stream);
    const clock = new JumpClock();
    const metrics = new CaoMetrics({ otlp: false });
    const outboxed = createWebhookSink(cloudEventsSinkSpec({ url: down.url, name: 'outboxed', maxQueue: 20 }), {
      logger, metrics, clock, fs: disk.fs, outbox: { dir: join(disk.base, 'outbox') },
    });
    const memory = createWebhookSink(cloudEventsSinkSpec({ url: other.url, name: 'memory', maxQueue: 1000 }), { logger, metrics });
    const telemetry = createCaoTelemetry({ sinks: [outboxed, memory], otlp: false });
    t.after(async () => {
      await telemetry.shutdown();
      await metrics.shutdown();
      await down.close();
      await other.close();
    });
    let n = 0;
    const emit = (count: number) => {
      for (let k = 0; k < count; k++, n++) {
        telemetry.emit({ type: 'message_sent', sessionName: 'cao-disk', sender: 'a1b2c3d4', receiver: 'e5f6a7b8', orchestrationType: 'send_message', phase: 'dispatched', message: `d-${String(n).padStart(3, '0')}` });
      }
    };
    emit(10);
    assert.equal(outboxed.stats.outbox?.pending, 10);
    disk.full();
    emit(100);
    const s = outboxed.stats;
    const errors = logs.lines().filter((l) => l.level === 50);
    assert.ok(errors.some((l) => String(l.msg).startsWith('outbox write failed') && /ENOSPC/.test(String(l.error))), 'the write failure is an ERROR line naming the error');
    assert.equal(s.outbox?.degraded, true);
    assert.equal(s.outbox?.memoryOnly, 20, 'maxQueue events wait in memory');
    assert.ok(s.lost > 0 && s.lostBy.outbox_write_failed === s.lost);
    assert.equal(s.outbox!.pending + s.outbox!.memoryOnly + s.lost, 110, 'every event is on disk, in memory, or counted as lost');
    assert.equal(lossLines(logs.lines()), 1, 'the first loss is logged at once; the rest is summed, not one line per event');
    // the other sink saw nothing of this
    await waitFor(() => other.received.length === 110, 10_000, 'the memory sink to deliver everything');
    assert.equal(memory.stats.lost, 0);

    disk.room();
    clock.jumpBy(5_000); // the outbox retries the disk every 5 s
    emit(5);
    const s2 = outboxed.stats;
    assert.equal(s2.outbox?.degraded, false, 'writable again');
    assert.ok(logs.lines().some((l) => String(l.msg).startsWith('outbox writable again')));
    assert.ok(s2.outbox!.memoryOnly < s.outbox!.memoryOnly, 'what waited behind the disk went to disk (what is already in the window stays)');
    assert.equal(s2.outbox!.pending + s2.outbox!.memoryOnly + s2.lost, 115, 'still every event accounted for');

    await down.up();
    const kept = 110 - s.lost + 5;
    const deadline = Date.now() + 30_000;
    while (outboxed.stats.delivered < kept) {
      if (Date.now() > deadline) throw new Error(`delivered ${outboxed.stats.delivered} of ${kept}`);
      if (outboxed.stats.inFlight === 0 && clock.pendingTimers > 0) clock.jumpToNextTimer();
      await sleep(2);
    }
    const got = down.received.map(messageOf);
    assert.equal(got.length, kept, 'exactly once');
    assert.deepEqual(got, [...got].sort(), 'in order');
    assert.equal(new Set(got).size, got.length);
    const server = createServer((req, res) => metrics.handle(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const text = await (await request(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`)).body.text();
    server.close();
    assert.match(text, new RegExp(`cao_events_lost_total\\{sink="outboxed",reason="outbox_write_failed"\\} ${s.lost}\\b`));
    assert.match(text, /cao_events_outbox_write_errors_total\{sink="outboxed"\} [1-9]/);
    await telemetry.shutdown();
    assert.equal(lossLines(logs.lines()), s.lost, 'by shutdown every lost event has been in an ERROR line');
  });

  it('a read-only outbox directory at start-up: a configuration error naming outbox.dir; with onStartError: degrade, a start delivering from memory', async (t) => {
    const disk = brokenDisk(t);
    const receiver = await startSwitchableReceiver();
    t.after(() => receiver.close());
    disk.readOnly();
    const flags = { 'callback-url': receiver.url, 'outbox-dir': join(disk.base, 'outbox'), upstream: 'http://127.0.0.1:9/' };
    assert.throws(
      () => startRuntime(loadConfig({ flags }), createLogger('silent'), { metrics: false, delivery: { fs: disk.fs } }),
      (err: Error) => err instanceof ConfigError && /^outbox\.dir: cannot write to .*: EROFS: read-only file system .*outbox\.onStartError: degrade/.test(err.message),
    );
    const logs = logCapture();
    const runtime = startRuntime(
      loadConfig({ flags: { ...flags, 'outbox-on-start-error': 'degrade' } }),
      createLogger('info', logs.stream),
      { metrics: false, delivery: { fs: disk.fs } },
    );
    t.after(() => runtime.close());
    assert.ok(logs.lines().some((l) => l.level === 50 && String(l.msg).includes('starting degraded')));
    runtime.record({ type: 'session_created', sessionName: 'cao-ro' });
    await waitFor(() => receiver.received.length === 1, 10_000, 'the event, delivered from memory');
    assert.equal(runtime.telemetry.sinks[0]!.stats.outbox?.degraded, true);
  });

  it('a restart on a full disk: refused by default (exit 2 material); degraded, the pending events on disk are read back and delivered, new ones from memory', async (t) => {
    const disk = brokenDisk(t);
    const receiver = await startSwitchableReceiver();
    t.after(() => receiver.close());
    await receiver.down();
    const flags = { 'callback-url': receiver.url, 'outbox-dir': join(disk.base, 'outbox'), upstream: 'http://127.0.0.1:9/', 'shutdown-timeout-ms': '100' };
    const first = startRuntime(loadConfig({ flags }), createLogger('silent'), { metrics: false, delivery: { fs: disk.fs } });
    for (let i = 0; i < 10; i++) first.record({ type: 'session_created', sessionName: `cao-full-${i}` });
    await first.close();
    assert.deepEqual(
      { ...first.telemetry.sinks[0]!.stats.shutdown, outboxDir: undefined },
      { undelivered: 10, keptOnDisk: 10, lost: 0, outboxDir: undefined },
    );
    disk.full();
    assert.throws(
      () => startRuntime(loadConfig({ flags }), createLogger('silent'), { metrics: false, delivery: { fs: disk.fs } }),
      (err: Error) => err instanceof ConfigError && /^outbox\.dir: cannot write to .*ENOSPC/.test(err.message),
    );
    const logs = logCapture();
    const second = startRuntime(loadConfig({ flags: { ...flags, 'outbox-on-start-error': 'degrade' } }), createLogger('info', logs.stream), { metrics: false, delivery: { fs: disk.fs } });
    t.after(() => second.close());
    assert.equal(second.telemetry.sinks[0]!.stats.outbox?.pending, 10, 'read back from the full disk');
    second.record({ type: 'session_created', sessionName: 'cao-full-new' });
    await receiver.up();
    await waitFor(() => receiver.received.length === 11, 40_000, 'the 10 recovered and the new event');
    const names = receiver.received.map((e) => (e.data as CaoEventData).session_name);
    assert.deepEqual(names, [...Array.from({ length: 10 }, (_, i) => `cao-full-${i}`), 'cao-full-new'], 'recovered first, in order, then new');
  });
});

describe('the gateway on a full disk (process, real tmpfs)', () => {
  const gateway = (args: string[]) => startCli('gateway', args);

  it('keeps proxying while every loss is logged and counted, stops cleanly, refuses to restart on the full disk with a clear error, and restarts degraded when asked', async (t) => {
    const disk = smallDisk(1024 * 1024);
    if (!disk) {
      t.skip('needs root to mount a tmpfs; the in-process tests above cover the same faults through the fs seam');
      return;
    }
    t.after(() => disk.close());
    const sim = await startCaoSimulator({ workMs: 60_000 });
    t.after(() => sim.close());
    const [port, ingestPort, deadPort] = [await freePort(), await freePort(), await freePort()];
    const outboxDir = join(disk.dir, 'outbox');
    mkdirSync(outboxDir);
    const args = ['--callback-url', `http://127.0.0.1:${deadPort}/hook`, '--upstream', sim.url, '--port', String(port), '--ingest-port', String(ingestPort), '--no-poll', '--outbox-dir', outboxDir, '--max-queue', '2', '--shutdown-timeout-ms', '200'];
    const gw = gateway(args);
    await waitFor(() => gw.stderr().includes('"listen"'), 20_000, 'the gateway to listen');
    const base = `http://127.0.0.1:${port}`;
    const launch = await request(`${base}/sessions?agent_profile=developer&session_name=cao-fulldisk`, { method: 'POST' });
    assert.equal(launch.statusCode, 201);
    const sup = (await launch.body.json()) as { id: string };
    // session_created and terminal_created are on disk (the dead callback URL keeps them there)
    await waitFor(() => pendingIds(outboxDir).length === 2, 10_000, 'two events in the outbox');
    disk.fill();
    for (let i = 0; i < 20; i++) {
      const res = await request(`${base}/terminals/${sup.id}/inbox/messages?sender_id=${sup.id}&message=full-${i}`, { method: 'POST' });
      assert.equal(res.statusCode, 200, 'CAO stays reachable through the gateway');
      await res.body.dump();
    }
    await waitFor(() => gw.lines().some((l) => l.level === 50 && / cloudevent\(s\) lost/.test(String(l.msg))), 10_000, 'a loss line');
    const metricsText = await (await request(`http://127.0.0.1:${ingestPort}/metrics`)).body.text();
    const counted = [...metricsText.matchAll(/^cao_events_lost_total\{sink="[^"]+",reason="outbox_write_failed"\} (\d+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
    assert.ok(counted > 0, 'losses counted in /metrics');
    const health = (await (await request(`http://127.0.0.1:${ingestPort}/healthz`)).body.json()) as { sinks: Array<{ outbox?: { degraded: boolean } }> };
    assert.equal(health.sinks[0]!.outbox?.degraded, true);
    gw.child.kill('SIGTERM');
    const [code] = await once(gw.child, 'exit');
    assert.equal(code, 0);
    const logged = gw.lines().filter((l) => l.level === 50 && / cloudevent\(s\) lost/.test(String(l.msg))).reduce((a, l) => a + Number(l.lost), 0);
    const lostAtShutdown = gw.lines().find((l) => String(l.msg).startsWith('shutdown:') && l.sinks !== undefined);
    assert.ok(lostAtShutdown, 'the shutdown account');
    assert.equal(logged, counted + Number((lostAtShutdown!.lost as number) ?? 0), 'every lost event was in an ERROR line: those /metrics counted, and those lost at shutdown');
    assert.ok(Number(lostAtShutdown!.keptOnDisk) >= 2, 'what was on disk before it filled up stays there');

    disk.fill(); // what the shutdown freed (its lock file) is taken again: the disk is full at the restart
    const refused = gateway(args);
    const [refusedCode] = await Promise.race([
      once(refused.child, 'exit'),
      sleep(20_000).then(() => assert.fail(`the gateway started on a full disk:\n${refused.stderr()}`)),
    ]);
    assert.equal(refusedCode, 2);
    assert.match(refused.stderr(), /^cao-events gateway: configuration error: outbox\.dir: cannot write to .*ENOSPC: no space left on the device/m);
    assert.ok(!/\n\s+at /.test(refused.stderr()), 'a message, not a stack trace');

    const degraded = gateway([...args, '--outbox-on-start-error', 'degrade']);
    await waitFor(() => degraded.stderr().includes('"listen"'), 20_000, 'the degraded gateway to listen');
    const listing = await request(`${base}/sessions`);
    assert.equal(listing.statusCode, 200, 'CAO reachable through the restarted gateway');
    await listing.body.dump();
    degraded.child.kill('SIGTERM');
    await once(degraded.child, 'exit');
  });
});
