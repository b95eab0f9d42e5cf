/**
 * The demo session, as a person follows it in Slack: the real `cao-events demo` scenario (the
 * CAO simulator, the real gateway and poller) with a sink config pointing at the Slack fake
 * (test/helpers/slack-fake.ts, written from Slack's documentation: the real Slack is
 * unreachable from here), once per layout; the channel or thread must read top to bottom as
 * the conversation the agents had. Then a restart of cao-events in the middle of a session: the
 * posts after it continue in the same thread or channel.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { startCaoSimulator } from '../src/demo/cao-simulator.ts';
import { runDemo } from '../src/demo/demo-command.ts';
import { startGatewayService } from '../src/gateway-service.ts';
import { createLogger } from '../src/logger.ts';
import { startRuntime } from '../src/runtime.ts';
import { CollectSink } from './helpers/collect-sink.ts';
import { waitFor } from './helpers/otlp-receiver.ts';
import { type SlackFake, startSlackFake } from './helpers/slack-fake.ts';
import { scratchDir } from './helpers/scratch-dir.ts';
import { call } from '../src/demo/scenario.ts';

const TOKEN = 'xoxb-demo-token';
const quiet = new Writable({ write: (_c, _e, cb) => cb() });

function configFile(slack: SlackFake, settings: string, extra = ''): { path: string; dir: string } {
  const dir = scratchDir('cao-events-slack-demo-');
  const path = join(dir, 'cao-events.yaml');
  writeFileSync(path, `outbox: { dir: ${join(dir, 'outbox')} }\n${extra}sinks:\n  - name: slack\n    url: ${slack.apiBase}\n    transform: slack\n    slack: { token: ${TOKEN}, ${settings} }\n`);
  return { path, dir };
}

/** The transcript without thread indentation, Slack date tokens or edit markers. */
function plain(lines: string[]): string[] {
  return lines.map((l) => l.replace(/^ {2}│ /, '').replace(/ \(edited\)$/, ''));
}

/** What a reader must see: the demo's six messages, in order, by name, once each. */
const CONVERSATION: Array<[string, string]> = [
  ['*code_supervisor* → *developer*  ·  _task_', 'Implement the CSV parser in src/parse.ts with streaming support. Report back when the tests pass.'],
  ['*code_supervisor* → *tester*  ·  _task_', 'Write property-based tests for the CSV parser: quoting, embedded newlines, BOM handling.'],
  ['*code_supervisor* → *reviewer*  ·  _handoff_', 'Review the parser and its tests for correctness and performance; list concrete issues.'],
  ['*reviewer* → *code_supervisor*  ·  _handoff result_', '[simulated reviewer] Done: Review the parser and its tests for correctness and performance; list concrete issues.'],
  ['*developer* → *code_supervisor*', 'Parser done: streaming, RFC 4180 quoting, 38 tests green.'],
  ['*tester* → *code_supervisor*', 'Property tests added (quoting, newlines, BOM); found and fixed an off-by-one in the tokenizer.'],
];

const INTERNAL = /dispatched|delivered|observed|gateway|poller|plugin|send_message|orchestration|\b[0-9a-f]{8}\b/;

function assertReadsAsTheConversation(lines: string[]): void {
  const headings = lines.map((l, i) => [l, i] as const).filter(([l]) => l.includes(' → '));
  assert.deepEqual(
    headings.map(([l]) => l.replace(/  ·  ✓ received$/, '')),
    CONVERSATION.map(([h]) => h),
    'every message once, in the order the agents sent them, sender → receiver by name',
  );
  headings.forEach(([, i], n) => assert.equal(lines[i + 1], CONVERSATION[n]![1], 'the text right under its heading'));
  // the workers' reports were delivered (the poller saw CAO's inbox rows): the post says so
  assert.match(headings[4]![0], /✓ received$/);
  assert.match(headings[5]![0], /✓ received$/);
  const lifecycle = lines.filter((l) => /^:(large_green_circle|red_circle|heavy_plus_sign|heavy_minus_sign):/.test(l));
  for (const agent of ['code_supervisor', 'developer', 'tester', 'reviewer']) {
    assert.equal(lifecycle.filter((l) => l.startsWith(`:heavy_plus_sign: *${agent}* joined`)).length, 1, `${agent} joined, once`);
    assert.equal(lifecycle.filter((l) => l === `:heavy_minus_sign: *${agent}* left`).length, 1, `${agent} left, once`);
  }
  assert.equal(lifecycle.filter((l) => l === ':red_circle: Session ended').length, 1);
  assert.ok(lifecycle.every((l) => l.length <= 60), 'lifecycle lines are short');
  assert.doesNotMatch(lines.join('\n').replace(/<!date[^>]+>/g, ''), INTERNAL, 'no ids, phases or sources');
}

describe('the demo session in Slack', () => {
  it('thread layout: one thread in the configured channel reads top to bottom as the conversation', async (t) => {
    const slack = await startSlackFake({ token: TOKEN });
    t.after(() => slack.close());
    const { path } = configFile(slack, 'channel: C0CAOEVENTS');
    const summary = await runDemo({ config: path, 'trace-file': join(scratchDir('cao-events-slack-demo-spans-'), 'spans.jsonl') }, quiet);
    assert.deepEqual(summary.sinks, [{ name: 'slack', delivered: summary.delivered - summary.sinks[0]!.skipped, skipped: summary.sinks[0]!.skipped, failed: 0, dropped: 0 }]);
    assert.deepEqual(slack.refused, []);
    assert.equal(slack.rateLimited, 0);
    const parents = slack.posts.filter((p) => !p.thread_ts);
    assert.equal(parents.length, 1, 'one thread');
    const lines = plain(slack.transcript('C0CAOEVENTS'));
    assert.equal(lines[0], 'cao-demo');
    assert.match(lines[1]!, /^CAO session  ·  <!date[^>]+> – <!date[^>]+>  ·  6 messages between \*code_supervisor\*, \*developer\*, \*tester\*, \*reviewer\*$/);
    assertReadsAsTheConversation(lines.slice(2));
  });

  it('channel layout: a channel named after the session, its topic the summary, reads as the conversation', async (t) => {
    const slack = await startSlackFake({ token: TOKEN });
    t.after(() => slack.close());
    const { path } = configFile(slack, 'layout: channel, invite: [U0ALICE001]');
    const summary = await runDemo({ config: path, 'trace-file': join(scratchDir('cao-events-slack-demo-spans-'), 'spans.jsonl') }, quiet);
    assert.equal(summary.sinks[0]!.failed, 0);
    assert.deepEqual(slack.refused, []);
    const channel = slack.channelByName('cao-demo')!;
    assert.ok(channel, '#cao-demo');
    assert.ok(channel.members.has('U0ALICE001'));
    assert.match(channel.topic, /^CAO session cao-demo · ended \d{4}-\d\d-\d\d \d\d:\d\d UTC · 6 messages between code_supervisor, developer, tester, reviewer$/);
    const lines = plain(slack.transcript(channel.id));
    assert.equal(lines[0], ':large_green_circle: Session *cao-demo* started');
    assertReadsAsTheConversation(lines);
    assert.equal(slack.transcript('C0CAOEVENTS').length, 0, 'nothing in the other channel');
  });
});

/** cao-events (runtime + gateway + poller) in front of the simulator, as `cao-events gateway` runs it. */
async function startCaoEvents(configPath: string, upstream: string) {
  const config = loadConfig({ configPath, flags: { port: '0', 'poll-interval-ms': '150' }, env: {} });
  const seen = new CollectSink();
  const runtime = startRuntime({ ...config, gateway: { ...config.gateway, upstream } }, createLogger('silent'), { env: {}, metrics: false, sinks: [seen] });
  const gateway = await startGatewayService({ ...config, gateway: { ...config.gateway, upstream }, ingest: { ...config.ingest, port: 0 } }, runtime, { ingest: false });
  let stopped = false;
  return {
    url: gateway.url,
    runtime,
    /** Event types the core emitted (what every sink was offered). */
    types: () => seen.events.map((e) => (e.data as { event_type: string }).event_type),
    async stop() {
      if (stopped) return;
      stopped = true;
      await gateway.close();
      await runtime.close();
    },
  };
}

describe('a restart of cao-events in the middle of a session', () => {
  for (const layout of ['thread', 'channel'] as const) {
    it(`${layout} layout: posts after the restart continue in the same ${layout}; nothing is shown twice`, async (t) => {
      const slack = await startSlackFake({ token: TOKEN });
      t.after(() => slack.close());
      // a short shutdown: what is not posted yet waits in the outbox and goes out after the restart
      const { path } = configFile(slack, layout === 'thread' ? 'channel: C0CAOEVENTS' : 'layout: channel', 'shutdownTimeoutMs: 1000\n');
      const cao = await startCaoSimulator({ workMs: 200, initMs: 400 });
      t.after(() => cao.close());
      const session = 'cao-restart';
      let events = await startCaoEvents(path, cao.url);
      let running = events;
      t.after(() => running.stop());
      const sup = (await call(events.url, 'POST', '/sessions', { provider: 'kiro_cli', agent_profile: 'code_supervisor', session_name: session })) as { id: string };
      const dev = (await call(events.url, 'POST', `/sessions/${session}/terminals`, { provider: 'claude_code', agent_profile: 'developer', caller_id: String(sup.id), defer_init: 'true' }, { initial_message: 'Build the parser.', initial_message_orchestration_type: 'assign' })) as { id: string };
      await waitFor(() => slack.posts.some((p) => JSON.stringify(p.blocks).includes('Build the parser.')), 30_000, 'the task posted before the restart');
      await events.stop();

      events = await startCaoEvents(path, cao.url); // same config, same outbox directory, same session map
      running = events;
      await call(events.url, 'POST', `/terminals/${String(sup.id)}/inbox/messages`, { sender_id: String(dev.id), message: 'Parser built, tests green.' });
      await new Promise((r) => setTimeout(r, 600));
      await call(events.url, 'DELETE', `/sessions/${session}`);
      await new Promise((r) => setTimeout(r, 800)); // the poller confirms the kills
      const sink = events.runtime.telemetry.sinks.find((s) => s.name === 'slack')!;
      await sink.forceFlush(90_000);
      await waitFor(() => sink.stats.queued === 0 && sink.stats.inFlight === 0, 30_000, 'the sink to be idle');
      assert.deepEqual(slack.refused, []);
      let lines: string[];
      if (layout === 'thread') {
        assert.equal(slack.posts.filter((p) => !p.thread_ts).length, 1, 'one thread, before and after the restart');
        lines = plain(slack.transcript('C0CAOEVENTS'));
      } else {
        assert.deepEqual([...slack.channels.values()].filter((c) => c.name.startsWith(session)).map((c) => c.name), [session], 'one channel');
        lines = plain(slack.transcript(slack.channelByName(session)!.id));
      }
      if (process.env.SHOW_TRANSCRIPT) console.log(lines.join('\n'));
      const again = events.types();
      assert.ok(again.includes('session_created') && again.filter((t) => t === 'terminal_created').length >= 2, 'after the restart cao-events reported the running session and its terminals anew');
      const headings = lines.filter((l) => l.includes(' → ')).map((l) => l.replace(/  ·  ✓ received$/, ''));
      assert.deepEqual(headings, ['*code_supervisor* → *developer*  ·  _task_', '*developer* → *code_supervisor*'], 'each message once');
      assert.equal(lines.filter((l) => l === 'Parser built, tests green.').length, 1);
      for (const agent of ['code_supervisor', 'developer']) {
        assert.equal(lines.filter((l) => l.startsWith(`:heavy_plus_sign: *${agent}* joined`)).length, 1, `${agent} joined once, though seen again after the restart`);
      }
      assert.equal(lines.filter((l) => l.includes('Session *cao-restart* started')).length, layout === 'channel' ? 1 : 0);
      assert.equal(lines.filter((l) => l === ':red_circle: Session ended').length, 1);
    });
  }
});
