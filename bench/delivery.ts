/**
 * Bench (g): delivery with the durable outbox on vs off.
 *
 * 1. Throughput: emit() → webhook sink → a receiver in its own process, until every event is
 *    acknowledged; the same run with the outbox off (memory queue, the baseline) and on, in
 *    fresh processes, alternating, best of 2, structured and batch mode.
 * 2. Recovery after a 5-minute outage with 100,000 events queued: the receiver is down (nothing
 *    listens on its port: connections refused) while 100k events are emitted; the sink keeps
 *    probing; after 5 minutes the receiver comes up on that port. Recovery = the wait for the
 *    sink's next probe + the time to deliver all 100k. Outbox on (maxQueue 10,000 in memory,
 *    the rest on disk) vs the baseline: a memory queue big enough to hold them all (maxQueue
 *    100,000; with the default 10,000 a memory queue loses 90,000 of them).
 *
 *    Time is compressed for the outage only: the sink's retry clock (exporters/delivery/clock.ts)
 *    is a jump clock that moves from one back-off timer to the next, so 5 minutes of the sink's
 *    time pass in a few seconds of wall time, with every probe really sent (and refused). The
 *    wait for the next probe after the receiver's return is reported in the sink's time (it is
 *    not waited for); the drain that follows is real time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContentMode } from '../exporters/cloudevents/encode.ts';
import { silentLogger } from '../src/logger.ts';
import { cloudEventsSinkSpec, createWebhookSink } from '../src/sink-factory.ts';
import { createCaoTelemetry } from '../src/core/telemetry.ts';
import { JumpClock } from '../test/helpers/jump-clock.ts';
import { freePort } from '../test/helpers/free-port.ts';
import { inChild } from './isolate.ts';
import { startReceiverProcess } from './receiver-host.ts';
import { type BenchReport, fmt, mb, ratioRow, sleep } from './stats.ts';
import { messageEvent, setupEvents } from './workload.ts';

type Storage = 'memory' | 'outbox';

interface ThroughputRun {
  rate: number;
  delivered: number;
  lost: number;
  seconds: number;
}

interface RecoveryRun {
  queued: number;
  outageSinkMs: number;
  outageWallMs: number;
  probes: number;
  probeWaitSinkMs: number;
  drainMs: number;
  delivered: number;
  received: number;
  lost: number;
  rssAfterQueueing: number;
  heapAfterQueueing: number;
  outboxBytes: number;
}

const THROUGHPUT_N: Record<ContentMode, number> = { structured: 20_000, binary: 20_000, batch: 60_000 };
const OUTAGE_EVENTS = 100_000;
const OUTAGE_MS = 5 * 60_000;

async function drained(done: () => boolean, boundMs: number, what: string): Promise<void> {
  const deadline = performance.now() + boundMs;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(5);
  }
}

/** One throughput run in this (fresh) process. */
export async function throughputRun(storage: Storage, mode: ContentMode): Promise<ThroughputRun> {
  const n = THROUGHPUT_N[mode];
  const receiver = await startReceiverProcess({ kind: 'receiver' });
  const dir = mkdtempSync(join(tmpdir(), 'cao-events-bench-'));
  try {
    const maxQueue = 10_000;
    const sink = createWebhookSink(cloudEventsSinkSpec({ url: receiver.url, mode, maxQueue }), {
      logger: silentLogger,
      ...(storage === 'outbox' ? { outbox: { dir } } : {}),
    });
    const tel = createCaoTelemetry({ sinks: [sink], otlp: false });
    for (const e of setupEvents()) tel.emit(e);
    for (let i = 0; i < 1_000; i++) tel.emit(messageEvent(-i - 1)); // warm-up
    await tel.forceFlush();
    const base = sink.stats.delivered;
    const t0 = performance.now();
    for (let i = 0; i < n; ) {
      // flow control, the same for both storages: keep the memory queue from overflowing
      while (sink.stats.queued > maxQueue / 2) await new Promise<void>((r) => setImmediate(r));
      for (let k = 0; k < 500 && i < n; k++, i++) tel.emit(messageEvent(i));
      await new Promise<void>((r) => setImmediate(r));
    }
    await drained(() => sink.stats.delivered - base >= n, 120_000, 'all delivered');
    const seconds = (performance.now() - t0) / 1000;
    const stats = sink.stats;
    await tel.shutdown();
    return { rate: n / seconds, delivered: stats.delivered - base, lost: stats.lost, seconds };
  } finally {
    await receiver.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One outage-and-recovery run in this (fresh) process. */
export async function recoveryRun(storage: Storage): Promise<RecoveryRun> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'cao-events-bench-'));
  const clock = new JumpClock();
  let probes = 0;
  const sink = createWebhookSink(
    cloudEventsSinkSpec({ url: `http://127.0.0.1:${port}/`, maxQueue: storage === 'outbox' ? 10_000 : OUTAGE_EVENTS }),
    { logger: silentLogger, clock, ...(storage === 'outbox' ? { outbox: { dir } } : {}) },
  );
  const tel = createCaoTelemetry({ sinks: [sink], otlp: false, dedupe: false });
  try {
    const wall0 = performance.now();
    const start = clock.now();
    // The receiver is down: the stream of 100k events queues up while the sink probes.
    for (let i = 0; i < OUTAGE_EVENTS; ) {
      for (let k = 0; k < 1_000 && i < OUTAGE_EVENTS; k++, i++) tel.emit(messageEvent(i));
      await new Promise<void>((r) => setImmediate(r));
      if (sink.stats.inFlight === 0 && (clock.nextDueIn() ?? Infinity) <= 0) clock.jumpToNextTimer();
    }
    (globalThis as { gc?: () => void }).gc?.();
    const rssAfterQueueing = process.memoryUsage.rss();
    const heapAfterQueueing = process.memoryUsage().heapUsed;
    const outboxBytes = sink.stats.outbox?.bytes ?? 0;
    // The rest of the 5 minutes, jumping from probe to probe.
    while (clock.now() - start < OUTAGE_MS) {
      if (sink.stats.inFlight > 0) {
        await sleep(1);
        continue;
      }
      const left = OUTAGE_MS - (clock.now() - start);
      const next = clock.nextDueIn();
      if (next !== undefined && next <= left) {
        clock.jumpToNextTimer();
        probes += 1;
      } else clock.jumpBy(left);
      await sleep(1);
    }
    // The last probe has been refused and the sink waits for the next one.
    await drained(() => sink.stats.inFlight === 0 && clock.pendingTimers > 0, 30_000, 'the sink to wait for its next probe');
    const outageWallMs = performance.now() - wall0;
    const outageSinkMs = clock.now() - start;
    const queued = sink.stats.queued + sink.stats.inFlight;
    // The receiver comes back where the sink sends.
    const retriedAtReturn = sink.stats.retried;
    const receiver = await startReceiverProcess({ kind: 'slow', delayMs: 0, port });
    try {
      const probeWaitSinkMs = clock.nextDueIn() ?? 0;
      const t0 = performance.now();
      clock.jumpToNextTimer();
      await drained(() => sink.stats.delivered >= OUTAGE_EVENTS, 240_000, 'all 100k delivered');
      const drainMs = performance.now() - t0;
      if (sink.stats.retried > retriedAtReturn) throw new Error('a request failed during the drain: the drain time would include a back-off');
      const received = (await receiver.stats()).events;
      const stats = sink.stats;
      return {
        queued,
        outageSinkMs,
        outageWallMs,
        probes,
        probeWaitSinkMs,
        drainMs,
        delivered: stats.delivered,
        received,
        lost: stats.lost,
        rssAfterQueueing,
        heapAfterQueueing,
        outboxBytes,
      };
    } finally {
      await tel.shutdown();
      await receiver.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const THIS = new URL(import.meta.url);

export async function runDelivery(): Promise<BenchReport> {
  const modes: ContentMode[] = ['structured', 'batch'];
  const best: Record<string, ThroughputRun> = {};
  for (const mode of modes) {
    for (let round = 0; round < 2; round++) {
      for (const storage of ['memory', 'outbox'] as const) {
        const r = await inChild<ThroughputRun>(THIS, 'throughputRun', [storage, mode], 150_000);
        const key = `${mode}/${storage}`;
        if (!best[key] || r.rate > best[key]!.rate) best[key] = r;
      }
    }
  }
  const recovery: Record<Storage, RecoveryRun> = {
    memory: await inChild<RecoveryRun>(THIS, 'recoveryRun', ['memory'], 300_000),
    outbox: await inChild<RecoveryRun>(THIS, 'recoveryRun', ['outbox'], 300_000),
  };
  const t = (mode: string, s: Storage) => best[`${mode}/${s}`]!;
  const recoverySec = (r: RecoveryRun) => (r.probeWaitSinkMs + r.drainMs) / 1000;
  const body = [
    '**Throughput, emit() → sink → receiver process (events/s, best of 2)**',
    '',
    '| mode | outbox off (baseline) | outbox on | on/off |',
    '|---|---:|---:|---:|',
    ...modes.map((m) => ratioRow(`${m} (${THROUGHPUT_N[m]} events)`, t(m, 'memory').rate, t(m, 'outbox').rate, 0)),
    '',
    `Lost in these runs: ${modes.map((m) => `${m} off ${t(m, 'memory').lost}, on ${t(m, 'outbox').lost}`).join('; ')}.`,
    '',
    `**Recovery after a 5-minute outage with ${OUTAGE_EVENTS.toLocaleString('en')} events queued (structured mode)**`,
    '',
    '| measure | memory queue, maxQueue 100,000 (baseline) | outbox, maxQueue 10,000 | outbox/baseline |',
    '|---|---:|---:|---:|',
    ratioRow('events waiting when the receiver came back', recovery.memory.queued, recovery.outbox.queued, 0),
    ratioRow('wait for the next probe after the return, s (sink time)', recovery.memory.probeWaitSinkMs / 1000, recovery.outbox.probeWaitSinkMs / 1000, 1),
    ratioRow('drain: probe to last event acknowledged, s (real time)', recovery.memory.drainMs / 1000, recovery.outbox.drainMs / 1000, 1),
    ratioRow('recovery = probe wait + drain, s', recoverySec(recovery.memory), recoverySec(recovery.outbox), 1),
    ratioRow('drain rate, events/s', OUTAGE_EVENTS / (recovery.memory.drainMs / 1000), OUTAGE_EVENTS / (recovery.outbox.drainMs / 1000), 0),
    ratioRow('delivered (receiver count)', recovery.memory.received, recovery.outbox.received, 0),
    ratioRow('lost', recovery.memory.lost, recovery.outbox.lost, 0),
    ratioRow('JS heap in use with 100k queued (after GC), MB', Number(mb(recovery.memory.heapAfterQueueing)), Number(mb(recovery.outbox.heapAfterQueueing)), 1),
    ratioRow('resident memory with 100k queued, MB', Number(mb(recovery.memory.rssAfterQueueing)), Number(mb(recovery.outbox.rssAfterQueueing)), 1),
    ratioRow('outbox on disk with 100k queued, MB', 0, Number(mb(recovery.outbox.outboxBytes)), 1),
    '',
    `Outage: ${fmt(recovery.outbox.outageSinkMs / 60_000, 1)} min of sink time in ${fmt(recovery.outbox.outageWallMs / 1000, 1)} s of wall time (outbox run; ` +
      `${recovery.outbox.probes} probes sent and refused, the back-off capped at 30 s).`,
  ].join('\n');
  const structuredRatio = t('structured', 'outbox').rate / t('structured', 'memory').rate;
  const goals = [
    {
      goal: 'outbox on keeps ≥ 50 % of the outbox-off throughput (structured, the default mode)',
      met: structuredRatio >= 0.5,
      why: `${fmt(t('structured', 'outbox').rate, 0)} vs ${fmt(t('structured', 'memory').rate, 0)} events/s (${fmt(structuredRatio, 2)})`,
    },
    {
      goal: 'after a 5-minute outage with 100k queued, the outbox delivers all of them, none lost, draining within 1.5× the memory queue\'s time',
      met: recovery.outbox.received >= OUTAGE_EVENTS && recovery.outbox.lost === 0 && recovery.outbox.drainMs <= 1.5 * recovery.memory.drainMs,
      why: `${recovery.outbox.received} delivered, ${recovery.outbox.lost} lost; drain ${fmt(recovery.outbox.drainMs / 1000, 1)} s vs ${fmt(recovery.memory.drainMs / 1000, 1)} s; ` +
        `recovery ${fmt(recoverySec(recovery.outbox), 1)} s including the wait for the next probe (${fmt(recovery.outbox.probeWaitSinkMs / 1000, 1)} s, at most maxDelayMs = 30 s)`,
    },
  ];
  return {
    title: '(g) Delivery: the durable outbox on vs off, and recovery after a 5-minute outage',
    method:
      'bench/delivery.ts. Throughput: one process emits (`createCaoTelemetry` → webhook sink, default retry policy) as fast as ' +
      'a flow control keeping the memory queue under half of maxQueue allows (the same for both), until the receiver (the ' +
      'project\'s CloudEvents receiver in its own process) has acknowledged every event; outbox off (memory queue, the ' +
      'baseline) and on, each run in a fresh process, alternating, best of 2. Recovery: the receiver is down (its port ' +
      'refuses connections) while 100,000 events are emitted and for 5 minutes of the sink\'s time; then, while the sink ' +
      'waits for its next probe, a receiver (a cheap counting one, own process) listens on that port. **Time is compressed for the outage only**: the sink\'s retry ' +
      'clock is a jump clock that moves from one back-off timer to the next (every probe is really sent and refused); the ' +
      'wait for the next probe after the return is reported in the sink\'s time, not waited; the drain after it is real time.',
    body,
    goals,
    data: { throughput: best, recovery },
  };
}
