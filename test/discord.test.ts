/**
 * The `discord` transform against a local Discord fake (test/helpers/discord-fake.ts: the real
 * Discord is unreachable from here): each agent posts under its own name, mentions never ping,
 * Discord's size limits hold, the rate-limit bucket is respected and a 429's JSON retry_after
 * is honoured.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { WebhookSink } from '../exporters/delivery/webhook-sink.ts';
import { loadConfig } from '../src/config.ts';
import type { CaoEvent } from '../src/core/events.ts';
import { createLogger } from '../src/logger.ts';
import { type Runtime, startRuntime } from '../src/runtime.ts';
import { startDiscordFake } from './helpers/discord-fake.ts';
import { logCapture } from './helpers/log-capture.ts';
import { waitFor } from './helpers/otlp-receiver.ts';
import { scratchDir } from './helpers/scratch-dir.ts';

const dir = scratchDir('cao-events-discord-');
const SUP = 'a1b2c3d4';
const DEV = 'e5f6a7b8';

function start(url: string, extra = '', logs = logCapture()): Runtime {
  const path = join(dir, `discord-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, `sinks:\n  - name: discord\n    url: ${url}\n    transform: discord\n${extra}`);
  return startRuntime(loadConfig({ configPath: path }), createLogger('info', logs.stream), { env: {} });
}

const sinkOf = (runtime: Runtime) => runtime.telemetry.sinks[0] as WebhookSink;

function team(name: string): CaoEvent[] {
  return [
    { type: 'session_created', sessionName: name },
    { type: 'terminal_created', sessionName: name, terminalId: SUP, agentName: 'code_supervisor', provider: 'kiro_cli' },
    { type: 'terminal_created', sessionName: name, terminalId: DEV, agentName: 'developer', provider: 'claude_code' },
  ];
}

function say(name: string, text: string, from = SUP, to = DEV): CaoEvent {
  return { type: 'message_sent', sessionName: name, sender: from, receiver: to, orchestrationType: 'send_message', phase: 'delivered', message: text, source: 'poller' };
}

describe('discord', () => {
  it('posts under the sending agent\'s name, one embed per event, and agent text never pings anyone', async () => {
    const discord = await startDiscordFake();
    const runtime = start(discord.webhookUrl);
    for (const e of team('cao-discord')) runtime.record(e);
    runtime.record(say('cao-discord', '@everyone look: <@123456789> and @here, **done**'));
    runtime.record(say('cao-discord', 'thanks', DEV, SUP));
    await runtime.telemetry.forceFlush();
    assert.deepEqual(discord.refused, []);
    assert.deepEqual(discord.messages.map((m) => m.username), ['cao-events', 'code_supervisor', 'developer', 'code_supervisor', 'developer'], 'names, not terminal ids');
    assert.ok(discord.messages.every((m) => JSON.stringify(m.allowed_mentions) === '{"parse":[]}'), 'allowed_mentions: {parse: []} on every message');
    assert.deepEqual(discord.pings, [], 'nothing pinged');
    const said = discord.messages[3]!.embeds[0]!;
    assert.equal(said.title, '→ developer · ✓ received', 'first seen delivered: the message, marked received');
    assert.equal(said.description, '@everyone look: <@123456789> and @here, **done**', 'the text is kept as written');
    assert.equal(said.footer?.text, 'cao-discord', 'the session; no source or phase words');
    assert.match(String(said.timestamp), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(discord.messages[1]!.embeds[0]!.title, 'code_supervisor joined (kiro_cli)');
    assert.ok(!JSON.stringify(discord.messages).includes(SUP) && !JSON.stringify(discord.messages).includes(DEV), 'no terminal ids');
    await runtime.close();
    await discord.close();
  });

  it('each message once: a later phase of a message already posted is not posted again (laterPhases: post posts it; details: true names phases and sources)', async () => {
    for (const [extra, expected] of [
      ['', [['→ developer · task', 'cao-once']]],
      ['    discord: { laterPhases: post, details: true }\n', [['→ developer · task', 'cao-once · assign · dispatched · observed by gateway'], ['→ developer · task · ✓ received', 'cao-once · assign · delivered · observed by plugin']]],
    ] as const) {
      const discord = await startDiscordFake();
      const runtime = start(discord.webhookUrl, `    filter: { types: [message_sent] }\n${extra}`);
      for (const e of team('cao-once')) runtime.record(e);
      runtime.record({ type: 'message_sent', sessionName: 'cao-once', sender: SUP, receiver: DEV, orchestrationType: 'assign', phase: 'dispatched', message: 'Build it', source: 'gateway' });
      runtime.record({ type: 'message_sent', sessionName: 'cao-once', sender: SUP, receiver: DEV, orchestrationType: 'assign', phase: 'delivered', message: 'Build it', source: 'plugin' });
      await runtime.telemetry.forceFlush();
      await waitFor(() => sinkOf(runtime).stats.queued === 0 && sinkOf(runtime).stats.inFlight === 0, 10_000, 'idle');
      assert.deepEqual(discord.messages.flatMap((m) => m.embeds).map((e) => [e.title, e.footer?.text]), expected);
      await runtime.close();
      await discord.close();
    }
  });

  it('keeps within Discord\'s limits: descriptions ≤ 4096, ≤ 10 embeds and ≤ 6000 characters a message, usernames Discord accepts', async () => {
    const discord = await startDiscordFake({ bucketLimit: 50 });
    const runtime = start(discord.webhookUrl);
    runtime.record({ type: 'session_created', sessionName: 'cao-limits' });
    runtime.record({ type: 'terminal_created', sessionName: 'cao-limits', terminalId: SUP, agentName: 'Discord helper for clyde '.repeat(5) });
    runtime.record(say('cao-limits', 'x'.repeat(10_000)));
    for (let i = 1; i <= 14; i++) runtime.record(say('cao-limits', `${'y'.repeat(900)} #${i}`));
    await runtime.telemetry.forceFlush();
    await waitFor(() => sinkOf(runtime).stats.delivered === 17, 10_000, 'all delivered');
    assert.deepEqual(discord.refused, [], 'the fake found no limit broken');
    const description = discord.messages.flatMap((m) => m.embeds).find((e) => e.description?.startsWith('xxx'))!.description!;
    assert.ok(description.length <= 4096);
    assert.match(description, /… \[\d+ more characters\]$/);
    for (const m of discord.messages) {
      assert.ok(m.embeds.length <= 10);
      const total = m.embeds.reduce((n, e) => n + (e.title?.length ?? 0) + (e.description?.length ?? 0) + (e.footer?.text?.length ?? 0), 0);
      assert.ok(total <= 6000, `embeds total ${total}`);
      assert.ok(m.username!.length >= 1 && m.username!.length <= 80);
      assert.doesNotMatch(m.username!, /discord|clyde/i);
    }
    const numbered = discord.messages.flatMap((m) => m.embeds).map((e) => /#(\d+)$/.exec(e.description ?? '')?.[1]).filter(Boolean).map(Number);
    assert.deepEqual(numbered, Array.from({ length: 14 }, (_, i) => i + 1), 'all 14, in order');
    assert.ok(discord.messages.some((m) => m.embeds.length > 1), 'events of one speaker travel together');
    await runtime.close();
    await discord.close();
  });

  it('respects the rate-limit bucket: 12 messages to a 5-per-2-s webhook, paused on X-RateLimit-Remaining: 0, no 429', async () => {
    const discord = await startDiscordFake({ bucketLimit: 5, bucketWindowMs: 2000 });
    const runtime = start(discord.webhookUrl, '    filter: { types: [message_sent] }\n');
    // a different speaker each time, so nothing coalesces: twelve requests
    for (let i = 0; i < 12; i++) runtime.record(say('cao-bucket', `hello ${i}`, `${String(i).padStart(2, '0')}aaaaaa`, SUP));
    await runtime.telemetry.forceFlush();
    await waitFor(() => sinkOf(runtime).stats.delivered === 12, 20_000, 'all delivered');
    assert.equal(discord.messages.length, 12);
    assert.equal(discord.rateLimited, 0);
    await runtime.close();
    await discord.close();
  });

  it('honours a 429\'s JSON retry_after (seconds) when there is no Retry-After header', async () => {
    const discord = await startDiscordFake({ retryAfterHeader: false });
    const logs = logCapture();
    const runtime = start(discord.webhookUrl, '    retry: { initialDelayMs: 10, maxDelayMs: 20 }\n', logs);
    discord.forceRateLimit(1, 1.5);
    runtime.record(say('cao-429', 'after the wait'));
    await runtime.telemetry.forceFlush();
    await waitFor(() => discord.messages.length === 1, 10_000, 'the retried message');
    assert.equal(discord.rateLimited, 1);
    const retry = logs.lines().find((l) => l.msg === 'cloudevent delivery failed, will retry');
    assert.equal(retry?.reason, 'HTTP 429');
    assert.ok(Number(retry?.retryInMs) >= 1500, `waited retry_after, not the 10-20 ms back-off (${retry?.retryInMs})`);
    await runtime.close();
    await discord.close();
  });

  it('forum layout: each session one forum post named after it; a restart keeps posting into the same post; re-sightings not shown', async () => {
    const discord = await startDiscordFake({ forum: true });
    const outbox = mkdtempSync(join(dir, 'outbox-'));
    const config = (name: string) => {
      const path = join(dir, `${name}.yaml`);
      writeFileSync(path, `outbox: { dir: ${outbox} }\nsinks:\n  - name: discord\n    url: ${discord.webhookUrl}\n    transform: discord\n    discord: { layout: forum }\n`);
      return path;
    };
    const first = startRuntime(loadConfig({ configPath: config('forum-1') }), createLogger('silent'), { env: {} });
    for (const e of [...team('cao-forum-a'), ...team('cao-forum-b')]) first.record(e);
    first.record(say('cao-forum-a', 'A before'));
    first.record(say('cao-forum-b', 'B before'));
    await first.telemetry.forceFlush();
    await waitFor(() => sinkOf(first).stats.queued === 0 && sinkOf(first).stats.inFlight === 0, 20_000, 'idle');
    await first.close();
    assert.deepEqual([...discord.threads.values()].map((t) => t.name).sort(), ['cao-forum-a', 'cao-forum-b']);
    const threadOf = (name: string) => [...discord.threads.values()].find((t) => t.name === name)!.id;

    discord.archiveThread(threadOf('cao-forum-a')); // Discord archives idle posts; a webhook message unarchives it
    const second = startRuntime(loadConfig({ configPath: config('forum-2') }), createLogger('silent'), { env: {} });
    for (const e of team('cao-forum-a')) second.record({ ...e, source: 'poller' }); // seen anew after the restart
    second.record(say('cao-forum-a', 'A after', DEV, SUP));
    await second.telemetry.forceFlush();
    await waitFor(() => sinkOf(second).stats.queued === 0 && sinkOf(second).stats.inFlight === 0, 20_000, 'idle');
    assert.deepEqual(discord.refused, []);
    assert.equal(discord.threads.size, 2, 'no new forum post after the restart');
    const inA = discord.messages.filter((m) => m.thread === threadOf('cao-forum-a')).flatMap((m) => m.embeds.map((e) => e.description ?? e.title));
    assert.deepEqual(inA, ['session cao-forum-a started', 'code_supervisor joined (kiro_cli)', 'developer joined (claude_code)', 'A before', 'A after']);
    assert.equal(discord.threads.get(threadOf('cao-forum-a'))!.archived, false);
    assert.ok(discord.messages.every((m) => m.thread !== undefined), 'every message in a forum post');
    assert.ok(discord.messages.every((m) => m.embeds.every((e) => e.footer === undefined)), 'the post names the session; no footer needed');
    await second.close();
    await discord.close();
  });

  it('forum layout: a forum post deleted under the session (10003 Unknown Channel) is reported; the next message opens a new post', async () => {
    const discord = await startDiscordFake({ forum: true });
    const logs = logCapture();
    const runtime = start(discord.webhookUrl, '    discord: { layout: forum }\n    filter: { types: [message_sent] }\n', logs);
    for (const e of team('cao-gone-post')) runtime.record(e);
    runtime.record(say('cao-gone-post', 'first'));
    await runtime.telemetry.forceFlush();
    await waitFor(() => discord.messages.length === 1, 10_000, 'the first message');
    discord.deleteThread(discord.messages[0]!.thread!);
    runtime.record(say('cao-gone-post', 'lost with the post', DEV, SUP));
    await runtime.telemetry.forceFlush();
    await waitFor(() => sinkOf(runtime).stats.failed === 1, 10_000, 'the message to the deleted post given up');
    runtime.record(say('cao-gone-post', 'third'));
    await runtime.telemetry.forceFlush();
    await waitFor(() => discord.messages.length === 2, 10_000, 'the next message');
    assert.equal(discord.threads.size, 2);
    assert.notEqual(discord.messages[1]!.thread, discord.messages[0]!.thread, 'a new forum post');
    assert.ok(logs.lines().some((l) => /the session's forum post is gone; the next message opens a new one/.test(String(l.reason))));
    await runtime.close();
    await discord.close();
  });

  it('forum layout: a session map that cannot be saved is reported once at WARN, and posting goes on from memory', async (t) => {
    const discord = await startDiscordFake({ forum: true });
    t.after(() => discord.close());
    const logs = logCapture();
    const notADir = join(dir, `plain-file-${Math.random().toString(36).slice(2)}`);
    writeFileSync(notADir, 'a file, not a directory');
    const stateFile = join(notADir, 'discord-sessions.json');
    const runtime = start(discord.webhookUrl, `    discord: { layout: forum, stateFile: ${stateFile} }\n    filter: { types: [message_sent] }\n`, logs);
    t.after(() => runtime.close());
    for (const e of team('cao-unsaved')) runtime.record(e);
    runtime.record(say('cao-unsaved', 'first'));
    runtime.record(say('cao-unsaved', 'second', DEV, SUP));
    await runtime.telemetry.forceFlush();
    await waitFor(() => discord.messages.length === 2, 10_000, 'both messages');
    assert.equal(discord.threads.size, 1, 'one forum post: the map in memory still names it');
    const warned = logs.lines().filter((l) => l.msg === 'discord: the session map could not be saved; posting continues from memory (a restart may open new threads, channels or posts)');
    assert.equal(warned.length, 1, logs.text());
    assert.equal(warned[0]!.level, 40);
    assert.equal(warned[0]!.file, stateFile);
  });

  it('a deleted webhook (404, code 10015) disables the sink', async () => {
    const discord = await startDiscordFake();
    const logs = logCapture();
    const runtime = start(`${discord.url}/api/webhooks/1/deleted-token`, '', logs);
    runtime.record(say('cao-gone', 'hello'));
    await runtime.telemetry.forceFlush();
    assert.equal(sinkOf(runtime).stats.disabled, true);
    assert.ok(logs.lines().some((l) => l.msg === 'sink disabled: HTTP 404 (Discord code 10015)'));
    assert.ok(!logs.text().includes('deleted-token'), 'the webhook token is never logged');
    await runtime.close();
    await discord.close();
  });
});
