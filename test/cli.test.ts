/**
 * The command line as a user runs it: real processes, real ports on 127.0.0.1. --help on every
 * command, clear errors and exit code 2 on bad configuration, exactly one INFO line at start-up
 * when no callback URL is set, the receiver printing events.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { request } from 'undici';
import { encodeBinary } from '../exporters/cloudevents/encode.ts';
import { spanEventToCloudEvent } from '../exporters/transform.ts';
import { startCaoSimulator } from '../src/demo/cao-simulator.ts';
import { waitFor } from './helpers/otlp-receiver.ts';

const CLI = new URL('../src/cli.ts', import.meta.url).pathname;

interface Running {
  child: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

function start(args: string[], env: Record<string, string> = {}): Running {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CAO_EVENT') && !k.startsWith('OTEL_')));
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...clean, ...env } });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c));
  child.stderr.on('data', (c: Buffer) => (err += c));
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function runToEnd(args: string[], env: Record<string, string> = {}) {
  const r = start(args, env);
  const code = await r.exit;
  return { code, stdout: r.stdout(), stderr: r.stderr() };
}

function logLines(text: string): Array<Record<string, unknown>> {
  return text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('cao-events command line', () => {
  for (const command of ['gateway', 'watch', 'ingest', 'receive', 'demo', 'replay', 'verify']) {
    it(`${command} --help prints its usage and exits 0`, async () => {
      const { code, stdout } = await runToEnd([command, '--help']);
      assert.equal(code, 0);
      assert.match(stdout, new RegExp(`Usage: cao-events ${command}`));
    });
  }

  it('without a command prints the command list; an unknown command exits 2', async () => {
    const help = await runToEnd([]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Commands:[\s\S]*gateway[\s\S]*receive/);
    const unknown = await runToEnd(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
  });

  it('refuses bad configuration with one clear message naming the key, exit code 2', async () => {
    const badMode = await runToEnd(['gateway', '--mode', 'xml']);
    assert.equal(badMode.code, 2);
    assert.match(badMode.stderr, /configuration error: mode \(flag --mode\): must be one of structured, binary, batch/);
    const badEnv = await runToEnd(['ingest'], { CAO_EVENT_CALLBACK_URL: 'not a url' });
    assert.equal(badEnv.code, 2);
    assert.match(badEnv.stderr, /callbackUrl \(env CAO_EVENT_CALLBACK_URL\): not a valid URL/);
    const badOtel = await runToEnd(['ingest', '--ingest-port', '0'], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'smoke' });
    assert.equal(badOtel.code, 2);
    assert.match(badOtel.stderr, /OTEL_EXPORTER_OTLP_PROTOCOL: unsupported OTLP protocol "smoke"/);
    const badFlag = await runToEnd(['gateway', '--colour', 'blue']);
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.stderr, /Unknown option '--colour'/);
    const noOutbox = await runToEnd(['replay', '--dead-letter', '--callback-url', 'http://127.0.0.1:9/']);
    assert.equal(noOutbox.code, 2);
    assert.match(noOutbox.stderr, /outbox\.dir: replay needs --outbox-dir/);
    const badSince = await runToEnd(['replay', '--outbox-dir', '/tmp', '--since', 'last tuesday', '--callback-url', 'http://127.0.0.1:9/']);
    assert.equal(badSince.code, 2);
    assert.match(badSince.stderr, /since \(flag --since\): not a time/);
    const badFile = await runToEnd(['watch', '--config', '/nonexistent/cao.yaml']);
    assert.equal(badFile.code, 2);
    assert.match(badFile.stderr, /cao\.yaml: cannot be read/);
  });

  it('gateway with no callback URL: exactly one INFO line at start-up and nothing else while it works', async () => {
    const sim = await startCaoSimulator();
    const gw = start(['gateway', '--port', '0', '--ingest-port', '0', '--upstream', sim.url, '--poll-interval-ms', '100']);
    await waitFor(() => logLines(gw.stderr()).length >= 1, 20_000, 'the start-up line');
    const [line] = logLines(gw.stderr());
    assert.equal(line!.level, 30);
    assert.match(String(line!.msg), /no callback URL .*CloudEvents delivery is off/);
    const url = String(line!.listen);
    // traffic through the gateway, and poller cycles, produce events but no further log lines
    const res = await request(new URL('/sessions?agent_profile=developer&provider=kiro_cli', url), { method: 'POST' });
    assert.equal(res.statusCode, 201);
    await res.body.dump();
    await new Promise((r) => setTimeout(r, 500));
    gw.child.kill('SIGTERM');
    assert.equal(await gw.exit, 0);
    assert.equal(logLines(gw.stderr()).length, 1, gw.stderr());
    assert.equal(gw.stderr().trim().split('\n').length, 1);
    await sim.close();
  });

  it('receive prints one readable line per event and answers 400 to invalid requests', async () => {
    const rx = start(['receive', '--port', '0']);
    await waitFor(() => logLines(rx.stderr()).length >= 1, 20_000, 'the receiver to listen');
    const url = String(logLines(rx.stderr())[0]!.url);
    const event = spanEventToCloudEvent(
      { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 },
      { name: 'cao.message_sent', time: [1_764_000_000, 123_456_789], attributes: { 'cao.session.name': 'cao-cli', 'cao.message.sender': 'a1b2c3d4', 'cao.message.receiver': 'e5f6a7b8', 'cao.orchestration.type': 'handoff', 'cao.orchestration.phase': 'completed', 'cao.message.content': 'Review done: two issues in the tokenizer, see notes' } },
      0,
    )!;
    const { headers, body } = encodeBinary(event);
    const ok = await request(url, { method: 'POST', headers, body });
    assert.equal(ok.statusCode, 202);
    await ok.body.dump();
    const bad = await request(url, { method: 'POST', headers: { 'content-type': 'application/cloudevents+json' }, body: '{"specversion":"1.0"}' });
    assert.equal(bad.statusCode, 400);
    await bad.body.dump();
    await waitFor(() => rx.stdout().includes('\n'), 5_000, 'the printed line');
    assert.match(rx.stdout(), /message_sent\s+cao-cli\s+a1b2c3d4 → e5f6a7b8\s+\[handoff\/completed\]\s+"Review done: two issues in the tokenizer, see notes"/);
    rx.child.kill('SIGTERM');
    assert.equal(await rx.exit, 0);
  });
});
