/**
 * Several sinks from one config file: the schema and its errors (each naming the exact path),
 * filters (each sink gets only its events), per-sink content policy, the callback-URL shorthand
 * beside them, a user transform module from examples/, and broken modules stopping start-up.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { WebhookSink } from '../exporters/delivery/webhook-sink.ts';
import type { CaoEventData } from '../exporters/transform.ts';
import { ConfigError, loadConfig } from '../src/config.ts';
import type { CaoEvent } from '../src/core/events.ts';
import { createLogger } from '../src/logger.ts';
import { startReceiver } from '../src/receiver.ts';
import { startRuntime } from '../src/runtime.ts';
import { startCaptureServer } from './helpers/capture-server.ts';
import { logCapture } from './helpers/log-capture.ts';
import { scratchDir } from './helpers/scratch-dir.ts';

const dir = scratchDir('cao-events-sinks-');
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}
const EXAMPLE = new URL('../examples/transforms/teams-card.mjs', import.meta.url).pathname;
const CLI = new URL('../src/cli.ts', import.meta.url).pathname;

const SUP = 'a1b2c3d4';
const DEV = 'e5f6a7b8';

/** Two sessions, every event type, every orchestration type. */
function script(): CaoEvent[] {
  const out: CaoEvent[] = [];
  for (const session of ['cao-prod-1', 'cao-dev-1']) {
    const [sup, dev] = session === 'cao-prod-1' ? [SUP, DEV] : ['11111111', '22222222'];
    out.push(
      { type: 'session_created', sessionName: session },
      { type: 'terminal_created', sessionName: session, terminalId: sup, agentName: 'code_supervisor', provider: 'kiro_cli' },
      { type: 'terminal_created', sessionName: session, terminalId: dev, agentName: 'developer', provider: 'claude_code' },
      { type: 'message_sent', sessionName: session, sender: sup, receiver: dev, orchestrationType: 'assign', phase: 'dispatched', message: `Build the parser for ${session}, all of it, with tests` },
      { type: 'message_sent', sessionName: session, sender: sup, receiver: dev, orchestrationType: 'handoff', phase: 'dispatched', message: `Review ${session}` },
      { type: 'message_sent', sessionName: session, sender: dev, receiver: sup, orchestrationType: 'send_message', phase: 'delivered', message: 'done' },
      { type: 'terminal_killed', sessionName: session, terminalId: dev },
      { type: 'terminal_killed', sessionName: session, terminalId: sup },
      { type: 'session_killed', sessionName: session },
    );
  }
  return out;
}

describe('sinks: the config schema', () => {
  it('parses a full sink entry', () => {
    const path = file('full.yaml', `
sinks:
  - name: audit
    url: \${AUDIT_URL}
    mode: batch
    filter:
      types: [message_sent, session_created]
      sessions: ['cao-prod-*']
      orchestration: [handoff]
      phases: dispatched
    headers: { X-Team: cao, X-Token: '\${AUDIT_TOKEN}' }
    timeoutMs: 2000
    maxQueue: 500
    retry: { maxAttempts: 3, initialDelayMs: 100, maxDelayMs: 1000 }
    content: truncate:80
  - name: slack-thread
    transform: slack
    slack: { token: '\${SLACK_BOT_TOKEN}', channel: C0CAOEVENTS }
  - transform: ./my-transform.mjs
    url: http://127.0.0.1:9/x
    options: { title: hello }
`);
    const config = loadConfig({ configPath: path, env: { AUDIT_URL: 'https://audit.example.com/cao', AUDIT_TOKEN: 't0k', SLACK_BOT_TOKEN: 'xoxb-1-2-abc' } });
    assert.equal(config.sinks.length, 3);
    assert.deepEqual(config.sinks[0], {
      name: 'audit',
      url: 'https://audit.example.com/cao',
      mode: 'batch',
      options: {},
      headers: { 'x-team': 'cao', 'x-token': 't0k' },
      content: { kind: 'truncate', max: 80 },
      filter: { types: ['message_sent', 'session_created'], sessions: ['cao-prod-*'], orchestration: ['handoff'], phases: ['dispatched'] },
      timeoutMs: 2000,
      maxQueue: 500,
      retry: { maxAttempts: 3, initialDelayMs: 100, maxDelayMs: 1000 },
    });
    assert.deepEqual(config.sinks[1]!.transform, { kind: 'builtin', name: 'slack' });
    assert.equal(config.sinks[1]!.url, 'https://slack.com/api/', 'Web API mode needs no url (the API base)');
    assert.deepEqual(config.sinks[1]!.slack, { token: 'xoxb-1-2-abc', channel: 'C0CAOEVENTS' });
    assert.match(config.sinks[2]!.name, /^127\.0\.0\.1-9-[0-9a-f]{8}$/, 'an unnamed sink: host, port and a hash of the URL, never its path');
    assert.deepEqual(config.sinks[2]!.transform, { kind: 'module', spec: './my-transform.mjs', path: join(dir, 'my-transform.mjs') });
    assert.deepEqual(config.sinks[2]!.options, { title: 'hello' });
  });

  const bad: Array<[string, string, RegExp]> = [
    ['an unknown event type in a filter', 'sinks:\n  - url: http://127.0.0.1:1/\n  - url: http://127.0.0.1:2/\n    filter: { types: [message_sent, message_recieved] }\n', /^sinks\[1\]\.filter\.types\[1\] \(.*\): must be one of session_created, .* \(got "message_recieved"\)/],
    ['an unknown orchestration type', 'sinks:\n  - url: http://127.0.0.1:1/\n    filter: { orchestration: [delegate] }\n', /^sinks\[0\]\.filter\.orchestration\[0\] .*must be one of send_message, handoff, assign/],
    ['a sink without url', 'sinks:\n  - name: nowhere\n', /^sinks\[0\]\.url .*is required/],
    ['a url that is not http', 'sinks:\n  - url: ftp://127.0.0.1/\n', /^sinks\[0\]\.url .*http:\/\/ or https:\/\//],
    ['an unknown key', 'sinks:\n  - url: http://127.0.0.1:1/\n    filtr: {}\n', /^sinks\[0\]\.filtr .*unknown key; known keys: name, url/],
    ['an unknown transform', 'sinks:\n  - url: http://127.0.0.1:1/\n    transform: teams\n', /^sinks\[0\]\.transform .*must be slack or discord, or a module path/],
    ['a content mode with a transform', 'sinks:\n  - url: http://127.0.0.1:1/\n    transform: discord\n    mode: binary\n', /^sinks\[0\]\.mode .*a sink with a transform has none/],
    ['a bad content policy', 'sinks:\n  - url: http://127.0.0.1:1/\n    content: truncate:0\n', /^sinks\[0\]\.content .*full, none or truncate:N/],
    ['slack settings without the slack transform', 'sinks:\n  - url: http://127.0.0.1:1/\n    slack: { token: xoxb-1, channel: C1 }\n', /^sinks\[0\]\.slack .*only goes with transform: slack/],
    ['a Slack token that is not one', 'sinks:\n  - transform: slack\n    slack: { token: hunter2, channel: C1 }\n', /^sinks\[0\]\.slack\.token .*must be a Slack bot token/],
    ['a Slack thread layout without a channel', 'sinks:\n  - transform: slack\n    slack: { token: xoxb-1 }\n', /^sinks\[0\]\.slack\.channel .*is required for the thread layout/],
    ['a Slack channel layout given a channel', 'sinks:\n  - transform: slack\n    slack: { token: xoxb-1, layout: channel, channel: C1 }\n', /^sinks\[0\]\.slack\.channel .*is for the thread layout/],
    ['an unknown Slack layout', 'sinks:\n  - transform: slack\n    slack: { token: xoxb-1, layout: dm }\n', /^sinks\[0\]\.slack\.layout .*must be thread or channel/],
    ['Slack replies inside a thread', 'sinks:\n  - transform: slack\n    slack: { token: xoxb-1, channel: C1, laterPhases: reply }\n', /^sinks\[0\]\.slack\.laterPhases .*reply needs layout: channel/],
    ['a Slack webhook asked to edit', 'sinks:\n  - transform: slack\n    url: http://127.0.0.1:1/\n    slack: { laterPhases: edit }\n', /^sinks\[0\]\.slack\.laterPhases .*cannot edit or react/],
    ['a Slack webhook asked for a channel layout', 'sinks:\n  - transform: slack\n    url: http://127.0.0.1:1/\n    slack: { layout: channel }\n', /^sinks\[0\]\.slack\.layout .*needs slack\.token/],
    ['a Slack invitee that is not a user id', 'sinks:\n  - transform: slack\n    slack: { token: xoxb-1, layout: channel, invite: [alice] }\n', /^sinks\[0\]\.slack\.invite\[0\] .*Slack user id/],
    ['a Slack channel prefix Slack would refuse', 'sinks:\n  - transform: slack\n    slack: { token: xoxb-1, layout: channel, channelPrefix: "CAO " }\n', /^sinks\[0\]\.slack\.channelPrefix .*lowercase letters/],
    ['a Slack webhook sink without url', 'sinks:\n  - transform: slack\n    slack: { details: true }\n', /^sinks\[0\]\.url .*incoming webhook URL; or set slack\.token/],
    ['an unknown Discord layout', 'sinks:\n  - transform: discord\n    url: http://127.0.0.1:1/\n    discord: { layout: thread }\n', /^sinks\[0\]\.discord\.layout .*must be one of channel, forum/],
    ['discord settings without the discord transform', 'sinks:\n  - url: http://127.0.0.1:1/\n    discord: { layout: forum }\n', /^sinks\[0\]\.discord .*only goes with transform: discord/],
    ['a reserved header', 'sinks:\n  - url: http://127.0.0.1:1/\n    headers: { Webhook-Signature: x }\n', /^sinks\[0\]\.headers\.Webhook-Signature .*set by cao-events/],
    ['retry delays the wrong way round', 'sinks:\n  - url: http://127.0.0.1:1/\n    retry: { initialDelayMs: 5000, maxDelayMs: 10 }\n', /^sinks\[0\]\.retry\.initialDelayMs .*not be larger than maxDelayMs/],
    ['a duplicate name', 'sinks:\n  - { name: a, url: "http://127.0.0.1:1/" }\n  - { name: a, url: "http://127.0.0.1:2/" }\n', /^sinks\[1\]\.name .*duplicate sink name "a"/],
    ['an unset environment variable', 'sinks:\n  - url: ${NOT_SET_ANYWHERE}\n', /^sinks\[0\]\.url .*environment variable NOT_SET_ANYWHERE is not set/],
    ['sinks that are not a list', 'sinks:\n  url: http://127.0.0.1:1/\n', /^sinks \(.*\): must be a list/],
  ];
  for (const [what, text, message] of bad) {
    it(`refuses ${what}, naming the exact path`, () => {
      assert.throws(() => loadConfig({ configPath: file('bad.yaml', text) }), (err: Error) => err instanceof ConfigError && message.test(err.message));
    });
  }
});

describe('sinks: several from one config file', () => {
  it('each sink receives only the events its filter selects; the callback URL still gets everything', async () => {
    const [all, handoffs, prod, lifecycle, callback] = await Promise.all([startReceiver(), startReceiver(), startReceiver(), startReceiver(), startReceiver()]);
    const path = file('multi.yaml', `
callbackUrl: ${callback.url}
sinks:
  - name: all
    url: ${all.url}
    mode: binary
  - name: handoffs
    url: ${handoffs.url}
    filter: { types: [message_sent], orchestration: [handoff] }
  - name: prod
    url: ${prod.url}
    mode: batch
    filter: { sessions: ['cao-prod-*'] }
  - name: lifecycle
    url: ${lifecycle.url}
    filter: { types: [session_created, session_killed], sessions: ['*-dev-?'] }
`);
    const runtime = startRuntime(loadConfig({ configPath: path }), createLogger('silent'), { env: {} });
    assert.match(runtime.deliveryNote, /CloudEvents to sink 127\.0\.0\.1-\d+-[0-9a-f]{8} \(structured\); sinks all, handoffs, prod, lifecycle/);
    for (const event of script()) runtime.record(event);
    await runtime.telemetry.forceFlush();
    const seen = (r: typeof all) => r.received.map((x) => {
      const d = x.event.data as CaoEventData;
      return `${d.session_name}:${d.event_type}${d.orchestration_type ? `:${d.orchestration_type}` : ''}`;
    });
    assert.equal(callback.received.length, 18);
    assert.deepEqual(seen(all), seen(callback));
    assert.ok(all.received.every((r) => r.mode === 'binary'));
    assert.deepEqual(seen(handoffs), ['cao-prod-1:message_sent:handoff', 'cao-dev-1:message_sent:handoff']);
    assert.equal(prod.received.length, 9);
    assert.ok(seen(prod).every((s) => s.startsWith('cao-prod-1:')));
    assert.ok(prod.received.every((r) => r.mode === 'batch'));
    assert.deepEqual(seen(lifecycle), ['cao-dev-1:session_created', 'cao-dev-1:session_killed']);
    const stats = (runtime.telemetry.sinks as WebhookSink[]).slice(0, 4).map((s) => [s.name, s.stats.filtered, s.stats.delivered]);
    assert.deepEqual(stats, [['all', 0, 18], ['handoffs', 16, 2], ['prod', 9, 9], ['lifecycle', 16, 2]]);
    await runtime.close();
    await Promise.all([all, handoffs, prod, lifecycle, callback].map((r) => r.close()));
  });

  it('content: none and truncate:N apply per sink, while other sinks get the full message', async () => {
    const [full, none, short] = await Promise.all([startReceiver(), startReceiver(), startReceiver()]);
    const path = file('content.yaml', `
sinks:
  - { name: full, url: "${full.url}" }
  - { name: none, url: "${none.url}", content: none }
  - { name: short, url: "${short.url}", content: "truncate:10" }
`);
    const runtime = startRuntime(loadConfig({ configPath: path }), createLogger('silent'), { env: {} });
    for (const event of script().slice(0, 4)) runtime.record(event);
    await runtime.telemetry.forceFlush();
    const message = (r: typeof full) => (r.received[3]!.event.data as CaoEventData).message;
    assert.equal(message(full), 'Build the parser for cao-prod-1, all of it, with tests');
    assert.equal(message(none), undefined);
    assert.ok(!('message' in (none.received[3]!.event.data as object)), 'no message key at all');
    assert.equal((none.received[3]!.event.data as CaoEventData).sender, SUP, 'everything else is kept');
    assert.equal(message(short), 'Build the …');
    await runtime.close();
    await Promise.all([full, none, short].map((r) => r.close()));
  });
});

describe('sinks: user transform modules', () => {
  it('applies the worked example (examples/transforms/teams-card.mjs): Adaptive Cards for messages, lifecycle skipped', async () => {
    const teams = await startCaptureServer();
    const path = file('teams.yaml', `
sinks:
  - name: teams
    url: ${teams.url}
    transform: ${EXAMPLE}
    options: { title: CAO agents }
    filter: { phases: [dispatched] }
    headers: { X-Source: cao-events }
`);
    const runtime = startRuntime(loadConfig({ configPath: path }), createLogger('silent'), { env: {} });
    for (const event of script().slice(0, 9)) runtime.record(event);
    await runtime.telemetry.forceFlush();
    type Card = { type: string; attachments: Array<{ contentType: string; content: { type: string; body: Array<{ type: string; text?: string; facts?: Array<{ title: string; value: string }> }> } }> };
    const cards = teams.json<Card>();
    assert.equal(cards.length, 2, 'the two dispatched messages; delivered messages filtered, lifecycle skipped by the transform');
    const card = cards[0]!.attachments[0]!;
    assert.equal(cards[0]!.type, 'message');
    assert.equal(card.contentType, 'application/vnd.microsoft.card.adaptive');
    assert.equal(card.content.type, 'AdaptiveCard');
    const texts = card.content.body.map((b) => b.text).filter(Boolean);
    assert.deepEqual(texts, ['CAO agents', 'code_supervisor → developer', 'Build the parser for cao-prod-1, all of it, with tests'], 'agents by the names the events carry');
    assert.deepEqual(card.content.body.at(-1)!.facts, [{ title: 'Session', value: 'cao-prod-1' }, { title: 'Type', value: 'assign (dispatched)' }]);
    assert.equal(teams.requests[0]!.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(teams.requests[0]!.headers['x-source'], 'cao-events');
    const sink = runtime.telemetry.sinks[0] as WebhookSink;
    assert.equal(sink.stats.skipped, 6, 'session and terminal events: the transform returned null');
    assert.equal(sink.stats.delivered, 2);
    assert.equal(sink.stats.filtered, 1, 'the delivered-phase message');
    await runtime.close();
    await teams.close();
  });

  it('a relative module path is resolved against the config file, and a factory export gets the sink options', async () => {
    const hook = await startCaptureServer();
    file('factory.mjs', `
export function createTransform(options, { sink }) {
  return {
    name: 'upper',
    maxBatch: 10,
    encode(events) {
      return { headers: { 'x-sink': sink }, body: events.map((e) => options.prefix + String(e.data.event_type).toUpperCase()).join('\\n') };
    },
  };
}`);
    const path = file('factory.yaml', `sinks:\n  - { name: upper, url: "${hook.url}", transform: ./factory.mjs, options: { prefix: "cao:" } }\n`);
    const runtime = startRuntime(loadConfig({ configPath: path }), createLogger('silent'), { env: {} });
    for (const event of script().slice(0, 3)) runtime.record(event);
    await runtime.telemetry.forceFlush();
    const lines = hook.requests.flatMap((r) => r.body.split('\n'));
    assert.deepEqual(lines, ['cao:SESSION_CREATED', 'cao:TERMINAL_CREATED', 'cao:TERMINAL_CREATED']);
    assert.equal(hook.requests[0]!.headers['x-sink'], 'upper');
    await runtime.close();
    await hook.close();
  });

  it('a transform that throws while encoding costs its events only: a WARN line, counted, the next event goes out', async () => {
    const hook = await startCaptureServer();
    file('flaky.mjs', `export default (event) => { if (event.data.event_type === 'terminal_created') throw new Error('no terminals here'); return { body: event.data.event_type }; };`);
    const path = file('flaky.yaml', `sinks:\n  - { name: flaky, url: "${hook.url}", transform: ./flaky.mjs }\n`);
    const logs = logCapture();
    const runtime = startRuntime(loadConfig({ configPath: path }), createLogger('info', logs.stream), { env: {} });
    for (const event of script().slice(0, 4)) runtime.record(event);
    await runtime.telemetry.forceFlush();
    assert.deepEqual(hook.requests.map((r) => r.body), ['session_created', 'message_sent']);
    assert.equal((runtime.telemetry.sinks[0] as WebhookSink).stats.failed, 2);
    const warn = logs.lines().find((l) => l.msg === 'sink transform failed, events not delivered');
    assert.equal(warn?.sink, 'flaky');
    assert.equal(warn?.error, 'no terminals here');
    await runtime.close();
    await hook.close();
  });

  const broken: Array<[string, string | undefined, RegExp]> = [
    ['throws while loading', 'throw new Error("boom at load");', /failed to load: Error: boom at load/],
    ['has a syntax error', 'export default function (event { return null }', /failed to load: SyntaxError/],
    ['exports no function', 'export const answer = 42;', /exports no transform; export default function \(event, context\)/],
    ['uses top-level await', 'await Promise.resolve();\nexport default () => null;', /uses top-level await/],
    ['does not exist', undefined, /: not found/],
  ];
  for (const [what, source, message] of broken) {
    it(`a module that ${what} stops start-up with a ConfigError naming the sink and the module path`, () => {
      const name = `broken-${what.replace(/\W+/g, '-')}.mjs`;
      if (source !== undefined) file(name, source);
      const path = file('broken.yaml', `sinks:\n  - { url: "http://127.0.0.1:9/" }\n  - { name: teams, url: "http://127.0.0.1:9/", transform: ./${name} }\n`);
      const config = loadConfig({ configPath: path });
      assert.throws(() => startRuntime(config, createLogger('silent'), { env: {} }), (err: Error) =>
        err instanceof ConfigError &&
        err.message.startsWith(`sinks[1] (teams): transform module ./${name} (${join(dir, name)}): `) &&
        message.test(err.message));
    });
  }

  it('the gateway command reports a broken module as a configuration error and exits 2', async () => {
    file('boom.mjs', 'throw new Error("boom at load");');
    const path = file('cli-broken.yaml', 'sinks:\n  - { name: teams, url: "http://127.0.0.1:9/", transform: ./boom.mjs }\n');
    const child = spawn(process.execPath, [CLI, 'gateway', '--config', path, '--port', '0', '--ingest-port', '0', '--no-poll'], { env: { PATH: process.env.PATH ?? '' } });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c));
    const [code] = await once(child, 'exit');
    assert.equal(code, 2);
    assert.match(err, /^cao-events gateway: configuration error: sinks\[0\] \(teams\): transform module \.\/boom\.mjs \(.*boom\.mjs\): failed to load: Error: boom at load$/m);
  });
});
