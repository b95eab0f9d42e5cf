/**
 * The gateway in front of REAL cao-server: the same requests direct to cao-server and through
 * `cao-events gateway` (a real process: proxy, classifier, core, poller at its default 3 s), in
 * the same run, on real CAO's hottest routes:
 *   GET /terminals/{id}  (every MCP tool call and every status poll),
 *   GET /sessions        (listings: the CLI, the web UI, pollers),
 *   POST /terminals/{id}/inbox/messages (send_message; the gateway classifies it as an event).
 * cao-server is the newest release test/e2e/install.sh installs (run it first), with the mock_cli
 * stand-in. The receiver of the inbox messages is kept busy (`__mock_sleep_900`) so every message
 * stays pending: the measurement is CAO's request path, not an agent typing thousands of messages.
 *
 * Per route, direct and gateway interleaved: latency p50/p99 of sequential requests on 1
 * connection (request by request), throughput (req/s) of a closed loop on 8 connections (in
 * alternating blocks).
 * Run alone: ./node_modules/.bin/node bench/run.ts --only h
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { startCaoEvents } from '../test/e2e/helpers/cao-events-process.ts';
import { caoVersions, startRealCao } from '../test/e2e/helpers/real-cao.ts';
import { freePort } from '../test/helpers/free-port.ts';
import { type BenchReport, distribution, fmt, type Goal } from './stats.ts';

const LATENCY_PAIRS = 400;
const WARMUP = 30;
/** Throughput: blocks of requests on 8 connections, alternating targets (D G G D D G …). */
const BLOCK_REQUESTS = 300;
const BLOCKS_PER_TARGET = 4;
const CONNECTIONS = 8;

interface Route {
  label: string;
  method: 'GET' | 'POST';
  path: (n: number) => string;
}

interface Measure {
  p50: number;
  p99: number;
  rps: number;
  errors: number;
}

type Target = 'direct' | 'gateway';

/**
 * Latency on 1 connection per target, request pairs interleaved (direct then gateway, then the
 * other way round), so both see the same server state (e.g. a growing inbox) and the same noise.
 */
async function latency(origins: Record<Target, string>, route: Route, next: () => number): Promise<Record<Target, Measure>> {
  const pools = { direct: new Pool(origins.direct, { connections: 1 }), gateway: new Pool(origins.gateway, { connections: 1 }) };
  const samples: Record<Target, number[]> = { direct: [], gateway: [] };
  const errors: Record<Target, number> = { direct: 0, gateway: 0 };
  try {
    for (let i = 0; i < WARMUP + LATENCY_PAIRS; i++) {
      for (const target of (i % 2 === 0 ? ['direct', 'gateway'] : ['gateway', 'direct']) as Target[]) {
        const t0 = performance.now();
        const res = await pools[target].request({ method: route.method, path: route.path(next()) });
        await res.body.dump();
        if (res.statusCode !== 200) errors[target]++;
        if (i >= WARMUP) samples[target].push(performance.now() - t0);
      }
    }
  } finally {
    await Promise.all([pools.direct.close(), pools.gateway.close()]);
  }
  const measure = (t: Target): Measure => ({ ...distribution(samples[t]), rps: 0, errors: errors[t] });
  return { direct: measure('direct'), gateway: measure('gateway') };
}

/** Closed-loop throughput on 8 connections, in alternating blocks per target; req/s over all its blocks. */
async function throughput(origins: Record<Target, string>, route: Route, next: () => number): Promise<Record<Target, Measure>> {
  const samples: Record<Target, number[]> = { direct: [], gateway: [] };
  const elapsed: Record<Target, number> = { direct: 0, gateway: 0 };
  const errors: Record<Target, number> = { direct: 0, gateway: 0 };
  const order: Target[] = [];
  for (let b = 0; b < BLOCKS_PER_TARGET; b++) order.push(...((b % 2 === 0 ? ['direct', 'gateway'] : ['gateway', 'direct']) as Target[]));
  for (const target of order) {
    const pool = new Pool(origins[target], { connections: CONNECTIONS, pipelining: 1 });
    let sent = 0;
    try {
      const t0 = performance.now();
      await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
        while (sent < BLOCK_REQUESTS) {
          sent++;
          const s0 = performance.now();
          const res = await pool.request({ method: route.method, path: route.path(next()) });
          await res.body.dump();
          if (res.statusCode !== 200) errors[target]++;
          samples[target].push(performance.now() - s0);
        }
      }));
      elapsed[target] += (performance.now() - t0) / 1000;
    } finally {
      await pool.close();
    }
  }
  const measure = (t: Target): Measure => ({ ...distribution(samples[t]), rps: samples[t].length / elapsed[t], errors: errors[t] });
  return { direct: measure('direct'), gateway: measure('gateway') };
}

export async function runRealGateway(): Promise<BenchReport> {
  const version = caoVersions().reduce((a, b) => (a.version.localeCompare(b.version, undefined, { numeric: true }) >= 0 ? a : b));
  const [serverPort, gatewayPort, ingestPort] = [await freePort(), await freePort(), await freePort()];
  const upstream = `http://127.0.0.1:${serverPort}`;
  // No callback: CloudEvents delivery runs off the request path (measured in (c) and (g)); the
  // gateway still classifies every exchange and records each event (spans) in its core.
  const gateway = await startCaoEvents({ command: 'gateway', upstream, port: gatewayPort, ingestPort, pollIntervalMs: 3000 });
  const cao = await startRealCao({ version, plugin: false, port: serverPort, apiPort: gatewayPort });
  const project = mkdtempSync(join(tmpdir(), 'cao-bench-'));
  try {
    const direct = new Pool(upstream, { connections: 1 });
    const post = async (path: string): Promise<Record<string, unknown>> => {
      const res = await direct.request({ method: 'POST', path });
      const body = (await res.body.json()) as Record<string, unknown>;
      if (res.statusCode >= 300) throw new Error(`POST ${path.split('?')[0]} → ${res.statusCode} ${JSON.stringify(body)}`);
      return body;
    };
    const q = (o: Record<string, string>) => new URLSearchParams(o).toString();
    const sup = await post(`/sessions?${q({ provider: version.provider, agent_profile: 'code_supervisor', session_name: 'bench', working_directory: project })}`);
    cao.sessions.add('cao-bench');
    const worker = await post(`/sessions/cao-bench/terminals?${q({ provider: version.provider, agent_profile: 'developer', working_directory: project })}`);
    await post(`/terminals/${String(sup.id)}/input?${q({ message: '__mock_sleep_900' })}`);
    await direct.close();

    const routes: Route[] = [
      { label: 'GET /terminals/{id}', method: 'GET', path: () => `/terminals/${String(sup.id)}` },
      { label: 'GET /sessions', method: 'GET', path: () => '/sessions' },
      {
        label: 'POST /terminals/{id}/inbox/messages', method: 'POST',
        path: (n) => `/terminals/${String(sup.id)}/inbox/messages?${q({ sender_id: String(worker.id), message: `bench message ${n}` })}`,
      },
    ];
    const origins: Record<Target, string> = { direct: upstream, gateway: `http://127.0.0.1:${gatewayPort}` };
    let counter = 0;
    const next = (): number => counter++;
    const results: Array<{ route: Route; direct: { lat: Measure; thr: Measure }; gateway: { lat: Measure; thr: Measure } }> = [];
    for (const route of routes) {
      const lat = await latency(origins, route, next);
      const thr = await throughput(origins, route, next);
      results.push({ route, direct: { lat: lat.direct, thr: thr.direct }, gateway: { lat: lat.gateway, thr: thr.gateway } });
    }

    const rows: string[] = [];
    const goals: Goal[] = [];
    let errors = 0;
    for (const { route, direct: d, gateway: g } of results) {
      errors += d.lat.errors + d.thr.errors + g.lat.errors + g.thr.errors;
      rows.push(
        `| ${route.label} | latency p50, 1 conn (ms) | ${fmt(d.lat.p50)} | ${fmt(g.lat.p50)} | ${fmt(g.lat.p50 / d.lat.p50, 2)} |`,
        `| | latency p99, 1 conn (ms) | ${fmt(d.lat.p99)} | ${fmt(g.lat.p99)} | ${fmt(g.lat.p99 / d.lat.p99, 2)} |`,
        `| | throughput, ${CONNECTIONS} conns (req/s) | ${fmt(d.thr.rps, 0)} | ${fmt(g.thr.rps, 0)} | ${fmt(g.thr.rps / d.thr.rps, 2)} |`,
        `| | latency p50 / p99 during it (ms) | ${fmt(d.thr.p50, 1)} / ${fmt(d.thr.p99, 1)} | ${fmt(g.thr.p50, 1)} / ${fmt(g.thr.p99, 1)} | ${fmt(g.thr.p50 / d.thr.p50, 2)} / ${fmt(g.thr.p99 / d.thr.p99, 2)} |`,
      );
      goals.push({
        goal: `${route.label} on real CAO: p50 latency added by the gateway < 1 ms (1 connection; as for (a))`,
        met: g.lat.p50 - d.lat.p50 < 1,
        why: `${fmt(d.lat.p50)} → ${fmt(g.lat.p50)} ms = ${fmt(g.lat.p50 / d.lat.p50, 2)}× (+${fmt(g.lat.p50 - d.lat.p50)} ms)`,
      }, {
        goal: `${route.label} on real CAO: throughput through the gateway ≥ 0.9× direct (${CONNECTIONS} connections)`,
        met: g.thr.rps / d.thr.rps >= 0.9,
        why: `${fmt(g.thr.rps, 0)} vs ${fmt(d.thr.rps, 0)} req/s = ${fmt(g.thr.rps / d.thr.rps, 2)}×`,
      });
    }
    const body = [
      `cao-server ${version.version} (PyPI, stand-in CLI ${version.provider}), \`cao-events gateway\` in front (poller every 3 s), same run, interleaved.`,
      '',
      '| route | measure | direct | through gateway | gateway/direct |',
      '|---|---|---:|---:|---:|',
      ...rows,
      '',
      `Requests per route and target: ${LATENCY_PAIRS} sequential (after ${WARMUP} warm-up), interleaved request by request with the other target; ` +
        `${BLOCKS_PER_TARGET} × ${BLOCK_REQUESTS} on ${CONNECTIONS} connections, in blocks alternating with the other target. Non-200 answers: ${errors}. ` +
        'The CPU (2 cores) is shared with cao-server, its tmux panes, the gateway, the load generator and whatever else runs on the machine: read the ratios, not the absolutes.',
    ].join('\n');
    return {
      title: '(h) Gateway vs direct on real cao-server: its hottest routes',
      method:
        'bench/real-gateway.ts: a real cao-server (the newest release test/e2e/install.sh installs; mock_cli stand-in; one session with a ' +
        'supervisor kept busy so inbox messages stay pending, and a worker as sender) and a real `cao-events gateway` process in front of it ' +
        '(proxy, classifier, core recording every event, poller every 3 s; no callback URL: CloudEvents delivery, off the request path, is ' +
        'measured in (c) and (g)). The same requests go ' +
        'to cao-server directly and through the gateway, interleaved so both see the same server state (the inbox grows by every POST) and ' +
        'the same background load: latency request by request on one connection each, throughput in alternating blocks. Load generator: ' +
        'undici Pools in the bench process.',
      body,
      goals,
      data: results.map(({ route, direct: d, gateway: g }) => ({ route: route.label, direct: d, gateway: g })),
    };
  } finally {
    await cao.stop();
    await gateway.stop();
    rmSync(project, { recursive: true, force: true });
  }
}
