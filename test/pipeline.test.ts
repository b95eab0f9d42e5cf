/**
 * The core pipeline end to end on loopback: createCaoTelemetry → spans → CloudEvents over real
 * HTTP to the built-in receiver, and the same spans to a real OTLP receiver (JSON, protobuf,
 * gRPC), configured through the standard OTEL_* variables.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { CloudEventV1 } from 'cloudevents';
import { createCaoTelemetry, type CaoEvent, CaoEventError } from '../src/index.ts';
import { startReceiver } from '../src/receiver.ts';
import { createLogger } from '../src/logger.ts';
import type { CaoEventData } from '../exporters/transform.ts';
import { logCapture } from './helpers/log-capture.ts';
import { startOtlpGrpcReceiver, startOtlpHttpReceiver, waitFor } from './helpers/otlp-receiver.ts';

const SESSION = 'cao-3f2a9c1d';
const SUP = 'a1b2c3d4';
const WORKER = 'e5f6a7b8';

/** A scripted session: all five event types, 100 ms apart. The session's kill also ends the supervisor, still live. */
const T0 = Date.parse('2026-11-25T16:09:40.000Z');
const at = (i: number) => new Date(T0 + i * 100);
function script(session = SESSION): CaoEvent[] {
  return [
    { type: 'session_created', sessionName: session, source: 'gateway', time: at(0) },
    { type: 'terminal_created', sessionName: session, terminalId: SUP, agentName: 'code_supervisor', provider: 'kiro_cli', source: 'gateway', time: at(1) },
    { type: 'terminal_created', sessionName: session, terminalId: WORKER, agentName: 'developer', provider: 'claude_code', source: 'gateway', time: at(2) },
    { type: 'message_sent', sessionName: session, sender: SUP, receiver: WORKER, orchestrationType: 'assign', phase: 'dispatched', message: 'Implement the parser. Reply with "done" – ünïcode ✓', source: 'gateway', time: at(3) },
    { type: 'message_sent', sessionName: session, sender: WORKER, receiver: SUP, orchestrationType: 'send_message', phase: 'delivered', message: 'done', source: 'poller', time: at(4) },
    { type: 'terminal_killed', terminalId: WORKER, source: 'gateway', time: at(5) },
    { type: 'session_killed', sessionName: session, source: 'gateway', time: at(6) },
  ];
}

for (const mode of ['structured', 'binary', 'batch'] as const) {
  describe(`CloudEvents in ${mode} mode`, () => {
    it('delivers all five event types as valid CloudEvents 1.0 with the contract attributes', async () => {
      const receiver = await startReceiver();
      const telemetry = createCaoTelemetry({ callbackUrl: receiver.url, mode, source: 'http://127.0.0.1:9889', otlp: false });
      const recorded = script().map((e) => telemetry.emit(e));
      await telemetry.forceFlush();
      const events = receiver.received.map((r) => r.event as CloudEventV1<CaoEventData>);
      assert.equal(events.length, 8);
      assert.ok(receiver.received.every((r) => r.mode === mode));
      assert.deepEqual(
        events.map((e) => e.type),
        ['session_created', 'terminal_created', 'terminal_created', 'message_sent', 'message_sent', 'terminal_killed', 'terminal_killed', 'session_killed'].map(
          (t) => `io.github.awslabs.cao.${t}`,
        ),
      );
      // the supervisor's kill is recorded by the core when the session ends (no recorded[] entry)
      const byEvent = [...recorded.slice(0, 6), undefined, recorded[6]];
      for (const [i, e] of events.entries()) {
        const r = byEvent[i] ?? { traceId: e.id.split('-')[0]!, spanId: e.id.split('-')[1]! };
        assert.equal(e.specversion, '1.0');
        assert.equal(e.source, 'http://127.0.0.1:9889');
        assert.equal(e.subject, SESSION);
        assert.equal(e.datacontenttype, 'application/json');
        assert.equal(e.id, `${r.traceId}-${r.spanId}-0`);
        assert.equal(e.traceparent, `00-${r.traceId}-${r.spanId}-01`);
        assert.equal(e.sequence, String(i + 1).padStart(20, '0'));
        assert.match(String(e.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
        assert.equal(e.data?.session_name, SESSION);
        assert.equal(e.data?.event_type, e.type.split('.').pop());
        for (const value of Object.values(e.data ?? {})) assert.notEqual(value, 'undefined');
      }
      // one trace per session
      assert.equal(new Set(recorded.map((r) => r!.traceId)).size, 1);
      assert.deepEqual(events[1]!.data, {
        event_type: 'terminal_created',
        session_id: SESSION,
        session_name: SESSION,
        terminal_id: SUP,
        agent_name: 'code_supervisor',
        provider: 'kiro_cli',
        observed_by: 'gateway',
      });
      assert.deepEqual(events[3]!.data, {
        event_type: 'message_sent',
        session_id: SESSION,
        session_name: SESSION,
        sender: SUP,
        sender_agent: 'code_supervisor',
        receiver: WORKER,
        receiver_agent: 'developer',
        message: 'Implement the parser. Reply with "done" – ünïcode ✓',
        orchestration_type: 'assign',
        phase: 'dispatched',
        observed_by: 'gateway',
      });
      // the kill of a terminal carries what was known at its creation
      assert.equal(events[5]!.data?.agent_name, 'developer');
      assert.equal(events[5]!.data?.session_name, SESSION);
      assert.equal(events[6]!.data?.terminal_id, SUP);
      assert.equal(events[6]!.data?.agent_name, 'code_supervisor');
      assert.equal(events[6]!.data?.observed_by, 'gateway');
      if (mode === 'binary') {
        const headers = receiver.received[3]!.headers;
        assert.equal(headers['ce-type'], 'io.github.awslabs.cao.message_sent');
        assert.equal(headers['content-type'], 'application/json');
      }
      await telemetry.shutdown();
      await receiver.close();
    });
  });
}

describe('delivery is real time and never blocks emit()', () => {
  it('an event reaches a healthy sink without forceFlush (no 5-second batch delay)', async () => {
    const receiver = await startReceiver();
    const telemetry = createCaoTelemetry({ callbackUrl: receiver.url, otlp: false });
    telemetry.emit({ type: 'session_created', sessionName: 'cao-realtime' });
    await waitFor(() => receiver.received.length === 1, 3_000, 'real-time delivery');
    await telemetry.shutdown();
    await receiver.close();
  });
});

describe('validation', () => {
  it('rejects an event missing what its type requires, and records nothing', async () => {
    const receiver = await startReceiver();
    const telemetry = createCaoTelemetry({ callbackUrl: receiver.url, otlp: false });
    assert.throws(() => telemetry.emit({ type: 'message_sent', sessionName: 's', sender: 'a' } as CaoEvent), /orchestrationType/);
    assert.throws(() => telemetry.emit({ type: 'terminal_created', sessionName: 's' } as CaoEvent), /requires terminalId/);
    assert.throws(() => telemetry.emit({ type: 'session_created' } as CaoEvent), /requires sessionName/);
    assert.throws(() => telemetry.emit({ type: 'nope' } as unknown as CaoEvent), CaoEventError);
    assert.throws(
      () => telemetry.emit({ type: 'message_sent', sessionName: 's', sender: 'a', orchestrationType: 'assign', phase: 'later' } as unknown as CaoEvent),
      /phase must be one of/,
    );
    assert.throws(() => telemetry.emit({ type: 'terminal_killed', terminalId: 'ffffffff' }), /cannot place it in a session/);
    await telemetry.forceFlush();
    assert.equal(receiver.received.length, 0);
    await telemetry.shutdown();
    await receiver.close();
  });

  it('reports one fact once when two sources see it', async () => {
    const receiver = await startReceiver();
    const telemetry = createCaoTelemetry({ callbackUrl: receiver.url, otlp: false });
    assert.ok(telemetry.emit({ type: 'session_created', sessionName: 'cao-dup', source: 'gateway' }));
    assert.equal(telemetry.emit({ type: 'session_created', sessionName: 'cao-dup', source: 'poller' }), undefined);
    assert.ok(telemetry.emit({ type: 'terminal_created', sessionName: 'cao-dup', terminalId: '11111111', source: 'poller' }));
    assert.equal(telemetry.emit({ type: 'terminal_created', sessionName: 'cao-dup', terminalId: '11111111', source: 'plugin' }), undefined);
    // the plugin's richer duplicate (agent and provider) is learnt: the terminal's later events carry them
    assert.equal(telemetry.emit({ type: 'terminal_created', sessionName: 'cao-dup', terminalId: '11111111', agentName: 'developer', provider: 'q_cli', source: 'plugin' }), undefined);
    assert.ok(telemetry.emit({ type: 'terminal_killed', terminalId: '11111111', source: 'poller' }));
    await telemetry.forceFlush();
    assert.equal(receiver.received.length, 3);
    assert.equal((receiver.received[0]!.event.data as CaoEventData).observed_by, 'gateway');
    assert.equal((receiver.received[2]!.event.data as CaoEventData).agent_name, 'developer');
    assert.equal((receiver.received[2]!.event.data as CaoEventData).provider, 'q_cli');
    await telemetry.shutdown();
    await receiver.close();
  });
});

describe('OTLP: the same spans reach a real OTLP receiver', () => {
  const saved = { ...process.env };
  after(() => {
    process.env = saved;
  });

  for (const protocol of ['http/json', 'http/protobuf', 'grpc'] as const) {
    it(`via OTEL_EXPORTER_OTLP_ENDPOINT with OTEL_EXPORTER_OTLP_PROTOCOL=${protocol}`, async () => {
      const otlp = protocol === 'grpc' ? await startOtlpGrpcReceiver() : await startOtlpHttpReceiver();
      const receiver = await startReceiver();
      process.env = {
        ...saved,
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
        OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=cao-team',
        OTEL_SERVICE_NAME: 'cao-events-test',
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=ci',
      };
      const telemetry = createCaoTelemetry({ callbackUrl: receiver.url });
      for (const event of script()) telemetry.emit(event);
      await telemetry.forceFlush();
      // the root, one span per event (8), and the lifetimes of two terminals and of the session
      await waitFor(() => otlp.spans.length >= 12, 10_000, 'spans at the OTLP receiver');
      const spans = otlp.spans;
      const root = spans.find((s) => s.name === 'cao.session');
      assert.ok(root, 'a cao.session root span was exported');
      assert.equal(root.parentSpanId, undefined);
      assert.equal(root.resource['service.name'], 'cao-events-test');
      assert.equal(root.resource['deployment.environment'], 'ci');
      assert.equal(otlp.requests[0]!.headers['x-tenant'], 'cao-team');
      // every CloudEvent's traceparent names a span the collector got, all in the session's trace
      assert.equal(receiver.received.length, 8);
      for (const { event } of receiver.received) {
        const [, traceId, spanId] = String(event.traceparent).split('-');
        const span = spans.find((s) => s.spanId === spanId);
        assert.ok(span, `span ${spanId} of ${event.type} reached the collector`);
        assert.equal(span.traceId, traceId);
        assert.equal(span.traceId, root.traceId);
        assert.equal(span.parentSpanId, root.spanId);
        const spanEvent = span.events[0]!;
        assert.equal(spanEvent.name, `cao.${(event.data as CaoEventData).event_type}`);
        assert.equal(spanEvent.attributes['cao.session.name'], SESSION);
        assert.equal(spanEvent.attributes['gen_ai.conversation.id'], SESSION);
      }
      // a message links the sender's and the receiver's terminal spans
      const assign = spans.find((s) => s.events[0]?.attributes['cao.orchestration.type'] === 'assign')!;
      const terminalSpan = (id: string) => spans.find((s) => s.events[0]?.name === 'cao.terminal_created' && s.events[0]?.attributes['cao.terminal.id'] === id)!;
      assert.deepEqual(
        assign.links.map((l) => l.spanId).sort(),
        [terminalSpan(SUP).spanId, terminalSpan(WORKER).spanId].sort(),
      );
      assert.equal(assign.events[0]!.attributes['cao.message.content'], 'Implement the parser. Reply with "done" – ünïcode ✓');
      assert.equal(terminalSpan(SUP).events[0]!.attributes['gen_ai.agent.name'], 'code_supervisor');
      assert.equal(terminalSpan(SUP).events[0]!.attributes['gen_ai.agent.id'], SUP);
      // span names: GenAI operations where they fit, low-cardinality
      assert.equal(assign.name, 'execute_tool assign');
      assert.equal(assign.attributes['gen_ai.operation.name'], 'execute_tool');
      assert.equal(terminalSpan(SUP).name, 'create_agent code_supervisor');
      // lifetimes: first seen → killed, under the session's root
      const ns = (i: number) => String(BigInt(T0 + i * 100) * 1_000_000n);
      const life = (name: string) => spans.find((s) => s.name === name)!;
      for (const [name, start, end] of [['invoke_agent developer', 2, 5], ['invoke_agent code_supervisor', 1, 6], ['invoke_workflow code_supervisor', 0, 6]] as const) {
        const span = life(name);
        assert.ok(span, `${name} exported`);
        assert.equal(span.parentSpanId, root.spanId);
        assert.equal(span.startTimeUnixNano, ns(start), `${name} starts when first seen`);
        assert.equal(span.endTimeUnixNano, ns(end), `${name} ends when killed`);
        assert.equal(span.events.length, 0, 'a lifetime span carries no event (no CloudEvent)');
      }
      assert.equal(life('invoke_agent developer').attributes['gen_ai.operation.name'], 'invoke_agent');
      assert.equal(life('invoke_workflow code_supervisor').attributes['gen_ai.operation.name'], 'invoke_workflow');
      await telemetry.shutdown();
      await receiver.close();
      await otlp.close();
    });
  }

  it('exports nothing over OTLP when OTEL_SDK_DISABLED=true, while webhooks still work', async () => {
    const otlp = await startOtlpHttpReceiver();
    const receiver = await startReceiver();
    process.env = { ...saved, OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_SDK_DISABLED: 'true' };
    const telemetry = createCaoTelemetry({ callbackUrl: receiver.url });
    telemetry.emit({ type: 'session_created', sessionName: 'cao-off' });
    await telemetry.shutdown();
    assert.equal(receiver.received.length, 1);
    assert.equal(otlp.requests.length, 0);
    await receiver.close();
    await otlp.close();
  });

  it('continues CAO\'s own trace when an event carries its traceparent', async () => {
    const otlp = await startOtlpHttpReceiver();
    process.env = { ...saved, OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' };
    const telemetry = createCaoTelemetry({});
    const caoTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const r = telemetry.emit({
      type: 'message_sent', sessionName: 'cao-traced', sender: SUP, receiver: WORKER, orchestrationType: 'send_message',
      phase: 'delivered', message: 'hi', source: 'plugin', traceparent: `00-${caoTrace}-00f067aa0ba902b7-01`,
    });
    await telemetry.shutdown();
    assert.equal(r!.traceId, caoTrace);
    const root = otlp.spans.find((s) => s.name === 'cao.session')!;
    assert.equal(root.parentSpanId, '00f067aa0ba902b7');
    await otlp.close();
  });
});

describe('no sink configured', () => {
  it('the CloudEvents path is a no-op and nothing is logged', async () => {
    const logs = logCapture();
    const telemetry = createCaoTelemetry({ otlp: false, logger: createLogger('debug', logs.stream) });
    assert.equal(telemetry.sinks.length, 0);
    assert.ok(telemetry.emit({ type: 'session_created', sessionName: 'cao-quiet' }));
    await telemetry.shutdown();
    assert.deepEqual(logs.lines(), []);
  });
});

