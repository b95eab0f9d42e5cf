/**
 * What a CAO session must look like in Jaeger, checked against what the CloudEvents receiver got
 * (the design's promise: what a user sees in Jaeger and what the callback receives are the same
 * facts). Reads Jaeger only through its HTTP query API.
 */
import assert from 'node:assert/strict';
import type { Jaeger, JaegerSpan } from './jaeger.ts';
import type { ProducedSession } from './session-producer.ts';

/** CloudEvent `data` field → the span-event attribute it comes from (design.md's catalog). */
export const DATA_ATTRIBUTES: ReadonlyArray<readonly [string, string]> = [
  ['session_id', 'cao.session.id'],
  ['session_name', 'cao.session.name'],
  ['terminal_id', 'cao.terminal.id'],
  ['agent_name', 'cao.agent.name'],
  ['provider', 'cao.provider'],
  ['sender', 'cao.message.sender'],
  ['receiver', 'cao.message.receiver'],
  ['sender_agent', 'cao.message.sender_agent'],
  ['receiver_agent', 'cao.message.receiver_agent'],
  ['message', 'cao.message.content'],
  ['orchestration_type', 'cao.orchestration.type'],
  ['phase', 'cao.orchestration.phase'],
  ['observed_by', 'cao.event.source'],
];

export interface SessionTrace {
  traceId: string;
  spans: JaegerSpan[];
  /** What Jaeger had to correct in the spans (`@jaeger@warnings`), per span name. */
  warnings: string[];
}

/** `2026-11-25T16:09:40.561932617Z` → nanoseconds since the epoch (all fractional digits kept). */
export function rfc3339ToNanos(time: string): bigint {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(time);
  assert.ok(m, `CloudEvent time ${time} is RFC 3339 UTC`);
  const seconds = BigInt(Date.parse(`${m[1]}Z`) / 1000);
  return seconds * 1_000_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

function spanIdOf(traceparent: unknown): { traceId: string; spanId: string } {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/.exec(String(traceparent));
  assert.ok(m, `traceparent ${String(traceparent)} is a W3C traceparent`);
  return { traceId: m[1]!, spanId: m[2]! };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function belongsTo(span: JaegerSpan, sessionName: string): boolean {
  return span.attributes['cao.session.name'] === sessionName || span.events.some((e) => e.attributes['cao.session.name'] === sessionName);
}

/**
 * Waits until Jaeger holds the span of every CloudEvent the receiver got (export is batched and
 * asynchronous), then checks the whole session. `since`/`until` bound the search by start time.
 */
export async function assertSessionInJaeger(jaeger: Jaeger, session: ProducedSession, since: Date, timeoutMs = 30_000): Promise<SessionTrace> {
  const { sessionName, serviceName, events } = session;
  assert.ok(events.length > 0, 'the receiver got CloudEvents');
  const wanted = events.map((e) => spanIdOf(e.traceparent));
  const ceTraceIds = [...new Set(wanted.map((w) => w.traceId))];
  assert.equal(ceTraceIds.length, 1, `the CloudEvents of ${sessionName} name one trace: ${ceTraceIds.join(', ')}`);

  // 1. Search by service and time, as the UI does, until every span has arrived.
  const deadline = Date.now() + timeoutMs;
  let found: JaegerSpan[] = [];
  let missing: string[] = [];
  for (;;) {
    found = await jaeger.findSpans(serviceName, since, new Date(Date.now() + 60_000));
    const ids = new Set(found.map((s) => s.spanId));
    missing = wanted.map((w) => w.spanId).filter((id) => !ids.has(id));
    if (missing.length === 0 && found.some((s) => s.name === 'cao.session' && belongsTo(s, sessionName))) break;
    if (Date.now() > deadline) {
      assert.fail(`after ${timeoutMs} ms Jaeger lacks ${missing.length} of ${wanted.length} spans named by CloudEvents (${missing.join(', ')}) ` +
        `or the cao.session span; it has ${found.length} spans of ${serviceName}\n${jaeger.process.output().slice(-3000)}`);
    }
    await sleep(250);
  }
  assert.ok((await jaeger.services()).includes(serviceName), `Jaeger lists the service ${serviceName}`);

  // 2. The session is ONE trace, the one the CloudEvents' traceparent names.
  const sessionTraceIds = [...new Set(found.filter((s) => belongsTo(s, sessionName)).map((s) => s.traceId))];
  assert.deepEqual(sessionTraceIds, ceTraceIds, `every span of ${sessionName} is in one trace`);
  const traceId = ceTraceIds[0]!;
  const spans = await jaeger.trace(traceId);
  assert.deepEqual(
    spans.map((s) => s.spanId).sort(),
    found.filter((s) => s.traceId === traceId).map((s) => s.spanId).sort(),
    'GET /api/v3/traces/{id} and the search return the same spans',
  );
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  for (const s of spans) assert.equal(s.resource['service.name'], serviceName, `service.name of ${s.name}`);

  // 3. One cao.session root; every event span is its child.
  const roots = spans.filter((s) => s.name === 'cao.session');
  assert.equal(roots.length, 1, 'one cao.session span');
  const root = roots[0]!;
  assert.ok(!root.parentSpanId || byId.get(root.parentSpanId)?.resource['service.name'] !== serviceName, 'cao.session is the root of the session\'s spans');
  assert.equal(root.attributes['cao.session.name'], sessionName);
  assert.equal(root.attributes['gen_ai.conversation.id'], sessionName);

  const eventSpans = spans.filter((s) => s.events.some((e) => e.name.startsWith('cao.')));
  assert.deepEqual(
    eventSpans.map((s) => s.spanId).sort(),
    [...new Set(wanted.map((w) => w.spanId))].sort(),
    'the spans carrying cao.* span events are exactly the spans the CloudEvents name',
  );
  assert.equal(
    eventSpans.reduce((n, s) => n + s.events.filter((e) => e.name.startsWith('cao.')).length, 0),
    events.length,
    'one cao.* span event per CloudEvent',
  );
  for (const s of eventSpans) assert.equal(s.parentSpanId, root.spanId, `${s.name} ${s.spanId} is a child of cao.session`);

  // 4. Each CloudEvent is its span event: name, time to the nanosecond, every attribute.
  for (const ce of events) {
    const data = ce.data as Record<string, unknown>;
    const where = `CloudEvent ${ce.id} (${String(data.event_type)})`;
    const span = byId.get(spanIdOf(ce.traceparent).spanId)!;
    const matching = span.events.filter((e) => e.name === `cao.${String(data.event_type)}`);
    assert.equal(matching.length, 1, `${where}: its span holds one span event cao.${String(data.event_type)}`);
    const spanEvent = matching[0]!;
    const a = spanEvent.attributes;
    assert.equal(spanEvent.timeUnixNano, rfc3339ToNanos(String(ce.time)), `${where}: time`);
    for (const [field, key] of DATA_ATTRIBUTES) {
      assert.equal(a[key], data[field], `${where}: data.${field} and span event attribute ${key}`);
    }
    assert.equal(ce.subject, sessionName, `${where}: subject`);
    assert.equal(a['cao.session.name'], sessionName, `${where}: cao.session.name`);
    assert.equal(typeof a['cao.event.sequence'], 'bigint', `${where}: cao.event.sequence is an int attribute`);
    assert.equal(a['cao.event.sequence'], BigInt(String(ce.sequence)), `${where}: cao.event.sequence = sequence`);
    for (const [key, value] of Object.entries(a)) {
      if (key !== 'cao.event.sequence') assert.equal(typeof value, 'string', `${where}: ${key} is a string attribute`);
    }
    assert.equal(a['gen_ai.conversation.id'], sessionName, `${where}: gen_ai.conversation.id`);
    assert.equal(a['gen_ai.agent.id'], a['cao.terminal.id'], `${where}: gen_ai.agent.id = cao.terminal.id`);
    assert.equal(a['gen_ai.agent.name'], a['cao.agent.name'], `${where}: gen_ai.agent.name = cao.agent.name`);
    if (data.event_type === 'terminal_created') {
      for (const key of ['cao.terminal.id', 'cao.agent.name', 'gen_ai.agent.id', 'gen_ai.agent.name']) {
        assert.ok(a[key], `${where}: ${key}`);
      }
    }
    if (data.event_type === 'message_sent') {
      for (const key of ['cao.orchestration.type', 'cao.orchestration.phase']) assert.ok(a[key], `${where}: ${key}`);
      // the message span links the sender's and the receiver's terminal spans, in this trace
      for (const link of span.links.filter((l) => l.attributes['cao.link.role'] === 'sender' || l.attributes['cao.link.role'] === 'receiver')) {
        const role = String(link.attributes['cao.link.role']);
        const target = byId.get(link.spanId);
        assert.ok(target, `${where}: its ${role} link names a span of the trace`);
        const created = target.events.find((e) => e.name === 'cao.terminal_created');
        assert.equal(created?.attributes['cao.terminal.id'], a[`cao.message.${role}`], `${where}: the ${role} link names that terminal's cao.terminal_created span`);
      }
    }
  }

  // 5. What the session is known to have done is there.
  const all = eventSpans.flatMap((s) => s.events.filter((e) => e.name.startsWith('cao.')));
  for (const type of session.expected.eventTypes) {
    assert.ok(all.some((e) => e.name === `cao.${type}`), `a cao.${type} span event`);
  }
  for (const type of session.expected.orchestrationTypes) {
    assert.ok(all.some((e) => e.attributes['cao.orchestration.type'] === type), `a cao.message_sent with cao.orchestration.type ${type}`);
  }
  for (const text of session.expected.messages) {
    assert.ok(all.some((e) => e.name === 'cao.message_sent' && e.attributes['cao.message.content'] === text), `a cao.message_sent with content ${JSON.stringify(text)}`);
  }

  const warnings = spans.flatMap((s) => {
    const w = s.attributes['@jaeger@warnings'];
    return Array.isArray(w) ? w.map((x) => `${s.name}: ${String(x)}`) : [];
  });
  return { traceId, spans, warnings };
}
