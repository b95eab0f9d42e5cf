/**
 * The core's one state of sessions and terminals, fed in the orders real CAO produces
 * (real-cao.md §5 and §7; the realcao stream's runs of cao-server 2.1.1 / 2.4.1 / 2.5.4):
 * - POST /sessions: the plugin's post_create_terminal arrives before post_create_session;
 * - an inbox message to an idle receiver is delivered inside the POST, so the plugin's
 *   `delivered` precedes the gateway's `dispatched`;
 * - DELETE /sessions (≥ 2.4): post_kill_terminal for every row, then post_kill_session; 2.1.1
 *   fires only post_kill_session;
 * - a HEAD handoff is, to the plugin, a lone post_kill_terminal of a worker nobody saw created;
 * - the poller reports a cycle later, possibly after the session's kill.
 */
import { CollectSink, CollectSpans } from './helpers/collect-sink.ts';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import type { CaoEvent } from '../src/core/events.ts';
import type { CaoEventData } from '../src/core/fields.ts';
import { createCaoTelemetry } from '../src/core/telemetry.ts';
import { pluginEventToCaoEvent } from '../src/sources/plugin-event.ts';


const S = 'cao-real';
const SUP = 'a1b2c3d4';
const W = 'e5f6a7b8';
const H = '0badc0de';
const T0 = Date.parse('2026-12-02T06:37:48Z');
/** CAO's plugin timestamp `ms` after T0, with microseconds. */
const ts = (ms: number, micros = 0): string => `${new Date(T0 + ms).toISOString().slice(0, 23)}${String(micros).padStart(3, '0')}Z`;
let hookId = 0;
/** A plugin body exactly as integrations/cao-plugin forwards CAO's hook dataclass. */
const hook = (event_type: string, ms: number, fields: Record<string, unknown>, micros = 0): CaoEvent =>
  pluginEventToCaoEvent({ event_type, timestamp: ts(ms, micros), session_id: S, traceparent: null, event_id: `hook-${++hookId}`, ...fields });

function setup(options: { graceMs?: number } = {}) {
  const sink = new CollectSink();
  const spans = new CollectSpans();
  const telemetry = createCaoTelemetry({ sinks: [sink], spanExporters: [spans], otlp: false, source: 'cao://test', ...options });
  const data = () => sink.events.map((e) => e.data as CaoEventData);
  const traces = () => new Set(sink.events.map((e) => String(e.traceparent).split('-')[1]));
  const sequences = () => sink.events.map((e) => Number(e.sequence));
  return { telemetry, sink, spans, data, traces, sequences };
}

const brief = (d: CaoEventData): string =>
  d.event_type === 'message_sent'
    ? `${d.orchestration_type}/${d.phase} ${d.sender_agent ?? '?'}(${d.sender ?? '-'})→${d.receiver_agent ?? '?'}(${d.receiver ?? '-'}) via ${d.observed_by}`
    : `${d.event_type} ${d.terminal_id ?? d.session_name}${d.agent_name ? ` ${d.agent_name}` : ''} via ${d.observed_by}`;

describe('one trace and one sequence per session, in CAO\'s real order', () => {
  it('the plugin path (CAO 2.4/2.5): terminal before session, lone handoff kill, kills before the session\'s', async () => {
    const { telemetry, data, traces, sequences, spans } = setup();
    const emit = (e: CaoEvent) => telemetry.emit(e);
    emit(hook('post_create_terminal', 0, { terminal_id: SUP, agent_name: 'code_supervisor', provider: 'mock_cli' }, 417));
    emit(hook('post_create_session', 4_000, { session_name: S }));
    emit(hook('post_create_terminal', 5_000, { terminal_id: W, agent_name: 'developer', provider: 'mock_cli' }));
    emit(hook('post_send_message', 10_000, { sender: SUP, receiver: W, message: 'Write the tests.', orchestration_type: 'assign' }));
    emit(hook('post_kill_terminal', 20_000, { terminal_id: H, agent_name: 'reviewer' })); // run-step teardown
    emit(hook('post_send_message', 21_000, { sender: W, receiver: SUP, message: 'done', orchestration_type: 'send_message' }));
    emit(hook('post_send_message', 22_000, { sender: W, receiver: SUP, message: 'done', orchestration_type: 'send_message' }));
    emit(hook('post_kill_terminal', 30_000, { terminal_id: SUP, agent_name: 'code_supervisor' }));
    emit(hook('post_kill_terminal', 30_001, { terminal_id: W, agent_name: 'developer' }));
    emit(hook('post_kill_session', 30_002, { session_name: S }));
    await telemetry.shutdown();
    assert.deepEqual(data().map(brief), [
      `terminal_created ${SUP} code_supervisor via plugin`,
      `session_created ${S} via plugin`,
      `terminal_created ${W} developer via plugin`,
      `assign/delivered code_supervisor(${SUP})→developer(${W}) via plugin`,
      `terminal_killed ${H} reviewer via plugin`,
      `send_message/delivered developer(${W})→code_supervisor(${SUP}) via plugin`,
      `send_message/delivered developer(${W})→code_supervisor(${SUP}) via plugin`, // two real deliveries: two events
      `terminal_killed ${SUP} code_supervisor via plugin`,
      `terminal_killed ${W} developer via plugin`,
      `session_killed ${S} via plugin`,
    ]);
    assert.equal(traces().size, 1);
    assert.deepEqual(sequences(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    // CAO's microseconds survive to the CloudEvent
    const first = setupTime(spans.spans);
    assert.equal(first, `${new Date(T0).toISOString().slice(0, 19)}.000417000Z`);
    // lifetimes: the session and its two created terminals (the lone kill has no life to show)
    const names = spans.spans.map((s) => s.name);
    assert.ok(names.includes('invoke_workflow code_supervisor'));
    assert.ok(names.includes('invoke_agent code_supervisor') && names.includes('invoke_agent developer'));
    assert.ok(!names.includes('invoke_agent reviewer'));
  });

  it('2.1.1: DELETE /sessions fires only post_kill_session; the core ends the live terminals with it', async () => {
    const { telemetry, data, sequences } = setup();
    telemetry.emit(hook('post_create_terminal', 0, { terminal_id: SUP, agent_name: 'code_supervisor', provider: 'kiro_cli' }));
    telemetry.emit(hook('post_create_session', 2_000, { session_name: S }));
    telemetry.emit(hook('post_kill_session', 9_000, { session_name: S }));
    await telemetry.shutdown();
    assert.deepEqual(data().map(brief), [
      `terminal_created ${SUP} code_supervisor via plugin`,
      `session_created ${S} via plugin`,
      `terminal_killed ${SUP} code_supervisor via plugin`,
      `session_killed ${S} via plugin`,
    ]);
    assert.deepEqual(sequences(), [1, 2, 3, 4]);
  });

  it('a session created again after its kill is a new trace, whichever hook comes first', async () => {
    const { telemetry, sink, traces } = setup();
    telemetry.emit(hook('post_create_terminal', 0, { terminal_id: SUP, agent_name: 'a', provider: 'p' }));
    telemetry.emit(hook('post_create_session', 1, { session_name: S }));
    telemetry.emit(hook('post_kill_session', 2, { session_name: S }));
    telemetry.emit(hook('post_create_terminal', 3, { terminal_id: W, agent_name: 'a', provider: 'p' }));
    telemetry.emit(hook('post_create_session', 4, { session_name: S }));
    await telemetry.shutdown();
    assert.equal(traces().size, 2);
    assert.deepEqual(sink.events.map((e) => Number(e.sequence)), [1, 2, 3, 4, 1, 2]);
  });
});

function setupTime(spans: readonly ReadableSpan[]): string {
  const span = spans.find((s) => s.events[0]?.name === 'cao.terminal_created')!;
  const [seconds, nanos] = span.events[0]!.time;
  return `${new Date(seconds * 1000).toISOString().slice(0, 19)}.${String(nanos).padStart(9, '0')}Z`;
}

describe('late facts: the grace period after a kill', () => {
  it('a poller fact reported after session_killed stays in the session\'s trace and continues its sequence', async () => {
    const { telemetry, sink, data, traces } = setup({ graceMs: 60_000 });
    telemetry.emit({ type: 'session_created', sessionName: S, source: 'gateway', time: new Date(T0) });
    telemetry.emit({ type: 'terminal_created', sessionName: S, terminalId: SUP, agentName: 'code_supervisor', source: 'gateway', time: new Date(T0 + 1) });
    telemetry.emit({ type: 'terminal_created', sessionName: S, terminalId: W, agentName: 'developer', source: 'poller', time: new Date(T0 + 2) });
    telemetry.emit({ type: 'message_sent', orchestrationType: 'send_message', phase: 'dispatched', sender: W, receiver: SUP, message: 'done', source: 'gateway', time: new Date(T0 + 3) });
    telemetry.emit({ type: 'session_killed', sessionName: S, source: 'gateway', time: new Date(T0 + 10) });
    // the poller's cycle observed the delivery before the kill and reports it after
    assert.ok(telemetry.emit({
      type: 'message_sent', orchestrationType: 'send_message', phase: 'delivered', sessionName: S, sender: W, receiver: SUP,
      message: 'done', source: 'poller', observationId: 'inbox:1', time: new Date(T0 + 9),
    }));
    // and its kills of the terminals and the session, confirmed later, are the same facts
    assert.equal(telemetry.emit({ type: 'terminal_killed', sessionName: S, terminalId: W, source: 'poller', time: new Date(T0 + 3_000) }), undefined);
    assert.equal(telemetry.emit({ type: 'session_killed', sessionName: S, source: 'poller', time: new Date(T0 + 3_000) }), undefined);
    await telemetry.shutdown();
    assert.equal(traces().size, 1);
    assert.deepEqual(sink.events.map((e) => Number(e.sequence)), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(data().slice(4).map(brief), [
      `terminal_killed ${SUP} code_supervisor via gateway`,
      `terminal_killed ${W} developer via gateway`,
      `session_killed ${S} via gateway`,
      `send_message/delivered developer(${W})→code_supervisor(${SUP}) via poller`,
    ]);
  });

  it('after the grace period a late fact opens a new trace (it is never dropped)', async () => {
    const { telemetry, sink, traces } = setup({ graceMs: 30 });
    telemetry.emit({ type: 'session_created', sessionName: S, source: 'gateway' });
    telemetry.emit({ type: 'session_killed', sessionName: S, source: 'gateway' });
    await new Promise((r) => setTimeout(r, 60));
    assert.ok(telemetry.emit({ type: 'message_sent', orchestrationType: 'send_message', phase: 'delivered', sessionName: S, receiver: SUP, message: 'x', source: 'poller' }));
    await telemetry.shutdown();
    assert.equal(traces().size, 2);
    assert.deepEqual(sink.events.map((e) => Number(e.sequence)), [1, 2, 1]);
  });
});

describe('one fact, one event; two occurrences, two events', () => {
  const delivered = (source: 'plugin' | 'poller', observationId: string, message = 'done'): CaoEvent => ({
    type: 'message_sent', orchestrationType: 'send_message', phase: 'delivered', sessionName: S, sender: W, receiver: SUP, message, source, observationId,
  });

  it('the same delivery seen by the plugin and the poller is one event; two identical deliveries are two', async () => {
    const { telemetry, data } = setup();
    telemetry.emit({ type: 'session_created', sessionName: S, source: 'gateway' });
    assert.ok(telemetry.emit(delivered('plugin', 'hook-a')), 'first "done", plugin');
    assert.ok(telemetry.emit(delivered('plugin', 'hook-b')), 'second "done", plugin');
    assert.equal(telemetry.emit(delivered('poller', 'inbox:41')), undefined, 'the poller sees the first');
    assert.equal(telemetry.emit(delivered('poller', 'inbox:42')), undefined, 'and the second');
    assert.equal(telemetry.emit(delivered('poller', 'inbox:41')), undefined, 'a repeated observation is no new fact');
    assert.equal(telemetry.emit(delivered('plugin', 'hook-a')), undefined);
    assert.ok(telemetry.emit(delivered('poller', 'inbox:43')), 'a third, seen by the poller first');
    assert.equal(telemetry.emit(delivered('plugin', 'hook-c')), undefined, 'then the plugin');
    await telemetry.shutdown();
    assert.deepEqual(data().filter((d) => d.event_type === 'message_sent').map((d) => d.observed_by), ['plugin', 'plugin', 'poller']);
  });

  it('two assigns of the same task to two workers are two events; the poller\'s content-less delivery carries the task', async () => {
    const { telemetry, data } = setup();
    const task = 'Write the tests.\n\n[Assigned by terminal a1b2c3d4. When done, send results back to terminal a1b2c3d4 using send_message]';
    telemetry.emit({ type: 'terminal_created', sessionName: S, terminalId: SUP, agentName: 'code_supervisor', source: 'gateway' });
    for (const worker of [W, H]) {
      telemetry.emit({ type: 'terminal_created', sessionName: S, terminalId: worker, agentName: 'developer', source: 'gateway' });
      assert.ok(telemetry.emit({ type: 'message_sent', orchestrationType: 'assign', phase: 'dispatched', sender: SUP, receiver: worker, message: task, source: 'gateway' }));
    }
    // CAO ≥ 2.3: the poller sees the worker start on its task (no text); the plugin's hook names the text
    assert.ok(telemetry.emit({ type: 'message_sent', orchestrationType: 'assign', phase: 'delivered', sessionName: S, sender: SUP, receiver: W, source: 'poller', observationId: `assign-task:${W}` }));
    assert.equal(telemetry.emit({ type: 'message_sent', orchestrationType: 'assign', phase: 'delivered', sessionName: S, sender: SUP, receiver: W, message: task, source: 'plugin', observationId: 'hook-9' }), undefined);
    await telemetry.shutdown();
    const messages = data().filter((d) => d.event_type === 'message_sent');
    assert.deepEqual(messages.map((d) => `${d.phase} ${d.receiver}`), [`dispatched ${W}`, `dispatched ${H}`, `delivered ${W}`]);
    assert.equal(messages[2]!.message, task, 'the later phase carries the text the core already knew');
    assert.equal(messages[2]!.receiver_agent, 'developer');
  });

  it('a worker remembers its assign until a delivery or failure of it is recorded (what the poller watches)', async () => {
    const { telemetry } = setup();
    telemetry.emit({ type: 'terminal_created', sessionName: S, terminalId: SUP, agentName: 'code_supervisor', source: 'gateway' });
    for (const worker of [W, H]) telemetry.emit({ type: 'terminal_created', sessionName: S, terminalId: worker, agentName: 'developer', source: 'gateway' });
    assert.equal(telemetry.state.terminal(W)!.assignment, undefined, 'no task yet');
    for (const worker of [W, H]) telemetry.emit({ type: 'message_sent', orchestrationType: 'assign', phase: 'dispatched', sender: SUP, receiver: worker, message: 'go', source: 'gateway' });
    assert.deepEqual([telemetry.state.terminal(W)!.assignment?.sender, telemetry.state.terminal(W)!.assignment?.outcome], [SUP, undefined]);
    telemetry.emit({ type: 'message_sent', orchestrationType: 'assign', phase: 'delivered', sender: SUP, receiver: W, message: 'go', source: 'plugin', observationId: 'hook-1' });
    telemetry.emit({ type: 'message_sent', orchestrationType: 'assign', phase: 'failed', sender: SUP, receiver: H, message: 'Worker failed', source: 'poller', observationId: `assign-failed:${H}` });
    assert.equal(telemetry.state.terminal(W)!.assignment?.outcome, 'delivered');
    assert.equal(telemetry.state.terminal(H)!.assignment?.outcome, 'failed');
    // a handoff to a terminal is no assign
    telemetry.emit({ type: 'message_sent', orchestrationType: 'handoff', phase: 'dispatched', sender: SUP, receiver: SUP, message: 'x', source: 'gateway' });
    assert.equal(telemetry.state.terminal(SUP)!.assignment, undefined);
    await telemetry.shutdown();
  });

  it('the same creation, kill or session reported by every source is one event; the richer report fills in', async () => {
    const { telemetry, data } = setup();
    telemetry.emit({ type: 'terminal_created', sessionName: S, terminalId: SUP, source: 'poller' });
    assert.equal(telemetry.emit({ type: 'terminal_created', sessionName: S, terminalId: SUP, agentName: 'code_supervisor', provider: 'q_cli', source: 'plugin' }), undefined);
    telemetry.emit({ type: 'session_created', sessionName: S, source: 'plugin' });
    assert.equal(telemetry.emit({ type: 'session_created', sessionName: S, source: 'gateway' }), undefined);
    assert.equal(telemetry.emit({ type: 'session_created', sessionName: S, source: 'poller' }), undefined);
    telemetry.emit({ type: 'terminal_killed', terminalId: SUP, source: 'gateway' });
    assert.equal(telemetry.emit({ type: 'terminal_killed', terminalId: SUP, sessionName: S, source: 'plugin' }), undefined);
    await telemetry.shutdown();
    assert.deepEqual(data().map(brief), [
      `terminal_created ${SUP} via poller`,
      `session_created ${S} via plugin`,
      `terminal_killed ${SUP} code_supervisor via gateway`,
    ]);
    assert.equal(data()[2]!.provider, 'q_cli');
  });
});

describe('complete message events', () => {
  it('a HEAD handoff: the dispatch names the receiver\'s agent; the result names the worker and both agents; the worker\'s life spans from its dispatch', async () => {
    const { telemetry, data, spans } = setup();
    telemetry.emit({ type: 'session_created', sessionName: S, source: 'gateway', time: new Date(T0) });
    telemetry.emit({ type: 'terminal_created', sessionName: S, terminalId: SUP, agentName: 'code_supervisor', source: 'gateway', time: new Date(T0) });
    telemetry.emit({ type: 'message_sent', orchestrationType: 'handoff', phase: 'dispatched', sessionName: S, sender: SUP, receiverAgent: 'reviewer', message: 'Review it', source: 'gateway', time: new Date(T0 + 100) });
    telemetry.emit({ type: 'message_sent', orchestrationType: 'handoff', phase: 'completed', sessionName: S, sender: H, receiver: SUP, message: 'LGTM', source: 'gateway', time: new Date(T0 + 6_500) });
    telemetry.emit({ type: 'terminal_killed', sessionName: S, terminalId: H, agentName: 'reviewer', source: 'plugin', time: new Date(T0 + 6_400) });
    await telemetry.shutdown();
    const [dispatched, completed] = data().filter((d) => d.event_type === 'message_sent');
    assert.deepEqual(
      [dispatched!.sender_agent, dispatched!.receiver, dispatched!.receiver_agent],
      ['code_supervisor', undefined, 'reviewer'],
    );
    assert.deepEqual(
      [completed!.sender, completed!.sender_agent, completed!.receiver, completed!.receiver_agent, completed!.message],
      [H, 'reviewer', SUP, 'code_supervisor', 'LGTM'],
    );
    for (const d of [dispatched!, completed!]) {
      assert.ok(!('terminal_id' in d) && !('agent_name' in d) && !('provider' in d), 'no terminal fields on a message');
    }
    const life = spans.spans.find((s) => s.name === 'invoke_agent reviewer')!;
    assert.ok(life, 'the worker\'s lifetime span');
    assert.deepEqual(life.startTime, [Math.floor((T0 + 100) / 1000), ((T0 + 100) % 1000) * 1e6], 'from the handoff\'s dispatch');
    assert.equal(life.attributes['gen_ai.operation.name'], 'invoke_agent');
    const message = spans.spans.find((s) => s.events[0]?.attributes?.['cao.orchestration.phase'] === 'completed')!;
    assert.equal(message.name, 'execute_tool handoff');
    assert.equal(message.attributes['gen_ai.tool.name'], 'handoff');
  });
});
