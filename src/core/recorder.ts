/**
 * The recorder: one validated CaoEvent → one short span carrying one `cao.<event>` span event.
 * One trace per CAO session: a short `cao.session` root span is started and ended when a
 * session is first seen; every later event of that session is a child of it, ended at once so
 * it is exported in real time. Messages link the sender's and receiver's terminal spans.
 * The recorder knows nothing of HTTP sinks or sources.
 */
import {
  type Link,
  type SpanContext,
  type Tracer,
  type TimeInput,
  ROOT_CONTEXT,
  SpanKind,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import { ATTR, SESSION_SPAN_NAME, spanEventAttributes, spanEventName } from './attributes.ts';
import { BoundedMap } from './bounded-map.ts';
import { type CaoEvent, CaoEventError } from './events.ts';

export interface RecordedEvent {
  traceId: string;
  spanId: string;
  sessionName: string;
  sequence: number;
}

interface SessionRecord {
  root: SpanContext;
  sequence: number;
}

interface TerminalRecord {
  sessionName: string;
  span?: SpanContext;
  agentName?: string;
  provider?: string;
}

/** Parses a W3C traceparent into a remote span context. */
export function parseTraceparent(traceparent: string, tracestate?: string): SpanContext | undefined {
  const parts = traceparent.split('-');
  if (parts.length !== 4) return undefined;
  const [, traceId, spanId, flags] = parts as [string, string, string, string];
  if (!/^[0-9a-f]{32}$/.test(traceId) || /^0+$/.test(traceId)) return undefined;
  if (!/^[0-9a-f]{16}$/.test(spanId) || /^0+$/.test(spanId)) return undefined;
  void tracestate;
  return {
    traceId,
    spanId,
    traceFlags: parseInt(flags, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  };
}

function hrNow(): [number, number] {
  const ms = performance.timeOrigin + performance.now();
  const seconds = Math.floor(ms / 1000);
  return [seconds, Math.round((ms - seconds * 1000) * 1e6)];
}

export interface RecorderOptions {
  tracer: Tracer;
  /** Sessions and terminals remembered (for trace parenting and links) at most. */
  maxRemembered?: number;
}

export class Recorder {
  readonly #tracer: Tracer;
  readonly #sessions: BoundedMap<string, SessionRecord>;
  readonly #terminals: BoundedMap<string, TerminalRecord>;

  constructor(options: RecorderOptions) {
    this.#tracer = options.tracer;
    const limit = options.maxRemembered ?? 10_000;
    this.#sessions = new BoundedMap(limit);
    this.#terminals = new BoundedMap(limit * 4);
  }

  /** The session a terminal belongs to, as far as the recorder has seen. */
  sessionOfTerminal(terminalId: string): string | undefined {
    return this.#terminals.get(terminalId)?.sessionName;
  }

  /**
   * Learns from a repeated report of a terminal what the first report lacked (agent, provider,
   * session), so later events of that terminal carry it: the richer record wins from then on.
   */
  learn(event: CaoEvent): void {
    if (!event.terminalId) return;
    const known = this.#terminals.get(event.terminalId);
    if (!known) return;
    this.#terminals.set(event.terminalId, {
      ...known,
      agentName: known.agentName ?? event.agentName,
      provider: known.provider ?? event.provider,
    });
  }

  /**
   * Records a validated event. Throws CaoEventError when the event cannot be placed in a
   * session (no session name and no terminal the recorder knows).
   */
  record(input: CaoEvent): RecordedEvent {
    const event = this.#enrich(input);
    const sessionName = event.sessionName;
    if (!sessionName) {
      throw new CaoEventError(
        `${event.type} has no sessionName and names no terminal seen before; cannot place it in a session`,
      );
    }
    const time: TimeInput = event.time ?? hrNow();
    if (event.type === 'session_created' && this.#sessions.has(sessionName)) {
      // A session created again under a known name is a new session: start a new trace.
      this.#sessions.delete(sessionName);
    }
    const session = this.#session(sessionName, event, time);
    session.sequence += 1;

    const links: Link[] = [];
    if (event.type === 'message_sent') {
      for (const [role, terminalId] of [
        ['sender', event.sender],
        ['receiver', event.receiver],
      ] as const) {
        const span = terminalId ? this.#terminals.get(terminalId)?.span : undefined;
        if (span) links.push({ context: span, attributes: { 'cao.link.role': role } });
      }
    }
    const remote = event.traceparent ? parseTraceparent(event.traceparent) : undefined;
    if (remote) links.push({ context: remote, attributes: { 'cao.link.role': 'cao' } });

    const name = spanEventName(event.type);
    const span = this.#tracer.startSpan(
      name,
      {
        kind: SpanKind.INTERNAL,
        startTime: time,
        links,
        attributes: {
          [ATTR.sessionName]: sessionName,
          [ATTR.genAiConversationId]: sessionName,
          ...(event.terminalId ? { [ATTR.terminalId]: event.terminalId } : {}),
        },
      },
      trace.setSpanContext(ROOT_CONTEXT, session.root),
    );
    span.addEvent(name, spanEventAttributes(event, session.sequence), time);
    const context = span.spanContext();
    span.end(time);

    if (event.terminalId && event.type === 'terminal_created') {
      this.#terminals.set(event.terminalId, {
        sessionName,
        span: context,
        agentName: event.agentName,
        provider: event.provider,
      });
    }
    if (event.type === 'session_killed') this.#sessions.delete(sessionName);
    return {
      traceId: context.traceId,
      spanId: context.spanId,
      sessionName,
      sequence: session.sequence,
    };
  }

  /** Fills what the recorder already knows: the session of a terminal, its agent and provider. */
  #enrich(event: CaoEvent): CaoEvent {
    const known = event.terminalId ? this.#terminals.get(event.terminalId) : undefined;
    let sessionName = event.sessionName ?? known?.sessionName;
    if (!sessionName && event.type === 'message_sent') {
      sessionName =
        (event.sender && this.#terminals.get(event.sender)?.sessionName) ||
        (event.receiver && this.#terminals.get(event.receiver)?.sessionName) ||
        undefined;
    }
    if (!known && sessionName === event.sessionName) return event;
    return {
      ...event,
      sessionName,
      agentName: event.agentName ?? known?.agentName,
      provider: event.provider ?? known?.provider,
    };
  }

  #session(sessionName: string, event: CaoEvent, time: TimeInput): SessionRecord {
    const existing = this.#sessions.get(sessionName);
    if (existing) {
      this.#sessions.set(sessionName, existing); // an active session stays in the young generation
      return existing;
    }
    const remote = event.traceparent ? parseTraceparent(event.traceparent) : undefined;
    const parent = remote ? trace.setSpanContext(ROOT_CONTEXT, remote) : ROOT_CONTEXT;
    const root = this.#tracer.startSpan(
      SESSION_SPAN_NAME,
      {
        kind: SpanKind.INTERNAL,
        startTime: time,
        root: !remote,
        attributes: {
          [ATTR.sessionId]: event.sessionId ?? sessionName,
          [ATTR.sessionName]: sessionName,
          [ATTR.genAiConversationId]: sessionName,
        },
      },
      parent,
    );
    const record: SessionRecord = { root: root.spanContext(), sequence: 0 };
    root.end(time);
    this.#sessions.set(sessionName, record);
    return record;
  }
}
