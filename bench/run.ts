/**
 * `npm run bench`: runs every benchmark, each in its own fresh process (bench/isolate.ts), and
 * writes BENCHMARKS.md: the machine, the command, then per benchmark its method, its figures each
 * beside a baseline measured in the same run with the ratio, and a met / not met line per goal.
 *
 *   node bench/run.ts                 all benchmarks, writes BENCHMARKS.md (about 3–4 minutes)
 *   node bench/run.ts --only b,c      only those; prints the markdown, writes nothing unless --out
 *   node bench/run.ts --out FILE      write the report to FILE instead
 *
 * Every benchmark sends traffic to 127.0.0.1 only, is bounded in requests/events and in time, and
 * stops by itself; a benchmark that overruns its bound is killed and reported as failed.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { inChild } from './isolate.ts';
import type { BenchReport } from './stats.ts';

interface Bench {
  key: string;
  file: string;
  fn: string;
  timeoutMs: number;
}

const BENCHES: Bench[] = [
  { key: 'a', file: './gateway-latency.ts', fn: 'runGatewayLatency', timeoutMs: 150_000 },
  { key: 'b', file: './emit-throughput.ts', fn: 'runEmitThroughput', timeoutMs: 200_000 },
  { key: 'c', file: './webhook-latency.ts', fn: 'runWebhookLatency', timeoutMs: 90_000 },
  { key: 'd', file: './dead-sink.ts', fn: 'runDeadSink', timeoutMs: 120_000 },
  { key: 'e', file: './overload-memory.ts', fn: 'runOverloadMemory', timeoutMs: 120_000 },
  { key: 'f', file: './startup-footprint.ts', fn: 'runStartupFootprint', timeoutMs: 600_000 },
  { key: 'g', file: './delivery.ts', fn: 'runDelivery', timeoutMs: 900_000 },
  // needs the real CAO venvs (bash test/e2e/install.sh)
  { key: 'h', file: './real-gateway.ts', fn: 'runRealGateway', timeoutMs: 600_000 },
];

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

function machine(command: string): string {
  let cpu = 'unknown';
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu;
  } catch {
    /* not Linux */
  }
  const commit = sh('git', ['rev-parse', '--short', 'HEAD']);
  const dirty = sh('git', ['status', '--porcelain']) !== '';
  return [
    '| | |',
    '|---|---|',
    `| CPUs (\`nproc\`) | ${sh('nproc', []) || os.availableParallelism()} |`,
    `| CPU model | ${cpu} |`,
    `| memory | ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB |`,
    `| Node.js | ${process.version} (${os.platform()} ${os.release()}) |`,
    `| date | ${new Date().toISOString()} |`,
    `| command | \`${command}\` |`,
    `| code | ${commit ? `commit ${commit}${dirty ? ' plus uncommitted changes in the working tree' : ''}` : 'unknown'} |`,
  ].join('\n');
}

const INTRO = `Benchmarks of cao-events. Speed and memory are measured here, not in tests. Every figure is
shown beside a baseline measured in the same run on the same machine, with the ratio
(measured / baseline); absolute numbers from another machine or run are not comparable. Each
benchmark runs in its own fresh Node process (receivers and upstreams in further worker threads or
child processes as described), sends traffic only to 127.0.0.1, and is bounded in count and time.
The machine has few cores, so every process competes for them: read ratios, not absolutes.`;

function section(key: string, r: BenchReport | Error, seconds: number): string {
  if (r instanceof Error) return `## (${key}) failed\n\n\`\`\`\n${r.message}\n\`\`\``;
  return [
    `## ${r.title}`,
    '',
    `*Method.* ${r.method}`,
    '',
    r.body,
    '',
    '*Goals.*',
    '',
    ...r.goals.map((g) => `- **${g.met ? 'met' : 'not met'}** — ${g.goal}: ${g.why}.`),
    '',
    `(ran in ${seconds.toFixed(0)} s)`,
  ].join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { only: { type: 'string' }, out: { type: 'string' } } });
  const only = values.only?.split(',').map((k) => k.trim().replace(/^\(|\)$/g, ''));
  const selected = only ? BENCHES.filter((b) => only.includes(b.key)) : BENCHES;
  if (selected.length === 0) {
    console.error(`--only: no such benchmark (known: ${BENCHES.map((b) => b.key).join(', ')})`);
    return 2;
  }
  const command = process.env.npm_lifecycle_event === 'bench' && !only && !values.out
    ? 'npm run bench'
    : `node bench/run.ts${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}`;
  const header = machine(command);
  const t0 = performance.now();
  const sections: string[] = [];
  const summary: string[] = [];
  let failed = 0;
  for (const b of selected) {
    console.error(`bench (${b.key}) ${b.file} …`);
    const s0 = performance.now();
    let r: BenchReport | Error;
    try {
      r = await inChild<BenchReport>(new URL(b.file, import.meta.url), b.fn, [], b.timeoutMs);
    } catch (err) {
      r = err as Error;
      failed++;
    }
    const seconds = (performance.now() - s0) / 1000;
    console.error(`bench (${b.key}) ${r instanceof Error ? `FAILED: ${r.message.split('\n')[0]}` : 'done'} in ${seconds.toFixed(0)} s`);
    sections.push(section(b.key, r, seconds));
    if (r instanceof Error) summary.push(`| (${b.key}) | benchmark failed | **failed** |`);
    else for (const g of r.goals) summary.push(`| (${b.key}) | ${g.goal} | **${g.met ? 'met' : 'not met'}** |`);
  }
  const total = (performance.now() - t0) / 1000;
  const doc = [
    '# BENCHMARKS',
    '',
    INTRO,
    '',
    header,
    '',
    '## Goals',
    '',
    '| bench | goal | result |',
    '|---|---|---|',
    ...summary,
    '',
    'The reasons, figure by figure, are under each benchmark below.',
    '',
    ...sections.flatMap((s) => [s, '']),
    `Total: ${total.toFixed(0)} s.`,
    '',
  ].join('\n');
  const out = values.out ?? (only ? undefined : new URL('../BENCHMARKS.md', import.meta.url));
  if (out) {
    writeFileSync(out, doc);
    console.error(`wrote ${out instanceof URL ? 'BENCHMARKS.md' : out} (${total.toFixed(0)} s)`);
  } else {
    console.log(doc);
  }
  return failed > 0 ? 1 : 0;
}

process.exitCode = await main();
