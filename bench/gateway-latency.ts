/**
 * Gateway latency/throughput benchmark: the same load, in the same run, direct to an upstream and
 * through the gateway proxy (src/sources/gateway-proxy.ts). Run:
 *   ./node_modules/.bin/node bench/gateway-latency.ts
 * or call `runGatewayBench(opts)` from a bench runner (it returns the numbers).
 *
 * Layout (fairness on a small machine): the upstream (node:http answering a small JSON body, like
 * `GET /terminals/{id}`) and the proxy each run in their own worker_thread, so each has its own
 * event loop and OS thread; the load generator (undici Client/Pool with a minimal dispatch handler,
 * so its own cost is small and equal for both targets) runs on the main thread. On a 2-core machine
 * the direct case shares the cores between 2 busy threads, the proxied case between 3: the
 * throughput ratio therefore includes the proxy's CPU cost, which is what a co-located gateway costs.
 *
 * Measurements, each for a fixed number of requests (bounded run time, ~20-40 s in total):
 * - latency p50/p99 at 1 connection, sequential requests;
 * - throughput (req/s) at 32 and 256 concurrent connections (keep-alive; the proxy's own upstream
 *   pool has its default 128 connections).
 * Each measurement runs `rounds` times alternating direct/proxy; the best round of each is kept
 * (lowest p50, highest req/s), to damp JIT warm-up and scheduler noise.
 *
 * Run as a script it prints two tables: a trivial upstream (the worst case: the upstream costs about
 * as little per request as the proxy, so on 2 shared cores the proxied throughput is CPU-bound at
 * roughly 0.4x), and an upstream that burns 250 µs of CPU per request (`upstreamCpuUs`), where the
 * gateway's cost becomes visible only as added latency.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import http from 'node:http';
import { once } from 'node:events';
import { Client, Pool } from 'undici';
import type { Dispatcher } from 'undici';
import { startGatewayProxy } from '../src/sources/gateway-proxy.ts';

export interface GatewayBenchOptions {
  /** Sequential requests measured for latency (after warm-up). Default 5000. */
  latencyRequests?: number;
  /** Requests per throughput measurement. Default 30000. */
  throughputRequests?: number;
  /** Concurrency levels for throughput. Default [32, 256]. */
  concurrency?: number[];
  /** Alternating direct/proxy rounds; the best of each is kept. Default 2. */
  rounds?: number;
  /**
   * CPU the upstream burns per request (busy loop), in microseconds. Default 0 (a trivial upstream:
   * the worst case for the ratio). A real app server such as CAO (FastAPI) costs more per request.
   */
  upstreamCpuUs?: number;
  /** Print progress and the markdown table to stdout. Default false. */
  print?: boolean;
}

export interface LatencyResult { p50Ms: number; p99Ms: number; meanMs: number }
export interface GatewayBenchResult {
  latency: { direct: LatencyResult; proxy: LatencyResult; addedP50Ms: number; addedP99Ms: number };
  throughput: { connections: number; directRps: number; proxyRps: number; ratio: number }[];
  errors: number;
  markdown: string;
}

const BODY = JSON.stringify({
  id: 'abcd1234',
  name: 'developer-abcd',
  provider: 'kiro_cli',
  session_name: 'cao-bench',
  agent_profile: 'developer',
  status: 'idle',
  last_active: '2026-08-22T10:00:00',
});
const PATH = '/terminals/abcd1234';

// ---------------------------------------------------------------- worker roles

type Role = { role: 'upstream'; cpuUs: number } | { role: 'proxy'; upstream: string };

function burn(us: number): void {
  const end = performance.now() + us / 1000;
  while (performance.now() < end) {
    /* simulated request handling cost */
  }
}

async function runRole(data: Role): Promise<void> {
  const port = parentPort!;
  if (data.role === 'upstream') {
    const body = Buffer.from(BODY);
    const cpuUs = data.cpuUs;
    const server = http.createServer({ noDelay: true }, (_req, res) => {
      if (cpuUs > 0) burn(cpuUs);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
    });
    server.keepAliveTimeout = 60_000;
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port.postMessage({ port: (server.address() as { port: number }).port });
    port.once('message', () => {
      server.closeAllConnections();
      server.close(() => process.exit(0));
    });
  } else {
    const proxy = await startGatewayProxy({ upstream: data.upstream, port: 0 });
    port.postMessage({ port: proxy.port });
    port.once('message', () => {
      void proxy.close().then(() => process.exit(0));
    });
  }
}

if (!isMainThread && (workerData as Role | undefined)?.role) {
  void runRole(workerData as Role);
}

async function spawn(data: Role): Promise<{ url: string; stop(): Promise<void> }> {
  const worker = new Worker(new URL(import.meta.url), { workerData: data });
  const [msg] = (await once(worker, 'message')) as [{ port: number }];
  return {
    url: `http://127.0.0.1:${msg.port}`,
    stop: async () => {
      worker.postMessage('stop');
      await once(worker, 'exit');
    },
  };
}

// ---------------------------------------------------------------- load generator

class OneRequest implements Dispatcher.DispatchHandler {
  readonly resolve: (status: number) => void;
  readonly reject: (err: Error) => void;
  status = 0;
  constructor(resolve: (status: number) => void, reject: (err: Error) => void) {
    this.resolve = resolve;
    this.reject = reject;
  }
  onRequestStart(): void {}
  onResponseStart(_c: Dispatcher.DispatchController, status: number): void {
    this.status = status;
  }
  onResponseData(): void {}
  onResponseEnd(): void {
    this.resolve(this.status);
  }
  onResponseError(_c: Dispatcher.DispatchController | null, err: Error): void {
    this.reject(err);
  }
}

function fire(d: Dispatcher, origin: string): Promise<number> {
  return new Promise((resolve, reject) => {
    d.dispatch({ origin, method: 'GET', path: PATH, headers: ['accept', 'application/json'] }, new OneRequest(resolve, reject));
  });
}

let errors = 0;
async function fireChecked(d: Dispatcher, origin: string): Promise<void> {
  try {
    if ((await fire(d, origin)) !== 200) errors++;
  } catch {
    errors++;
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function measureLatency(origin: string, n: number): Promise<LatencyResult> {
  const client = new Client(origin, { pipelining: 1 });
  try {
    for (let i = 0; i < Math.min(1000, n); i++) await fireChecked(client, origin);
    const samples = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await fireChecked(client, origin);
      samples[i] = performance.now() - t0;
    }
    samples.sort((a, b) => a - b);
    const mean = samples.reduce((a, b) => a + b, 0) / n;
    return { p50Ms: percentile(samples, 50), p99Ms: percentile(samples, 99), meanMs: mean };
  } finally {
    await client.close();
  }
}

async function measureThroughput(origin: string, connections: number, total: number): Promise<number> {
  const pool = new Pool(origin, { connections, pipelining: 1 });
  try {
    const run = async (count: number): Promise<number> => {
      let issued = 0;
      const t0 = performance.now();
      const loop = async (): Promise<void> => {
        while (issued < count) {
          issued++;
          await fireChecked(pool, origin);
        }
      };
      await Promise.all(Array.from({ length: connections }, loop));
      return performance.now() - t0;
    };
    await run(Math.max(connections * 4, Math.floor(total / 10))); // open every connection, warm the JIT
    const ms = await run(total);
    return total / (ms / 1000);
  } finally {
    await pool.close();
  }
}

// ---------------------------------------------------------------- driver

const fmt = (n: number, d = 3): string => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');

export async function runGatewayBench(opts: GatewayBenchOptions = {}): Promise<GatewayBenchResult> {
  const latencyRequests = opts.latencyRequests ?? 5000;
  const throughputRequests = opts.throughputRequests ?? 30000;
  const concurrency = opts.concurrency ?? [32, 256];
  const rounds = Math.max(1, opts.rounds ?? 2);
  const upstreamCpuUs = opts.upstreamCpuUs ?? 0;
  const say = opts.print ? (s: string) => console.log(s) : () => {};
  errors = 0;

  const upstream = await spawn({ role: 'upstream', cpuUs: upstreamCpuUs });
  const proxy = await spawn({ role: 'proxy', upstream: upstream.url });
  try {
    let latDirect: LatencyResult | undefined;
    let latProxy: LatencyResult | undefined;
    const better = (a: LatencyResult | undefined, b: LatencyResult): LatencyResult => (!a || b.p50Ms < a.p50Ms ? b : a);
    for (let r = 0; r < rounds; r++) {
      latDirect = better(latDirect, await measureLatency(upstream.url, latencyRequests));
      latProxy = better(latProxy, await measureLatency(proxy.url, latencyRequests));
      say(`latency round ${r + 1}: direct p50 ${fmt(latDirect.p50Ms)} ms, proxy p50 ${fmt(latProxy.p50Ms)} ms`);
    }
    const throughput: GatewayBenchResult['throughput'] = [];
    for (const c of concurrency) {
      let d = 0;
      let p = 0;
      for (let r = 0; r < rounds; r++) {
        d = Math.max(d, await measureThroughput(upstream.url, c, throughputRequests));
        p = Math.max(p, await measureThroughput(proxy.url, c, throughputRequests));
        say(`throughput ${c} conns round ${r + 1}: direct ${fmt(d, 0)} req/s, proxy ${fmt(p, 0)} req/s`);
      }
      throughput.push({ connections: c, directRps: d, proxyRps: p, ratio: p / d });
    }
    const ld = latDirect!;
    const lp = latProxy!;
    const rows = [
      '| measure | direct | through gateway | gateway/direct |',
      '|---|---:|---:|---:|',
      `| latency p50, 1 conn (ms) | ${fmt(ld.p50Ms)} | ${fmt(lp.p50Ms)} | ${fmt(lp.p50Ms / ld.p50Ms, 2)} |`,
      `| latency p99, 1 conn (ms) | ${fmt(ld.p99Ms)} | ${fmt(lp.p99Ms)} | ${fmt(lp.p99Ms / ld.p99Ms, 2)} |`,
      ...throughput.map(
        (t) => `| throughput, ${t.connections} conns (req/s) | ${fmt(t.directRps, 0)} | ${fmt(t.proxyRps, 0)} | ${fmt(t.ratio, 2)} |`,
      ),
    ];
    const markdown =
      `${rows.join('\n')}\n\nAdded latency: p50 ${fmt(lp.p50Ms - ld.p50Ms)} ms, p99 ${fmt(lp.p99Ms - ld.p99Ms)} ms. ` +
      `Upstream CPU per request: ${upstreamCpuUs} µs. Requests: ${latencyRequests} sequential per latency run, ${throughputRequests} per throughput run, best of ${rounds} rounds; errors: ${errors}.`;
    say(`\n${markdown}`);
    return {
      latency: { direct: ld, proxy: lp, addedP50Ms: lp.p50Ms - ld.p50Ms, addedP99Ms: lp.p99Ms - ld.p99Ms },
      throughput,
      errors,
      markdown,
    };
  } finally {
    await proxy.stop();
    await upstream.stop();
  }
}

if (isMainThread && import.meta.main) {
  const t0 = performance.now();
  console.log('## trivial upstream (node:http, small JSON): worst case for the gateway\n');
  await runGatewayBench({ print: true });
  console.log('\n## slower upstream (250 µs simulated CPU per request, a stand-in for a real app server; not measured against CAO)\n');
  await runGatewayBench({ print: true, upstreamCpuUs: 250, latencyRequests: 2000, throughputRequests: 6000 });
  console.log(`\n(bench took ${fmt((performance.now() - t0) / 1000, 1)} s)`);
}
