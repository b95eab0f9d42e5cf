/**
 * The poller source: reconciles CAO's sessions, terminals and inbox deliveries through CAO's GET
 * endpoints, to catch what never passes through the gateway (server-side handoff workers, inbox
 * delivery, agents exiting, tmux kills, clean-ups).
 *
 * One cycle: `GET /sessions`; `GET /sessions/{name}` for every listed or known session; then
 * `GET /terminals/{id}/inbox/messages?limit=N&status=delivered` once per known terminal. At most
 * four requests in flight, over one keep-alive undici Pool. Cycles never overlap.
 *
 * Kills are reported only on evidence: a known session counts as absent in a cycle only when the
 * listing succeeded without it AND `GET /sessions/{name}` answered 404; it is gone after
 * `confirmations` such cycles in a row. A failed request (network error, non-2xx other than that
 * 404, time-out, invalid JSON, wrong shape) is no observation: it neither advances nor resets a
 * count. CAO answers `GET /sessions` with [] on backend errors, so an empty listing proves nothing.
 * Caveats from CAO's source: at v2.0.0 `session_exists` also swallows tmux errors, so a backend
 * error answers 404 too (only `confirmations` guards against it there); and the terminals of
 * `GET /sessions/{name}` are database rows, so a single window killed from outside tmux stays
 * listed (a stale row) until CAO deletes the row: the poller cannot see that kill.
 *
 * Inbox: CAO lists a terminal's inbox oldest first and caps `limit` at 100, so once a terminal has
 * `inboxLimit` delivered messages the delivered list stops changing. From then on ("saturated")
 * the poller also lists `status=pending` and reports a pending message that left the pending list
 * (and is not in `status=failed`) as delivered. A message created and delivered between two
 * cycles of a saturated terminal is not seen.
 *
 * The core's state: sessions and terminals another source reported (the gateway saw them created)
 * are checked too, so their disappearance is reported even when no listing ever showed them; a
 * state-known one counts as absent only in a listing that started after it was first seen.
 *
 * Times: each fact carries the time of the request that observed it (not when the cycle ended),
 * so a fact observed before a kill another source reported sorts before that kill.
 *
 * Start-up: history is not replayed. Terminals seen in the start-up phase (until the first
 * non-empty successful listing, or `confirmations` successful empty ones) take their delivered
 * messages as a baseline; terminals that appear later are new, so everything delivered to them
 * is reported. Logs never carry message bodies or query strings.
 */
import { Pool } from 'undici';
import type { Logger } from 'pino';
import type { HrTime } from '@opentelemetry/api';
import type { CaoEvent } from '../core/events.ts';
import type { CaoStateView } from '../core/state.ts';
import { hrTimeToMillis } from '../core/time.ts';
import { silentLogger } from '../logger.ts';
import { type WorkerView, failureNotice, noteStatus, parseWorkerRead, taskOutcome } from './assign-evidence.ts';

export interface PollerOptions {
  /** CAO server, e.g. http://127.0.0.1:9890 (the real server, not the gateway). */
  baseUrl: string;
  /** Pause between the end of one cycle and the start of the next; default 3000. */
  intervalMs?: number;
  /** Consecutive observations of absence before a kill is reported; default 2. */
  confirmations?: number;
  /** Bearer token for CAO auth (scope cao:read). */
  token?: string;
  /** Per request; default 5000. */
  timeoutMs?: number;
  /** Inbox rows asked for per terminal (CAO allows 1..100); default 100. */
  inboxLimit?: number;
  /** How long a worker is watched for its assign's delivery after the poller first saw it; default 600000. */
  taskWatchMs?: number;
  /** Called for each reconciled fact (source 'poller'). */
  onEvent: (event: CaoEvent) => void;
  /** The core's state: sessions and terminals other sources reported are reconciled too. */
  state?: CaoStateView;
  logger?: Logger;
}

export interface Poller {
  /** Runs a cycle now, then one `intervalMs` after each cycle ends, until stop(). */
  start(): void;
  /** Runs one cycle (after the one in flight, if any). Never rejects. */
  pollOnce(): Promise<void>;
  /** Stops the timer, waits for the cycle in flight, closes the connections. */
  stop(): Promise<void>;
}

const CONCURRENCY = 4;
/** Cycles a failure check looks for CAO's notice in the caller's inbox. */
const FAILURE_CHECK_TRIES = 3;
const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;
const WARN_REPEAT_MS = 60_000;

// ---- upstream shapes (pure parsers: undefined = malformed) ----

interface SessionRow {
  name: string;
  id?: string;
}
interface TerminalRow {
  id: string;
  agentName?: string;
  provider?: string;
  /** ≥ 2.4 (2.1's rows carry none). */
  status?: string;
}

/** When the observing request started (ms) and its HrTime. */
interface Seen {
  ms: number;
  time: HrTime;
}

function seenNow(): Seen {
  const ms = performance.timeOrigin + performance.now();
  const seconds = Math.floor(ms / 1000);
  return { ms, time: [seconds, Math.round((ms - seconds * 1000) * 1e6)] };
}
interface InboxRow {
  id: string;
  sender?: string;
  receiver: string;
  message: string;
  status: string;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const optStr = (v: unknown): boolean => v === undefined || v === null || typeof v === 'string';

/** `GET /sessions`: `[{id, name, status, …}]`. */
export function parseSessionList(v: unknown): SessionRow[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const rows: SessionRow[] = [];
  for (const r of v) {
    if (!isObject(r)) return undefined;
    const name = str(r.name) ?? str(r.id);
    if (name === undefined || !optStr(r.id)) return undefined;
    rows.push({ name, ...(str(r.id) ? { id: str(r.id) } : {}) });
  }
  return rows;
}

/** `GET /sessions/{name}`: `{session, terminals: [{id, agent_profile, provider, …}]}`. */
export function parseSessionDetail(v: unknown): TerminalRow[] | undefined {
  if (!isObject(v) || !Array.isArray(v.terminals)) return undefined;
  const rows: TerminalRow[] = [];
  for (const t of v.terminals) {
    if (!isObject(t) || str(t.id) === undefined || !optStr(t.agent_profile) || !optStr(t.provider)) return undefined;
    const agentName = str(t.agent_profile);
    const provider = str(t.provider);
    const status = str(t.status);
    rows.push({ id: str(t.id)!, ...(agentName ? { agentName } : {}), ...(provider ? { provider } : {}), ...(status ? { status } : {}) });
  }
  return rows;
}

/** `GET /terminals/{id}/inbox/messages`: `[{id, sender_id, receiver_id, message, status, created_at}]`. */
export function parseInbox(v: unknown): InboxRow[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const rows: InboxRow[] = [];
  for (const m of v) {
    if (!isObject(m)) return undefined;
    const id = typeof m.id === 'number' && Number.isFinite(m.id) ? String(m.id) : str(m.id);
    const receiver = str(m.receiver_id);
    if (id === undefined || receiver === undefined || typeof m.message !== 'string' ||
      typeof m.status !== 'string' || !optStr(m.sender_id)) return undefined;
    const sender = str(m.sender_id);
    rows.push({ id, receiver, message: m.message, status: m.status, ...(sender ? { sender } : {}) });
  }
  return rows;
}

// ---- state ----

/** Insertion-ordered set that forgets the least recently touched ids beyond `limit`. */
class RecentIds {
  readonly #set = new Set<string>();
  readonly #limit: number;
  constructor(limit: number) {
    this.#limit = limit;
  }
  has(id: string): boolean {
    return this.#set.has(id);
  }
  touch(id: string): void {
    this.#set.delete(id);
    this.#set.add(id);
    if (this.#set.size > this.#limit) {
      const oldest = this.#set.values().next();
      if (!oldest.done) this.#set.delete(oldest.value);
    }
  }
}

interface TerminalState {
  id: string;
  missing: number;
  /** Seen in the start-up phase: what was delivered before first sight is history. */
  baseline: boolean;
  primed: boolean;
  delivered: RecentIds;
  /** Pending rows seen while the delivered list is saturated. */
  pending: Map<string, InboxRow>;
  /** When the poller first saw it (ms). */
  firstSeenMs: number;
  /** `GET /terminals/{id}` was read once (at first sight): caller, 2.5.x delivery record. */
  probed: boolean;
  /** The terminal that created it (assign/handoff), from `caller_id`. */
  callerId?: string;
  /** Its assign task: what was seen of it (assign-evidence.ts), and whether the poller settled it. */
  task: WorkerView & { settled: boolean };
  /** Status last seen (listing row or GET), when the server reports one. */
  status?: string;
  /** The session listing reports its status (2.4/2.5; 2.1's rows have none). */
  listedStatus: boolean;
}

/** A worker that vanished or failed before its task was seen delivered: its caller's inbox may hold CAO's notice. */
interface FailureCheck {
  s: SessionState;
  worker: string;
  caller: string;
  /** Cycles left to look. */
  tries: number;
  /** CAO's reason from its own record (2.5.x), used when no notice is found. */
  reason?: string;
}

interface SessionState {
  name: string;
  id?: string;
  missing: number;
  preexisting: boolean;
  detailSeen: boolean;
  terminals: Map<string, TerminalState>;
}

type Observation =
  | { kind: 'ok'; value: unknown; seen: Seen }
  | { kind: 'missing'; seen: Seen }
  | { kind: 'failed' };

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function positiveInt(name: string, value: number | undefined, dflt: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = value ?? dflt;
  if (!Number.isInteger(v) || v < 1 || v > max) throw new RangeError(`poller ${name} must be an integer in 1..${max} (got ${v})`);
  return v;
}

export function createPoller(opts: PollerOptions): Poller {
  const base = new URL(opts.baseUrl);
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new RangeError(`poller baseUrl must be an http(s) URL (got protocol ${base.protocol})`);
  }
  const origin = base.origin;
  const prefix = base.pathname.replace(/\/+$/, '');
  const intervalMs = positiveInt('intervalMs', opts.intervalMs, 3000);
  const confirmations = positiveInt('confirmations', opts.confirmations, 2);
  const timeoutMs = positiveInt('timeoutMs', opts.timeoutMs, 5000);
  const inboxLimit = positiveInt('inboxLimit', opts.inboxLimit, 100, 100);
  const taskWatchMs = positiveInt('taskWatchMs', opts.taskWatchMs, 600_000);
  const logger = opts.logger ?? silentLogger;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;

  const sessions = new Map<string, SessionState>();
  let startup = true;
  let emptyListings = 0;
  let pool: Pool | undefined;
  let running = false;
  let timer: NodeJS.Timeout | undefined;
  let inflight: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  const warned = new Map<string, number>();

  // ---- edges: logging, emitting, HTTP ----

  function warn(route: string, reason: string): void {
    const key = `${route}|${reason}`;
    const now = Date.now();
    const last = warned.get(key);
    if (last !== undefined && now - last < WARN_REPEAT_MS) {
      logger.debug({ route, reason }, 'cao-events poller: CAO request failed (repeat), counted as no observation');
      return;
    }
    if (warned.size > 200) warned.clear();
    warned.set(key, now);
    logger.warn({ route, reason }, 'cao-events poller: CAO request failed, counted as no observation');
  }

  function emit(event: CaoEvent): void {
    try {
      opts.onEvent({ ...event, source: 'poller' });
    } catch (err) {
      logger.warn({ eventType: event.type, errorName: err instanceof Error ? err.name : typeof err },
        'cao-events poller: onEvent threw');
    }
  }

  /** GET `path` (route: the path template, for logs). 404 is `missing` only when `allow404`. */
  async function get(path: string, route: string, allow404 = false): Promise<Observation> {
    const seen = seenNow();
    pool ??= new Pool(origin, {
      connections: CONCURRENCY,
      pipelining: 1,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    try {
      const res = await pool.request({
        method: 'GET',
        path: prefix + path,
        headers,
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (res.statusCode !== 200) {
        await res.body.dump().catch(() => undefined);
        if (res.statusCode === 404 && allow404) return { kind: 'missing', seen };
        warn(route, `status ${res.statusCode}`);
        return { kind: 'failed' };
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) {
          warn(route, 'response too large');
          return { kind: 'failed' };
        }
        chunks.push(chunk);
      }
      try {
        return { kind: 'ok', value: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown, seen };
      } catch {
        // JSON.parse's message quotes the body: never log it.
        warn(route, 'invalid JSON');
        return { kind: 'failed' };
      }
    } catch (err) {
      const e = err as { code?: unknown; name?: unknown };
      warn(route, typeof e?.code === 'string' ? e.code : typeof e?.name === 'string' ? e.name : 'request error');
      return { kind: 'failed' };
    }
  }

  const seg = (s: string): string => encodeURIComponent(s);

  // ---- one cycle ----

  /** Workers whose failure notice is looked for in their caller's inbox, a few cycles each. */
  const failureChecks = new Map<string, FailureCheck>();

  /** Known to the core (another source reported it) since before `seen`. */
  function knownBefore(firstSeen: HrTime | undefined, seen: Seen): boolean {
    return firstSeen !== undefined && hrTimeToMillis(firstSeen) < seen.ms;
  }

  async function cycle(): Promise<void> {
    const listing = await get('/sessions', 'GET /sessions');
    if (listing.kind !== 'ok') return;
    const listed = parseSessionList(listing.value);
    if (!listed) {
      warn('GET /sessions', 'unexpected shape');
      return;
    }
    const inStartup = startup;
    if (listed.length > 0) startup = false;
    else if (++emptyListings >= confirmations) startup = false;

    const listedNames = new Set(listed.map((s) => s.name));
    for (const row of listed) {
      if (sessions.has(row.name)) continue;
      const s = track(row.name, inStartup, row.id);
      emit({ type: 'session_created', sessionName: s.name, ...(s.id ? { sessionId: s.id } : {}), time: listing.seen.time });
    }
    // Sessions the core knows live from other sources and this poller has not listed: their
    // disappearance is reported too (absence counts only for a listing made after they were seen).
    for (const name of opts.state?.liveSessions() ?? []) {
      if (!sessions.has(name) && knownBefore(opts.state?.session(name)?.firstSeen, listing.seen)) track(name, false);
    }

    const names = [...sessions.keys()];
    const details = await mapLimit(names, CONCURRENCY, (name) =>
      get(`/sessions/${seg(name)}`, 'GET /sessions/{name}', true));
    names.forEach((name, i) => {
      const s = sessions.get(name)!;
      const obs = details[i]!;
      if (obs.kind === 'failed') return;
      if (obs.kind === 'missing') {
        // Listed but 404: a race with a kill; not proof either way.
        if (listedNames.has(name)) return;
        if (++s.missing >= confirmations) killSession(s, obs.seen);
        return;
      }
      const rows = parseSessionDetail(obs.value);
      if (!rows) {
        warn('GET /sessions/{name}', 'unexpected shape');
        return;
      }
      s.missing = 0;
      reconcileTerminals(s, rows, obs.seen);
    });

    await watchTasks();

    const terminals = [...sessions.values()].flatMap((s) =>
      [...s.terminals.values()].filter((t) => t.missing === 0).map((t) => ({ s, t })));
    const inboxes = await mapLimit(terminals, CONCURRENCY, ({ t }) => fetchInbox(t));
    const deliveredTo = new Map<string, InboxRow[]>();
    terminals.forEach(({ s, t }, i) => {
      const got = inboxes[i]!;
      if (got) deliveredTo.set(t.id, got.delivered);
      if (got && s.terminals.get(t.id) === t) reconcileInbox(s, t, got);
    });
    await checkFailures(deliveredTo);
  }

  function track(name: string, preexisting: boolean, id?: string): SessionState {
    const s: SessionState = {
      name, missing: 0, preexisting, detailSeen: false, terminals: new Map(), ...(id ? { id } : {}),
    };
    sessions.set(name, s);
    return s;
  }

  /** What the poller reports of a terminal; the core adds what it knows (agent, provider). */
  function terminalFacts(s: SessionState, t: TerminalState, type: 'terminal_created' | 'terminal_killed', seen: Seen): CaoEvent {
    return {
      type, sessionName: s.name, terminalId: t.id, time: seen.time, ...(s.id ? { sessionId: s.id } : {}),
    };
  }

  function killSession(s: SessionState, seen: Seen): void {
    for (const t of s.terminals.values()) emit(terminalFacts(s, t, 'terminal_killed', seen));
    sessions.delete(s.name);
    emit({ type: 'session_killed', sessionName: s.name, ...(s.id ? { sessionId: s.id } : {}), time: seen.time });
  }

  function newTerminal(s: SessionState, id: string, seen: Seen): TerminalState {
    const t: TerminalState = {
      id, missing: 0, baseline: s.preexisting && !s.detailSeen, primed: false,
      delivered: new RecentIds(inboxLimit * 4), pending: new Map(),
      firstSeenMs: seen.ms, probed: false, task: { idleSeen: false, settled: false }, listedStatus: false,
    };
    s.terminals.set(id, t);
    return t;
  }

  function noteTerminalStatus(t: TerminalState, status: string | undefined): void {
    if (status === undefined) return;
    t.status = status;
    noteStatus(t.task, status);
  }

  function reconcileTerminals(s: SessionState, rows: TerminalRow[], seen: Seen): void {
    const present = new Set<string>();
    for (const row of rows) {
      present.add(row.id);
      const known = s.terminals.get(row.id);
      const t = known ?? newTerminal(s, row.id, seen);
      t.listedStatus = row.status !== undefined;
      noteTerminalStatus(t, row.status);
      if (known) {
        known.missing = 0;
        continue;
      }
      emit({
        ...terminalFacts(s, t, 'terminal_created', seen),
        ...(row.agentName ? { agentName: row.agentName } : {}),
        ...(row.provider ? { provider: row.provider } : {}),
      });
    }
    s.detailSeen = true;
    // Terminals the core knows live in this session from other sources, never listed here.
    for (const id of opts.state?.liveTerminals(s.name) ?? []) {
      if (!present.has(id) && !s.terminals.has(id) && knownBefore(opts.state?.terminal(id)?.firstSeen, seen)) {
        const t = newTerminal(s, id, seen);
        t.primed = true;
        t.probed = true; // never listed here: nothing to read
      }
    }
    for (const t of [...s.terminals.values()]) {
      if (present.has(t.id)) continue;
      // A worker gone before its task was seen delivered: CAO may have told its caller why.
      if (t.missing === 0) checkFailureOf(s, t);
      if (++t.missing >= confirmations) {
        s.terminals.delete(t.id);
        emit(terminalFacts(s, t, 'terminal_killed', seen));
      }
    }
  }

  // ---- assign tasks (assign-evidence.ts) ----

  /** The caller of a worker's pending assign, when it is one the poller should watch. */
  function assignCaller(t: TerminalState): string | undefined {
    if (t.task.settled) return undefined;
    const assignment = opts.state?.terminal(t.id)?.assignment;
    if (assignment) return assignment.outcome ? undefined : (assignment.sender ?? t.callerId);
    // 2.5.x: CAO's own record says the terminal has a deferred task (the poller alone can tell);
    // one already settled when first read counts too, unless it is history from before start-up.
    const d = t.task.initialDelivery;
    return d === 'pending' || ((d === 'delivered' || d === 'failed') && !t.baseline) ? t.callerId : undefined;
  }

  /**
   * Reads `GET /terminals/{id}` for terminals first seen this cycle (once: caller, 2.5.x record)
   * and for watched workers whose delivery the listing cannot show (2.5.x record; a 2.1.x
   * listing has no status); then reports the deliveries and failures that shows.
   */
  async function watchTasks(): Promise<void> {
    const live = [...sessions.values()].flatMap((s) => [...s.terminals.values()].filter((t) => t.missing === 0).map((t) => ({ s, t })));
    const now = Date.now();
    for (const { t } of live) {
      if (!t.task.settled && now - t.firstSeenMs > taskWatchMs && t.probed) t.task.settled = true; // watched long enough
    }
    const reads = live.filter(({ t }) => !t.probed ||
      (assignCaller(t) !== undefined && (t.task.initialDelivery === 'pending' || !t.listedStatus)));
    const got = await mapLimit(reads, CONCURRENCY, ({ t }) => get(`/terminals/${seg(t.id)}`, 'GET /terminals/{id}', true));
    reads.forEach(({ s, t }, i) => {
      const obs = got[i]!;
      if (obs.kind === 'ok') {
        const read = parseWorkerRead(obs.value);
        if (!read) {
          warn('GET /terminals/{id}', 'unexpected shape');
          return;
        }
        t.probed = true;
        t.callerId ??= read.callerId;
        if (read.initialDelivery !== undefined) t.task.initialDelivery = read.initialDelivery;
        noteTerminalStatus(t, read.status);
        settleTask(s, t, obs.seen, read.initialDeliveryMessage);
      } else if (obs.kind === 'missing') {
        t.probed = true;
      }
    });
    // Workers the listing alone shows (2.4.x, 2.1.x statuses) or that were not read this cycle.
    const read = new Set(reads.map(({ t }) => t));
    const seen = seenNow();
    for (const { s, t } of live) if (!read.has(t)) settleTask(s, t, seen);
  }

  /** Reports a watched worker's delivery, or starts looking for its failure notice. */
  function settleTask(s: SessionState, t: TerminalState, seen: Seen, reason?: string): void {
    const caller = assignCaller(t);
    if (caller === undefined) return;
    const outcome = taskOutcome(t.task, t.status);
    if (outcome === 'delivered') {
      t.task.settled = true;
      emit({
        type: 'message_sent', orchestrationType: 'assign', phase: 'delivered',
        sessionName: s.name, ...(s.id ? { sessionId: s.id } : {}), sender: caller, receiver: t.id,
        observationId: `assign-task:${t.id}`, time: seen.time,
      });
    } else if (outcome === 'failed' || t.status === 'error') {
      checkFailureOf(s, t, reason);
    }
  }

  /** Looks for CAO's failure notice to the worker's caller in the next cycles (once per worker). */
  function checkFailureOf(s: SessionState, t: TerminalState, reason?: string): void {
    if (t.task.settled || failureChecks.has(t.id)) return;
    const assignment = opts.state?.terminal(t.id)?.assignment;
    if (assignment?.outcome) return;
    const caller = assignment?.sender ?? t.callerId;
    if (!caller) return;
    // CAO writes the notice before it deletes the worker: one look suffices for a worker not
    // known to carry a task (a handoff worker torn down, 2.4.x seen by the poller alone).
    const assigned = assignment !== undefined || t.task.initialDelivery === 'pending' || t.task.initialDelivery === 'failed';
    failureChecks.set(t.id, { s, worker: t.id, caller, tries: assigned ? FAILURE_CHECK_TRIES : 1, ...(reason ? { reason } : {}) });
  }

  /** One look per pending check: the caller's pending inbox, and its delivered rows read this cycle. */
  async function checkFailures(deliveredTo: Map<string, InboxRow[]>): Promise<void> {
    const checks = [...failureChecks.values()];
    if (checks.length === 0) return;
    const pending = await mapLimit(checks, CONCURRENCY, (c) =>
      get(`/terminals/${seg(c.caller)}/inbox/messages?limit=${inboxLimit}&status=pending`, 'GET /terminals/{id}/inbox/messages (pending)', true));
    checks.forEach((c, i) => {
      const obs = pending[i]!;
      const rows = obs.kind === 'ok' ? (parseInbox(obs.value) ?? []) : [];
      const notice = failureNotice([...rows, ...(deliveredTo.get(c.caller) ?? [])], c.worker, c.caller);
      const done = notice !== undefined || --c.tries <= 0;
      if (done) failureChecks.delete(c.worker);
      const t = c.s.terminals.get(c.worker);
      if (t) t.task.settled ||= done;
      const message = notice?.message ?? (done ? c.reason : undefined);
      if (message === undefined || !sessions.has(c.s.name)) return;
      emit({
        type: 'message_sent', orchestrationType: 'assign', phase: 'failed',
        sessionName: c.s.name, ...(c.s.id ? { sessionId: c.s.id } : {}), sender: c.caller, receiver: c.worker, message,
        observationId: `assign-failed:${c.worker}`, time: (obs.kind === 'ok' ? obs.seen : seenNow()).time,
      });
    });
  }

  // ---- inbox ----

  interface InboxFetch {
    delivered: InboxRow[];
    /** When the delivered list was asked for. */
    seen: Seen;
    saturated: boolean;
    /** Saturated only: the pending list, when fetched. */
    pending?: InboxRow[];
    /** Saturated only: ids in `status=failed`, fetched when tracked pending messages left the list. */
    failedIds?: Set<string>;
  }

  async function inboxList(t: TerminalState, status: string): Promise<{ rows: InboxRow[]; seen: Seen } | undefined> {
    const route = `GET /terminals/{id}/inbox/messages (${status})`;
    const obs = await get(`/terminals/${seg(t.id)}/inbox/messages?limit=${inboxLimit}&status=${status}`, route);
    if (obs.kind !== 'ok') return undefined;
    const rows = parseInbox(obs.value);
    if (!rows) warn(route, 'unexpected shape');
    return rows && { rows: rows.filter((m) => m.status === status), seen: obs.seen };
  }

  /** Tracked pending messages absent from a complete pending list and not seen delivered. */
  function leftPending(t: TerminalState, got: InboxFetch): InboxRow[] {
    if (!got.pending || got.pending.length >= inboxLimit) return [];
    const now = new Set([...got.pending, ...got.delivered].map((m) => m.id));
    return [...t.pending.values()].filter((m) => !now.has(m.id) && !t.delivered.has(m.id));
  }

  /** Reads only; state changes happen in reconcileInbox. */
  async function fetchInbox(t: TerminalState): Promise<InboxFetch | undefined> {
    const delivered = await inboxList(t, 'delivered');
    if (!delivered) return undefined;
    const got: InboxFetch = { delivered: delivered.rows, seen: delivered.seen, saturated: delivered.rows.length >= inboxLimit };
    if (!got.saturated) return got;
    const pending = await inboxList(t, 'pending');
    if (pending) got.pending = pending.rows;
    if (leftPending(t, got).length > 0) {
      const failed = await inboxList(t, 'failed');
      if (failed) got.failedIds = new Set(failed.rows.map((m) => m.id));
    }
    return got;
  }

  /** One delivery, identified by CAO's inbox message id (two deliveries of one text are two facts). */
  function emitDelivered(s: SessionState, m: InboxRow, seen: Seen): void {
    emit({
      type: 'message_sent', orchestrationType: 'send_message', phase: 'delivered',
      sessionName: s.name, ...(s.id ? { sessionId: s.id } : {}),
      ...(m.sender ? { sender: m.sender } : {}), receiver: m.receiver, message: m.message,
      observationId: `inbox:${m.id}`, time: seen.time,
    });
  }

  function reconcileInbox(s: SessionState, t: TerminalState, got: InboxFetch): void {
    const history = !t.primed && t.baseline;
    t.primed = true;
    for (const m of got.delivered) {
      if (!t.delivered.has(m.id) && !history) emitDelivered(s, m, got.seen);
      t.delivered.touch(m.id);
      t.pending.delete(m.id);
    }
    if (!got.saturated) {
      t.pending.clear(); // deliveries show in the delivered list again
      return;
    }
    if (!got.pending) return; // pending list failed: judge nothing this cycle
    if (got.failedIds) {
      for (const m of leftPending(t, got)) {
        t.pending.delete(m.id);
        if (got.failedIds.has(m.id)) continue;
        t.delivered.touch(m.id);
        emitDelivered(s, m, got.seen);
      }
    }
    // Track what is pending now (kept: rows that left but could not be judged yet).
    const keep = new Set(leftPending(t, got).map((m) => m.id));
    for (const id of [...t.pending.keys()]) if (!keep.has(id)) t.pending.delete(id);
    for (const m of got.pending) if (t.pending.size < inboxLimit * 4) t.pending.set(m.id, m);
  }

  // ---- scheduling ----

  async function runCycle(): Promise<void> {
    try {
      await cycle();
    } catch (err) {
      logger.warn({ errorName: err instanceof Error ? err.name : typeof err }, 'cao-events poller: cycle failed');
    }
  }

  function pollOnce(): Promise<void> {
    if (!inflight) {
      inflight = runCycle().finally(() => {
        inflight = undefined;
      });
      return inflight;
    }
    queued ??= inflight.then(() => {
      queued = undefined;
      return pollOnce();
    });
    return queued;
  }

  function schedule(ms: number): void {
    timer = setTimeout(() => {
      timer = undefined;
      void pollOnce().then(() => {
        if (running && timer === undefined) schedule(intervalMs);
      });
    }, ms);
  }

  return {
    start() {
      if (running) return;
      running = true;
      schedule(0);
    },
    pollOnce,
    async stop() {
      running = false;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      while (inflight || queued) await (queued ?? inflight);
      const p = pool;
      pool = undefined;
      await p?.close().catch(() => undefined);
    },
  };
}
