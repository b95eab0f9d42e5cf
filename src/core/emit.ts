/**
 * The core's one path for a validated event, in one direction:
 *
 *   place it (state) → one fact, one event (ledger, against the state) → complete it from the
 *   state (session, agents, the text a dispatch named) → record it (recorder: spans) → update
 *   the state (liveness, spans, first/last seen) → when a terminal or session ends, its
 *   lifetime span.
 *
 * A session_killed also ends the terminals of that session the state still holds live (CAO's
 * DELETE /sessions kills them; the gateway sees only the session's delete): their
 * terminal_killed events are recorded first, observed by the same source at the same time.
 */
import type { SpanContext } from '@opentelemetry/api';
import { CaoEventError, type ValidCaoEvent } from './events.ts';
import type { FactLedger } from './ledger.ts';
import type { RecordedEvent, Recorder } from './recorder.ts';
import { type CaoState, type InFlightMessage, messageRoute, type SessionRecord } from './state.ts';
import { compareHrTime } from './time.ts';

export type EmitOutcome = { recorded: RecordedEvent } | { duplicate: true };

export interface EventCoreOptions {
  state: CaoState;
  ledger: FactLedger;
  recorder: Recorder;
  /** false: every report is recorded (no de-duplication). */
  dedupe?: boolean;
}

export class EventCore {
  readonly #state: CaoState;
  readonly #ledger: FactLedger;
  readonly #recorder: Recorder;
  readonly #dedupe: boolean;

  constructor(options: EventCoreOptions) {
    this.#state = options.state;
    this.#ledger = options.ledger;
    this.#recorder = options.recorder;
    this.#dedupe = options.dedupe ?? true;
  }

  /** Throws CaoEventError when the event cannot be placed in a session. */
  emit(input: ValidCaoEvent): EmitOutcome {
    const place = this.#state.placeOf(input);
    const sessionName = place?.name ?? input.sessionName;
    if (!sessionName) {
      throw new CaoEventError(
        `${input.type} has no sessionName and names no terminal seen before; cannot place it in a session`,
      );
    }
    const event: ValidCaoEvent = { ...input, sessionName };
    if (this.#dedupe && !this.#ledger.admit(event, place)) {
      this.#learnFromDuplicate(event, place);
      return { duplicate: true };
    }
    const session = place ?? this.#state.openSession(sessionName, this.#recorder.startSession(sessionName, event), event);
    if (event.type === 'session_killed') {
      for (const t of this.#state.liveTerminalRecords(session)) {
        this.#record({ type: 'terminal_killed', terminalId: t.id, sessionName, source: event.source, time: event.time }, session);
      }
    }
    return { recorded: this.#record(event, session) };
  }

  #record(event: ValidCaoEvent, session: SessionRecord): RecordedEvent {
    const state = this.#state;
    const complete = this.#complete(event, session);
    const sequence = state.touchSession(session, complete);
    const span = (id: string | undefined): SpanContext | undefined => (id ? state.terminalRecord(id)?.span : undefined);
    const recorded = this.#recorder.record(complete, session, sequence, {
      sender: span(complete.sender),
      receiver: span(complete.receiver),
    });
    const time = complete.time;
    switch (complete.type) {
      case 'session_created':
        state.markSessionCreated(session);
        break;
      case 'session_killed':
        state.markSessionKilled(session, time);
        if (compareHrTime(session.firstSeen, time) < 0) this.#recorder.sessionLife(session, time);
        break;
      case 'terminal_created': {
        const t = state.learnTerminal(complete.terminalId!, session, { ...complete, time });
        state.markTerminalCreated(t, { traceId: recorded.traceId, spanId: recorded.spanId, traceFlags: session.root.traceFlags });
        break;
      }
      case 'terminal_killed': {
        const t = state.learnTerminal(complete.terminalId!, session, { ...complete, time });
        state.markTerminalKilled(t, time);
        if (compareHrTime(t.firstSeen, time) < 0) this.#recorder.terminalLife(t, time);
        break;
      }
      case 'message_sent':
        this.#learnFromMessage(complete, session);
        break;
    }
    return recorded;
  }

  /** What the state knows and the report lacks: the terminal's agent and provider, the message's agents and text. */
  #complete(event: ValidCaoEvent, session: SessionRecord): ValidCaoEvent {
    const state = this.#state;
    // CAO's session id is its tmux session name.
    const sessionId = event.sessionId ?? session.id ?? session.name;
    const known = (id: string | undefined) => {
      const t = id ? state.terminalRecord(id) : undefined;
      return t && t.session === session ? t : undefined;
    };
    if (event.type === 'terminal_created' || event.type === 'terminal_killed') {
      const t = known(event.terminalId);
      return {
        ...event,
        ...(event.agentName ?? t?.agentName ? { agentName: event.agentName ?? t?.agentName } : {}),
        ...(event.provider ?? t?.provider ? { provider: event.provider ?? t?.provider } : {}),
        sessionId,
      };
    }
    if (event.type !== 'message_sent') {
      return { ...event, sessionId };
    }
    const dispatch = this.#dispatchFor(event);
    const forward = dispatch?.direction === 'forward' ? dispatch.message : undefined;
    const backward = dispatch?.direction === 'backward' ? dispatch.message : undefined;
    const senderAgent = event.senderAgent ?? known(event.sender)?.agentName ?? forward?.senderAgent ?? backward?.receiverAgent;
    const receiverAgent = event.receiverAgent ?? known(event.receiver)?.agentName ?? forward?.receiverAgent ?? backward?.senderAgent;
    const message = event.message ?? forward?.message;
    return {
      ...event,
      sessionId,
      ...(senderAgent ? { senderAgent } : {}),
      ...(receiverAgent ? { receiverAgent } : {}),
      ...(message !== undefined ? { message } : {}),
    };
  }

  /**
   * The dispatch a later phase belongs to: the same route (a delivery), or the reverse route
   * (a handoff's result goes from the worker back to its caller; at HEAD the dispatch named no
   * worker yet).
   */
  #dispatchFor(event: ValidCaoEvent): { direction: 'forward' | 'backward'; message: InFlightMessage } | undefined {
    if (event.phase === 'dispatched') return undefined;
    const type = event.orchestrationType!;
    if (event.phase === 'delivered') {
      const message = this.#state.dispatchOf(messageRoute(type, event.sender, event.receiver));
      return message && { direction: 'forward', message };
    }
    const message =
      this.#state.dispatchOf(messageRoute(type, event.receiver, event.sender)) ??
      this.#state.dispatchOf(messageRoute(type, event.receiver, undefined));
    return message && { direction: 'backward', message };
  }

  #learnFromMessage(event: ValidCaoEvent, session: SessionRecord): void {
    const state = this.#state;
    const time = event.time;
    if (event.phase === 'dispatched') {
      state.rememberDispatch(messageRoute(event.orchestrationType!, event.sender, event.receiver), {
        ...(event.message !== undefined ? { message: event.message } : {}),
        ...(event.senderAgent ? { senderAgent: event.senderAgent } : {}),
        ...(event.receiverAgent ? { receiverAgent: event.receiverAgent } : {}),
        dispatchedAt: time,
      });
    }
    // Terminals the state knows learn their agent profile; a handoff worker the state has not
    // seen (HEAD's run-step worker never passes through HTTP) is learnt from its result, alive
    // since its dispatch.
    for (const [id, agentName] of [[event.sender, event.senderAgent], [event.receiver, event.receiverAgent]] as const) {
      if (id && state.terminalRecord(id)?.session === session) state.learnTerminal(id, session, { agentName, time });
    }
    // An assign's receiver remembers its task until a delivery or failure of it is recorded
    // (the poller watches it meanwhile: CAO ≥ 2.3 types a deferred task inside the server).
    const receiver = event.orchestrationType === 'assign' && event.receiver ? state.terminalRecord(event.receiver) : undefined;
    if (receiver && receiver.session === session) {
      if (event.phase === 'dispatched') state.noteAssignment(receiver, event.sender, time);
      else if (event.phase === 'delivered' || event.phase === 'failed') state.settleAssignment(receiver, event.phase);
    }
    const worker = event.orchestrationType === 'handoff' && (event.phase === 'completed' || event.phase === 'failed') ? event.sender : undefined;
    if (worker && !state.terminalRecord(worker)) {
      const dispatch = this.#dispatchFor(event)?.message;
      state.learnTerminal(worker, session, { agentName: event.senderAgent, time, firstSeen: dispatch?.dispatchedAt ?? time });
    }
  }

  /** A repeated report may know more than the first (the plugin names the agent the poller did not). */
  #learnFromDuplicate(event: ValidCaoEvent, place: SessionRecord | undefined): void {
    if (!place) return;
    if (event.sessionId) place.id ??= event.sessionId;
    if ((event.type === 'terminal_created' || event.type === 'terminal_killed') && event.terminalId) {
      const t = this.#state.terminalRecord(event.terminalId);
      if (t && t.session === place) {
        t.agentName ??= event.agentName;
        t.provider ??= event.provider;
        place.firstAgent ??= t.agentName;
      }
    }
  }
}
