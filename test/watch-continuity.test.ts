/**
 * `cao-events watch` (the poller alone) as a user runs it: a real process against the CAO
 * simulator, CloudEvents to the built-in receiver. The session behaves as real CAO 2.5.4 does
 * (real-cao.md §2–3, the realcao stream's runs): a handoff worker created and torn down inside
 * the server, two identical inbox messages delivered one per attempt, then the session deleted.
 * One trace, one increasing sequence, complete messages (the agents the poller saw).
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { request } from 'undici';
import type { CaoEventData } from '../src/core/fields.ts';
import { startCaoSimulator } from '../src/demo/cao-simulator.ts';
import { startReceiver } from '../src/receiver.ts';
import { waitFor } from './helpers/otlp-receiver.ts';

const CLI = new URL('../src/cli.ts', import.meta.url).pathname;

async function call(base: string, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await request(new URL(path, base), {
    method: method as 'GET',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.body.text();
  assert.ok(res.statusCode < 300, `${method} ${path}: ${res.statusCode} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

describe('cao-events watch', () => {
  it('one trace and one increasing sequence for a session seen only by the poller', async () => {
    // the handoff worker lives initMs + workMs: long enough for a few 100 ms poller cycles
    const sim = await startCaoSimulator({ initMs: 300, workMs: 400 });
    const receiver = await startReceiver();
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CAO_EVENT') && !k.startsWith('OTEL_')));
    const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [
      CLI, 'watch', '--upstream', sim.url, '--callback-url', receiver.url, '--poll-interval-ms', '100', '--log-level', 'warn',
    ], { env: clean });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    const exited = once(child, 'exit');
    const data = () => receiver.received.map((r) => r.event.data as CaoEventData);
    try {
      const sup = await call(sim.url, 'POST', '/sessions?provider=kiro_cli&agent_profile=code_supervisor&session_name=watched');
      const session = String(sup.session_name);
      const dev = await call(sim.url, 'POST', `/sessions/${session}/terminals?provider=claude_code&agent_profile=developer`);
      await waitFor(() => data().some((d) => d.terminal_id === dev.id), 10_000, 'the poller to see the worker');
      // a handoff: the server creates, runs and tears down its worker (the poller sees it live)
      const handoff = await call(sim.url, 'POST', '/terminals/run-step', {
        provider: 'claude_code', agent: 'reviewer', prompt: 'Review it', teardown: true, timeout: 60, use_worktree: false, session_name: session, caller_id: sup.id,
      });
      // two identical reports: two deliveries, two events
      for (let i = 0; i < 2; i++) await call(sim.url, 'POST', `/terminals/${String(sup.id)}/inbox/messages?sender_id=${String(dev.id)}&message=done`);
      await waitFor(() => data().filter((d) => d.phase === 'delivered').length === 2, 10_000, 'both deliveries');
      await waitFor(() => data().some((d) => d.event_type === 'terminal_killed' && d.terminal_id === handoff.terminal_id), 10_000, 'the worker\'s end');
      await call(sim.url, 'DELETE', `/sessions/${session}`);
      await waitFor(() => data().some((d) => d.event_type === 'session_killed'), 10_000, 'the session\'s end');
      child.kill('SIGTERM');
      assert.equal((await exited)[0], 0, stderr);

      const events = receiver.received.map((r) => r.event);
      assert.equal(new Set(events.map((e) => String(e.traceparent).split('-')[1])).size, 1, 'one trace');
      assert.deepEqual(events.map((e) => Number(e.sequence)), events.map((_, i) => i + 1), 'one increasing sequence');
      assert.ok(data().every((d) => d.observed_by === 'poller'));
      const deliveries = data().filter((d) => d.event_type === 'message_sent');
      assert.equal(deliveries.length, 2);
      for (const d of deliveries) assert.deepEqual([d.sender_agent, d.receiver_agent, d.message], ['developer', 'code_supervisor', 'done']);
      const reviewer = data().filter((d) => d.terminal_id === handoff.terminal_id);
      assert.deepEqual(reviewer.map((d) => `${d.event_type} ${d.agent_name}`), ['terminal_created reviewer', 'terminal_killed reviewer']);
      assert.equal(data().at(-1)!.event_type, 'session_killed');
      assert.ok(events.every((e) => String(e.source).startsWith('cao://')), `a stable, unique source: ${String(events[0]!.source)}`);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await receiver.close();
      await sim.close();
    }
  });
});
