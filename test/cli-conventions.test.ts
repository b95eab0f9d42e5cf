/**
 * The command line behaves like a well-made CLI, as a user runs it (real processes, real ports on
 * 127.0.0.1): `--version`; `--help` loads neither OpenTelemetry nor undici; LOG_LEVEL and
 * --log-level with named levels; readable logs on demand, JSON lines when not on a terminal; and
 * every command that cannot start (a port in use, a bad setting) exits non-zero with one message
 * naming the key — after closing what it started, so the process really ends.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startCaoSimulator } from '../src/demo/cao-simulator.ts';
import { scratchDir } from './helpers/scratch-dir.ts';

const CLI = new URL('../src/cli.ts', import.meta.url).pathname;
const TRACE = new URL('./helpers/trace-modules.ts', import.meta.url).pathname;
const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const scratch = scratchDir('cao-events-cli-');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI to its end. A process still running after `boundMs` is killed and reported with
 * code 'hung' — the failure these tests exist to catch (the bound is generous; a normal run ends
 * in about a second).
 */
async function cli(args: string[], env: Record<string, string> = {}, boundMs = 30_000, nodeArgs: string[] = []): Promise<Result | { code: 'hung'; stdout: string; stderr: string }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CAO_EVENT') && !k.startsWith('OTEL_') && k !== 'LOG_LEVEL'));
  const child = spawn(process.execPath, [...nodeArgs, CLI, ...args], { env: { ...clean, TMPDIR: scratch, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c));
  child.stderr.on('data', (c: Buffer) => (stderr += c));
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    child.kill('SIGKILL');
  }, boundMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return hung ? { code: 'hung', stdout, stderr } : { code, stdout, stderr };
}

async function occupied(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, server };
}

function modulesLoaded(args: string[]): Promise<string[]> {
  const out = join(scratch, `modules-${args.join('-')}.txt`);
  return cli(args, { TRACE_MODULES_OUT: out }, 30_000, ['--import', TRACE]).then((r) => {
    assert.equal(r.code, 0, r.stderr);
    return readFileSync(out, 'utf8').split('\n').filter(Boolean);
  });
}

describe('command-line conventions', () => {
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('--version (and -v) prints the package version', async () => {
    for (const flag of ['--version', '-v']) {
      const r = await cli([flag]);
      assert.equal(r.code, 0);
      assert.equal(r.stdout, `${VERSION}\n`);
    }
  });

  it('--help, --version and every command\'s --help load no dependency at all (no OpenTelemetry, undici, pino, CloudEvents)', async () => {
    for (const args of [['--help'], ['--version'], ['help', 'watch'], ...['gateway', 'watch', 'ingest', 'receive', 'replay', 'verify', 'demo'].map((c) => [c, '--help'])]) {
      const loaded = await modulesLoaded(args);
      const dependencies = loaded.filter((url) => url.includes('/node_modules/'));
      assert.deepEqual(dependencies, [], `${args.join(' ')} loaded ${dependencies.length} modules of dependencies`);
    }
    const bare = await modulesLoaded(['--help']);
    assert.ok(bare.length <= 5, `--help loads only the command line itself (got ${bare.length}: ${bare.join(', ')})`);
  });

  it('LOG_LEVEL and --log-level take named levels (any case); a bad one names the key', async () => {
    const sim = await startCaoSimulator();
    try {
      const base = ['watch', '--upstream', sim.url, '--poll-interval-ms', '100'];
      // watch runs until a signal; a bad level must stop it at once instead
      const bad = await cli(base, { LOG_LEVEL: 'loud' });
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /configuration error: logLevel \(env LOG_LEVEL\): must be one of fatal, error, warn, info, debug, trace, silent \(got "loud"\)/);
      const badFlag = await cli([...base, '--log-level', '40']);
      assert.equal(badFlag.code, 2);
      assert.match(badFlag.stderr, /logLevel \(flag --log-level\)/);
      // CAO_EVENTS_LOG_LEVEL wins over LOG_LEVEL, the flag over both
      const demoQuiet = await cli(['demo', '--summary-json'], { LOG_LEVEL: 'DEBUG', CAO_EVENTS_LOG_LEVEL: 'error' }, 60_000);
      assert.equal(demoQuiet.code, 0, demoQuiet.stderr);
      assert.equal(demoQuiet.stderr, '');
      const demoDebug = await cli(['demo', '--log-level', 'Debug'], { CAO_EVENTS_LOG_LEVEL: 'error' }, 60_000);
      assert.equal(demoDebug.code, 0, demoDebug.stderr);
      const lines = demoDebug.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number });
      assert.ok(lines.some((l) => l.level === 20), 'debug lines at --log-level Debug');
    } finally {
      await sim.close();
    }
  });

  it('logs JSON lines when stderr is not a terminal, readable lines with --log-format pretty', async () => {
    const busy = await occupied();
    try {
      // a start-up failure logs nothing; use the receiver's start-up line instead
      const json = await cli(['receive', '--port', String(busy.port)]);
      assert.equal(json.code, 1);
      const rx = spawn(process.execPath, [CLI, 'receive', '--port', '0', '--log-format', 'pretty'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      rx.stderr.on('data', (c: Buffer) => (err += c));
      while (!err.includes('\n')) await once(rx.stderr, 'data');
      rx.kill('SIGTERM');
      await once(rx, 'exit');
      assert.match(err, /INFO.*cao-events receiving CloudEvents on http:\/\/127\.0\.0\.1:\d+\//);
      assert.doesNotMatch(err, /^\{/);
      const plain = spawn(process.execPath, [CLI, 'receive', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let line = '';
      plain.stderr.on('data', (c: Buffer) => (line += c));
      while (!line.includes('\n')) await once(plain.stderr, 'data');
      plain.kill('SIGTERM');
      await once(plain, 'exit');
      assert.equal((JSON.parse(line.split('\n')[0]!) as { level: number }).level, 30);
    } finally {
      busy.server.close();
    }
  });
});

describe('logs on a terminal', () => {
  it('are readable lines, not JSON, when stderr is a terminal (a pseudo-terminal from util-linux script)', async (t) => {
    if (spawnSync('script', ['--version']).status !== 0) {
      t.skip('util-linux script is not installed: no pseudo-terminal to test with');
      return;
    }
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CAO_EVENT') && k !== 'LOG_LEVEL'));
    const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} receive --port 0`;
    const tty = spawn('script', ['-qfec', command, '/dev/null'], { env: clean, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    tty.stdout.on('data', (c: Buffer) => (out += c));
    try {
      const deadline = Date.now() + 20_000;
      while (!out.includes('receiving CloudEvents') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    } finally {
      tty.kill('SIGTERM');
      await once(tty, 'exit');
    }
    const text = out.replace(/\x1b\[[0-9;]*m/g, '');
    assert.match(text, /INFO.*cao-events receiving CloudEvents on http:\/\/127\.0\.0\.1:\d+\//);
    assert.doesNotMatch(text, /"level":/);
  });
});

describe('every command fails fast and clearly', () => {
  it('gateway: its port in use → exit 1 naming gateway.port', async () => {
    const busy = await occupied();
    try {
      const r = await cli(['gateway', '--port', String(busy.port), '--ingest-port', '0', '--no-poll']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`cao-events gateway: gateway\\.port: cannot listen on 127\\.0\\.0\\.1:${busy.port}: address already in use`));
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    } finally {
      busy.server.close();
    }
  });

  it('gateway: the ingest port in use → exit 1 naming ingest.port, after closing the proxy and the poller it had started', async () => {
    const busy = await occupied();
    const sim = await startCaoSimulator();
    try {
      const r = await cli(['gateway', '--port', '0', '--ingest-port', String(busy.port), '--upstream', sim.url, '--poll-interval-ms', '100']);
      assert.equal(r.code, 1, `${r.code}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`ingest\\.port: cannot listen on 127\\.0\\.0\\.1:${busy.port}: address already in use`));
    } finally {
      busy.server.close();
      await sim.close();
    }
  });

  it('ingest: its port in use → exit 1 naming ingest.port', async () => {
    const busy = await occupied();
    try {
      const r = await cli(['ingest', '--ingest-port', String(busy.port)]);
      assert.equal(r.code, 1, `${r.code}: ${r.stderr}`);
      assert.match(r.stderr, /cao-events ingest: ingest\.port: cannot listen/);
    } finally {
      busy.server.close();
    }
  });

  it('receive: its port in use → exit 1 naming --port', async () => {
    const busy = await occupied();
    try {
      const r = await cli(['receive', '--port', String(busy.port)]);
      assert.equal(r.code, 1, `${r.code}: ${r.stderr}`);
      assert.match(r.stderr, /cao-events receive: --port: cannot listen on 127\.0\.0\.1:\d+: address already in use/);
    } finally {
      busy.server.close();
    }
  });

  it('watch: a bad setting or sampler → exit 2 naming the key', async () => {
    const interval = await cli(['watch', '--poll-interval-ms', '5']);
    assert.equal(interval.code, 2);
    assert.match(interval.stderr, /poller\.intervalMs \(flag --poll-interval-ms\)/);
    const sampler = await cli(['watch'], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_TRACES_SAMPLER: 'sometimes' });
    assert.equal(sampler.code, 2);
    assert.match(sampler.stderr, /OTEL_TRACES_SAMPLER: unsupported sampler "sometimes"/);
    const ratio = await cli(['watch'], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' });
    assert.equal(ratio.code, 2);
    assert.match(ratio.stderr, /OTEL_TRACES_SAMPLER_ARG: the ratio of traceidratio must be a number from 0 to 1/);
  });

  it('demo: a bad OTLP protocol (flag or environment) → exit 2 at once, nothing left running', async () => {
    const flag = await cli(['demo', '--otlp-protocol', 'smoke-signals', '--otlp-endpoint', 'http://127.0.0.1:4318']);
    assert.equal(flag.code, 2, `${flag.code}: ${flag.stderr}`);
    assert.match(flag.stderr, /cao-events demo: configuration error: otlp\.protocol \(flag --otlp-protocol\): must be one of http\/protobuf, http\/json, grpc/);
    assert.equal(flag.stdout, '', 'nothing was started');
    const env = await cli(['demo'], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'smoke' });
    assert.equal(env.code, 2, `${env.code}: ${env.stderr}`);
    assert.match(env.stderr, /OTEL_EXPORTER_OTLP_PROTOCOL: unsupported OTLP protocol "smoke"/);
    const level = await cli(['demo', '--log-level', 'chatty']);
    assert.equal(level.code, 2);
    assert.match(level.stderr, /logLevel \(flag --log-level\)/);
  });

  it('replay and verify: bad input → exit 2 naming it', async () => {
    const replay = await cli(['replay', '--outbox-dir', scratch, '--callback-url', 'ftp://127.0.0.1/']);
    assert.equal(replay.code, 2);
    assert.match(replay.stderr, /callbackUrl \(flag --callback-url\): must be an http:\/\/ or https:\/\/ URL/);
    const verify = await cli(['verify', '--secret', `whsec_${Buffer.alloc(32, 1).toString('base64')}`, '--file', join(scratch, 'missing.json')]);
    assert.equal(verify.code, 2);
    assert.match(verify.stderr, /--file .*missing\.json: cannot be read \(ENOENT\)/);
  });
});
