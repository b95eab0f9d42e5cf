/**
 * OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG apply to the OTLP path as the OpenTelemetry
 * specification says, while CloudEvents are never sampled away: a real OTLP receiver and a real
 * CloudEvents receiver on 127.0.0.1 see the same emitted events.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CaoEventData } from '../exporters/transform.ts';
import { createCaoTelemetry } from '../src/index.ts';
import { traceSamplerSetting } from '../src/otlp.ts';
import { startReceiver } from '../src/receiver.ts';
import { startOtlpHttpReceiver } from './helpers/otlp-receiver.ts';

/**
 * Four events per session: the three emitted and the terminal_killed the core reports for the
 * terminal still live at session_killed (four event spans under the session's root span).
 */
let terminals = 0;
function emitSession(telemetry: ReturnType<typeof createCaoTelemetry>, name: string, traceparent?: string): void {
  const terminalId = (0xa0000000 + terminals++).toString(16);
  telemetry.emit({ type: 'session_created', sessionName: name, ...(traceparent ? { traceparent } : {}) });
  telemetry.emit({ type: 'terminal_created', sessionName: name, terminalId, agentName: 'supervisor' });
  telemetry.emit({ type: 'session_killed', sessionName: name });
}

async function run(env: Record<string, string>, sessions: Array<{ name: string; traceparent?: string }>) {
  const receiver = await startReceiver();
  const otlp = await startOtlpHttpReceiver();
  const telemetry = createCaoTelemetry({ callbackUrl: receiver.url, otlp: { endpoint: otlp.url, protocol: 'http/json' }, env });
  for (const s of sessions) emitSession(telemetry, s.name, s.traceparent);
  await telemetry.shutdown(); // flushes both paths: what is not at the receivers now was not sent
  const cloudEvents = receiver.received.map((r) => r.event.data as CaoEventData);
  const spans = [...otlp.spans];
  await receiver.close();
  await otlp.close();
  return { cloudEvents, spans };
}

describe('OTEL_TRACES_SAMPLER on the OTLP path', () => {
  const sessions = Array.from({ length: 40 }, (_, i) => ({ name: `cao-s${String(i).padStart(2, '0')}` }));

  it('always_off: no span reaches OTLP, every CloudEvent is delivered', async () => {
    const { cloudEvents, spans } = await run({ OTEL_TRACES_SAMPLER: 'always_off' }, sessions.slice(0, 3));
    assert.equal(cloudEvents.length, 12);
    assert.equal(spans.length, 0);
  });

  it('always_on and the default export every span', async () => {
    for (const env of [{ OTEL_TRACES_SAMPLER: 'always_on' }, {}] as Array<Record<string, string>>) {
      const { cloudEvents, spans } = await run(env, sessions.slice(0, 3));
      assert.equal(cloudEvents.length, 12);
      assert.ok(spans.length >= 15, `root + 4 event spans per session (got ${spans.length})`);
    }
  });

  it('traceidratio keeps whole sessions (all spans of a trace or none), CloudEvents all', async () => {
    const { cloudEvents, spans } = await run({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.5' }, sessions);
    assert.equal(cloudEvents.length, 160, 'CloudEvents are never sampled');
    const perTrace = new Map<string, number>();
    for (const s of spans) perTrace.set(s.traceId, (perTrace.get(s.traceId) ?? 0) + 1);
    assert.ok(perTrace.size > 0 && perTrace.size < 40, `about half of 40 sessions kept (kept ${perTrace.size})`);
    const sizes = new Set(perTrace.values());
    assert.equal(sizes.size, 1, `every kept trace is complete (span counts per trace: ${[...sizes].join(', ')})`);
    const kept = new Set(spans.filter((s) => s.name === 'cao.session').map((s) => String(s.attributes['cao.session.name'])));
    assert.equal(kept.size, perTrace.size);
  });

  it('parentbased_* follow the sampled flag of the traceparent CAO passed on', async () => {
    const parent = (flags: string, i: number) => `00-${'ab'.repeat(15)}${String(i).padStart(2, '0')}-${'cd'.repeat(8)}-${flags}`;
    const { cloudEvents, spans } = await run({}, [
      { name: 'cao-sampled', traceparent: parent('01', 1) },
      { name: 'cao-not-sampled', traceparent: parent('00', 2) },
      { name: 'cao-no-parent' },
    ]);
    assert.equal(cloudEvents.length, 12);
    const sessionsSeen = new Set(spans.map((s) => String(s.attributes['cao.session.name'])));
    assert.deepEqual([...sessionsSeen].sort(), ['cao-no-parent', 'cao-sampled']);
    const off = await run({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' }, [
      { name: 'cao-sampled', traceparent: parent('01', 3) },
      { name: 'cao-no-parent' },
    ]);
    assert.deepEqual([...new Set(off.spans.map((s) => String(s.attributes['cao.session.name'])))], ['cao-sampled']);
    assert.equal(off.cloudEvents.length, 8);
  });

  it('reads the settings as the specification names them; anything else names the variable', () => {
    assert.deepEqual(traceSamplerSetting({}), { name: 'parentbased_always_on' });
    assert.deepEqual(traceSamplerSetting({ OTEL_TRACES_SAMPLER: 'TraceIdRatio' }), { name: 'traceidratio', ratio: 1 });
    assert.deepEqual(traceSamplerSetting({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' }), { name: 'parentbased_traceidratio', ratio: 0.25 });
    assert.throws(() => traceSamplerSetting({ OTEL_TRACES_SAMPLER: 'jaeger_remote' }), /OTEL_TRACES_SAMPLER: unsupported sampler "jaeger_remote"/);
    assert.throws(() => traceSamplerSetting({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: 'half' }), /OTEL_TRACES_SAMPLER_ARG/);
    assert.throws(() => traceSamplerSetting({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '-0.1' }), /OTEL_TRACES_SAMPLER_ARG/);
  });
});
