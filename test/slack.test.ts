/**
 * The `slack` sink against the local Slack fake (test/helpers/slack-fake.ts, written from Slack's
 * documentation: the real Slack is unreachable from here). A session reads as the conversation
 * the agents had: names, not ids; each message once, later phases as edits, reactions or quiet
 * replies; short lifecycle lines; no internal vocabulary unless asked for. Thread and channel
 * layouts, the persisted session map, Slack's rate limits and failures (Retry-After,
 * `ratelimited`, `channel_not_found`, `not_in_channel`, `is_archived`, `name_taken`,
 * `missing_scope`), and answers that never came.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { WebhookSink } from '../exporters/delivery/webhook-sink.ts';
import { slackChannelName } from '../exporters/renderers/slack/rules.ts';
import { loadConfig } from '../src/config.ts';
import type { CaoEvent } from '../src/core/events.ts';
import { createLogger } from '../src/logger.ts';
import { type Runtime, startRuntime } from '../src/runtime.ts';
import { logCapture } from './helpers/log-capture.ts';
import { waitFor } from './helpers/otlp-receiver.ts';
import { type SlackFake, blockText, startSlackFake } from './helpers/slack-fake.ts';
import { scratchDir } from './helpers/scratch-dir.ts';

const dir = scratchDir('cao-events-slack-');
const SUP = 'a1b2c3d4';
const DEV = 'e5f6a7b8';
const TOKEN = 'xoxb-test-token';

function start(sinkYaml: string, options: { env?: Record<string, string>; logs?: ReturnType<typeof logCapture>; outbox?: string } = {}): Runtime {
  const path = join(dir, `slack-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, `${options.outbox ? `outbox: { dir: ${options.outbox} }\n` : ''}sinks:\n${sinkYaml}`);
  return startRuntime(loadConfig({ configPath: path, env: options.env ?? {} }), createLogger('info', (options.logs ?? logCapture()).stream), { env: {} });
}

function webApi(slack: SlackFake, settings: string, extra = ''): string {
  return `  - name: slack\n    url: ${slack.apiBase}\n    transform: slack\n    slack: { token: ${TOKEN}, ${settings} }\n${extra}`;
}

function team(name: string, sup = SUP, dev = DEV): CaoEvent[] {
  return [
    { type: 'session_created', sessionName: name, source: 'gateway' },
    { type: 'terminal_created', sessionName: name, terminalId: sup, agentName: 'code_supervisor', provider: 'kiro_cli', source: 'gateway' },
    { type: 'terminal_created', sessionName: name, terminalId: dev, agentName: 'developer', provider: 'claude_code', source: 'gateway' },
  ];
}

type Phase = 'dispatched' | 'delivered' | 'completed' | 'failed';
function msg(name: string, text: string, options: { from?: string; to?: string; type?: 'assign' | 'send_message' | 'handoff'; phase?: Phase; source?: 'gateway' | 'poller' | 'plugin' } = {}): CaoEvent {
  return {
    type: 'message_sent', sessionName: name, sender: options.from ?? SUP, receiver: options.to ?? DEV,
    orchestrationType: options.type ?? 'assign', phase: options.phase ?? 'dispatched', message: text, source: options.source ?? 'gateway',
  };
}

const sinkOf = (runtime: Runtime) => runtime.telemetry.sinks[0] as WebhookSink;

async function settle(runtime: Runtime): Promise<void> {
  await runtime.telemetry.forceFlush();
  const sink = sinkOf(runtime);
  await sink.forceFlush(90_000);
  await waitFor(() => sink.stats.queued === 0 && sink.stats.inFlight === 0, 30_000, 'the sink to be idle');
}

/** Words a Slack reader should never see unless `details: true`. */
const INTERNAL = /dispatched|delivered|observed|gateway|poller|plugin|send_message|orchestration|\b[0-9a-f]{8}\b/;

describe('slack: incoming webhook', () => {
  it('one post per message, sender → receiver by name, lifecycle lines together, a later phase not posted again', async () => {
    const slack = await startSlackFake();
    const runtime = start(`  - { name: slack, url: "${slack.webhookUrl}", transform: slack }\n`);
    for (const e of team('cao-hook')) runtime.record(e);
    runtime.record(msg('cao-hook', 'Implement the parser <!channel> & ping <@U123> *now*'));
    runtime.record(msg('cao-hook', 'Implement the parser <!channel> & ping <@U123> *now*', { phase: 'delivered', source: 'plugin' }));
    runtime.record(msg('cao-hook', 'Done.', { from: DEV, to: SUP, type: 'send_message' }));
    await settle(runtime);
    assert.deepEqual(slack.refused, []);
    const lifecycle = slack.messages.filter((m) => m.blocks!.every((b) => b.type === 'context'));
    assert.ok(lifecycle.length >= 1 && lifecycle.length <= 3, 'lifecycle lines share posts as they arrive together');
    assert.deepEqual(slack.messages.map(blockText), [
      ...lifecycle.map(blockText),
      '*code_supervisor* → *developer*  ·  _task_\nImplement the parser &lt;!channel&gt; &amp; ping &lt;@U123&gt; *now*',
      '*developer* → *code_supervisor*\nDone.',
    ], 'one post per message; <, > and & escaped: no mention can form');
    assert.equal(lifecycle.map(blockText).join('\n'), ':large_green_circle: Session *cao-hook* started\n:heavy_plus_sign: *code_supervisor* joined (kiro_cli)\n:heavy_plus_sign: *developer* joined (claude_code)');
    const posted = slack.messages.at(-2)!;
    assert.equal(posted.text, 'code_supervisor → developer: Implement the parser &lt;!channel&gt; &amp; ping &lt;@U123&gt; *now*', 'the notification reads like chat');
    assert.match(lifecycle[0]!.text!, /^session cao-hook started/);
    assert.doesNotMatch(slack.messages.map(blockText).join('\n'), INTERNAL);
    assert.equal(posted.body.unfurl_links, false);
    const stats = sinkOf(runtime).stats;
    assert.equal(stats.delivered + stats.skipped, 6);
    assert.equal(stats.failed, 0);
    await runtime.close();
    await slack.close();
  });

  it('details: true shows the vocabulary (orchestration type, phase, observer, time); laterPhases: post posts the delivery', async () => {
    const slack = await startSlackFake();
    const runtime = start(`  - { name: slack, url: "${slack.webhookUrl}", transform: slack, slack: { details: true, laterPhases: post }, filter: { types: [message_sent] } }\n`);
    for (const e of team('cao-details')) runtime.record(e);
    runtime.record(msg('cao-details', 'Write the tests'));
    runtime.record(msg('cao-details', 'Write the tests', { phase: 'delivered', source: 'plugin' }));
    await settle(runtime);
    assert.equal(slack.messages.length, 2);
    assert.match(blockText(slack.messages[0]!), /^\*code_supervisor\* → \*developer\*  ·  _task_\nWrite the tests\nassign  ·  dispatched  ·  observed by gateway  ·  <!date\^\d+\^/);
    assert.match(blockText(slack.messages[1]!), /^\*code_supervisor\* → \*developer\*  ·  _task_  ·  ✓ received\nWrite the tests\nassign  ·  delivered  ·  observed by plugin/);
    await runtime.close();
    await slack.close();
  });

  it('a message too long for one post is cut with a marker; sections stay within 3000 characters', async () => {
    const slack = await startSlackFake();
    const runtime = start(`  - { name: slack, url: "${slack.webhookUrl}", transform: slack }\n`);
    const long = Array.from({ length: 3000 }, (_, i) => `word${i}`).join(' '); // ~25k characters
    runtime.record(msg('cao-long', long));
    await settle(runtime);
    assert.deepEqual(slack.refused, []);
    assert.equal(slack.messages.length, 1);
    const sections = slack.messages[0]!.blocks!.filter((b) => b.type === 'section');
    assert.ok(sections.length >= 4 && sections.every((b) => b.text!.text.length <= 3000));
    const text = blockText(slack.messages[0]!);
    assert.ok(text.length < 12_000);
    assert.match(text, /… _\[\d+ more characters not shown\]_/);
    assert.ok(text.includes('word0 word1 word2'), 'the beginning, in order');
    await runtime.close();
    await slack.close();
  });

  it('honours 429 Retry-After: the message is posted after the wait, once', async () => {
    const slack = await startSlackFake();
    const logs = logCapture();
    const runtime = start(`  - { name: slack, url: "${slack.webhookUrl}", transform: slack }\n`, { logs });
    for (const e of team('cao-429')) runtime.record(e);
    await settle(runtime);
    slack.forceRateLimit(1);
    runtime.record(msg('cao-429', 'after the wait'));
    await settle(runtime);
    assert.equal(slack.rateLimited, 1);
    assert.deepEqual(slack.messages.slice(-1).map(blockText), ['*code_supervisor* → *developer*  ·  _task_\nafter the wait']);
    assert.equal(slack.messages.filter((m) => blockText(m).includes('after the wait')).length, 1);
    const retry = logs.lines().find((l) => l.msg === 'cloudevent delivery failed, will retry');
    assert.equal(retry?.status, 429);
    assert.ok(Number(retry?.retryInMs) >= 1000, 'waited at least Retry-After: 1');
    await runtime.close();
    await slack.close();
  });

  it('a webhook Slack no longer knows (404 no_service) disables the sink with the reason', async () => {
    const slack = await startSlackFake();
    const logs = logCapture();
    const runtime = start(`  - { name: slack, url: "${slack.url}/services/T0/B0/revoked", transform: slack }\n`, { logs });
    runtime.record(msg('cao-gone', 'nobody reads this'));
    await runtime.telemetry.forceFlush();
    assert.equal(sinkOf(runtime).stats.disabled, true);
    assert.ok(logs.lines().some((l) => l.msg === 'sink disabled: HTTP 404 no_service'));
    assert.ok(!logs.text().includes('revoked') && !logs.text().includes('nobody reads this'), 'neither the webhook URL nor the message logged');
    await runtime.close();
    await slack.close();
  });
});

describe('slack: Web API, thread layout', () => {
  it('one thread per session; the parent names the session and sums it up at the end; replies read as the conversation', async () => {
    const slack = await startSlackFake({ token: TOKEN });
    const runtime = start(webApi(slack, 'channel: "#cao-events"'));
    const events = [...team('cao-thread-a'), ...team('cao-thread-b', '33333333', '44444444')];
    for (let i = 1; i <= 2; i++) {
      events.push(msg('cao-thread-a', `A says ${i}`, { type: 'send_message' }));
      events.push(msg('cao-thread-b', `B says ${i}`, { type: 'send_message', from: '33333333', to: '44444444' }));
    }
    events.push(msg('cao-thread-a', 'A says 1', { type: 'send_message', phase: 'delivered', source: 'poller' }));
    events.push({ type: 'session_killed', sessionName: 'cao-thread-a' }, { type: 'session_killed', sessionName: 'cao-thread-b' });
    for (const e of events) runtime.record(e);
    await settle(runtime);
    assert.deepEqual(slack.refused, []);
    assert.equal(slack.rateLimited, 0, 'kept to one post per second in the channel');
    assert.ok(slack.posts.every((p) => p.headers.authorization === `Bearer ${TOKEN}` && p.channel === 'C0CAOEVENTS'));
    const parents = slack.posts.filter((p) => p.thread_ts === undefined);
    assert.equal(parents.length, 2, 'two sessions, two threads');
    const a = slack.transcript('C0CAOEVENTS', { thread: parents.find((p) => blockText(p).startsWith('cao-thread-a'))!.ts });
    assert.equal(a[0], 'cao-thread-a');
    assert.match(a[1]!, /^CAO session  ·  <!date\^\d+\^\{date_short_pretty\} \{time\}\|[^>]+> – <!date\^\d+\^\{time\}\|[^>]+>  ·  2 messages between \*code_supervisor\*, \*developer\* \(edited\)$/, 'summed up when it ended');
    assert.deepEqual(a.slice(2), [
      '  │ :heavy_plus_sign: *code_supervisor* joined (kiro_cli)',
      '  │ :heavy_plus_sign: *developer* joined (claude_code)',
      '  │ *code_supervisor* → *developer*  ·  ✓ received',
      '  │ A says 1 (edited)',
      '  │ *code_supervisor* → *developer*',
      '  │ A says 2',
      '  │ :heavy_minus_sign: *code_supervisor* left',
      '  │ :heavy_minus_sign: *developer* left',
      '  │ :red_circle: Session ended',
    ]);
    const all = slack.transcript('C0CAOEVENTS').join('\n');
    assert.ok(!a.join('\n').includes('B says'), 'nothing of the other session');
    assert.doesNotMatch(all.replace(/<!date[^>]+>/g, ''), INTERNAL);
    await runtime.close();
    await slack.close();
  });

  it('a restart keeps posting into the same thread (the session map persists next to the outbox); re-sightings are not shown again', async () => {
    const slack = await startSlackFake({ token: TOKEN });
    const outbox = mkdtempSync(join(dir, 'outbox-'));
    const first = start(webApi(slack, 'channel: C0CAOEVENTS'), { outbox });
    for (const e of team('cao-restart')) first.record(e);
    first.record(msg('cao-restart', 'before the restart'));
    await settle(first);
    await first.close();
    const file = join(outbox, 'slack', 'slack-sessions.json');
    assert.ok(existsSync(file));
    const stored = JSON.parse(readFileSync(file, 'utf8')) as { format: string; sessions: Record<string, { thread: string; channel: string }> };
    assert.equal(stored.format, 'cao-events.slack-sessions');
    const thread = stored.sessions['cao-restart']!.thread;
    assert.ok(!readFileSync(file, 'utf8').includes('before the restart'), 'the map keeps no message text');

    const second = start(webApi(slack, 'channel: C0CAOEVENTS'), { outbox });
    // a restarted cao-events sees the running session and its terminals anew (the poller's first listing)
    for (const e of team('cao-restart')) second.record({ ...e, source: 'poller' });
    second.record(msg('cao-restart', 'after the restart', { from: DEV, to: SUP, type: 'send_message' }));
    second.record({ type: 'session_killed', sessionName: 'cao-restart' });
    await settle(second);
    assert.deepEqual(slack.refused, []);
    assert.equal(slack.posts.filter((p) => p.thread_ts === undefined).length, 1, 'one thread');
    assert.ok(slack.posts.slice(1).every((p) => p.thread_ts === thread), 'every post in the thread opened before the restart');
    const lines = slack.transcript('C0CAOEVENTS');
    assert.equal(lines.filter((l) => l.includes('joined')).length, 2, 'each terminal joined once');
    assert.deepEqual(lines.filter((l) => l.includes('before the restart') || l.includes('after the restart')), ['  │ before the restart', '  │ after the restart']);
    await second.close();
    await slack.close();
  });

  it('laterPhases: reaction marks a received message with :inbox_tray:; without reactions:write it edits instead and says which scope is missing, once', async () => {
    for (const scopes of [undefined, ['chat:write', 'chat:write.public']]) {
      const slack = await startSlackFake({ token: TOKEN, ...(scopes ? { scopes } : {}) });
      const logs = logCapture();
      const runtime = start(webApi(slack, 'channel: C0CAOEVENTS, laterPhases: reaction', '    filter: { types: [message_sent] }\n'), { logs });
      for (const e of team('cao-react')) runtime.record(e);
      for (const text of ['one', 'two']) {
        runtime.record(msg('cao-react', text));
        runtime.record(msg('cao-react', text, { phase: 'delivered', source: 'plugin' }));
      }
      await settle(runtime);
      const lines = slack.transcript('C0CAOEVENTS');
      if (!scopes) {
        assert.deepEqual(lines.slice(2), [
          '  │ *code_supervisor* → *developer*  ·  _task_',
          '  │ one  [:inbox_tray:]',
          '  │ *code_supervisor* → *developer*  ·  _task_',
          '  │ two  [:inbox_tray:]',
        ]);
      } else {
        assert.deepEqual(lines.slice(2), [
          '  │ *code_supervisor* → *developer*  ·  _task_  ·  ✓ received',
          '  │ one (edited)',
          '  │ *code_supervisor* → *developer*  ·  _task_  ·  ✓ received',
          '  │ two (edited)',
        ]);
        const warned = logs.lines().filter((l) => /reactions\.add failed: missing_scope \(the app needs the scope reactions:write\)/.test(String(l.msg)));
        assert.equal(warned.length, 1, 'said once');
      }
      await runtime.close();
      await slack.close();
    }
  });

  it('an answer lost after Slack posted: the retry finds the post by its metadata and does not post it again', async () => {
    const slack = await startSlackFake({ token: TOKEN });
    const runtime = start(webApi(slack, 'channel: C0CAOEVENTS', '    retry: { initialDelayMs: 50, maxDelayMs: 200 }\n'));
    for (const e of team('cao-lost')) runtime.record(e);
    await settle(runtime);
    slack.loseAnswers('chat.postMessage', 1);
    runtime.record(msg('cao-lost', 'posted once'));
    await settle(runtime);
    assert.equal(slack.calls.filter((c) => c.lost).length, 1, 'one answer was lost');
    assert.ok(slack.calls.some((c) => c.method === 'conversations.replies' && c.ok), 'looked in the thread');
    assert.equal(slack.transcript('C0CAOEVENTS').filter((l) => l.includes('posted once')).length, 1, 'posted once');
    assert.equal(sinkOf(runtime).stats.failed, 0);
    await runtime.close();
    await slack.close();
  });

  it('without channels:history a lost answer means posting again: it may show twice, and a WARN says which scope prevents it', async () => {
    const slack = await startSlackFake({ token: TOKEN, scopes: ['chat:write', 'chat:write.public'] });
    const logs = logCapture();
    const runtime = start(webApi(slack, 'channel: C0CAOEVENTS', '    retry: { initialDelayMs: 50, maxDelayMs: 200 }\n'), { logs });
    for (const e of team('cao-lost2')) runtime.record(e);
    await settle(runtime);
    slack.loseAnswers('chat.postMessage', 1);
    runtime.record(msg('cao-lost2', 'maybe twice'));
    await settle(runtime);
    assert.equal(slack.transcript('C0CAOEVENTS').filter((l) => l.includes('maybe twice')).length, 2);
    assert.ok(logs.lines().some((l) => /it is posted again and may show twice/.test(String(l.msg)) && /grant channels:history/.test(String(l.msg))));
    await runtime.close();
    await slack.close();
  });

  it('ratelimited (HTTP 429, Retry-After) is waited out; nothing is posted twice', async () => {
    const slack = await startSlackFake({ token: TOKEN });
    const logs = logCapture();
    const runtime = start(webApi(slack, 'channel: C0CAOEVENTS'), { logs });
    slack.forceRateLimit(1);
    for (const e of team('cao-limited')) runtime.record(e);
    runtime.record(msg('cao-limited', 'after the wait'));
    await settle(runtime);
    assert.equal(slack.rateLimited, 1);
    const retry = logs.lines().find((l) => l.msg === 'cloudevent delivery failed, will retry');
    assert.equal(retry?.status, 429);
    assert.ok(Number(retry?.retryInMs) >= 1000);
    const lines = slack.transcript('C0CAOEVENTS');
    assert.equal(lines.filter((l) => l === 'cao-limited').length, 1, 'one thread');
    assert.equal(lines.filter((l) => l.includes('after the wait')).length, 1);
    await runtime.close();
    await slack.close();
  });

  it('not_in_channel: the app joins the public channel once and posts; a channel it cannot join stops the sink with what to do', async () => {
    const slack = await startSlackFake({ token: TOKEN, scopes: ['chat:write', 'channels:join', 'channels:history'], memberOf: [] });
    const runtime = start(webApi(slack, 'channel: C0CAOEVENTS'));
    runtime.record(msg('cao-join', 'hello'));
    await settle(runtime);
    assert.ok(slack.calls.some((c) => c.method === 'conversations.join' && c.ok));
    assert.equal(slack.transcript('C0CAOEVENTS').filter((l) => l.includes('hello')).length, 1);
    await runtime.close();
    await slack.close();

    const closed = await startSlackFake({ token: TOKEN, scopes: ['chat:write', 'channels:join'], memberOf: [] });
    const secret = closed.addChannel('secret', { private: true });
    const logs = logCapture();
    const refused = start(webApi(closed, `channel: ${secret.id}`), { logs });
    refused.record(msg('cao-private', 'hello'));
    await refused.telemetry.forceFlush();
    await waitFor(() => sinkOf(refused).stats.disabled, 10_000, 'the sink to stop');
    assert.ok(logs.lines().some((l) => /invite it with \/invite @<app name>/.test(String(l.msg))));
    assert.ok(logs.lines().some((l) => l.msg === 'sink disabled: Slack error not_in_channel (chat.postMessage)'));
    await refused.close();
    await closed.close();
  });

  it('a thread whose parent was deleted: the session continues in a new thread, reported once', async () => {
    const slack = await startSlackFake({ token: TOKEN });
    const logs = logCapture();
    const runtime = start(webApi(slack, 'channel: C0CAOEVENTS'), { logs });
    for (const e of team('cao-orphan')) runtime.record(e);
    runtime.record(msg('cao-orphan', 'first'));
    await settle(runtime);
    const parent = slack.posts.find((p) => !p.thread_ts)!;
    slack.deleteMessage('C0CAOEVENTS', parent.ts);
    runtime.record(msg('cao-orphan', 'second', { from: DEV, to: SUP, type: 'send_message' }));
    await settle(runtime);
    const parents = slack.posts.filter((p) => !p.thread_ts);
    assert.equal(parents.length, 2);
    assert.deepEqual(slack.transcript('C0CAOEVENTS'), [
      'cao-orphan',
      'CAO session  ·  continued: its first thread is gone',
      '  │ *developer* → *code_supervisor*',
      '  │ second',
    ]);
    assert.equal(logs.lines().filter((l) => /the thread of session cao-orphan is gone; it continues in a new thread/.test(String(l.msg))).length, 1);
    assert.equal(sinkOf(runtime).stats.failed, 0);
    await runtime.close();
    await slack.close();
  });

  it('a token Slack refuses (ok:false invalid_auth in an HTTP 200) disables the sink instead of counting it delivered', async () => {
    const slack = await startSlackFake({ token: 'xoxb-right' });
    const logs = logCapture();
    const runtime = start(`  - { name: slack, url: "${slack.apiBase}", transform: slack, slack: { token: xoxb-wrong, channel: C0CAOEVENTS } }\n`, { logs });
    runtime.record(msg('cao-auth', 'hello'));
    await runtime.telemetry.forceFlush();
    const stats = sinkOf(runtime).stats;
    assert.deepEqual([stats.delivered, stats.failed, stats.disabled], [0, 1, true]);
    assert.ok(logs.lines().some((l) => l.msg === 'sink disabled: Slack error invalid_auth (chat.postMessage)'));
    assert.ok(!logs.text().includes('xoxb-wrong'), 'the token is never logged');
    await runtime.close();
    await slack.close();
  });
});

describe('slack: Web API, channel layout', () => {
  it('names channels within Slack\'s rules', () => {
    assert.equal(slackChannelName('cao-demo'), 'cao-demo');
    assert.equal(slackChannelName('CAO Démo / Sprint #3!'), 'cao-demo-sprint-3');
    assert.equal(slackChannelName('...'), 'session');
    assert.equal(slackChannelName('x'.repeat(200), 'agents-', 12).length, 80);
    assert.match(slackChannelName('x'.repeat(200), 'agents-', 12), /^agents-x+-12$/);
    assert.equal(slackChannelName('cao-demo', '', 2), 'cao-demo-2');
  });

  it('one channel per session: topic, invitees, one post per message, replies for later phases, the summary as topic, archived at the end', async () => {
    const slack = await startSlackFake({ token: TOKEN });
    const logs = logCapture();
    const runtime = start(webApi(slack, 'layout: channel, channelPrefix: agents-, invite: [U0ALICE001, U0NOBODY99], archive: true, laterPhases: reply'), { logs });
    for (const e of team('cao-Démo 1')) runtime.record(e);
    runtime.record(msg('cao-Démo 1', 'Build it'));
    runtime.record(msg('cao-Démo 1', 'Build it', { phase: 'delivered', source: 'plugin' }));
    runtime.record(msg('cao-Démo 1', 'Built.', { from: DEV, to: SUP, type: 'send_message' }));
    runtime.record({ type: 'session_killed', sessionName: 'cao-Démo 1' });
    await settle(runtime);
    assert.deepEqual(slack.refused.filter((r) => r.error !== 'user_not_found'), []);
    const channel = slack.channelByName('agents-cao-demo-1')!;
    assert.ok(channel, 'named after the session');
    assert.ok(channel.members.has('U0ALICE001'), 'invited');
    assert.ok(logs.lines().some((l) => /conversations\.invite failed: user_not_found/.test(String(l.msg))), 'an invitee Slack does not know: a WARN, posting goes on');
    assert.equal(channel.topic, `CAO session cao-Démo 1 · ended ${channel.topic.slice(channel.topic.indexOf('ended ') + 6, channel.topic.indexOf(' UTC') + 4)} · 2 messages between code_supervisor, developer`);
    assert.equal(channel.is_archived, true);
    assert.deepEqual(slack.transcript(channel.id), [
      ':large_green_circle: Session *cao-Démo 1* started',
      ':heavy_plus_sign: *code_supervisor* joined (kiro_cli)',
      ':heavy_plus_sign: *developer* joined (claude_code)',
      '*code_supervisor* → *developer*  ·  _task_',
      'Build it',
      '  │ ✓ received by developer',
      '*developer* → *code_supervisor*',
      'Built.',
      ':heavy_minus_sign: *code_supervisor* left',
      ':heavy_minus_sign: *developer* left',
      ':red_circle: Session ended',
    ]);
    await runtime.close();
    await slack.close();
  });

  it('a name taken by someone else\'s channel gets a neighbour (-2); a channel archived mid-session is replaced and reported once', async () => {
    const slack = await startSlackFake({ token: TOKEN });
    slack.addChannel('cao-busy'); // a person's channel of that name: not ours
    const logs = logCapture();
    const runtime = start(webApi(slack, 'layout: channel'), { logs });
    for (const e of team('cao-busy')) runtime.record(e);
    runtime.record(msg('cao-busy', 'first'));
    await settle(runtime);
    const ours = slack.channelByName('cao-busy-2')!;
    assert.ok(ours && ours.members.has(slack.botUser));
    assert.equal(slack.transcript(ours.id).filter((l) => l === 'first').length, 1);
    slack.archive(ours.id); // someone archives it while the session runs
    runtime.record(msg('cao-busy', 'second'));
    runtime.record(msg('cao-busy', 'third'));
    await settle(runtime);
    const next = slack.channelByName('cao-busy-3')!;
    assert.ok(next, 'a new channel for the session');
    assert.deepEqual(slack.transcript(next.id).filter((l) => !l.startsWith('*')), ['second', 'third']);
    const reported = logs.lines().filter((l) => /the channel of session cao-busy \(#cao-busy-2\) is archived; it continues in #cao-busy-3/.test(String(l.msg)));
    assert.equal(reported.length, 1);
    slack.deleteChannel(next.id); // and then deleted (channel_not_found)
    runtime.record(msg('cao-busy', 'fourth'));
    await settle(runtime);
    const fourth = slack.channelByName('cao-busy-4')!;
    assert.deepEqual(slack.transcript(fourth.id).filter((l) => !l.startsWith('*')), ['fourth']);
    assert.equal(logs.lines().filter((l) => /the channel of session cao-busy \(#cao-busy-3\) is gone; it continues in #cao-busy-4/.test(String(l.msg))).length, 1);
    assert.equal(sinkOf(runtime).stats.failed, 0);
    await runtime.close();
    await slack.close();
  });

  it('a lost answer to conversations.create: the retry meets name_taken, finds its own channel and reuses it (no second channel)', async () => {
    const slack = await startSlackFake({ token: TOKEN });
    slack.loseAnswers('conversations.create', 1);
    const runtime = start(webApi(slack, 'layout: channel', '    retry: { initialDelayMs: 50, maxDelayMs: 200 }\n'));
    runtime.record(msg('cao-once', 'hello'));
    await settle(runtime);
    assert.deepEqual(slack.calls.filter((c) => c.method === 'conversations.create').map((c) => c.error ?? 'ok'), ['ok', 'name_taken']);
    assert.ok(slack.calls.some((c) => c.method === 'conversations.list' && c.ok));
    assert.equal(slack.channelByName('cao-once-2'), undefined);
    assert.deepEqual(slack.transcript(slack.channelByName('cao-once')!.id).filter((l) => l === 'hello'), ['hello']);
    await runtime.close();
    await slack.close();
  });

  it('a long message is split over several posts within Slack\'s limits, in order', async () => {
    const slack = await startSlackFake({ token: TOKEN });
    const runtime = start(webApi(slack, 'layout: channel, topic: false'));
    const long = Array.from({ length: 5000 }, (_, i) => `w${i}`).join(' '); // ~28k characters
    for (const e of team('cao-split')) runtime.record(e);
    await settle(runtime);
    const before = slack.posts.length;
    runtime.record(msg('cao-split', long));
    await settle(runtime);
    assert.deepEqual(slack.refused, []);
    const posts = slack.posts.slice(before);
    assert.equal(posts.length, 3);
    assert.ok(posts.every((p) => (p.blocks ?? []).every((b) => (b.text?.text.length ?? 0) <= 3000) && blockText(p).length <= 12_000));
    assert.match(blockText(posts[1]!), /^_code_supervisor → developer, continued 2\/3_/);
    const words = posts.map(blockText).join(' ').match(/\bw\d+\b/g)!.map((w) => Number(w.slice(1)));
    assert.deepEqual(words, Array.from({ length: 5000 }, (_, i) => i), 'every word once, in order');
    await runtime.close();
    await slack.close();
  });
});
