/**
 * (f) Start-up time, idle memory and install footprint of the published package, as a user gets
 * it: `npm pack`, then `npm install -g --prefix <tmp> <tarball>`, then the installed bin (compiled
 * JavaScript, not type stripping) run on the same Node as the baseline.
 *
 * - `cao-events --help`, `--version`, `gateway --help`: median wall time and peak RSS over
 *   interleaved runs, against bare `node -e 0` measured in the same loop.
 * - Idle gateway: `cao-events gateway` (poller on, against a stub CAO answering `GET /sessions`
 *   with `[]`, ingest and metrics on, no callback URL) left idle for a few poll cycles; its
 *   resident memory (VmRSS) against an idle bare Node (`setInterval`) started and read at the same
 *   moments.
 * - Install: size on disk of the installed package, packages npm added, the @opentelemetry
 *   subtree and packages installed in more than one copy — for this tree and for the package as it
 *   was before the packaging work (BENCH_BASELINE_REF, default 71ce00d), installed the same way.
 *
 * Run alone: ./node_modules/.bin/node bench/startup-footprint.ts   (needs npm and python3; the
 * installs use npm's cache, and the registry for what is not cached)
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { type BenchReport, type Goal, fmt, sleep } from './stats.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const BASELINE_REF = process.env.BENCH_BASELINE_REF ?? '71ce00d';
const HELP_GOAL = 3;
const RSS_GOAL = 1.6;
/** Node of this process (the project's Node 24) first on PATH, so `#!/usr/bin/env node` finds it. */
const ENV = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}` };

interface Install {
  label: string;
  tarball: string;
  tarballBytes: number;
  prefix: string;
  packageDir: string;
  bin: string;
  added: number;
  diskBytes: number;
  otelBytes: number;
  /** Package names installed in more than one copy, with their copies. */
  repeated: Record<string, number>;
  otelExtraCopies: number;
}

function du(path: string): number {
  // disk usage in bytes, as `du -sk` reports it
  return Number(execFileSync('du', ['-sk', path], { encoding: 'utf8' }).split('\t')[0]) * 1024;
}

function packageCopies(dir: string, out = new Map<string, number>()): Map<string, number> {
  const nm = join(dir, 'node_modules');
  if (!existsSync(nm)) return out;
  for (const entry of readdirSync(nm)) {
    if (entry.startsWith('.')) continue;
    const names = entry.startsWith('@') ? readdirSync(join(nm, entry)).map((n) => `${entry}/${n}`) : [entry];
    for (const name of names) {
      const pkg = join(nm, name);
      if (!existsSync(join(pkg, 'package.json'))) continue;
      out.set(name, (out.get(name) ?? 0) + 1);
      packageCopies(pkg, out);
    }
  }
  return out;
}

function npm(args: string[], cwd: string): string {
  const r = spawnSync('npm', args, { cwd, encoding: 'utf8', env: ENV, timeout: 300_000 });
  if (r.status !== 0) throw new Error(`npm ${args.join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  return `${r.stdout}\n${r.stderr}`;
}

function packAndInstall(label: string, sourceDir: string, work: string): Install {
  mkdirSync(work, { recursive: true });
  npm(['pack', '--silent', '--pack-destination', work], sourceDir);
  const file = readdirSync(work).find((f) => f.endsWith('.tgz'));
  if (!file) throw new Error(`npm pack made no tarball in ${work}`);
  const tarball = join(work, file);
  const prefix = join(work, 'prefix');
  const out = npm(['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', tarball], work);
  const added = Number(/added (\d+) packages?/.exec(out)?.[1] ?? Number.NaN);
  const packageDir = join(prefix, 'lib', 'node_modules', 'cao-events');
  const copies = packageCopies(packageDir);
  const repeated = Object.fromEntries([...copies].filter(([, n]) => n > 1).sort((a, b) => b[1] - a[1]));
  return {
    label,
    tarball,
    tarballBytes: statSync(tarball).size,
    prefix,
    packageDir,
    bin: join(prefix, 'bin', 'cao-events'),
    added,
    diskBytes: du(packageDir),
    otelBytes: existsSync(join(packageDir, 'node_modules', '@opentelemetry')) ? du(join(packageDir, 'node_modules', '@opentelemetry')) : 0,
    repeated,
    otelExtraCopies: Object.entries(repeated).filter(([n]) => n.startsWith('@opentelemetry/')).reduce((a, [, n]) => a + n - 1, 0),
  };
}

/** The package as it was at `ref` (git archive), or undefined when the ref is not available. */
function baselineSource(ref: string, dir: string): string | undefined {
  try {
    mkdirSync(dir, { recursive: true });
    const archive = execFileSync('git', ['archive', '--format=tar', ref], { cwd: ROOT, maxBuffer: 256 * 1024 * 1024 });
    execFileSync('tar', ['-x', '-C', dir], { input: archive });
    return dir;
  } catch {
    return undefined;
  }
}

// One measured run of a command: wall time and the child's peak RSS, taken by a python3 wrapper so
// that neither includes the measuring process.
const MEASURE = [
  'import json, resource, subprocess, sys, time',
  't = time.perf_counter()',
  'r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)',
  'dt = time.perf_counter() - t',
  'print(json.dumps({"code": r.returncode, "wall": dt, "maxrss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))',
].join('\n');

function measureOnce(cmd: string[]): { wall: number; maxrss: number } {
  const r = spawnSync('python3', ['-c', MEASURE, ...cmd], { encoding: 'utf8', env: ENV });
  const m = JSON.parse(r.stdout) as { code: number; wall: number; maxrss: number };
  if (m.code !== 0) throw new Error(`${cmd.join(' ')} exited ${m.code}`);
  return { wall: m.wall * 1000, maxrss: m.maxrss };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

interface Timing {
  label: string;
  wallMs: number;
  maxRss: number;
}

function startupTimings(commands: Array<{ label: string; cmd: string[] }>, rounds: number): Timing[] {
  const samples = new Map<string, Array<{ wall: number; maxrss: number }>>();
  for (const c of commands) measureOnce(c.cmd); // warm the page cache
  for (let i = 0; i < rounds; i++) {
    for (const c of commands) {
      const list = samples.get(c.label) ?? [];
      list.push(measureOnce(c.cmd));
      samples.set(c.label, list);
    }
  }
  return commands.map((c) => {
    const s = samples.get(c.label)!;
    return { label: c.label, wallMs: median(s.map((x) => x.wall)), maxRss: median(s.map((x) => x.maxrss)) };
  });
}

function vmRss(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) * 1024;
}

interface IdleSample {
  /** The installed gateway. */
  gateway: number;
  /** The same with V8's new space capped (NODE_OPTIONS=--max-semi-space-size=1): how much is V8 young generation. */
  smallNewSpace: number;
  /** The gateway from the TypeScript sources on type stripping (development). */
  fromSource: number;
  bare: number;
  /** An idle Node HTTP server on loopback and nothing else: what any HTTP-serving process starts from. */
  httpServer: number;
}

/** Idle gateways vs an idle bare Node, started together and read at the same moment. */
async function idleRss(bin: string, settleMs: number): Promise<IdleSample> {
  const stub = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(req.url?.startsWith('/sessions') ? '[]' : '{}');
  });
  await new Promise<void>((r) => stub.listen(0, '127.0.0.1', () => r()));
  const upstream = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
  const args = ['gateway', '--port', '0', '--ingest-port', '0', '--upstream', upstream];
  const gateways = [
    spawn(bin, args, { env: ENV, stdio: ['ignore', 'ignore', 'pipe'] }),
    spawn(bin, args, { env: { ...ENV, NODE_OPTIONS: '--max-semi-space-size=1' }, stdio: ['ignore', 'ignore', 'pipe'] }),
    spawn(process.execPath, [join(ROOT, 'src', 'cli.ts'), ...args], { env: ENV, stdio: ['ignore', 'ignore', 'pipe'] }),
  ];
  const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const httpServer = spawn(process.execPath, ['-e', "require('node:http').createServer().listen(0, '127.0.0.1')"], { stdio: 'ignore' });
  try {
    for (const gateway of gateways) {
      let err = '';
      gateway.stderr!.on('data', (c: Buffer) => (err += c));
      const deadline = Date.now() + 60_000;
      while (!err.includes('gateway listening')) {
        if (Date.now() > deadline || gateway.exitCode !== null) throw new Error(`the gateway did not start: ${err}`);
        await sleep(50);
      }
    }
    await sleep(settleMs);
    const [gateway, smallNewSpace, fromSource] = gateways.map((g) => vmRss(g.pid!)) as [number, number, number];
    return { gateway, smallNewSpace, fromSource, bare: vmRss(bare.pid!), httpServer: vmRss(httpServer.pid!) };
  } finally {
    for (const g of gateways) g.kill('SIGTERM');
    bare.kill('SIGTERM');
    httpServer.kill('SIGTERM');
    stub.close();
  }
}

/** Resident memory after importing each library in turn (cumulative), from the installed package. */
function libraryCosts(packageDir: string): Array<{ label: string; rss: number }> {
  const steps: Array<[string, string[]]> = [
    ['bare Node', []],
    ['+ pino', ['pino']],
    ['+ undici', ['undici']],
    ['+ cloudevents', ['cloudevents']],
    ['+ @opentelemetry/sdk-trace, resources', ['@opentelemetry/sdk-trace', '@opentelemetry/resources']],
    ['+ @opentelemetry/sdk-metrics, exporter-prometheus', ['@opentelemetry/sdk-metrics', '@opentelemetry/exporter-prometheus']],
    ['+ the gateway command (all of cao-events it loads)', ['./dist/src/commands/services.js']],
  ];
  const out: Array<{ label: string; rss: number }> = [];
  for (let i = 0; i < steps.length; i++) {
    const modules = steps.slice(0, i + 1).flatMap(([, m]) => m);
    const script = `const { createRequire } = await import('node:module'); const req = createRequire(${JSON.stringify(join(packageDir, 'package.json'))});
      for (const m of ${JSON.stringify(modules)}) await import(m.startsWith('.') ? 'file://' + req.resolve(m) : 'file://' + req.resolve(m));
      await new Promise((r) => setTimeout(r, 1000)); console.log(process.memoryUsage.rss());`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: packageDir });
    out.push({ label: steps[i]![0], rss: Number(r.stdout.trim()) });
  }
  return out;
}

const MB = (b: number): string => fmt(b / (1024 * 1024), 1);

export interface StartupFootprintOptions {
  rounds?: number;
  idleRepeats?: number;
  settleMs?: number;
}

export async function runStartupFootprint(options: StartupFootprintOptions = {}): Promise<BenchReport> {
  const rounds = options.rounds ?? 15;
  const idleRepeats = options.idleRepeats ?? 3;
  const settleMs = options.settleMs ?? 10_000;
  const work = mkdtempSync(join(tmpdir(), 'cao-events-bench-f-'));
  try {
    const after = packAndInstall('this tree', ROOT, join(work, 'after'));
    const beforeSource = baselineSource(BASELINE_REF, join(work, 'before-src'));
    const before = beforeSource ? packAndInstall(`before (${BASELINE_REF})`, beforeSource, join(work, 'before')) : undefined;

    const node = process.execPath;
    const timings = startupTimings(
      [
        { label: 'node -e 0 (baseline)', cmd: [node, '-e', '0'] },
        { label: 'cao-events --help', cmd: [after.bin, '--help'] },
        { label: 'cao-events --version', cmd: [after.bin, '--version'] },
        { label: 'cao-events gateway --help', cmd: [after.bin, 'gateway', '--help'] },
        { label: 'src/cli.ts --help (development: type stripping)', cmd: [node, join(ROOT, 'src', 'cli.ts'), '--help'] },
      ],
      rounds,
    );
    const base = timings[0]!;
    const help = timings[1]!;

    const idle: IdleSample[] = [];
    for (let i = 0; i < idleRepeats; i++) idle.push(await idleRss(after.bin, settleMs));
    const idleGateway = median(idle.map((x) => x.gateway));
    const idleBare = median(idle.map((x) => x.bare));
    const libraries = libraryCosts(after.packageDir);

    const helpRatio = help.wallMs / base.wallMs;
    const rssRatio = idleGateway / idleBare;
    const goals: Goal[] = [
      {
        goal: `\`cao-events --help\` wall time ≤ ${HELP_GOAL}× bare \`node -e 0\` (installed package)`,
        met: helpRatio <= HELP_GOAL,
        why: `median ${fmt(help.wallMs, 1)} ms vs ${fmt(base.wallMs, 1)} ms: ${fmt(helpRatio, 2)}×`,
      },
      {
        goal: `idle gateway RSS ≤ ${RSS_GOAL}× an idle bare Node (installed package)`,
        met: rssRatio <= RSS_GOAL,
        why: `median ${MB(idleGateway)} MB vs ${MB(idleBare)} MB: ${fmt(rssRatio, 2)}×`,
      },
      {
        goal: 'one copy of each @opentelemetry package in a fresh install',
        met: after.otelExtraCopies === 0,
        why: `${after.otelExtraCopies} extra @opentelemetry copies${before ? ` (before: ${before.otelExtraCopies})` : ''}`,
      },
    ];
    if (before) {
      goals.push({
        goal: 'install smaller than before, in size and package count',
        met: after.diskBytes < before.diskBytes && after.added < before.added,
        why: `${MB(after.diskBytes)} MB, ${after.added} packages (before: ${MB(before.diskBytes)} MB, ${before.added} packages)`,
      });
    }

    const installs = before ? [before, after] : [after];
    const dupList = (i: Install) => {
      const entries = Object.entries(i.repeated);
      return entries.length === 0 ? 'none' : entries.slice(0, 6).map(([n, c]) => `${n} ×${c}`).join(', ') + (entries.length > 6 ? `, … (${entries.length} names)` : '');
    };
    const body = [
      '**Start-up** (median of ' + rounds + ' interleaved runs; peak RSS of the process)',
      '',
      '| command | wall (ms) | ×baseline | peak RSS (MB) | ×baseline |',
      '|---|---:|---:|---:|---:|',
      ...timings.map((t) => `| ${t.label} | ${fmt(t.wallMs, 1)} | ${fmt(t.wallMs / base.wallMs, 2)} | ${MB(t.maxRss)} | ${fmt(t.maxRss / base.maxRss, 2)} |`),
      '',
      `**Idle gateway** (VmRSS ${settleMs / 1000} s after start-up, poller polling every 3 s, median of ${idleRepeats})`,
      '',
      '| process | RSS (MB) | ×baseline |',
      '|---|---:|---:|',
      `| idle bare Node (baseline) | ${MB(idleBare)} | 1.00 |`,
      `| cao-events gateway (installed) | ${MB(idleGateway)} | ${fmt(rssRatio, 2)} |`,
      `| the same, NODE_OPTIONS=--max-semi-space-size=1 (for reference: V8's young generation) | ${MB(median(idle.map((x) => x.smallNewSpace)))} | ${fmt(median(idle.map((x) => x.smallNewSpace)) / idleBare, 2)} |`,
      `| an idle Node HTTP server on loopback, nothing else (for reference: what serving HTTP costs by itself) | ${MB(median(idle.map((x) => x.httpServer)))} | ${fmt(median(idle.map((x) => x.httpServer)) / idleBare, 2)} |`,
      `| the gateway from src/ on type stripping (development, for reference) | ${MB(median(idle.map((x) => x.fromSource)))} | ${fmt(median(idle.map((x) => x.fromSource)) / idleBare, 2)} |`,
      '',
      `Samples (installed gateway / bare, MB): ${idle.map((x) => `${MB(x.gateway)} / ${MB(x.bare)}`).join('; ')}.`,
      '',
      '**Where the idle memory goes**: resident memory after importing each library in turn, in a fresh process from the installed package (1 s after the imports)',
      '',
      '| imported so far | RSS (MB) | added (MB) |',
      '|---|---:|---:|',
      ...libraries.map((l, i) => `| ${l.label} | ${MB(l.rss)} | ${i === 0 ? '' : MB(l.rss - libraries[i - 1]!.rss)} |`),
      `| the running, idle gateway (above) | ${MB(idleGateway)} | ${MB(idleGateway - libraries.at(-1)!.rss)} |`,
      '',
      `The libraries the design requires (pino, undici, CloudEvents, the OpenTelemetry trace and metrics SDKs), imported and nothing else, already take ` +
        `${MB(libraries.at(-2)!.rss)} MB, ${fmt(libraries.at(-2)!.rss / libraries[0]!.rss, 2)}× the bare Node, before cao-events runs any code; ` +
        `the rest is cao-events' own modules with the Node built-ins they load (HTTP server, TLS, HTTP/2, zlib, worker threads) and V8's young generation, ` +
        `grown during start-up and kept while idle (the --max-semi-space-size row).`,
      '',
      '**Install** (`npm install -g --prefix <tmp> <tarball>`)',
      '',
      '| package | tarball (kB) | installed (MB) | packages added | @opentelemetry (MB) | extra @opentelemetry copies |',
      '|---|---:|---:|---:|---:|---:|',
      ...installs.map((i) => `| ${i.label} | ${fmt(i.tarballBytes / 1024, 0)} | ${MB(i.diskBytes)} | ${i.added} | ${MB(i.otelBytes)} | ${i.otelExtraCopies} |`),
      '',
      ...installs.map((i) => `Packages in more than one copy, ${i.label}: ${dupList(i)}.`),
      before ? '' : `The baseline ref ${BASELINE_REF} was not available: no before figures.`,
    ].join('\n');
    return {
      title: '(f) Start-up, idle memory and install footprint of the published package',
      method:
        'bench/startup-footprint.ts: `npm pack` of this tree and `npm install -g --prefix <tmp>` of the tarball; the installed bin (compiled JavaScript) runs on the same Node as the baseline. Wall time and peak RSS of each command through a python3 wrapper (`resource.getrusage(RUSAGE_CHILDREN)`), commands interleaved, medians. Idle RSS: VmRSS of `cao-events gateway` (poller on against a stub CAO, ingest and metrics on, no callback URL) and of an idle `node -e "setInterval(…)"` started together. The package before the packaging work is packed from git and installed the same way (it cannot run: it shipped TypeScript).',
      body,
      goals,
      data: { timings, idle, idleGateway, idleBare, libraries, installs },
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const report = await runStartupFootprint();
  console.log(`## ${report.title}\n\n${report.body}\n`);
  for (const g of report.goals) console.log(`- ${g.met ? 'met' : 'NOT met'}: ${g.goal}: ${g.why}`);
}
