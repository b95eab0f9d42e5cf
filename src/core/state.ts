/**
 * The one state of CAO sessions and terminals in cao-events: what every source has reported
 * so far, kept by the core and nowhere else. For each session incarnation: its trace (root span
 * context), its per-session sequence, first/last seen, whether its creation was reported, when
 * it was killed; for each terminal: its session incarnation, agent profile, provider, the span
 * of its creation (message links), first/last seen, when it was killed. Plus the messages in
 * flight (the text and agents a dispatch named, for later phases that lack them).
 *
 * The ledger de-duplicates against it, the recorder enriches from it, sources ask it (through
 * CaoStateView, read-only) before asking CAO. Only the core writes it.
 *
 * Bounds: at most `maxSessions` session names, `maxTerminals` terminals and `maxMessages`
 * message routes (the oldest generation is forgotten first, see BoundedMap). A killed session or
 * terminal stays `graceMs` (default 60 s) after its kill was recorded, so that facts reported
 * late (the poller's next cycles) land in its trace and continue its sequence; then it is
 * forgotten and a later fact about that name opens a new trace.
 */
import type { HrTime, SpanContext } from '@opentelemetry/api';
import { BoundedMap } from './bounded-map.ts';
import type { ValidCaoEvent } from './events.ts';
import { compareHrTime } from './time.ts';

/** What sources may ask (read-only). */
export interface CaoStateView {
  /** The session's current incarnation, live or killed within the grace period. */
  session(name: string): SessionInfo | undefined;
  terminal(id: string): TerminalInfo | undefined;
  /** The session a terminal belongs to, when any source has placed it. */
  sessionOfTerminal(id: string): string | undefined;
  /** Names of the sessions not killed. */
  liveSessions(): string[];
  /** Ids of the terminals of a session not killed. */
  liveTerminals(sessionName: string): string[];
}

export interface SessionInfo {
  name: string;
  id?: string;
  live: boolean;
  firstSeen: HrTime;
  lastSeen: HrTime;
  killedAt?: HrTime;
}

/**
 * The task an `assign` dispatch handed a terminal (the gateway saw the dispatch), and whether a
 * delivery or failure of it has been recorded since. The poller watches such a terminal for
 * evidence that the task reached it (CAO ≥ 2.3 types a deferred assign's task seconds later,
 * inside the server) until an outcome is recorded by any source.
 */
export interface Assignment {
  sender?: string;
  dispatchedAt: HrTime;
  outcome?: 'delivered' | 'failed';
}

export interface TerminalInfo {
  id: string;
  sessionName: string;
  agentName?: string;
  provider?: string;
  assignment?: Assignment;
  live: boolean;
  firstSeen: HrTime;
  lastSeen: HrTime;
  killedAt?: HrTime;
}

/** One incarnation of a session (a name can be created again after a kill). Core-internal. */
export interface SessionRecord {
  name: string;
  id?: string;
  /** The short `cao.session` root span every event of the incarnation is parented on. */
  root: SpanContext;
  sequence: number;
  firstSeen: HrTime;
  lastSeen: HrTime;
  /** A session_created fact was recorded for this incarnation. */
  created: boolean;
  killedAt?: HrTime;
  /** Wall-clock ms after which the killed incarnation is forgotten. */
  expiresAt?: number;
  /** Agent profile of its first terminal (names the workflow span). */
  firstAgent?: string;
  terminals: Set<string>;
}

/** Core-internal. */
export interface TerminalRecord {
  id: string;
  session: SessionRecord;
  agentName?: string;
  provider?: string;
  /** The span that recorded its creation (messages link to it). */
  span?: SpanContext;
  firstSeen: HrTime;
  lastSeen: HrTime;
  /** A terminal_created fact was recorded. */
  created: boolean;
  /** The last assign dispatched to it, and its outcome when recorded. */
  assignment?: Assignment;
  killedAt?: HrTime;
  expiresAt?: number;
}

/** What a dispatch told about a message route, for its later phases. */
export interface InFlightMessage {
  message?: string;
  senderAgent?: string;
  receiverAgent?: string;
  dispatchedAt: HrTime;
}

export interface CaoStateOptions {
  maxSessions?: number;
  maxTerminals?: number;
  maxMessages?: number;
  /** How long a killed session or terminal keeps its trace for late facts; default 60 000 ms. */
  graceMs?: number;
  /** Wall clock (ms), for the grace period. */
  now?: () => number;
}

export const DEFAULT_GRACE_MS = 60_000;
const MAX_TERMINALS_PER_SESSION = 10_000;

const earlier = (a: HrTime, b: HrTime): HrTime => (compareHrTime(a, b) <= 0 ? a : b);
const later = (a: HrTime, b: HrTime): HrTime => (compareHrTime(a, b) >= 0 ? a : b);

/** Route of a message, for in-flight memory: type, sender, receiver (`*` when unknown). */
export function messageRoute(type: string, sender: string | undefined, receiver: string | undefined): string {
  return `${type}|${sender ?? '*'}|${receiver ?? '*'}`;
}

export class CaoState implements CaoStateView {
  readonly #sessions: BoundedMap<string, SessionRecord>;
  readonly #terminals: BoundedMap<string, TerminalRecord>;
  readonly #messages: BoundedMap<string, InFlightMessage>;
  readonly graceMs: number;
  readonly #now: () => number;

  constructor(options: CaoStateOptions = {}) {
    this.#sessions = new BoundedMap(options.maxSessions ?? 10_000);
    this.#terminals = new BoundedMap(options.maxTerminals ?? 40_000);
    this.#messages = new BoundedMap(options.maxMessages ?? 10_000);
    this.graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
    this.#now = options.now ?? Date.now;
  }

  // ---- reading (sources and core) ----

  session(name: string): SessionInfo | undefined {
    const s = this.sessionRecord(name);
    return s && { name: s.name, ...(s.id ? { id: s.id } : {}), live: s.killedAt === undefined, firstSeen: s.firstSeen, lastSeen: s.lastSeen, ...(s.killedAt ? { killedAt: s.killedAt } : {}) };
  }

  terminal(id: string): TerminalInfo | undefined {
    const t = this.terminalRecord(id);
    if (!t) return undefined;
    return {
      id: t.id, sessionName: t.session.name, live: t.killedAt === undefined, firstSeen: t.firstSeen, lastSeen: t.lastSeen,
      ...(t.agentName ? { agentName: t.agentName } : {}),
      ...(t.provider ? { provider: t.provider } : {}),
      ...(t.assignment ? { assignment: { ...t.assignment } } : {}),
      ...(t.killedAt ? { killedAt: t.killedAt } : {}),
    };
  }

  sessionOfTerminal(id: string): string | undefined {
    return this.terminalRecord(id)?.session.name;
  }

  liveSessions(): string[] {
    const names: string[] = [];
    for (const [name, s] of this.#sessions.entries()) if (s.killedAt === undefined) names.push(name);
    return names;
  }

  liveTerminals(sessionName: string): string[] {
    const s = this.sessionRecord(sessionName);
    if (!s) return [];
    return [...s.terminals].filter((id) => {
      const t = this.terminalRecord(id);
      return t !== undefined && t.session === s && t.killedAt === undefined;
    });
  }

  // ---- core-internal ----

  #expired(record: { expiresAt?: number }): boolean {
    return record.expiresAt !== undefined && this.#now() >= record.expiresAt;
  }

  /** The current incarnation of a session name (undefined when unknown or past its grace). */
  sessionRecord(name: string): SessionRecord | undefined {
    const s = this.#sessions.get(name);
    if (!s) return undefined;
    if (this.#expired(s)) {
      this.#sessions.delete(name);
      return undefined;
    }
    return s;
  }

  /** A terminal whose session incarnation is not forgotten. */
  terminalRecord(id: string): TerminalRecord | undefined {
    const t = this.#terminals.get(id);
    if (!t) return undefined;
    if (this.#expired(t) || this.#expired(t.session)) {
      this.#terminals.delete(id);
      return undefined;
    }
    return t;
  }

  /**
   * The incarnation an event belongs to; undefined when it opens a new one. A fact about a
   * terminal goes where that terminal is; otherwise by session name: a killed incarnation
   * (within its grace) takes late facts, but a creation at or after the kill opens a new one.
   */
  placeOf(event: ValidCaoEvent): SessionRecord | undefined {
    for (const id of [event.terminalId, event.sender, event.receiver]) {
      if (!id) continue;
      const t = this.terminalRecord(id);
      if (t && (event.sessionName === undefined || event.sessionName === t.session.name)) return t.session;
    }
    if (event.sessionName === undefined) return undefined;
    const s = this.sessionRecord(event.sessionName);
    if (!s || s.killedAt === undefined) return s;
    const creation = event.type === 'session_created' || event.type === 'terminal_created';
    if (creation && compareHrTime(event.time, s.killedAt) >= 0) return undefined;
    return s;
  }

  /** Opens a new incarnation (replacing a killed one of the same name). */
  openSession(name: string, root: SpanContext, event: ValidCaoEvent): SessionRecord {
    const s: SessionRecord = {
      name, root, sequence: 0, firstSeen: event.time, lastSeen: event.time, created: false, terminals: new Set(),
      ...(event.sessionId ? { id: event.sessionId } : {}),
    };
    this.#sessions.set(name, s);
    return s;
  }

  /** Notes that an event of this incarnation was recorded; returns its sequence number. */
  touchSession(s: SessionRecord, event: ValidCaoEvent): number {
    s.firstSeen = earlier(s.firstSeen, event.time);
    s.lastSeen = later(s.lastSeen, event.time);
    s.id ??= event.sessionId;
    if (this.#sessions.get(s.name) === s) this.#sessions.set(s.name, s); // an active session stays young
    s.sequence += 1;
    return s.sequence;
  }

  markSessionCreated(s: SessionRecord): void {
    s.created = true;
  }

  markSessionKilled(s: SessionRecord, at: HrTime): void {
    s.killedAt = at;
    s.expiresAt = this.#now() + this.graceMs;
  }

  /**
   * Learns (or refreshes) a terminal of an incarnation: agent, provider, times. The first
   * report that knows the agent or provider wins; later reports fill only what is missing.
   */
  learnTerminal(
    id: string,
    s: SessionRecord,
    facts: { agentName?: string; provider?: string; time: HrTime; firstSeen?: HrTime },
  ): TerminalRecord {
    let t = this.terminalRecord(id);
    if (!t || t.session !== s) {
      t = { id, session: s, firstSeen: facts.firstSeen ?? facts.time, lastSeen: facts.time, created: false };
      if (s.terminals.size < MAX_TERMINALS_PER_SESSION) s.terminals.add(id);
    }
    t.agentName ??= facts.agentName;
    t.provider ??= facts.provider;
    t.firstSeen = earlier(t.firstSeen, facts.firstSeen ?? facts.time);
    t.lastSeen = later(t.lastSeen, facts.time);
    s.firstAgent ??= t.agentName;
    this.#terminals.set(id, t);
    return t;
  }

  markTerminalCreated(t: TerminalRecord, span: SpanContext): void {
    t.created = true;
    t.span ??= span;
  }

  /** An assign dispatched to the terminal (a later one replaces an earlier one). */
  noteAssignment(t: TerminalRecord, sender: string | undefined, at: HrTime): void {
    t.assignment = { ...(sender ? { sender } : {}), dispatchedAt: at };
  }

  /** A delivery or failure of the terminal's assign was recorded (the first outcome stays). */
  settleAssignment(t: TerminalRecord, outcome: 'delivered' | 'failed'): void {
    if (t.assignment) t.assignment.outcome ??= outcome;
  }

  markTerminalKilled(t: TerminalRecord, at: HrTime): void {
    t.killedAt = at;
    t.expiresAt = this.#now() + this.graceMs;
  }

  /** Terminals of an incarnation not yet killed (records). */
  liveTerminalRecords(s: SessionRecord): TerminalRecord[] {
    const out: TerminalRecord[] = [];
    for (const id of s.terminals) {
      const t = this.terminalRecord(id);
      if (t && t.session === s && t.killedAt === undefined) out.push(t);
    }
    return out;
  }

  rememberDispatch(route: string, message: InFlightMessage): void {
    this.#messages.set(route, message);
  }

  dispatchOf(route: string): InFlightMessage | undefined {
    return this.#messages.get(route);
  }
}
