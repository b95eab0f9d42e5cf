/**
 * The recorder: spans from complete events. It holds no state of its own (the session's trace
 * root and sequence, the terminals' spans live in CaoState) and knows nothing of sinks.
 *
 * - A session incarnation's root: a short `cao.session` span, exported when the session is first
 *   seen (parented on CAO's own trace when the first event carries its traceparent).
 * - Each event: a short span, ended at once (so it is exported in real time), parented on the
 *   root, carrying one `cao.<event>` span event. Span names follow the OTel GenAI agent
 *   conventions where they fit and stay low-cardinality: `execute_tool <orchestration type>` for
 *   a message, `create_agent <agent profile>` for a terminal's creation, `cao.<event>` otherwise.
 *   A message links the sender's and receiver's terminal spans.
 * - When a terminal or session ends: a span covering its whole life, first seen → killed:
 *   `invoke_agent <agent profile>` and `invoke_workflow <agent profile of its first terminal>`.
 *
 * Short spans last 1 µs (the root) and 2 µs (an event's span), not 0: Jaeger treats end == start
 * as a negative duration and marks every such span, and it shifts a child that ends after its
 * parent unless the child lasts longer than the parent; the facts themselves are instants.
 */
import {
  type Attributes,
  type HrTime,
  type Link,
  type SpanContext,
  type Tracer,
  ROOT_CONTEXT,
  SpanKind,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import { ATTR, SESSION_SPAN_NAME, spanEventAttributes, spanEventName } from './attributes.ts';
import type { ValidCaoEvent } from './events.ts';
import type { SessionRecord, TerminalRecord } from './state.ts';

export interface RecordedEvent {
  traceId: string;
  spanId: string;
  sessionName: string;
  sequence: number;
}

/** Parses a W3C traceparent into a remote span context. */
export function parseTraceparent(traceparent: string): SpanContext | undefined {
  const parts = traceparent.split('-');
  if (parts.length !== 4) return undefined;
  const [, traceId, spanId, flags] = parts as [string, string, string, string];
  if (!/^[0-9a-f]{32}$/.test(traceId) || /^0+$/.test(traceId)) return undefined;
  if (!/^[0-9a-f]{16}$/.test(spanId) || /^0+$/.test(spanId)) return undefined;
  return { traceId, spanId, traceFlags: parseInt(flags, 16) & TraceFlags.SAMPLED, isRemote: true };
}

const GEN_AI_OPERATION = 'gen_ai.operation.name';
const GEN_AI_TOOL = 'gen_ai.tool.name';
/** Name part of a span when the agent profile is unknown. */
const UNKNOWN_AGENT = 'agent';
const WORKFLOW = 'cao';

/** End of a short span that starts at `time` and lasts `micros` µs. */
function after(time: HrTime, micros: number): HrTime {
  const nanos = time[1] + micros * 1000;
  return nanos >= 1e9 ? [time[0] + 1, nanos - 1e9] : [time[0], nanos];
}

function put(attributes: Attributes, key: string, value: string | undefined): void {
  if (value !== undefined && value !== '') attributes[key] = value;
}

/** Span name and GenAI span attributes of an event's short span. Pure. */
export function eventSpan(event: ValidCaoEvent): { name: string; attributes: Attributes } {
  const attributes: Attributes = {};
  put(attributes, ATTR.sessionName, event.sessionName);
  put(attributes, ATTR.genAiConversationId, event.sessionName);
  switch (event.type) {
    case 'message_sent':
      attributes[GEN_AI_OPERATION] = 'execute_tool';
      put(attributes, GEN_AI_TOOL, event.orchestrationType);
      put(attributes, ATTR.phase, event.phase);
      put(attributes, ATTR.genAiAgentId, event.sender);
      put(attributes, ATTR.genAiAgentName, event.senderAgent);
      return { name: `execute_tool ${event.orchestrationType}`, attributes };
    case 'terminal_created':
      attributes[GEN_AI_OPERATION] = 'create_agent';
      put(attributes, ATTR.terminalId, event.terminalId);
      put(attributes, ATTR.genAiAgentId, event.terminalId);
      put(attributes, ATTR.genAiAgentName, event.agentName);
      return { name: `create_agent ${event.agentName ?? UNKNOWN_AGENT}`, attributes };
    default:
      put(attributes, ATTR.terminalId, event.terminalId);
      return { name: spanEventName(event.type), attributes };
  }
}

export interface RecorderOptions {
  tracer: Tracer;
}

export class Recorder {
  readonly #tracer: Tracer;

  constructor(options: RecorderOptions) {
    this.#tracer = options.tracer;
  }

  /** Exports the short root span of a new session incarnation and returns its context. */
  startSession(sessionName: string, event: ValidCaoEvent): SpanContext {
    const remote = event.traceparent ? parseTraceparent(event.traceparent) : undefined;
    const parent = remote ? trace.setSpanContext(ROOT_CONTEXT, remote) : ROOT_CONTEXT;
    const root = this.#tracer.startSpan(
      SESSION_SPAN_NAME,
      {
        kind: SpanKind.INTERNAL,
        startTime: event.time,
        root: !remote,
        attributes: {
          [ATTR.sessionId]: event.sessionId ?? sessionName,
          [ATTR.sessionName]: sessionName,
          [ATTR.genAiConversationId]: sessionName,
        },
      },
      parent,
    );
    const context = root.spanContext();
    root.end(after(event.time, 1));
    return context;
  }

  /** Records one complete event (session resolved) as a short span with one span event. */
  record(
    event: ValidCaoEvent,
    session: SessionRecord,
    sequence: number,
    terminals: { sender?: SpanContext; receiver?: SpanContext } = {},
  ): RecordedEvent {
    const links: Link[] = [];
    for (const role of ['sender', 'receiver'] as const) {
      const context = terminals[role];
      if (context) links.push({ context, attributes: { 'cao.link.role': role } });
    }
    const remote = event.traceparent ? parseTraceparent(event.traceparent) : undefined;
    if (remote) links.push({ context: remote, attributes: { 'cao.link.role': 'cao' } });

    const { name, attributes } = eventSpan(event);
    const span = this.#tracer.startSpan(
      name,
      { kind: SpanKind.INTERNAL, startTime: event.time, links, attributes },
      trace.setSpanContext(ROOT_CONTEXT, session.root),
    );
    span.addEvent(spanEventName(event.type), spanEventAttributes(event, sequence), event.time);
    const context = span.spanContext();
    span.end(after(event.time, 2));
    return { traceId: context.traceId, spanId: context.spanId, sessionName: session.name, sequence };
  }

  /** The whole life of a terminal, first seen → killed. */
  terminalLife(t: TerminalRecord, end: HrTime): void {
    const attributes: Attributes = { [GEN_AI_OPERATION]: 'invoke_agent' };
    put(attributes, ATTR.sessionName, t.session.name);
    put(attributes, ATTR.genAiConversationId, t.session.name);
    put(attributes, ATTR.terminalId, t.id);
    put(attributes, ATTR.genAiAgentId, t.id);
    put(attributes, ATTR.agentName, t.agentName);
    put(attributes, ATTR.genAiAgentName, t.agentName);
    put(attributes, ATTR.provider, t.provider);
    this.#life(`invoke_agent ${t.agentName ?? UNKNOWN_AGENT}`, t.session, t.firstSeen, end, attributes);
  }

  /** The whole life of a session incarnation, first seen → killed. */
  sessionLife(s: SessionRecord, end: HrTime): void {
    const attributes: Attributes = { [GEN_AI_OPERATION]: 'invoke_workflow' };
    put(attributes, ATTR.sessionId, s.id ?? s.name);
    put(attributes, ATTR.sessionName, s.name);
    put(attributes, ATTR.genAiConversationId, s.name);
    put(attributes, ATTR.genAiAgentName, s.firstAgent);
    this.#life(`invoke_workflow ${s.firstAgent ?? WORKFLOW}`, s, s.firstSeen, end, attributes);
  }

  #life(name: string, s: SessionRecord, start: HrTime, end: HrTime, attributes: Attributes): void {
    const span = this.#tracer.startSpan(
      name,
      { kind: SpanKind.INTERNAL, startTime: start, attributes },
      trace.setSpanContext(ROOT_CONTEXT, s.root),
    );
    span.end(end);
  }
}
