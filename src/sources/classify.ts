/**
 * Gateway classification: which CAO HTTP exchanges are events (CAO's routes and answers per version, as read from CAO's source).
 *
 * One rule table maps (method, path pattern) to a handler. Handlers are thin: the per-route logic
 * lives in pure exported functions (exchange in, CaoEvents out); the ExchangeClassifier keeps only
 * the small, bounded memory of the HTTP conversation CAO v2.0.x's pattern-based handoff/assign
 * needs. What a terminal is (its session, its agent) is the core's state, not the classifier's:
 * events name what the exchange shows, the core completes them (a session delete ends the
 * session's terminals there too).
 *
 * CAO versions (verified against real 2.1.1, 2.4.1 and 2.5.4, test/e2e; 2.0.x from its source):
 * - ≥ v2.3: assign = POST /sessions/{s}/terminals?caller_id&defer_init=true with the task in
 *   the JSON body; handoff = POST /terminals/run-step. Terminal JSON carries a `caller_id` key.
 * - v2.1–v2.2: POST /terminals/{id}/input?message&sender_id&orchestration_type=handoff|assign.
 * - v2.0.x: no marker. create, then input at once = assign; create, status polls, input = handoff
 *   (then polls, GET /terminals/{id}/output?mode=last, POST /terminals/{id}/exit). The MCP server
 *   appends `[Assigned by terminal X. …]` / `[Message from terminal X. …]` only when
 *   CAO_ENABLE_SENDER_ID_INJECTION=true, and prefixes codex handoffs with
 *   `[CAO Handoff] Supervisor terminal ID: X.`; otherwise the sender is inferred from the
 *   supervisor's `GET /terminals/{self}/working-directory` that precedes its create call.
 *
 * Classification never throws: anything unexpected yields no events.
 */
import { type CaoEvent, type OrchestrationType, ORCHESTRATION_TYPES, validateCaoEvent } from '../core/events.ts';

/** One finished HTTP exchange as the gateway saw it (the proxy's Exchange is compatible). */
export interface ClassifiedExchange {
  method: string;
  /** Path without the query string. */
  path: string;
  query: URLSearchParams;
  /** Captured when `shouldCapture(method, path)` is true. */
  requestBody?: Buffer;
  /** Upstream status (502 when the upstream failed). */
  status: number;
  responseBody?: Buffer;
  /** When the request arrived. */
  startedAt: Date;
  finishedAt?: Date;
}

/** What onRequest sees: the request has fully arrived, no response yet. */
export type ArrivedRequest = Omit<ClassifiedExchange, 'status' | 'responseBody'>;

type Json = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// Small pure helpers
// ---------------------------------------------------------------------------------------------

const SOURCE = 'gateway' as const;
const SESSION_PREFIX = 'cao-';
/** How close a supervisor's working-directory lookup must precede its create call (v2.0.x). */
export const CALLER_LOOKUP_WINDOW_MS = 2_000;

/** Parses a JSON object body; undefined when absent, not JSON, or not an object. */
export function jsonObject(body: Buffer | undefined): Json | undefined {
  if (body === undefined || body.length === 0) return undefined;
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : undefined;
  } catch {
    return undefined;
  }
}

/** A non-empty string field, else undefined. */
function text(o: Json | undefined, key: string): string | undefined {
  const v = o?.[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function param(q: URLSearchParams, key: string): string | undefined {
  const v = q.get(key);
  return v === null || v === '' ? undefined : v;
}

/** FastAPI/pydantic's lenient boolean. */
function truthy(v: string | undefined): boolean {
  return v !== undefined && ['true', '1', 'yes', 'on', 't', 'y'].includes(v.toLowerCase());
}

const ok = (status: number): boolean => status >= 200 && status < 300;

/**
 * A 2xx whose JSON body says `"success": true`. CAO answers 200 `{"success": false}` when an
 * action did not happen (input not sent; v2.4.1: DELETE of an unknown terminal), so the status
 * alone is no proof: routes that answer `{success}` are events only when it is true.
 */
export function reportsSuccess(x: { status: number; responseBody?: Buffer }): boolean {
  return ok(x.status) && jsonObject(x.responseBody)?.success === true;
}

function orchestration(v: unknown): OrchestrationType | undefined {
  return typeof v === 'string' && (ORCHESTRATION_TYPES as readonly string[]).includes(v)
    ? (v as OrchestrationType)
    : undefined;
}

/** CAO prefixes a session name given without `cao-`. */
function sessionFromQuery(q: URLSearchParams): string | undefined {
  const name = param(q, 'session_name');
  if (name === undefined) return undefined;
  return name.startsWith(SESSION_PREFIX) ? name : SESSION_PREFIX + name;
}

/** Dispatch-type events happen when the request arrived; the rest when the exchange ended. */
function timeOf(x: ArrivedRequest, dispatched: boolean): Date {
  return dispatched ? x.startedAt : (x.finishedAt ?? new Date());
}

function event(x: ArrivedRequest, e: Omit<CaoEvent, 'source' | 'time'>): CaoEvent {
  return { ...e, source: SOURCE, time: timeOf(x, e.phase === 'dispatched') };
}

/**
 * The sender a CAO MCP server wrote into a message, if any: the codex handoff banner
 * `[CAO Handoff] Supervisor terminal ID: X.` (a prefix), or the last `[Assigned by terminal X.`
 * / `[Message from terminal X.` suffix.
 */
export function senderFromMessage(message: string | undefined): string | undefined {
  if (!message) return undefined;
  const banner = /^\[CAO Handoff\] Supervisor terminal ID: ([0-9a-f]{8})\./.exec(message);
  if (banner) return banner[1];
  const suffixes = [...message.matchAll(/\[(?:Assigned by|Message from) terminal ([0-9a-f]{8})\./g)];
  return suffixes.at(-1)?.[1];
}

/** Workflow steps reuse /terminals/run-step; they always carry CAO_WORKFLOW_RUN_ID. */
export function isWorkflowStep(body: Json): boolean {
  const env = body.env_vars;
  return env !== null && typeof env === 'object' && !Array.isArray(env) && 'CAO_WORKFLOW_RUN_ID' in env;
}

// ---------------------------------------------------------------------------------------------
// Pure per-route classification
// ---------------------------------------------------------------------------------------------

/** A terminal as a create call answered it (the response first, the query second). */
export interface CreatedTerminal {
  terminalId: string;
  sessionName?: string;
  agentName?: string;
  provider?: string;
  /** ≥ 2.3: the parent terminal (query caller_id, else the response's). */
  callerId?: string;
  /** The response carries a `caller_id` key: the server is v2.3 or later. */
  serverKnowsCallers: boolean;
  deferred: boolean;
}

/** Reads the Terminal a 2xx create call answered; undefined when it is not one. */
export function createdTerminal(x: ClassifiedExchange, pathSession?: string): CreatedTerminal | undefined {
  if (!ok(x.status)) return undefined;
  const t = jsonObject(x.responseBody);
  const terminalId = text(t, 'id');
  if (!t || !terminalId) return undefined;
  return {
    terminalId,
    sessionName: text(t, 'session_name') ?? pathSession ?? sessionFromQuery(x.query),
    agentName: text(t, 'agent_profile') ?? param(x.query, 'agent_profile'),
    provider: text(t, 'provider') ?? param(x.query, 'provider'),
    callerId: param(x.query, 'caller_id') ?? text(t, 'caller_id'),
    serverKnowsCallers: 'caller_id' in t,
    deferred: truthy(param(x.query, 'defer_init')),
  };
}

function terminalCreatedEvent(x: ClassifiedExchange, t: CreatedTerminal): CaoEvent {
  return event(x, {
    type: 'terminal_created',
    sessionName: t.sessionName,
    terminalId: t.terminalId,
    agentName: t.agentName,
    provider: t.provider,
  });
}

/**
 * The first task a create call hands to its new terminal (≥ 2.4: POST /sessions with
 * `initial_message`, POST /sessions/{s}/terminals?defer_init=true). CAO delivers it as the
 * body's `initial_message_orchestration_type`, or `assign` when the body names none
 * (terminal_service._schedule_deferred_init).
 */
function initialMessageEvent(x: ClassifiedExchange, t: CreatedTerminal, created: CaoEvent): CaoEvent[] {
  const body = jsonObject(x.requestBody);
  const message = text(body, 'initial_message');
  if (!body || message === undefined) return [];
  const type = orchestration(body.initial_message_orchestration_type) ?? 'assign';
  // CAO accepts the task with the terminal it creates: both at the end of the exchange (a
  // dispatch timed at the request's arrival would precede the creation of its receiver).
  return [
    { ...event(x, {
      type: 'message_sent',
      orchestrationType: type,
      phase: 'dispatched',
      sessionName: t.sessionName,
      sender: t.callerId,
      receiver: t.terminalId,
      message,
    }), time: created.time },
  ];
}

/** POST /sessions → 201: session_created, terminal_created (+ the initial message, ≥ 2.4). */
export function classifySessionCreate(x: ClassifiedExchange): CaoEvent[] {
  const t = createdTerminal(x);
  if (!t || !t.sessionName) return [];
  const created = terminalCreatedEvent(x, t);
  return [
    { ...event(x, { type: 'session_created', sessionName: t.sessionName }), time: created.time },
    created,
    ...initialMessageEvent(x, t, created),
  ];
}

/** POST /sessions/{s}/terminals → 201: terminal_created (+ the deferred task, ≥ 2.3). */
export function classifyTerminalCreate(x: ClassifiedExchange, session: string): CaoEvent[] {
  const t = createdTerminal(x, session);
  if (!t) return [];
  const created = terminalCreatedEvent(x, t);
  return [created, ...(t.deferred ? initialMessageEvent(x, t, created) : [])];
}

/**
 * DELETE /sessions/{name} → 2xx `{success: true, deleted}`: session_killed (the core ends the
 * session's live terminals with it).
 */
export function classifySessionDelete(x: ClassifiedExchange, session: string): CaoEvent[] {
  if (!ok(x.status)) return [];
  const r = jsonObject(x.responseBody);
  if (!r || r.success !== true) return [];
  if (Array.isArray(r.deleted) && !r.deleted.includes(session)) return [];
  return [event(x, { type: 'session_killed', sessionName: session })];
}

/** DELETE /terminals/{id} → 2xx `{success: true}`: terminal_killed. */
export function classifyTerminalDelete(x: ClassifiedExchange, terminalId: string): CaoEvent[] {
  if (!reportsSuccess(x)) return [];
  return [event(x, { type: 'terminal_killed', terminalId })];
}

/** POST /terminals/{receiver}/inbox/messages → 2xx `{success: true, …}`: send_message dispatched. */
export function classifyInboxMessage(x: ClassifiedExchange, receiver: string): CaoEvent[] {
  if (!reportsSuccess(x)) return [];
  const r = jsonObject(x.responseBody);
  return [
    event(x, {
      type: 'message_sent',
      orchestrationType: 'send_message',
      phase: 'dispatched',
      sender: param(x.query, 'sender_id') ?? text(r, 'sender_id'),
      receiver,
      message: param(x.query, 'message'),
    }),
  ];
}

/**
 * POST /terminals/{id}/input with `orchestration_type` (v2.1–v2.2 handoff/assign): a message of
 * that type. Undefined when the input names no orchestration type (then it is raw input, or a
 * v2.0.x pattern the classifier decides).
 */
export function classifyTypedInput(x: ClassifiedExchange, receiver: string): CaoEvent[] | undefined {
  const type = orchestration(param(x.query, 'orchestration_type'));
  if (type === undefined) return undefined;
  if (!reportsSuccess(x)) return [];
  return [
    event(x, {
      type: 'message_sent',
      orchestrationType: type,
      phase: 'dispatched',
      sender: param(x.query, 'sender_id'),
      receiver,
      message: param(x.query, 'message'),
    }),
  ];
}

/**
 * POST /terminals/{id}/input → 2xx, the first input of a terminal a v2.0.x supervisor created:
 * handoff when the terminal was polled first, else assign. The sender is the one the message
 * names, else the caller the classifier inferred.
 */
export function classifyPatternInput(
  x: ClassifiedExchange,
  receiver: string,
  known: { polled: boolean; caller?: string },
): CaoEvent[] {
  if (!reportsSuccess(x)) return [];
  const message = param(x.query, 'message');
  return [
    event(x, {
      type: 'message_sent',
      orchestrationType: known.polled ? 'handoff' : 'assign',
      phase: 'dispatched',
      sender: senderFromMessage(message) ?? known.caller,
      receiver,
      message,
    }),
  ];
}

/** GET /terminals/{worker}/output?mode=last → 200 on a handoff worker: handoff completed. */
export function classifyHandoffOutput(
  x: ClassifiedExchange,
  worker: string,
  known: { sender?: string },
): CaoEvent[] {
  if (x.status !== 200 || x.query.get('mode') !== 'last') return [];
  const output = jsonObject(x.responseBody)?.output;
  if (typeof output !== 'string') return [];
  return [
    event(x, {
      type: 'message_sent',
      orchestrationType: 'handoff',
      phase: 'completed',
      sender: worker,
      receiver: known.sender,
      message: output,
    }),
  ];
}

/**
 * POST /terminals/run-step, request arrived (≥ 2.3 handoff): handoff dispatched. The worker does
 * not exist yet: the event names the receiver's agent profile, not its terminal.
 */
export function classifyRunStepRequest(x: ArrivedRequest): CaoEvent[] {
  const body = jsonObject(x.requestBody);
  if (!body || isWorkflowStep(body)) return [];
  return [
    event(x, {
      type: 'message_sent',
      orchestrationType: 'handoff',
      phase: 'dispatched',
      sessionName: text(body, 'session_name'),
      sender: text(body, 'caller_id'),
      receiver: text(body, 'reuse_terminal_id'),
      receiverAgent: text(body, 'agent'),
      message: text(body, 'prompt'),
    }),
  ];
}

/** POST /terminals/run-step finished: 200 → handoff completed; 502/504 → handoff failed. */
export function classifyRunStepResult(x: ClassifiedExchange): CaoEvent[] {
  const body = jsonObject(x.requestBody);
  if (!body || isWorkflowStep(body)) return [];
  const r = jsonObject(x.responseBody);
  if (!r) return [];
  const common = {
    type: 'message_sent' as const,
    orchestrationType: 'handoff' as const,
    sessionName: text(body, 'session_name'),
    senderAgent: text(body, 'agent'),
    receiver: text(body, 'caller_id'),
  };
  if (x.status === 200) {
    if (r.replayed === true) return []; // a journal replay: nothing ran
    const worker = text(r, 'terminal_id');
    const lastMessage = r.last_message;
    if (!worker || typeof lastMessage !== 'string') return [];
    return [event(x, { ...common, phase: 'completed', sender: worker, message: lastMessage })];
  }
  if (x.status === 502 || x.status === 504) {
    const detail = r.detail;
    if (detail === null || typeof detail !== 'object' || Array.isArray(detail)) return [];
    const worker = text(detail as Json, 'terminal_id');
    return [
      event(x, { ...common, phase: 'failed', sender: worker, message: text(detail as Json, 'message') }),
    ];
  }
  return [];
}

// ---------------------------------------------------------------------------------------------
// Bounded memory
// ---------------------------------------------------------------------------------------------

/** What the classifier remembers of one terminal. */
interface TerminalMemo {
  /** Created through the gateway by a pre-v2.3 server (no `caller_id` in its JSON) with no
   * deferred task: its first input is classified by the v2.0.x pattern. */
  pattern: boolean;
  /** Polled with GET /terminals/{id} after its creation. */
  polled: boolean;
  /** Received an input already. */
  inputSeen: boolean;
  caller?: string;
  /** A handoff sent to it whose result has not been read yet. */
  awaitingResult: boolean;
  /** Its sender, when known. */
  handoffSender?: string;
  /** Status last answered by GET /terminals/{id}. */
  status?: string;
}

class Memory {
  readonly #terminals = new Map<string, TerminalMemo>();
  readonly #limit: number;
  /** The last `GET /terminals/{X}/working-directory` (a v2.0.x supervisor about to create). */
  lookup: { terminalId: string; at: number } | undefined;
  /** The core's answer to "which session is this terminal in". */
  readonly sessionOf: (terminalId: string) => string | undefined;

  constructor(limit: number, sessionOf: (terminalId: string) => string | undefined) {
    this.#limit = Math.max(1, limit);
    this.sessionOf = sessionOf;
  }

  get(id: string): TerminalMemo | undefined {
    return this.#terminals.get(id);
  }

  /** Creates or updates a memo and makes it the most recently used. */
  put(id: string, patch: Partial<TerminalMemo>): TerminalMemo {
    const memo: TerminalMemo = {
      pattern: false, polled: false, inputSeen: false, awaitingResult: false, ...this.#terminals.get(id), ...patch,
    };
    this.#terminals.delete(id);
    this.#terminals.set(id, memo);
    while (this.#terminals.size > this.#limit) {
      const oldest = this.#terminals.keys().next();
      if (oldest.done) break;
      this.#terminals.delete(oldest.value);
    }
    return memo;
  }

  forget(id: string): void {
    this.#terminals.delete(id);
  }

  get size(): number {
    return this.#terminals.size;
  }
}

// ---------------------------------------------------------------------------------------------
// The rule table
// ---------------------------------------------------------------------------------------------

type Params = Record<string, string>;
type ExchangeHandler = (x: ClassifiedExchange, p: Params, m: Memory) => CaoEvent[];
type RequestHandler = (x: ArrivedRequest, p: Params, m: Memory) => CaoEvent[];

export interface Rule {
  method: string;
  path: string;
  /** The handler reads bodies: the proxy must capture them. */
  capture: boolean;
  onRequest?: RequestHandler;
  onExchange: ExchangeHandler;
}

const remember = (m: Memory, t: CreatedTerminal, extra: Partial<TerminalMemo> = {}): void => {
  m.put(t.terminalId, { caller: t.callerId, ...extra });
};

/** A terminal that received its task; a handoff's worker now owes a result (status unknown yet). */
function afterInput(events: CaoEvent[]): Partial<TerminalMemo> {
  const sent = events[0];
  if (sent?.orchestrationType !== 'handoff') return { inputSeen: true };
  return { inputSeen: true, awaitingResult: true, handoffSender: sent.sender, status: undefined };
}

/** The caller a v2.0.x supervisor revealed by looking up its own working directory just before. */
function inferredCaller(x: ClassifiedExchange, session: string, m: Memory): string | undefined {
  const lookup = m.lookup;
  if (!lookup) return undefined;
  m.lookup = undefined;
  const known = m.sessionOf(lookup.terminalId);
  if (known !== undefined && known !== session) return undefined;
  return Math.abs(x.startedAt.getTime() - lookup.at) <= CALLER_LOOKUP_WINDOW_MS ? lookup.terminalId : undefined;
}

export const RULES: readonly Rule[] = [
  {
    method: 'POST', path: '/sessions', capture: true,
    onExchange: (x, _p, m) => {
      const events = classifySessionCreate(x);
      const t = events.length > 0 ? createdTerminal(x) : undefined;
      if (t) remember(m, t);
      return events;
    },
  },
  {
    method: 'DELETE', path: '/sessions/{session}', capture: true,
    onExchange: (x, p) => classifySessionDelete(x, p.session!),
  },
  {
    method: 'POST', path: '/sessions/{session}/terminals', capture: true,
    onExchange: (x, p, m) => {
      const events = classifyTerminalCreate(x, p.session!);
      const t = events.length > 0 ? createdTerminal(x, p.session) : undefined;
      if (!t) return events;
      const pattern = !t.serverKnowsCallers && !t.deferred;
      const caller = t.callerId ?? (pattern ? inferredCaller(x, t.sessionName ?? p.session!, m) : undefined);
      remember(m, t, { pattern, caller, polled: false, inputSeen: t.deferred });
      return events;
    },
  },
  {
    method: 'POST', path: '/terminals/run-step', capture: true,
    onRequest: (x) => classifyRunStepRequest(x),
    onExchange: (x) => classifyRunStepResult(x),
  },
  {
    method: 'GET', path: '/terminals/{id}', capture: true,
    onExchange: (x, p, m) => {
      if (x.status !== 200) return [];
      const known = m.get(p.id!);
      if (!known) return [];
      const status = text(jsonObject(x.responseBody), 'status');
      m.put(p.id!, { ...(status ? { status } : {}), ...(!known.inputSeen ? { polled: true } : {}) });
      return [];
    },
  },
  {
    method: 'GET', path: '/terminals/{id}/working-directory', capture: false,
    onExchange: (x, p, m) => {
      if (x.status === 200) m.lookup = { terminalId: p.id!, at: (x.finishedAt ?? new Date()).getTime() };
      return [];
    },
  },
  {
    // captured for the `{success}` answer (the message travels in the query; the body is empty)
    method: 'POST', path: '/terminals/{id}/input', capture: true,
    onExchange: (x, p, m) => {
      const id = p.id!;
      const known = m.get(id);
      if (!reportsSuccess(x)) return [];
      const typed = classifyTypedInput(x, id);
      if (typed !== undefined) {
        m.put(id, afterInput(typed));
        return typed;
      }
      if (!known) return []; // raw input to a terminal the gateway did not see created
      if (!known.pattern || known.inputSeen || param(x.query, 'sender_id') !== undefined) {
        m.put(id, { inputSeen: true });
        return [];
      }
      const events = classifyPatternInput(x, id, known);
      m.put(id, afterInput(events));
      return events;
    },
  },
  {
    method: 'GET', path: '/terminals/{id}/output', capture: true,
    onExchange: (x, p, m) => {
      const id = p.id!;
      const known = m.get(id);
      // The MCP server reads the result right after a poll said `completed`.
      if (!known?.awaitingResult || (known.status !== undefined && known.status !== 'completed')) return [];
      const events = classifyHandoffOutput(x, id, { sender: known.handoffSender });
      if (events.length > 0) m.put(id, { awaitingResult: false, handoffSender: undefined });
      return events;
    },
  },
  {
    method: 'DELETE', path: '/terminals/{id}', capture: true,
    onExchange: (x, p, m) => {
      const id = p.id!;
      const events = classifyTerminalDelete(x, id);
      if (events.length > 0) m.forget(id);
      return events;
    },
  },
  {
    method: 'POST', path: '/terminals/{id}/inbox/messages', capture: true,
    onExchange: (x, p) => classifyInboxMessage(x, p.id!),
  },
];

/** Matches a path against a `{param}` pattern; params are %-decoded. */
export function matchPath(pattern: string, path: string): Params | undefined {
  const ps = pattern.split('/');
  const xs = path.split('/');
  if (ps.length !== xs.length) return undefined;
  const params: Params = {};
  for (let i = 0; i < ps.length; i++) {
    const p = ps[i]!;
    const x = xs[i]!;
    if (p.startsWith('{')) {
      if (x === '') return undefined;
      let value = x;
      try {
        value = decodeURIComponent(x);
      } catch {
        // a malformed %-escape stays as sent
      }
      params[p.slice(1, -1)] = value;
    } else if (p !== x) return undefined;
  }
  return params;
}

/** The first rule for (method, path), with its params. */
export function findRule(method: string, path: string): { rule: Rule; params: Params } | undefined {
  const upper = method.toUpperCase();
  for (const rule of RULES) {
    if (rule.method !== upper) continue;
    const params = matchPath(rule.path, path);
    if (params) return { rule, params };
  }
  return undefined;
}

/** True only for the routes whose bodies the rules read (the proxy copies nothing else). */
export function shouldCapture(method: string, path: string): boolean {
  try {
    return findRule(method, path)?.rule.capture ?? false;
  } catch {
    return false;
  }
}

/** Keeps only events that pass validateCaoEvent (normalised by it). */
function valid(events: CaoEvent[]): CaoEvent[] {
  const out: CaoEvent[] = [];
  for (const e of events) {
    try {
      out.push(validateCaoEvent(e));
    } catch {
      // an event without the facts it needs (e.g. neither sender nor receiver) is no event
    }
  }
  return out;
}

export interface ExchangeClassifierOptions {
  /** Terminals remembered at most (oldest forgotten first). Default 10 000. */
  maxTracked?: number;
  /** Asks the core which session a terminal is in (CaoStateView.sessionOfTerminal). */
  sessionOfTerminal?: (terminalId: string) => string | undefined;
}

/** Turns the gateway's exchanges into CaoEvents; keeps a small, bounded memory. */
export class ExchangeClassifier {
  readonly #memory: Memory;

  constructor(opts: ExchangeClassifierOptions = {}) {
    this.#memory = new Memory(opts.maxTracked ?? 10_000, opts.sessionOfTerminal ?? (() => undefined));
  }

  /**
   * Narrower than shouldCapture: output bodies (possibly whole scroll-backs) only for terminals
   * awaiting a handoff result.
   */
  capture(method: string, path: string): boolean {
    try {
      const found = findRule(method, path);
      if (!found?.rule.capture) return false;
      if (found.rule.path === '/terminals/{id}/output') {
        return this.#memory.get(found.params.id!)?.awaitingResult === true;
      }
      return true;
    } catch {
      return false;
    }
  }

  /** A request (with its captured body) has fully arrived; the response has not. */
  onRequest(x: ArrivedRequest): CaoEvent[] {
    try {
      const found = findRule(x.method, x.path);
      if (!found?.rule.onRequest) return [];
      return valid(found.rule.onRequest(x, found.params, this.#memory));
    } catch {
      return [];
    }
  }

  /**
   * The message an arriving request dispatches, when CAO may deliver it before answering (an
   * inbox message to an idle receiver is delivered inside the POST; 2.1's typed input with an
   * orchestration type fires the plugin's post_send_message inside the request): the gateway
   * holds other sources' reports of that delivery until the dispatch is reported, so the
   * session's sequence follows cause and effect.
   */
  dispatchOf(x: ArrivedRequest): { orchestrationType: OrchestrationType; sender?: string; receiver: string } | undefined {
    if (x.method.toUpperCase() !== 'POST') return undefined;
    const inbox = matchPath('/terminals/{id}/inbox/messages', x.path);
    if (inbox) return { orchestrationType: 'send_message', sender: param(x.query, 'sender_id'), receiver: inbox.id! };
    // 2.1–2.2 typed input: CAO types it (and fires post_send_message) inside the request too
    const input = matchPath('/terminals/{id}/input', x.path);
    const type = orchestration(param(x.query, 'orchestration_type'));
    if (input && type) return { orchestrationType: type, sender: param(x.query, 'sender_id'), receiver: input.id! };
    return undefined;
  }

  /** An exchange is over. */
  onExchange(x: ClassifiedExchange): CaoEvent[] {
    try {
      const found = findRule(x.method, x.path);
      if (!found) return [];
      return valid(found.rule.onExchange(x, found.params, this.#memory));
    } catch {
      return [];
    }
  }

  /** Terminals currently remembered (for tests and metrics). */
  get trackedTerminals(): number {
    return this.#memory.size;
  }
}
