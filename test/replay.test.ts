/**
 * `cao-events replay` per sink: dead letters of a Slack, a Discord and a signed CloudEvents sink
 * go back through that sink's own renderer, signature and headers (selected by sink name),
 * with their original ids; `--sink` picks sinks; pending events are replayed only while no
 * sidecar holds the outbox. Slack and Discord are the local fakes of test/helpers (the real
 * services are unreachable from here); everything else is real (the CLI process, HTTP, files).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readDeadLetters } from '../exporters/delivery/outbox-files.ts';
import { verify } from '../exporters/delivery/signing.ts';
import { loadConfig } from '../src/config.ts';
import type { CaoEvent } from '../src/core/events.ts';
import { createLogger } from '../src/logger.ts';
import { startRuntime } from '../src/runtime.ts';
import { outboxDirOf } from '../src/sink-factory.ts';
import { startCaptureServer } from './helpers/capture-server.ts';
import { startDiscordFake } from './helpers/discord-fake.ts';
import { startSlackFake } from './helpers/slack-fake.ts';
import { scratchDir } from './helpers/scratch-dir.ts';

const CLI = new URL('../src/cli.ts', import.meta.url).pathname;
const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
const dir = scratchDir('cao-events-replay-');

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CAO_EVENT') && !k.startsWith('OTEL_')));
  const child = spawn(process.execPath, [CLI, ...args], { env: clean });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c));
  child.stderr.on('data', (c: Buffer) => (stderr += c));
  return once(child, 'exit').then(([code]) => ({ code: code as number, stdout, stderr }));
}

function configFile(name: string, urls: { slack: string; discord: string; signed: string }, outbox: string): string {
  const path = join(dir, name);
  writeFileSync(path, `
outbox: { dir: ${JSON.stringify(outbox)} }
sinks:
  - { name: slack, url: "${urls.slack}", transform: slack }
  - { name: discord, url: "${urls.discord}", transform: discord }
  - name: signed
    url: "${urls.signed}"
    headers: { X-Team: agents }
    signing: { secrets: ["${SECRET}"] }
`);
  return path;
}

const session: CaoEvent[] = [
  { type: 'session_created', sessionName: 'cao-replay' },
  { type: 'terminal_created', sessionName: 'cao-replay', terminalId: 'a1b2c3d4', agentName: 'code_supervisor', provider: 'kiro_cli' },
  { type: 'terminal_created', sessionName: 'cao-replay', terminalId: 'e5f6a7b8', agentName: 'developer', provider: 'claude_code' },
  { type: 'message_sent', sessionName: 'cao-replay', sender: 'a1b2c3d4', receiver: 'e5f6a7b8', orchestrationType: 'assign', phase: 'dispatched', message: 'Write the parser' },
];

describe('replay per sink', () => {
  it('restores Slack, Discord and signed dead letters through their own sinks, ids kept', async () => {
    const outbox = join(dir, 'outbox-1');
    // First run: every sink refuses (HTTP 400): the events go to each sink's dead-letter file.
    const refusing = createServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(400).end('{"error":"nope"}')); });
    await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
    const r = `http://127.0.0.1:${(refusing.address() as AddressInfo).port}`;
    const first = configFile('first.yaml', { slack: `${r}/services/T0/B0/x`, discord: `${r}/api/webhooks/1/x`, signed: `${r}/signed` }, outbox);
    const runtime = startRuntime(loadConfig({ configPath: first }), createLogger('silent'), { metrics: false });
    for (const e of session) runtime.record(e);
    await runtime.telemetry.forceFlush();
    await runtime.close();
    refusing.close();
    const dead = (sink: string) => readDeadLetters(outboxDirOf(outbox, sink));
    const originalIds = dead('signed').map((d) => d.event.id);
    assert.equal(originalIds.length, 4);
    assert.equal(dead('slack').length, 4);
    assert.equal(dead('discord').length, 4);

    // Replay with the services back (the same sink names, their working URLs).
    const [slack, discord, signed] = await Promise.all([startSlackFake(), startDiscordFake(), startCaptureServer()]);
    const second = configFile('second.yaml', { slack: slack.webhookUrl, discord: discord.webhookUrl, signed: signed.url }, outbox);
    const result = await run(['replay', '--dead-letter', '--config', second]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^replay slack: 4 selected, 4 delivered, 0 failed$/m);
    assert.match(result.stdout, /^replay discord: 4 selected, 4 delivered, 0 failed$/m);
    assert.match(result.stdout, /^replay signed: 4 selected, 4 delivered, 0 failed$/m);
    assert.match(result.stdout, /^replay: 12 selected, 12 delivered, 0 failed$/m);

    // Slack: Block Kit through the slack renderer (agent names learned from the replayed events).
    assert.equal(slack.refused.length, 0, JSON.stringify(slack.refused));
    const slackText = JSON.stringify(slack.messages.map((m) => m.blocks));
    assert.match(slackText, /\*code_supervisor\* → \*developer\*/, "agents by name");
    assert.match(slackText, /Write the parser/);
    // Discord: embeds under the speaking agent's name through the discord renderer.
    assert.equal(discord.refused.length, 0, JSON.stringify(discord.refused));
    const assign = discord.messages.flatMap((m) => m.embeds.map((e) => ({ username: m.username, e }))).find((x) => x.e.description === 'Write the parser');
    assert.equal(assign?.username, 'code_supervisor');
    assert.deepEqual(discord.messages.map((m) => m.allowed_mentions), discord.messages.map(() => ({ parse: [] })));
    // Signed: structured CloudEvents, the sink's header, a valid signature, the original ids.
    assert.equal(signed.requests.length, 4);
    for (const req of signed.requests) {
      assert.equal(req.headers['content-type'], 'application/cloudevents+json; charset=utf-8');
      assert.equal(req.headers['x-team'], 'agents');
      assert.equal(verify(req.headers, req.body, [SECRET]).ok, true);
      assert.equal(req.headers['webhook-id'], (JSON.parse(req.body) as { id: string }).id);
    }
    assert.deepEqual(signed.json<{ id: string }>().map((e) => e.id), originalIds);
    for (const sink of ['slack', 'discord', 'signed']) assert.deepEqual(dead(sink), [], `${sink}: delivered dead letters leave the file`);
    await Promise.all([slack.close(), discord.close(), signed.close()]);
  });

  it('--sink picks sinks by name; an unknown name is a configuration error; what fails again stays', async () => {
    const outbox = join(dir, 'outbox-2');
    const refusing = createServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(422).end()); });
    await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
    const r = `http://127.0.0.1:${(refusing.address() as AddressInfo).port}`;
    const cfg = configFile('refusing.yaml', { slack: `${r}/s`, discord: `${r}/d`, signed: `${r}/x` }, outbox);
    const runtime = startRuntime(loadConfig({ configPath: cfg }), createLogger('silent'), { metrics: false });
    for (const e of session.slice(0, 1)) runtime.record(e);
    await runtime.telemetry.forceFlush();
    await runtime.close();
    const unknown = await run(['replay', '--dead-letter', '--config', cfg, '--sink', 'teams']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /configuration error: sink \(flag --sink\): no configured sink named "teams" \(configured: slack, discord, signed\)/);
    const again = await run(['replay', '--dead-letter', '--config', cfg, '--sink', 'signed', '--timeout-ms', '2000']);
    assert.equal(again.code, 1, 'still refused: exit 1');
    assert.match(again.stdout, /^replay signed: 1 selected, 0 delivered, 1 failed$/m);
    assert.doesNotMatch(again.stdout, /replay slack/);
    assert.equal(readDeadLetters(outboxDirOf(outbox, 'signed')).length, 1, 'what failed again stays in the dead-letter file');
    refusing.close();
  });

  it('pending events: refused while a sidecar holds the outbox, replayed through the sink when it does not', async () => {
    const outbox = join(dir, 'outbox-3');
    const down = createServer();
    await new Promise<void>((r) => down.listen(0, '127.0.0.1', r));
    const port = (down.address() as AddressInfo).port;
    await new Promise((r) => down.close(r));
    const signedUrl = `http://127.0.0.1:${port}/signed`;
    const cfg = configFile('pending.yaml', { slack: signedUrl, discord: signedUrl, signed: signedUrl }, outbox);
    const runtime = startRuntime(loadConfig({ configPath: cfg, flags: { 'shutdown-timeout-ms': '100' } }), createLogger('silent'), { metrics: false });
    for (const e of session) runtime.record(e);
    const locked = await run(['replay', '--config', cfg, '--sink', 'signed']);
    assert.equal(locked.code, 1);
    assert.match(locked.stderr, /replay signed: .* is in use by process \d+/);
    await runtime.close();
    const signed = await startCaptureServer();
    const cfg2 = configFile('pending2.yaml', { slack: signedUrl, discord: signedUrl, signed: signed.url }, outbox);
    const replayed = await run(['replay', '--config', cfg2, '--sink', 'signed']);
    assert.equal(replayed.code, 0, replayed.stderr);
    assert.match(replayed.stdout, /^replay signed: 4 selected, 4 delivered, 0 failed$/m);
    assert.ok(signed.requests.every((req) => verify(req.headers, req.body, [SECRET]).ok));
    await signed.close();
  });
});
