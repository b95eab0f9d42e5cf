/**
 * The `slack` transform against a local Slack fake (test/helpers/slack-fake.ts: the real Slack
 * is unreachable from here): Block Kit content, section limits, a burst of 50 coalesced within
 * the 1-message-per-second limit without loss, 429 Retry-After, and Web API mode where each CAO
 * session is one thread.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { WebhookSink } from '../exporters/delivery/webhook-sink.ts';
import { loadConfig } from '../src/config.ts';
import type { CaoEvent } from '../src/core/events.ts';
import { createLogger } from '../src/logger.ts';
import { type Runtime, startRuntime } from '../src/runtime.ts';
import { logCapture } from './helpers/log-capture.ts';
import { waitFor } from './helpers/otlp-receiver.ts';
import { type SlackFake, blockText, startSlackFake } from './helpers/slack-fake.ts';

const dir = mkdtempSync(join(tmpdir(), 'cao-events-slack-'));
const SUP = 'a1b2c3d4';
const DEV = 'e5f6a7b8';

function start(sinkYaml: string, env: Record<string, string> = {}, logs = logCapture()): Runtime {
  const path = join(dir, `slack-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, `sinks:\n${sinkYaml}`);
  return startRuntime(loadConfig({ configPath: path, env }), createLogger('info', logs.stream), { env: {} });
}

function session(name: string, sup = SUP, dev = DEV): CaoEvent[] {
  return [
    { type: 'session_created', sessionName: name },
    { type: 'terminal_created', sessionName: name, terminalId: sup, agentName: 'code_supervisor', provider: 'kiro_cli' },
    { type: 'terminal_created', sessionName: name, terminalId: dev, agentName: 'developer', provider: 'claude_code' },
  ];
}

function message(name: string, text: string, from = SUP, to = DEV): CaoEvent {
  return { type: 'message_sent', sessionName: name, sender: from, receiver: to, orchestrationType: 'assign', phase: 'dispatched', message: text, source: 'gateway' };
}

const sinkOf = (runtime: Runtime) => runtime.telemetry.sinks[0] as WebhookSink;

describe('slack: incoming webhook', () => {
  let slack: SlackFake;

  it('posts Block Kit messages: who → whom, orchestration type, the message, the session as context', async () => {
    slack = await startSlackFake();
    const runtime = start(`  - { name: slack, url: "${slack.webhookUrl}", transform: slack, filter: { types: [message_sent] } }\n`);
    for (const e of session('cao-slack-1')) runtime.record(e);
    runtime.record(message('cao-slack-1', 'Implement the parser <!channel> & ping <@U123> *now*'));
    await runtime.telemetry.forceFlush();
    assert.equal(slack.refused.length, 0, JSON.stringify(slack.refused));
    assert.equal(slack.messages.length, 1);
    const posted = slack.messages[0]!;
    assert.deepEqual(posted.blocks!.map((b) => b.type), ['section', 'context']);
    const section = posted.blocks![0]!.text!;
    assert.equal(section.type, 'mrkdwn');
    assert.equal(
      section.text,
      `:clipboard: *code_supervisor (${SUP})* → *developer (${DEV})*  ·  \`assign\` _dispatched_\n` +
        'Implement the parser &lt;!channel&gt; &amp; ping &lt;@U123&gt; *now*',
      'agent names learned from terminal_created (filtered out here); <, > and & escaped, so no mention can form',
    );
    assert.match(posted.blocks![1]!.elements![0]!.text, /^session \*cao-slack-1\*  ·  observed by gateway  ·  <!date\^\d+\^\{date_short_pretty\} \{time_secs\}\|\d{4}-.*Z>$/);
    assert.match(posted.text!, /^code_supervisor \(a1b2c3d4\) → developer \(e5f6a7b8\) \(assign\): Implement the parser &lt;!channel&gt;/);
    assert.equal(posted.body.unfurl_links, false);
    await runtime.close();
    await slack.close();
  });

  it('splits a long message over sections of at most 3000 characters and cuts beyond ~9000 with a marker', async () => {
    slack = await startSlackFake();
    const runtime = start(`  - { name: slack, url: "${slack.webhookUrl}", transform: slack }\n`);
    const long = Array.from({ length: 1200 }, (_, i) => `word${i}`).join(' '); // ~9.8k characters
    runtime.record(message('cao-slack-long', long));
    await runtime.telemetry.forceFlush();
    assert.equal(slack.refused.length, 0, JSON.stringify(slack.refused));
    const sections = slack.messages.flatMap((m) => m.blocks!).filter((b) => b.type === 'section');
    assert.ok(sections.length >= 4);
    assert.ok(sections.every((b) => b.text!.text.length <= 3000));
    const text = blockText(slack.messages[0]!);
    assert.match(text, /… _\[\d+ more characters not shown\]_/);
    assert.ok(text.includes('word0 word1') && text.includes('word1000'), 'the beginning survives in order');
    await runtime.close();
    await slack.close();
  });

  it('a burst of 50 messages arrives complete, coalesced, within the fake\'s 1 message/s limit (no 429, nothing dropped)', async () => {
    slack = await startSlackFake();
    const runtime = start(`  - { name: slack, url: "${slack.webhookUrl}", transform: slack, filter: { types: [message_sent] } }\n`);
    for (const e of session('cao-burst')) runtime.record(e);
    for (let i = 1; i <= 50; i++) runtime.record(message('cao-burst', `burst message #${i}.`, i % 2 ? SUP : DEV, i % 2 ? DEV : SUP));
    await runtime.telemetry.forceFlush(); // bounded by the sink's flush bound
    await waitFor(() => sinkOf(runtime).stats.delivered === 50, 30_000, 'all 50 delivered');
    const texts = slack.messages.map(blockText).join('\n');
    for (let i = 1; i <= 50; i++) {
      assert.equal(texts.split(`burst message #${i}.`).length - 1, 1, `message #${i} posted exactly once`);
    }
    const order = [...texts.matchAll(/burst message #(\d+)\./g)].map((m) => Number(m[1]));
    assert.deepEqual(order, Array.from({ length: 50 }, (_, i) => i + 1), 'in order');
    assert.equal(slack.rateLimited, 0, 'the sink kept to the fake\'s one message per second: never a 429');
    assert.equal(slack.refused.length, 0);
    assert.ok(slack.messages.length < 50, `coalesced into ${slack.messages.length} messages`);
    assert.ok(slack.messages.every((m) => m.blocks!.length <= 50));
    const stats = sinkOf(runtime).stats;
    assert.deepEqual([stats.dropped, stats.failed, stats.delivered], [0, 0, 50]);
    await runtime.close();
    await slack.close();
  });

  it('honours 429 Retry-After: the message is posted after the wait, nothing lost', async () => {
    slack = await startSlackFake();
    const logs = logCapture();
    const runtime = start(`  - { name: slack, url: "${slack.webhookUrl}", transform: slack }\n`, {}, logs);
    slack.forceRateLimit(1);
    runtime.record(message('cao-429', 'after the wait'));
    await runtime.telemetry.forceFlush();
    await waitFor(() => slack.messages.length === 1, 10_000, 'the retried message');
    assert.equal(slack.rateLimited, 1);
    assert.match(blockText(slack.messages[0]!), /after the wait/);
    const retry = logs.lines().find((l) => l.msg === 'cloudevent delivery failed, will retry');
    assert.equal(retry?.status, 429);
    assert.ok(Number(retry?.retryInMs) >= 1000, 'waited at least Retry-After: 1');
    await runtime.close();
    await slack.close();
  });

  it('a webhook Slack no longer knows (404 no_service) disables the sink with the reason', async () => {
    slack = await startSlackFake();
    const logs = logCapture();
    const runtime = start(`  - { name: slack, url: "${slack.url}/services/T0/B0/revoked", transform: slack }\n`, {}, logs);
    runtime.record(message('cao-gone', 'nobody reads this'));
    await runtime.telemetry.forceFlush();
    assert.equal(sinkOf(runtime).stats.disabled, true);
    assert.ok(logs.lines().some((l) => l.msg === 'sink disabled: HTTP 404 no_service'));
    assert.ok(!logs.text().includes('revoked') && !logs.text().includes('nobody reads this'), 'neither the webhook URL nor the message logged');
    await runtime.close();
    await slack.close();
  });
});

describe('slack: Web API (bot token), one thread per CAO session', () => {
  it('posts each session as a thread: the first message opens it, every later event replies in it', async () => {
    const slack = await startSlackFake({ token: 'xoxb-test-token', channels: { C0CAOEVENTS: 'cao-events' } });
    const runtime = start(
      `  - name: slack-threads\n    url: ${slack.apiUrl}\n    transform: slack\n    slack: { token: "\${SLACK_BOT_TOKEN}", channel: "#cao-events" }\n`,
      { SLACK_BOT_TOKEN: 'xoxb-test-token' },
    );
    const events = [...session('cao-thread-a'), ...session('cao-thread-b', '33333333', '44444444')];
    for (let i = 1; i <= 4; i++) {
      events.push(message('cao-thread-a', `A says ${i}`));
      events.push(message('cao-thread-b', `B says ${i}`, '33333333', '44444444'));
    }
    events.push({ type: 'session_killed', sessionName: 'cao-thread-a' }, { type: 'session_killed', sessionName: 'cao-thread-b' });
    for (const e of events) runtime.record(e);
    await runtime.telemetry.forceFlush();
    // each session's kill also ends its two terminals (terminal_killed events the core adds)
    await waitFor(() => sinkOf(runtime).stats.delivered === events.length + 4, 30_000, 'all events delivered');
    assert.equal(slack.refused.length, 0, JSON.stringify(slack.refused));
    assert.equal(slack.rateLimited, 0);
    assert.ok(slack.posts.every((p) => p.headers.authorization === 'Bearer xoxb-test-token' && p.channel === 'C0CAOEVENTS'));
    const parents = slack.posts.filter((p) => p.thread_ts === undefined);
    assert.equal(parents.length, 2, 'two sessions, two threads');
    for (const [name, parent] of [['cao-thread-a', parents.find((p) => blockText(p).includes('cao-thread-a'))!], ['cao-thread-b', parents.find((p) => blockText(p).includes('cao-thread-b'))!]] as const) {
      assert.equal(parent.blocks![0]!.type, 'header');
      assert.equal(parent.blocks![0]!.text!.text, `CAO session ${name}`);
      const thread = slack.posts.filter((p) => p === parent || p.thread_ts === parent.ts);
      const text = thread.map(blockText).join('\n');
      const letter = name.endsWith('a') ? 'A' : 'B';
      for (let i = 1; i <= 4; i++) assert.ok(text.includes(`${letter} says ${i}`), `${letter} says ${i} in its session's thread`);
      assert.ok(!text.includes(`${letter === 'A' ? 'B' : 'A'} says`), 'nothing of the other session');
      assert.ok(text.includes(`session ${name} started`) && text.includes(`session ${name} ended`));
    }
    await runtime.close();
    await slack.close();
  });

  it('a token Slack refuses (ok:false invalid_auth in an HTTP 200) disables the sink instead of counting it delivered', async () => {
    const slack = await startSlackFake({ token: 'xoxb-right' });
    const logs = logCapture();
    const runtime = start(`  - { name: slack, url: "${slack.apiUrl}", transform: slack, slack: { token: xoxb-wrong, channel: C0CAOEVENTS } }\n`, {}, logs);
    runtime.record(message('cao-auth', 'hello'));
    await runtime.telemetry.forceFlush();
    const stats = sinkOf(runtime).stats;
    assert.deepEqual([stats.delivered, stats.failed, stats.disabled], [0, 1, true]);
    assert.ok(logs.lines().some((l) => l.msg === 'sink disabled: Slack error invalid_auth'));
    assert.ok(!logs.text().includes('xoxb-wrong'), 'the token is never logged');
    await runtime.close();
    await slack.close();
  });
});
