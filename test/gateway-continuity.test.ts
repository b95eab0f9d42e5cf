/**
 * The gateway path with every source at once, in CAO's real order: the gateway, the poller and
 * the plugin ingest, in front of the CAO simulator with CAO's plugin hooks fired where a real
 * cao-server fires them (test/helpers/cao-hooks.ts says where each order comes from). One trace
 * and one increasing sequence per session, each fact once, complete messages, cause before
 * effect; and a poller report that lands after the session's kill stays in its trace (P2 in
 * real-cao.md §7).
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import { request } from 'undici';
import type { CaoEventData } from '../src/core/fields.ts';
import { loadConfig } from '../src/config.ts';
import { startCaoSimulator } from '../src/demo/cao-simulator.ts';
import { runScenario } from '../src/demo/scenario.ts';
import { startGatewayService } from '../src/gateway-service.ts';
import { createLogger } from '../src/logger.ts';
import { startReceiver } from '../src/receiver.ts';
import { startRuntime } from '../src/runtime.ts';
import { startCaoHooks } from './helpers/cao-hooks.ts';
import { freePort } from './helpers/free-port.ts';
import { waitFor } from './helpers/otlp-receiver.ts';
import { scratchDir } from './helpers/scratch-dir.ts';

function fact(d: CaoEventData): string {
  if (d.event_type === 'message_sent') {
    return `${d.orchestration_type}/${d.phase} ${d.sender_agent ?? '?'}→${d.receiver_agent ?? '?'}`;
  }
  return d.event_type.startsWith('terminal') ? `${d.event_type} ${d.agent_name}` : d.event_type;
}

async function call(base: string, method: string, path: string): Promise<Record<string, unknown>> {
  const res = await request(new URL(path, base), { method: method as 'GET' });
  const text = await res.body.text();
  assert.ok(res.statusCode < 300, `${method} ${path}: ${res.statusCode} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

describe('the gateway path with the plugin and the poller, in CAO\'s real order', () => {
  it('one trace, one increasing sequence, each fact once, complete messages, dispatch before delivery', async () => {
    // The test is about CAO's own hook order, so the poller (every 100 ms) lists a new session only
    // once the plugin's hooks for it have arrived. (On real CAO the poller may list the session
    // first; each fact is still reported once.)
    const simulator = await startCaoSimulator({ initMs: 0, workMs: 300 });
    const receiver = await startReceiver();
    const ingestPort = await freePort();
    const hooks = await startCaoHooks({ upstream: simulator.url, ingestUrl: `http://127.0.0.1:${ingestPort}/v1/cao/events`, simulator, sessionsAfterCreate: true });
    const project = scratchDir('cao-events-test-project-');
    const config = loadConfig({
      flags: { 'callback-url': receiver.url, upstream: hooks.url, port: '0', 'ingest-port': String(ingestPort), 'poll-interval-ms': '100' },
      env: {},
    });
    const runtime = startRuntime(config, createLogger('silent'), { metrics: false });
    const gateway = await startGatewayService(config, runtime);
    try {
      const ids = await runScenario(gateway.url, simulator.version, project, 250);
      await waitFor(() => receiver.received.some((r) => (r.event.data as CaoEventData).event_type === 'session_killed'), 15_000, 'the session\'s end');
      await new Promise((r) => setTimeout(r, 500)); // a few more poller cycles: nothing more may arrive
      const events = receiver.received.map((r) => r.event);
      const data = events.map((e) => e.data as CaoEventData);
      const facts = data.map(fact);

      // one trace, one increasing sequence
      assert.equal(new Set(events.map((e) => String(e.traceparent).split('-')[1])).size, 1);
      assert.deepEqual(events.map((e) => Number(e.sequence)), events.map((_, i) => i + 1));
      // CAO's order: the plugin reports the first terminal before the session; still one session
      assert.deepEqual(facts.slice(0, 2), ['terminal_created code_supervisor', 'session_created']);
      assert.equal(data[0]!.observed_by, 'plugin');
      // each fact once, whichever sources saw it
      assert.deepEqual([...facts].sort(), [
        'session_created',
        'terminal_created code_supervisor',
        'terminal_created developer',
        'assign/dispatched code_supervisor→developer',
        'terminal_created tester',
        'assign/dispatched code_supervisor→tester',
        'handoff/dispatched code_supervisor→reviewer',
        'terminal_created reviewer',
        'handoff/completed reviewer→code_supervisor',
        'terminal_killed reviewer',
        'assign/delivered code_supervisor→developer',
        'assign/delivered code_supervisor→tester',
        'send_message/dispatched developer→code_supervisor',
        'send_message/dispatched tester→code_supervisor',
        'send_message/delivered developer→code_supervisor',
        'send_message/delivered tester→code_supervisor',
        'terminal_killed developer',
        'terminal_killed code_supervisor',
        'terminal_killed tester',
        'session_killed',
      ].sort(), facts.join('\n'));
      // every message names both agents (a ≥ 2.3 handoff's dispatch names the receiver's agent only)
      for (const d of data.filter((x) => x.event_type === 'message_sent')) {
        assert.ok(d.sender_agent && d.receiver_agent, JSON.stringify(d));
        assert.ok(d.receiver || (d.orchestration_type === 'handoff' && d.phase === 'dispatched'), JSON.stringify(d));
      }
      // cause before effect: CAO delivered inside the POST, the plugin's hook came first, the
      // gateway held it until the dispatch was reported
      for (const agent of ['developer', 'tester']) {
        const dispatched = facts.indexOf(`send_message/dispatched ${agent}→code_supervisor`);
        const delivered = facts.indexOf(`send_message/delivered ${agent}→code_supervisor`);
        assert.ok(dispatched < delivered, `${agent}: dispatched (${dispatched}) before delivered (${delivered})`);
        assert.equal(data[delivered]!.observed_by, 'plugin');
        assert.ok(String(events[dispatched]!.time) < String(events[delivered]!.time), 'and their times agree');
      }
      const firedDelivery = hooks.fired.findIndex((h) => h.event_type === 'post_send_message' && h.orchestration_type === 'send_message');
      assert.ok(firedDelivery >= 0, 'the hook fired during the POST');
      // the plugin's kills of the deleted session came before its own
      assert.equal(facts.at(-1), 'session_killed');
      assert.equal(data.find((d) => d.event_type === 'terminal_killed' && d.agent_name === 'tester')!.observed_by, 'plugin');
      // message content reached the events; the workers' ids are the scenario's
      assert.equal(data.find((d) => fact(d) === 'send_message/delivered developer→code_supervisor')!.sender, ids.workers[0]);
    } finally {
      await gateway.close();
      await runtime.close();
      await hooks.close();
      await receiver.close();
      await simulator.close();
      rmSync(project, { recursive: true, force: true });
    }
  });

  it('a poller cycle in flight across the session\'s kill: its delivery lands after session_killed, in the same trace', async () => {
    const simulator = await startCaoSimulator({ initMs: 30, workMs: 30 });
    const receiver = await startReceiver();
    const hooks = await startCaoHooks({ upstream: simulator.url, ingestUrl: 'http://127.0.0.1:9/unused', simulator });
    // the default interval does not matter: this test runs the poller's cycles itself
    const config = loadConfig({ flags: { 'callback-url': receiver.url, upstream: simulator.url, port: '0', 'poll-interval-ms': '3600000' }, env: {} });
    const runtime = startRuntime(config, createLogger('silent'), { metrics: false });
    // The poller polls through the delaying front; the gateway talks to the simulator directly,
    // so no hook fires (no plugin installed): the poller is the only witness of deliveries.
    const gateway = await startGatewayService({ ...config, gateway: { ...config.gateway, upstream: simulator.url } }, runtime, { ingest: false });
    const { createPoller } = await import('../src/sources/poller.ts');
    const poller = createPoller({ baseUrl: hooks.url, state: runtime.state, onEvent: (e) => runtime.record(e), intervalMs: 3_600_000 });
    try {
      await gateway.poller!.stop(); // the gateway's own poller is replaced by the one above
      const sup = await call(gateway.url, 'POST', '/sessions?provider=kiro_cli&agent_profile=code_supervisor&session_name=late');
      const session = String(sup.session_name);
      const worker = await call(gateway.url, 'POST', `/sessions/${session}/terminals?provider=claude_code&agent_profile=developer`);
      await poller.pollOnce(); // the poller knows both terminals
      await call(gateway.url, 'POST', `/terminals/${String(sup.id)}/inbox/messages?sender_id=${String(worker.id)}&message=done`);
      await waitFor(() => simulator.snapshot().messages.some((m) => m.status === 'delivered'), 5_000, 'the delivery');
      // a cycle starts, lists the inbox before the kill, and is answered after it
      hooks.inboxDelayMs = 400;
      const asked = hooks.inboxAsked(String(sup.id));
      const cycle = poller.pollOnce();
      await asked;
      await call(gateway.url, 'DELETE', `/sessions/${session}`);
      await gateway.settled();
      assert.ok(receiver.received.length > 0);
      await cycle;
      await runtime.telemetry.forceFlush();
      await waitFor(() => receiver.received.some((r) => (r.event.data as CaoEventData).phase === 'delivered'), 5_000, 'the late delivery');
      const events = receiver.received.map((r) => r.event);
      const data = events.map((e) => e.data as CaoEventData);
      const killed = data.findIndex((d) => d.event_type === 'session_killed');
      const delivered = data.findIndex((d) => d.phase === 'delivered');
      assert.ok(killed >= 0 && delivered > killed, `the poller's delivery after session_killed: ${data.map(fact).join(', ')}`);
      assert.equal(data[delivered]!.observed_by, 'poller');
      assert.equal(data[delivered]!.sender_agent, 'developer');
      assert.equal(new Set(events.map((e) => String(e.traceparent).split('-')[1])).size, 1, 'one trace');
      assert.deepEqual(events.map((e) => Number(e.sequence)), events.map((_, i) => i + 1), 'one sequence');
    } finally {
      await poller.stop();
      await gateway.close();
      await runtime.close();
      await hooks.close();
      await receiver.close();
      await simulator.close();
    }
  });
});
