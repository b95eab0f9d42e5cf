/**
 * The plugin bridge end to end: the real Python plugin (integrations/cao-plugin, run as a
 * subprocess with the system python3 and a stand-in of CAO's plugin base, since CAO itself is
 * not installed here) posts CAO's hook events to the real ingest endpoint; the sidecar records
 * them; CloudEvents reach a real receiver and spans a real OTLP receiver. Plus the endpoint's
 * validation, size limit and shared secret, and one-fact-one-event across plugin and gateway.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { request } from 'undici';
import type { CaoEventData } from '../src/core/fields.ts';
import { createCaoTelemetry } from '../src/index.ts';
import { startReceiver } from '../src/receiver.ts';
import { startIngestServer } from '../src/sources/ingest-server.ts';
import { pluginEventToCaoEvent } from '../src/sources/plugin-event.ts';
import { startOtlpHttpReceiver, waitFor } from './helpers/otlp-receiver.ts';

const run = promisify(execFile);
const FEED = new URL('../integrations/cao-plugin/tools/feed_events.py', import.meta.url).pathname;

async function post(url: string, body: string, headers: Record<string, string> = {}) {
  const res = await request(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  return { status: res.statusCode, body: (await res.body.json()) as { error?: string; accepted?: number } };
}

describe('plugin event mapping', () => {
  it('maps each post_* hook to its CaoEvent', () => {
    const base = { timestamp: '2026-08-22T10:15:30.123456Z', session_id: 'cao-x', traceparent: null };
    assert.deepEqual(pluginEventToCaoEvent({ ...base, event_type: 'post_create_session', session_name: 'cao-x' }), {
      // CAO's microseconds are kept (a Date would cut them to milliseconds)
      type: 'session_created', source: 'plugin', sessionId: 'cao-x', sessionName: 'cao-x', time: [Date.parse('2026-08-22T10:15:30Z') / 1000, 123_456_000],
    });
    // each hook call's id tells two identical deliveries apart; fields of other event types are not taken
    const delivered = pluginEventToCaoEvent({ ...base, event_type: 'post_send_message', event_id: '4f1c', sender: 'a1b2c3d4', receiver: 'e5f6a7b8', message: 'hi', orchestration_type: 'send_message', agent_name: 'x' });
    assert.equal(delivered.observationId, '4f1c');
    assert.equal(delivered.agentName, undefined);
    const msg = pluginEventToCaoEvent({ ...base, event_type: 'post_send_message', sender: 'a1b2c3d4', receiver: 'e5f6a7b8', message: 'hi', orchestration_type: 'assign' });
    assert.equal(msg.type, 'message_sent');
    assert.equal(msg.orchestrationType, 'assign');
    assert.equal(msg.phase, 'delivered');
    assert.equal(msg.sessionName, 'cao-x');
    assert.throws(() => pluginEventToCaoEvent({ ...base, event_type: 'post_reboot' }), /event_type "post_reboot" is not one of/);
    assert.throws(() => pluginEventToCaoEvent({ ...base, event_type: 'post_create_terminal' }), /requires terminalId/);
    assert.throws(() => pluginEventToCaoEvent({ ...base, event_type: 'post_kill_session', timestamp: 'yesterday' }), /timestamp/);
    assert.throws(() => pluginEventToCaoEvent([]), /must be a JSON object/);
  });
});

describe('ingest endpoint', () => {
  const cleanup: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('answers 400 naming the problem, 413 above the size limit, 401 without the shared secret, 404/405 elsewhere', async () => {
    const got: unknown[] = [];
    const ingest = await startIngestServer({ port: 0, token: 's3cret', maxBodyBytes: 2048, onEvent: (e) => got.push(e) });
    cleanup.push(() => ingest.close());
    const auth = { authorization: 'Bearer s3cret' };
    assert.equal((await post(ingest.url, '{"event_type":"post_kill_session","session_id":"cao-x"}')).status, 401);
    assert.equal((await post(ingest.url, '{"event_type":"post_kill_session","session_id":"cao-x"}', { authorization: 'Bearer nope' })).status, 401);
    const bad = await post(ingest.url, '{not json', auth);
    assert.equal(bad.status, 400);
    assert.match(bad.body.error!, /not valid JSON/);
    const missing = await post(ingest.url, '{"event_type":"post_create_terminal","session_id":"cao-x"}', auth);
    assert.equal(missing.status, 400);
    assert.match(missing.body.error!, /terminalId/);
    const huge = await post(ingest.url, JSON.stringify({ event_type: 'post_send_message', message: 'x'.repeat(5000) }), auth);
    assert.equal(huge.status, 413);
    const res404 = await request(ingest.url.replace('/v1/cao/events', '/other'), { method: 'POST', body: '{}', headers: auth });
    assert.equal(res404.statusCode, 404);
    await res404.body.dump();
    const res405 = await request(ingest.url, { method: 'GET', headers: auth });
    assert.equal(res405.statusCode, 405);
    await res405.body.dump();
    assert.equal(got.length, 0, 'nothing invalid was handed on');
    const ok = await post(ingest.url, JSON.stringify([
      { event_type: 'post_create_session', session_id: 'cao-x', session_name: 'cao-x' },
      { event_type: 'post_kill_session', session_id: 'cao-x', session_name: 'cao-x' },
    ]), auth);
    assert.deepEqual(ok, { status: 202, body: { accepted: 2 } });
    assert.equal(got.length, 2);
  });

  it('the Python plugin feeds all five event types through the sidecar to CloudEvents and OTLP spans', async () => {
    const receiver = await startReceiver();
    const otlp = await startOtlpHttpReceiver();
    const telemetry = createCaoTelemetry({ callbackUrl: receiver.url, otlp: { endpoint: otlp.url, protocol: 'http/json' } });
    const ingest = await startIngestServer({ port: 0, token: 'plugin-secret', onEvent: (e) => telemetry.emit(e) });
    cleanup.push(() => ingest.close(), () => receiver.close(), () => otlp.close());

    const { stderr } = await run('python3', [FEED, ingest.url, '--token', 'plugin-secret', '--session', 'cao-plugin-e2e'], { timeout: 30_000 });
    assert.match(stderr, /7/);
    // a duplicate of the same facts seen by the gateway collapses into the plugin's events
    assert.equal(telemetry.emit({ type: 'terminal_killed', terminalId: 'e5f6a7b8', source: 'gateway' }), undefined);
    assert.equal(telemetry.emit({ type: 'session_killed', sessionName: 'cao-plugin-e2e', source: 'poller' }), undefined);
    await telemetry.shutdown();

    // CAO's order (the first terminal before its session): still one trace, one increasing sequence
    const events = receiver.received.map((r) => r.event.data as CaoEventData);
    assert.deepEqual(events.map((e) => e.event_type), [
      'terminal_created', 'session_created', 'terminal_created', 'message_sent', 'terminal_killed', 'terminal_killed', 'session_killed',
    ]);
    assert.deepEqual(receiver.received.map((r) => Number(r.event.sequence)), [1, 2, 3, 4, 5, 6, 7]);
    assert.equal(new Set(receiver.received.map((r) => String(r.event.traceparent).split('-')[1])).size, 1);
    assert.equal(events[3]!.sender_agent, 'code_supervisor');
    assert.equal(events[3]!.receiver_agent, 'developer');
    assert.ok(events.every((e) => e.observed_by === 'plugin' && e.session_name === 'cao-plugin-e2e'));
    assert.deepEqual(
      { sender: events[3]!.sender, receiver: events[3]!.receiver, type: events[3]!.orchestration_type, phase: events[3]!.phase },
      { sender: 'a1b2c3d4', receiver: 'e5f6a7b8', type: 'send_message', phase: 'delivered' },
    );
    assert.equal(events[0]!.agent_name, 'code_supervisor');
    await waitFor(() => otlp.spans.length >= 8, 5_000, 'spans');
    const traceIds = new Set(otlp.spans.map((s) => s.traceId));
    assert.equal(traceIds.size, 1, 'one trace for the session');
    for (const { event } of receiver.received) {
      const spanId = String(event.traceparent).split('-')[2];
      assert.ok(otlp.spans.some((s) => s.spanId === spanId));
    }
  });

  it('the plugin survives a sidecar that is down (the feeder reports failure, nothing hangs)', async () => {
    const ingest = await startIngestServer({ port: 0, onEvent: () => undefined });
    const url = ingest.url;
    await ingest.close();
    await assert.rejects(run('python3', [FEED, url, '--timeout', '5'], { timeout: 30_000 }), (err: { code?: number }) => err.code === 1);
  });
});
