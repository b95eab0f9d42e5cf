/**
 * Scripted multi-agent sessions driven through the real gateway (proxy + classifier + poller)
 * against the CAO simulator in each release's mode (the real releases run in test/e2e): the exact
 * CloudEvents that reach a real receiver, each fact once, in one trace.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { CaoEventData } from '../exporters/transform.ts';
import { loadConfig } from '../src/config.ts';
import { type CaoVersion, startCaoSimulator } from '../src/demo/cao-simulator.ts';
import { CAO_VERSIONS } from '../src/demo/cao-versions.ts';
import { runScenario } from '../src/demo/scenario.ts';
import { startGatewayService } from '../src/gateway-service.ts';
import { createLogger } from '../src/logger.ts';
import { startReceiver } from '../src/receiver.ts';
import { startRuntime } from '../src/runtime.ts';
import { logCapture } from './helpers/log-capture.ts';
import { waitFor } from './helpers/otlp-receiver.ts';
import { scratchDir } from './helpers/scratch-dir.ts';

function fact(d: CaoEventData): string {
  switch (d.event_type) {
    case 'message_sent':
      return `message ${d.orchestration_type}/${d.phase} ${d.sender ?? '-'}→${d.receiver ?? '-'}`;
    case 'terminal_created':
    case 'terminal_killed':
      return `${d.event_type} ${d.terminal_id} ${d.agent_name}`;
    default:
      return `${d.event_type} ${d.session_name}`;
  }
}

async function drive(version: CaoVersion) {
  const simulator = await startCaoSimulator({ version, initMs: 400, workMs: 300 });
  const receiver = await startReceiver();
  const logs = logCapture();
  const project = scratchDir('cao-events-test-project-');
  const config = loadConfig({
    flags: { 'callback-url': receiver.url, upstream: simulator.url, port: '0', 'poll-interval-ms': '100', 'log-level': 'debug' },
  });
  const runtime = startRuntime(config, createLogger('debug', logs.stream));
  const gateway = await startGatewayService(config, runtime, { ingest: false });
  try {
    const ids = await runScenario(gateway.url, version, project, 250);
    await waitFor(() => receiver.received.some((r) => (r.event.data as CaoEventData).event_type === 'session_killed'), 15_000, 'the session\'s end');
    await new Promise((r) => setTimeout(r, 500)); // a few more poller cycles: nothing more may arrive
    return { ids, events: receiver.received.map((r) => r.event), logs: logs.text() };
  } finally {
    await gateway.close();
    await runtime.close();
    await receiver.close();
    await simulator.close();
    rmSync(project, { recursive: true, force: true });
  }
}

for (const version of CAO_VERSIONS) {
  const serverSide = version !== '2.1.1';
  describe(`a scripted session through the gateway, CAO ${version}`, () => {
    it('delivers each fact exactly once, in one trace, with the right sources', async () => {
      const { ids, events, logs } = await drive(version);
      const { supervisor: sup, workers: [w1, w2], reviewer } = ids;
      const data = events.map((e) => e.data as CaoEventData);
      const facts = data.map(fact);
      assert.equal(new Set(facts).size, facts.length, `no fact twice:\n${facts.join('\n')}`);
      assert.equal(new Set(events.map((e) => e.id)).size, events.length);
      const expected = [
        'session_created cao-demo',
        `terminal_created ${sup} code_supervisor`,
        `terminal_created ${w1} developer`,
        `message assign/dispatched ${sup}→${w1}`,
        `terminal_created ${w2} tester`,
        `message assign/dispatched ${sup}→${w2}`,
        serverSide ? `message handoff/dispatched ${sup}→-` : `message handoff/dispatched ${sup}→${reviewer}`,
        `terminal_created ${reviewer} reviewer`,
        `message handoff/completed ${reviewer}→${sup}`,
        `message send_message/dispatched ${w1}→${sup}`,
        `message send_message/dispatched ${w2}→${sup}`,
        `message send_message/delivered ${w1}→${sup}`,
        `message send_message/delivered ${w2}→${sup}`,
        `terminal_killed ${w1} developer`,
        `terminal_killed ${sup} code_supervisor`,
        `terminal_killed ${w2} tester`,
        `terminal_killed ${reviewer} reviewer`,
        'session_killed cao-demo',
        // the task reaching the worker: only the poller sees it (no plugin here), from the worker's
        // status or 2.5's own record; never for the handoff's worker
        `message assign/delivered ${sup}→${w1}`,
        `message assign/delivered ${sup}→${w2}`,
      ];
      assert.deepEqual([...facts].sort(), [...expected].sort());
      // order where it is causal
      const at = (f: string) => facts.indexOf(f);
      assert.ok(at('session_created cao-demo') === 0);
      assert.ok(at(`message send_message/dispatched ${w1}→${sup}`) < at(`message send_message/delivered ${w1}→${sup}`));
      assert.ok(at('session_killed cao-demo') === facts.length - 1);
      // one trace for the session, increasing sequence
      assert.equal(new Set(events.map((e) => String(e.traceparent).split('-')[1])).size, 1);
      assert.deepEqual(events.map((e) => Number(e.sequence)), events.map((_, i) => i + 1));
      // who saw what
      const source = (f: string) => data[at(f)]!.observed_by;
      assert.equal(source(`message assign/dispatched ${sup}→${w1}`), 'gateway');
      assert.equal(source(`message send_message/delivered ${w1}→${sup}`), 'poller');
      assert.equal(source(`terminal_killed ${w1} developer`), 'gateway');
      assert.equal(source(`message assign/delivered ${sup}→${w1}`), 'poller');
      assert.ok(at(`message assign/dispatched ${sup}→${w1}`) < at(`message assign/delivered ${sup}→${w1}`));
      assert.equal(source('session_killed cao-demo'), 'gateway');
      const completed = data[at(`message handoff/completed ${reviewer}→${sup}`)]!;
      assert.match(completed.message ?? '', /Review the parser/);
      if (serverSide) {
        assert.equal(source(`terminal_created ${reviewer} reviewer`), 'poller', 'the run-step worker never passes through HTTP');
        assert.equal(source(`terminal_killed ${reviewer} reviewer`), 'poller', 'torn down inside the server');
      } else {
        assert.equal(source(`terminal_created ${reviewer} reviewer`), 'gateway');
        assert.equal(source(`terminal_killed ${reviewer} reviewer`), 'gateway', '2.1.1 only exits the worker: its row goes with the session');
      }
      // message contents are in the events but never in the logs, nor are query strings
      assert.ok(!logs.includes('Parser done'));
      assert.ok(!logs.includes('sender_id='));
    });
  });
}
