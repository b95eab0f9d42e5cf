/**
 * (b) Events per second from emit() to delivered CloudEvents, structured and batch mode, and the
 * resident memory it takes. Run alone: ./node_modules/.bin/node --expose-gc bench/emit-throughput.ts
 *
 * The receiver is the project's own (src/receiver.ts, decodes and validates every event) in a
 * child process. "Delivered" = acknowledged with a 2xx by that receiver, as the sink's onDelivered
 * hook reports it. Emission is flow-controlled (emit while the sink holds fewer than half of
 * maxQueue, else wait for the next acknowledgement), so nothing is dropped and the rate is the
 * sustained delivery rate.
 *
 * Baselines, same run, same receiver process:
 * - raw HTTP: an undici Client (1 connection, one request at a time, like the sink) POSTing
 *   pre-encoded CloudEvents of the same shape and mode;
 * - receiver capacity: the same raw POSTs over 4 connections at once;
 * - memory: the process's rss before the run, after a GC (each mode runs in a fresh process with
 *   --expose-gc, see bench/isolate.ts).
 * Diagnostics to place the limit: the pipeline's CPU cost alone (emit() into a sink that only
 * counts), the encoder alone, and the CPU each side used during the run.
 */
import type { CloudEventV1 } from 'cloudevents';
import { Client, Pool } from 'undici';
import type { CloudEventSink } from '../exporters/cloudevents/span-exporter.ts';
import { type ContentMode, encodeBatch, encodeStructured } from '../exporters/cloudevents/encode.ts';
import { cloudEventsSinkSpec, createWebhookSink } from '../src/sink-factory.ts';
import { emptySinkStats } from '../exporters/sink.ts';
import { validateCaoEvent } from '../src/core/events.ts';
import { FactLedger } from '../src/core/ledger.ts';
import { CaoState } from '../src/core/state.ts';
import { silentLogger } from '../src/logger.ts';
import { type CaoTelemetry, createCaoTelemetry } from '../src/core/telemetry.ts';
import { inChild } from './isolate.ts';
import { type ReceiverProcess, startReceiverProcess } from './receiver-host.ts';
import { type BenchReport, RssSampler, fmt, mb, ratioRow } from './stats.ts';
import { messageEvent, setupEvents } from './workload.ts';

export interface EmitThroughputOptions {
  /** Events per structured-mode round. Default 6 000. */
  structuredEvents?: number;
  /** Events per batch-mode round. Default 45 000 (the fresh run must stay under the ledger's 50 000). */
  batchEvents?: number;
  /** Bound on each measured phase. Default 15 s. */
  maxSeconds?: number;
}

const BATCH = 100;
const MAX_QUEUE = 10_000;
/** Message facts a long-running process holds (the FactLedger's default bound). */
const LEDGER_BOUND = 50_000;

/** A sink that only counts (and keeps the first few events as templates). */
class CountingSink implements CloudEventSink {
  readonly name = 'counting';
  count = 0;
  readonly kept: CloudEventV1<unknown>[] = [];
  readonly stats = emptySinkStats();
  enqueue(events: readonly CloudEventV1<unknown>[]): void {
    this.count += events.length;
    if (this.kept.length < 1000) this.kept.push(...events);
  }
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}

const gc = (): void => (globalThis as { gc?: () => void }).gc?.();
const cpuMs = (since: NodeJS.CpuUsage): number => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};

/**
 * Pipeline cost without HTTP: validate → ledger → span + span event → CloudEvent → enqueue, in
 * chunks of 200 with a turn of the event loop between them (as a host emitting bursts would).
 */
async function pipelineOnly(n: number, prefill: number): Promise<{ rate: number; templates: CloudEventV1<unknown>[] }> {
  const sink = new CountingSink();
  const tel = createCaoTelemetry({ sinks: [sink], otlp: false });
  for (const e of setupEvents()) tel.emit(e);
  fillLedger(tel, prefill);
  for (let i = 0; i < 2000; i++) tel.emit(messageEvent(-i - 1)); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < n; ) {
    for (let k = 0; k < 200 && i < n; k++, i++) tel.emit(messageEvent(i));
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  const ms = performance.now() - t0;
  await tel.shutdown();
  return { rate: n / (ms / 1000), templates: sink.kept };
}

/**
 * Relays `n` distinct messages first, so the fact ledger holds what a process that has already
 * relayed that many holds (it remembers 50 000 occurrences at most).
 */
function fillLedger(tel: CaoTelemetry, n: number): void {
  for (let i = 0; i < n; i++) tel.emit(messageEvent(-1_000_000 - i));
}

export interface StageCosts {
  validate: number;
  ledgerFresh: number;
  /** Mean over 150 000 admits past the bound (the cost cycles with V8's Map rehashing). */
  ledgerFull: number;
  /** The worst 10 000-admit window among those. */
  ledgerFullWorst: number;
  span: number;
  spanAndCloudEvent: number;
  encodeBatch: number;
  encodeStructured: number;
}

/** Microseconds per event of each stage of emit(), measured alone (chunks of 200, event loop turns between). */
async function stageCosts(templates: CloudEventV1<unknown>[]): Promise<StageCosts> {
  const N = 30_000;
  const events = Array.from({ length: N }, (_, i) => messageEvent(i));
  const time = async (fn: (i: number) => void): Promise<number> => {
    for (let i = 0; i < 3000; i++) fn(i);
    const t0 = performance.now();
    for (let i = 0; i < N; ) {
      for (let k = 0; k < 200; k++, i++) fn(i);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return ((performance.now() - t0) * 1000) / N;
  };
  const validate = await time((i) => validateCaoEvent(events[i % N]));
  const valid = events.map((e) => validateCaoEvent(e));
  const fresh = new FactLedger({ state: new CaoState() });
  const ledgerFresh = await time((i) => fresh.admit(valid[i % N]!));
  const full = new FactLedger({ state: new CaoState() });
  for (let i = 0; i < LEDGER_BOUND; i++) full.admit(validateCaoEvent(messageEvent(-1_000_000 - i)));
  const windows: number[] = [];
  for (let w = 0; w < 15; w++) {
    const t0 = performance.now();
    for (let i = w * 10_000; i < (w + 1) * 10_000; ) {
      for (let k = 0; k < 200; k++, i++) full.admit(valid[i % N]!);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    windows.push(((performance.now() - t0) * 1000) / 10_000);
  }
  const ledgerFull = windows.reduce((a, b) => a + b, 0) / windows.length;
  const ledgerFullWorst = Math.max(...windows);
  const spanOnly = createCaoTelemetry({ otlp: false, dedupe: false });
  for (const e of setupEvents()) spanOnly.emit(e);
  const span = await time((i) => spanOnly.emit(events[i % N]!));
  await spanOnly.shutdown();
  const counting = createCaoTelemetry({ sinks: [new CountingSink()], otlp: false, dedupe: false });
  for (const e of setupEvents()) counting.emit(e);
  const spanAndCloudEvent = await time((i) => counting.emit(events[i % N]!));
  await counting.shutdown();
  return {
    validate, ledgerFresh, ledgerFull, ledgerFullWorst, span, spanAndCloudEvent,
    encodeBatch: 1e6 / encodeOnly(templates, 'batch', 30_000),
    encodeStructured: 1e6 / encodeOnly(templates, 'structured', 30_000),
  };
}

function encodeOnly(templates: CloudEventV1<unknown>[], mode: ContentMode, n: number): number {
  const t0 = performance.now();
  let done = 0;
  while (done < n) {
    if (mode === 'batch') {
      for (let i = 0; i + BATCH <= templates.length && done < n; i += BATCH, done += BATCH) encodeBatch(templates.slice(i, i + BATCH));
    } else {
      for (let i = 0; i < templates.length && done < n; i++, done++) encodeStructured(templates[i]!);
    }
  }
  return n / ((performance.now() - t0) / 1000);
}

interface Rate {
  events: number;
  seconds: number;
  rate: number;
  senderCpu: number;
  receiverCpu: number;
}

/** Raw HTTP: pre-encoded bodies POSTed over `connections` connections, one request each at a time. */
async function rawPosts(
  receiver: ReceiverProcess,
  templates: CloudEventV1<unknown>[],
  mode: ContentMode,
  events: number,
  connections: number,
  maxSeconds: number,
): Promise<Rate> {
  const bodies =
    mode === 'batch'
      ? Array.from({ length: Math.floor(templates.length / BATCH) }, (_, i) => ({
          ...encodeBatch(templates.slice(i * BATCH, (i + 1) * BATCH)),
          count: BATCH,
        }))
      : templates.map((e) => ({ ...encodeStructured(e), count: 1 }));
  const url = new URL(receiver.url);
  const client = connections === 1 ? new Client(url.origin, { pipelining: 1 }) : new Pool(url.origin, { connections, pipelining: 1 });
  let sent = 0;
  let acked = 0;
  let next = 0;
  const post = async (): Promise<void> => {
    const b = bodies[next++ % bodies.length]!;
    sent += b.count;
    const res = await client.request({ path: url.pathname, method: 'POST', headers: b.headers, body: b.body });
    await res.body.dump();
    if (res.statusCode >= 200 && res.statusCode < 300) acked += b.count;
  };
  for (let i = 0; i < 200; i++) await post(); // warm-up, connection open
  await receiver.reset();
  sent = 0;
  acked = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + maxSeconds * 1000;
  const loop = async (): Promise<void> => {
    while (sent < events && performance.now() < deadline) await post();
  };
  await Promise.all(Array.from({ length: connections }, loop));
  const ms = performance.now() - t0;
  const senderCpu = cpuMs(cpu0);
  const r = await receiver.stats();
  await client.close();
  return { events: acked, seconds: ms / 1000, rate: acked / (ms / 1000), senderCpu: senderCpu / ms, receiverCpu: r.cpuMs / ms };
}

interface PipelineRun extends Rate {
  emitted: number;
  delivered: number;
  dropped: number;
  requests: number;
  rssStart: number;
  rssPeak: number;
  heapUsedPeak: number;
  heapTotalPeak: number;
  timedOut: boolean;
  /** Message facts already in the fact ledger when the run started. */
  prefill: number;
  /** Every round's rate (when this is the median of several). */
  rates?: number[];
  /** What the receiver itself counted: events decoded, requests refused as invalid. */
  received: number;
  invalid: number;
}

/** emit() → webhook sink → receiver, flow-controlled, until everything emitted is acknowledged. */
async function pipeline(
  receiver: ReceiverProcess,
  mode: ContentMode,
  events: number,
  maxSeconds: number,
  prefill: number,
): Promise<PipelineRun> {
  let delivered = 0;
  let requests = 0;
  let lastAck = 0;
  let onAllDelivered: () => void = () => {};
  let target = Number.POSITIVE_INFINITY;
  let wake: () => void = () => {};
  const sink = createWebhookSink(cloudEventsSinkSpec({ url: receiver.url, mode, maxQueue: MAX_QUEUE }), {
    logger: silentLogger,
    onDelivered: (_sink, evs) => {
      delivered += evs.length;
      requests++;
      lastAck = performance.now();
      wake();
      if (delivered >= target) onAllDelivered();
    },
  });
  const tel = createCaoTelemetry({ sinks: [sink], otlp: false });
  for (const e of setupEvents()) tel.emit(e);
  fillLedger(tel, prefill);
  for (let i = 0; i < 2000; i++) tel.emit(messageEvent(-i - 1)); // warm-up: JIT, connection open
  await tel.forceFlush();
  await receiver.reset();
  gc();
  const rss = new RssSampler(10);
  delivered = 0;
  requests = 0;
  const done = new Promise<void>((resolve) => (onAllDelivered = resolve));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + maxSeconds * 1000;
  let emitted = 0;
  let i = 0;
  while (i < events && performance.now() < deadline) {
    if (sink.stats.queued < MAX_QUEUE / 2) {
      for (let k = 0; k < 200 && i < events; k++, i++) if (tel.emit(messageEvent(i))) emitted++;
      rss.sample();
      await new Promise<void>((resolve) => setImmediate(resolve)); // let the sink's I/O run
    } else {
      // Queue at the high-water mark: sleep until the sink acknowledges something (no busy wait,
      // so the CPU figures are the pipeline's own).
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 100).unref();
      });
      wake = () => {};
    }
  }
  target = emitted;
  if (delivered < target) {
    await Promise.race([done, new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - performance.now())).unref())]);
  }
  const end = delivered >= target ? lastAck : performance.now();
  const ms = end - t0;
  const senderCpu = cpuMs(cpu0);
  const rssPeak = rss.stop();
  const r = await receiver.stats();
  const stats = sink.stats;
  await tel.shutdown();
  return {
    events: delivered,
    seconds: ms / 1000,
    rate: delivered / (ms / 1000),
    senderCpu: senderCpu / ms,
    receiverCpu: r.cpuMs / ms,
    emitted,
    delivered,
    dropped: stats.dropped,
    requests,
    rssStart: rss.start,
    rssPeak,
    heapUsedPeak: rss.peakHeapUsed,
    heapTotalPeak: rss.peakHeapTotal,
    timedOut: delivered < target,
    prefill,
    received: r.events,
    invalid: r.invalid,
  };
}

/**
 * The run with the median rate, carrying every round's rate and the memory figures of the first
 * round (the only one that starts on a clean heap).
 */
function median(runs: PipelineRun[]): PipelineRun {
  const sorted = [...runs].sort((a, b) => a.rate - b.rate);
  const first = runs[0]!;
  return {
    ...sorted[Math.floor(sorted.length / 2)]!,
    rates: runs.map((r) => r.rate),
    rssStart: first.rssStart,
    rssPeak: first.rssPeak,
    heapUsedPeak: first.heapUsedPeak,
    heapTotalPeak: first.heapTotalPeak,
  };
}

export interface ModeResult {
  mode: ContentMode;
  fresh: PipelineRun;
  longRunning: PipelineRun;
  raw: Rate;
  raw4: Rate;
  encode: number;
  pipelineOnlyFresh: number;
  stages: StageCosts;
}


/**
 * Every measurement of one content mode, in one process (run it in a fresh one: the first run's
 * memory figures assume a clean heap) with its own receiver process. Keep `events` under the
 * ledger bound minus the warm-up so that the fresh run stays fresh.
 */
export async function measureMode(mode: ContentMode, events: number, maxSeconds: number, rounds = 3): Promise<ModeResult> {
  const receiver = await startReceiverProcess({ kind: 'receiver' });
  try {
    const freshRuns: PipelineRun[] = [];
    const longRuns: PipelineRun[] = [];
    for (let r = 0; r < rounds; r++) {
      freshRuns.push(await pipeline(receiver, mode, events, maxSeconds, 0));
      // Each round at a different point of the ledger's eviction cycle (its cost varies along it).
      longRuns.push(await pipeline(receiver, mode, events, maxSeconds, LEDGER_BOUND + r * 45_000));
    }
    const fresh = median(freshRuns);
    const longRunning = median(longRuns);
    const cpuFresh = await pipelineOnly(20_000, 0);
    const templates = cpuFresh.templates.filter((e) => e.type.endsWith('message_sent')).slice(0, 1000);
    const encode = encodeOnly(templates, mode, 20_000);
    const raw = await rawPosts(receiver, templates, mode, events, 1, maxSeconds);
    const raw4 = await rawPosts(receiver, templates, mode, events, 4, maxSeconds);
    return {
      mode, fresh, longRunning, raw, raw4, encode,
      pipelineOnlyFresh: cpuFresh.rate,
      stages: await stageCosts(templates),
    };
  } finally {
    await receiver.stop();
  }
}

const pct = (x: number): string => `${fmt(x * 100, 0)} %`;

function table(x: ModeResult): string {
  const f = x.fresh;
  const l = x.longRunning;
  const note = (r: PipelineRun): string =>
    `${r.emitted} emitted, ${r.delivered} delivered in ${r.requests} requests (the receiver decoded ${r.received}, ` +
    `refused ${r.invalid} as invalid), ${r.dropped} dropped` +
    `${r.timedOut ? ', stopped by the time bound' : ''}; rounds: ${(r.rates ?? [r.rate]).map((x) => fmt(x, 0)).join(', ')} events/s`;
  return [
    `**${x.mode} mode** (median of ${(f.rates ?? [0]).length} rounds) — fresh process: ${note(f)}. Long-running: ${note(l)}.`,
    '',
    '| measure | baseline | cao-events | ratio |',
    '|---|---:|---:|---:|',
    ratioRow('delivered events/s, fresh process (baseline: raw undici POSTs of pre-encoded events, 1 connection)', x.raw.rate, f.rate, 0),
    ratioRow(`delivered events/s, long-running process (fact ledger at its ${LEDGER_BOUND}-fact bound)`, x.raw.rate, l.rate, 0),
    ratioRow('resident memory, MB (baseline: rss before the run, after GC; measured: peak rss during it)', f.rssStart / 2 ** 20, f.rssPeak / 2 ** 20, 1),
    '',
    '| diagnostic | events/s | sender CPU | receiver CPU |',
    '|---|---:|---:|---:|',
    `| cao-events, fresh process: emit() → webhook sink → receiver | ${fmt(f.rate, 0)} | ${pct(f.senderCpu)} | ${pct(f.receiverCpu)} |`,
    `| cao-events, long-running process | ${fmt(l.rate, 0)} | ${pct(l.senderCpu)} | ${pct(l.receiverCpu)} |`,
    `| raw POSTs, 1 connection (the baseline) | ${fmt(x.raw.rate, 0)} | ${pct(x.raw.senderCpu)} | ${pct(x.raw.receiverCpu)} |`,
    `| raw POSTs, 4 connections (receiver capacity) | ${fmt(x.raw4.rate, 0)} | ${pct(x.raw4.senderCpu)} | ${pct(x.raw4.receiverCpu)} |`,
    `| emit() into a counting sink, fresh ledger (pipeline CPU alone, no HTTP) | ${fmt(x.pipelineOnlyFresh, 0)} | 100 % | – |`,
    `| encoder alone | ${fmt(x.encode, 0)} | 100 % | – |`,
  ].join('\n');
}

function stageTable(c: StageCosts, run: PipelineRun): string {
  const total = 1e6 / run.rate;
  const r = (what: string, us: number): string => `| ${what} | ${fmt(us, 2)} |`;
  return [
    'Where a batch-mode event\'s time goes in the emitting process (each stage measured alone, µs per event):',
    '',
    '| stage | µs/event |',
    '|---|---:|',
    r('validateCaoEvent', c.validate),
    r('fact ledger admit (sha1 of the message + bounded map), fresh ledger', c.ledgerFresh),
    r(`fact ledger admit, ledger at its ${LEDGER_BOUND}-fact bound: mean over the next 150 000 admits`, c.ledgerFull),
    r('… the worst 10 000-admit window of those', c.ledgerFullWorst),
    r('emit() with no sink and no ledger: validate, redact, span + span event (OTel SDK)', c.span),
    r('emit() into a counting sink, no ledger: the above + span event → CloudEvent (cloudevents validation)', c.spanAndCloudEvent),
    r('batch encoding (JSON), per event', c.encodeBatch),
    r(`wall time per delivered event, batch mode, fresh process (1 / ${fmt(run.rate, 0)} events/s)`, total),
  ].join('\n');
}

/** Which side limited a pipeline run, from the CPU each side used. */
function limitNote(r: PipelineRun): string {
  if (r.senderCpu > 0.8 && r.receiverCpu < 0.5) {
    return `the emitting process is the limit (${pct(r.senderCpu)} of a core; emit() and the sink's HTTP share its one ` +
      `thread), not the receiver (${pct(r.receiverCpu)}) nor the one request in flight (raw HTTP over one connection does far more)`;
  }
  if (r.receiverCpu > 0.85) return `the receiver was CPU-bound (${pct(r.receiverCpu)} of a core)`;
  return `neither side CPU-bound (sender ${pct(r.senderCpu)}, receiver ${pct(r.receiverCpu)}): latency-bound by the one request in flight`;
}

export async function runEmitThroughput(opts: EmitThroughputOptions = {}): Promise<BenchReport> {
  const maxSeconds = opts.maxSeconds ?? 15;
  const s = await inChild<ModeResult>(import.meta.url, 'measureMode', ['structured', opts.structuredEvents ?? 6_000, maxSeconds], 120_000);
  const b = await inChild<ModeResult>(import.meta.url, 'measureMode', ['batch', opts.batchEvents ?? 45_000, maxSeconds], 120_000);
  const goal = 20_000;
  const batchGoal = (r: PipelineRun, label: string): BenchReport['goals'][number] => ({
    goal: `≥ ${goal} events/s delivered in batch mode, ${label}`,
    met: r.rate >= goal && !r.timedOut,
    why: `${fmt(r.rate, 0)} events/s (${fmt(r.rate / b.raw.rate, 2)}× raw HTTP over one connection); ${limitNote(r)}`,
  });
  return {
    title: '(b) emit() → delivered CloudEvents: events per second and memory',
    method:
      'One process emits (`createCaoTelemetry` with a webhook sink whose `onDelivered` hook counts acknowledged events; ' +
      'a session, two terminals, then `message_sent` events with distinct ~100-character messages). The receiver is ' +
      '`src/receiver.ts` (decodes and validates every event) in a child process. Emission is flow-controlled ' +
      `(emit chunks of 200 while the sink's queue is under ${MAX_QUEUE / 2}, else wait for the next acknowledgement) so nothing is dropped; the rate is events ` +
      `acknowledged / (last acknowledgement − first emit). Batch mode sends up to ${BATCH} events per request. ` +
      '"Fresh process": the fact ledger starts empty; "long-running process": the ledger has already seen ' +
      `${LEDGER_BOUND}, ${LEDGER_BOUND + 45_000} and ${LEDGER_BOUND + 90_000} messages (one round each) and holds the ` +
      `${LEDGER_BOUND} it keeps at most, as in any process that has relayed that many. ` +
      'Baseline: an undici Client POSTing pre-encoded CloudEvents of the same shape and mode to the same receiver, ' +
      'one request at a time (the sink also keeps one request in flight). Memory: peak `process.memoryUsage().rss` ' +
      '(sampled every 10 ms and at every emitted chunk) vs the rss just before the run, after a GC; each mode runs in ' +
      'its own fresh process. CPU columns: CPU time / wall time of each process during the run (100 % = one core).',
    body: [
      table(s),
      '',
      table(b),
      '',
      `Peak rss − start rss: structured ${mb(s.fresh.rssPeak - s.fresh.rssStart)} MB, batch ${mb(b.fresh.rssPeak - b.fresh.rssStart)} MB ` +
        `(peak V8 heap in use: structured ${mb(s.fresh.heapUsedPeak)} MB, batch ${mb(b.fresh.heapUsedPeak)} MB; ` +
        `peak V8 heap reserved: structured ${mb(s.fresh.heapTotalPeak)} MB, batch ${mb(b.fresh.heapTotalPeak)} MB).`,
      '',
      stageTable(b.stages, b.fresh),
    ].join('\n'),
    goals: [batchGoal(b.fresh, 'fresh process'), batchGoal(b.longRunning, 'long-running process (ledger full)')],
    data: { structured: s, batch: b },
  };
}

if (import.meta.main) {
  const mode = process.argv.indexOf('--mode');
  if (mode > 0) {
    // one mode in this process (for profiling: node --cpu-prof bench/emit-throughput.ts --mode batch)
    const r = await measureMode(process.argv[mode + 1] as ContentMode, Number(process.argv[mode + 2] ?? 45_000), 15);
    console.log(table(r));
  } else {
    const r = await runEmitThroughput();
    console.log(`## ${r.title}\n\n${r.body}\n`);
    for (const g of r.goals) console.log(`- ${g.goal}: ${g.met ? 'met' : 'not met'} — ${g.why}`);
  }
}
