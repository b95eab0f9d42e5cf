/**
 * (c) Event-to-webhook latency on a healthy sink: the time from emit() to the moment the receiver
 * has decoded the event, at a modest steady rate. Run alone: ./node_modules/.bin/node bench/webhook-latency.ts
 *
 * One clock: each event's message is `hr:<process.hrtime.bigint()>` taken just before emit();
 * the receiver (src/receiver.ts in a child process, so it shares no event loop with the sender)
 * subtracts it from its own process.hrtime.bigint() when it decodes the event. hrtime is
 * CLOCK_MONOTONIC, the same clock in every process of the machine.
 *
 * Baseline, same run, same receiver: an undici Client (one keep-alive connection) POSTing the
 * same CloudEvent (structured mode), built and serialised at send time with its own timestamp,
 * at the same rate.
 */
import type { CloudEventV1 } from 'cloudevents';
import { Client } from 'undici';
import type { CloudEventSink } from '../exporters/cloudevents/span-exporter.ts';
import { type ContentMode, encodeStructured } from '../exporters/cloudevents/encode.ts';
import { cloudEventsSinkSpec, createWebhookSink } from '../src/sink-factory.ts';
import { emptySinkStats } from '../exporters/sink.ts';
import { silentLogger } from '../src/logger.ts';
import { createCaoTelemetry } from '../src/core/telemetry.ts';
import { type ReceiverProcess, startReceiverProcess } from './receiver-host.ts';
import { type BenchReport, type Distribution, distribution, fmt, ratioRow, sleep } from './stats.ts';
import { messageEvent, setupEvents } from './workload.ts';

export interface WebhookLatencyOptions {
  /** Events per second. Default 200. */
  rate?: number;
  /** Seconds per measurement. Default 5. */
  seconds?: number;
}

const stamp = (): string => `hr:${process.hrtime.bigint()}`;

/** Calls `send(i)` at `rate` per second for `seconds`, on schedule (no catch-up bursts beyond 1 tick). */
async function paced(rate: number, seconds: number, send: (i: number) => void): Promise<number> {
  const n = Math.round(rate * seconds);
  const interval = 1000 / rate;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const wait = t0 + i * interval - performance.now();
    if (wait > 1) await sleep(wait);
    send(i);
  }
  return n;
}

async function settle(receiver: ReceiverProcess, expected: number, boundMs: number): Promise<number[]> {
  const end = performance.now() + boundMs;
  for (;;) {
    const s = await receiver.stats();
    if (s.latenciesMs.length >= expected || performance.now() > end) return s.latenciesMs;
    await sleep(50);
  }
}

async function viaPipeline(receiver: ReceiverProcess, mode: ContentMode, rate: number, seconds: number): Promise<{ d: Distribution; sent: number }> {
  const sink = createWebhookSink(cloudEventsSinkSpec({ url: receiver.url, mode }), { logger: silentLogger });
  const tel = createCaoTelemetry({ sinks: [sink], otlp: false });
  for (const e of setupEvents()) tel.emit(e);
  for (let i = 0; i < 500; i++) tel.emit(messageEvent(-i - 1)); // warm-up
  await tel.forceFlush();
  await receiver.reset();
  const sent = await paced(rate, seconds, () => tel.emit(messageEvent(0, stamp())));
  const latencies = await settle(receiver, sent, 10_000);
  await tel.shutdown();
  return { d: distribution(latencies), sent };
}

/** A CloudEvent of the exact shape the pipeline sends, to re-serialise with a fresh message. */
async function template(): Promise<CloudEventV1<unknown>> {
  let kept: CloudEventV1<unknown> | undefined;
  const sink: CloudEventSink = {
    name: 'template',
    stats: emptySinkStats(),
    enqueue: (events) => {
      kept ??= events.find((e) => e.type.endsWith('message_sent'));
    },
    forceFlush: async () => {},
    shutdown: async () => {},
  };
  const tel = createCaoTelemetry({ sinks: [sink], otlp: false });
  for (const e of setupEvents()) tel.emit(e);
  tel.emit(messageEvent(0, stamp()));
  await tel.shutdown();
  return kept!;
}

async function direct(receiver: ReceiverProcess, rate: number, seconds: number): Promise<{ d: Distribution; sent: number }> {
  const base = await template();
  const url = new URL(receiver.url);
  const client = new Client(url.origin, { pipelining: 1 });
  const post = (): void => {
    const event = { ...base, data: { ...(base.data as object), message: stamp() } } as CloudEventV1<unknown>;
    const req = encodeStructured(event);
    client
      .request({ path: url.pathname, method: 'POST', headers: req.headers, body: req.body })
      .then((res) => res.body.dump())
      .catch(() => undefined);
  };
  for (let i = 0; i < 500; i++) post(); // warm-up
  await sleep(500);
  await receiver.reset();
  const sent = await paced(rate, seconds, post);
  const latencies = await settle(receiver, sent, 10_000);
  await client.close();
  return { d: distribution(latencies), sent };
}

export async function runWebhookLatency(opts: WebhookLatencyOptions = {}): Promise<BenchReport> {
  const rate = opts.rate ?? 200;
  const seconds = opts.seconds ?? 5;
  const receiver = await startReceiverProcess({ kind: 'receiver', latency: true });
  let base: Awaited<ReturnType<typeof direct>>;
  let structured: Awaited<ReturnType<typeof viaPipeline>>;
  let batch: Awaited<ReturnType<typeof viaPipeline>>;
  try {
    base = await direct(receiver, rate, seconds);
    structured = await viaPipeline(receiver, 'structured', rate, seconds);
    batch = await viaPipeline(receiver, 'batch', rate, seconds);
  } finally {
    await receiver.stop();
  }
  const rows = (label: string, x: { d: Distribution; sent: number }): string[] => [
    ratioRow(`${label}: p50 (ms)`, base.d.p50, x.d.p50),
    ratioRow(`${label}: p99 (ms)`, base.d.p99, x.d.p99),
    ratioRow(`${label}: max (ms)`, base.d.max, x.d.max),
  ];
  const body = [
    `${rate} events/s for ${seconds} s per row set; received/sent: direct ${base.d.n}/${base.sent}, ` +
      `structured ${structured.d.n}/${structured.sent}, batch ${batch.d.n}/${batch.sent}.`,
    '',
    '| measure | baseline: direct undici POST | cao-events: emit() → receiver | ratio |',
    '|---|---:|---:|---:|',
    ...rows('structured mode', structured),
    ...rows('batch mode', batch),
    '',
    `Added by cao-events (p50): structured ${fmt(structured.d.p50 - base.d.p50)} ms, batch ${fmt(batch.d.p50 - base.d.p50)} ms.`,
  ].join('\n');
  const complete = (x: { d: Distribution; sent: number }): boolean => x.d.n >= x.sent;
  return {
    title: '(c) Event-to-webhook latency on a healthy sink',
    method:
      `Events emitted at a steady ${rate}/s for ${seconds} s (a session, two terminals, then \`message_sent\`), each ` +
      'carrying `process.hrtime.bigint()` taken just before `emit()` in its message; the receiver (`src/receiver.ts`, ' +
      'child process) subtracts it from its own `process.hrtime.bigint()` once it has decoded the event. hrtime is ' +
      'CLOCK_MONOTONIC, one clock for every process on the machine. Baseline: an undici Client (one keep-alive ' +
      'connection) POSTing the same CloudEvent, serialised at send time, at the same rate, to the same receiver.',
    body,
    goals: [
      {
        goal: 'p99 event-to-webhook latency < 100 ms (structured, the default mode)',
        met: structured.d.p99 < 100 && complete(structured),
        why: `p99 ${fmt(structured.d.p99)} ms (direct POST: ${fmt(base.d.p99)} ms); ${structured.d.n}/${structured.sent} received`,
      },
      {
        goal: 'p99 event-to-webhook latency < 100 ms (batch mode)',
        met: batch.d.p99 < 100 && complete(batch),
        why: `p99 ${fmt(batch.d.p99)} ms (direct POST: ${fmt(base.d.p99)} ms); ${batch.d.n}/${batch.sent} received`,
      },
    ],
    data: { rate, seconds, direct: base, structured, batch },
  };
}

if (import.meta.main) {
  const r = await runWebhookLatency();
  console.log(`## ${r.title}\n\n${r.body}\n`);
  for (const g of r.goals) console.log(`- ${g.goal}: ${g.met ? 'met' : 'not met'} — ${g.why}`);
}
