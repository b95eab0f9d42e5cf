/**
 * CAO API simulator: an in-process stand-in for cao-server (awslabs/cli-agent-orchestrator) for
 * the demo and the fast test suites. It is NOT CAO: it speaks the routes, status codes, response
 * shapes and timelines of one real release (cao-versions.ts: 2.1.1, 2.4.1 or 2.5.4, the newest by
 * default), as the end-to-end suite recorded them from real cao-server (test/fixtures/real-cao/),
 * and test/simulator-contract.test.ts replays those recordings against it so it cannot drift.
 *
 * What it reproduces (real behaviour, per release):
 * - terminals are tmux windows with DB rows: a window killed out of band keeps its row (2.4/2.5
 *   keep answering its cached status, 2.1 answers 500), a session whose last window goes leaves
 *   the listing, rows go only with DELETE;
 * - an agent CLI starts (`processing`: the pane's shell, then `idle`), works on each input
 *   (`processing`, then `completed`) and answers it; `__mock_error__` and `__mock_sleep_<N>` in an
 *   input behave as the stand-in CLIs do (status `error`; N seconds of work);
 * - synchronous creates answer once the CLI is idle; 2.1 runs them on its event loop, so every
 *   other request waits meanwhile;
 * - deferred init (2.4/2.5 `defer_init`): 201 with status `unknown` at once, the task typed by the
 *   server once the CLI is idle, with the caller as sender; 2.5 keeps `initial_delivery`
 *   (pending → delivered) and reads idle/completed as `unknown` until then;
 * - a CLI that cannot start (failLaunches): deferred workers are deleted after CAO's 15 s init
 *   time-out and their caller gets a pending inbox notice from the worker (2.4/2.5 texts);
 *   synchronous creates answer 500 (2.1.1: after 65 s with the whole server blocked, leaving the
 *   half-made terminal's row);
 * - inbox: one message per delivery attempt, delivered inside the POST to an idle/completed
 *   receiver, later on the receiver's next idle/completed (2.4/2.5; plus a 30 s sweep) or by a
 *   log watcher every 5 s (2.1);
 * - run-step (2.4/2.5): worker created, prompt typed, 200 / 502 (error) / 504 (time-out), torn
 *   down on success only;
 * - DELETE semantics, /exit, output modes, error texts and time formats of each release.
 * Not modelled: provider validation, profile files, auth scopes other than one bearer token,
 * OriginCheck, input refused in an error state, workflow routes. CAO's fixed durations (15 s init
 * time-out, 5 s log watcher, 30 s sweep, a run-step `timeout`, `__mock_sleep_<N>`) are multiplied
 * by `timeScale`.
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { type CaoTraits, type CaoVersion, NEWEST_CAO_VERSION, TRAITS } from './cao-versions.ts';

export type { CaoVersion } from './cao-versions.ts';

export interface CaoSimulatorOptions {
  version?: CaoVersion;
  host?: string;
  port?: number;
  /** When set, every request needs `Authorization: Bearer <token>`, else 401. */
  token?: string;
  /** How long an agent CLI takes to start (shell `processing` → `idle`); default 300 ms. */
  initMs?: number;
  /** How long an agent works on one input (`processing` → `completed`); default 300 ms. */
  workMs?: number;
  /** Factor on CAO's own fixed durations (see the header); default 1. */
  timeScale?: number;
}

export interface SimSession {
  name: string;
  created_at: string;
}

export interface SimTerminal {
  id: string;
  name: string;
  session_name: string;
  provider: string;
  agent_profile: string;
  caller_id: string | null;
  allowed_tools: string[] | null;
  description: string | null;
  working_directory: string;
  /** What the CLI's pane shows (CAO's status monitor); the API may mask it (2.5). */
  status: string;
  last_active: string;
  /** 2.5: the deferred task's record (`{state, kind?, message?}`), null when it had none. */
  initial_delivery: Record<string, string> | null;
  deferred_init_failure: Record<string, string> | null;
  /** The tmux window exists (false after an out-of-band kill: the row stays). */
  window: boolean;
  /** Every message this terminal's agent received (raw input, deliveries), oldest first. */
  inputs: string[];
  /** The agent's answers, oldest first. */
  replies: string[];
}

/**
 * Every message the server handled. Only `via: 'inbox'` rows exist in CAO's inbox table (their
 * `id` is CAO's message id); the others are typed input, numbered apart.
 */
export interface SimMessage {
  id: number;
  via: 'inbox' | 'input' | 'deferred_init' | 'run_step';
  sender_id: string | null;
  receiver_id: string;
  message: string;
  orchestration_type: string | null;
  status: 'pending' | 'delivered' | 'failed';
  created_at: string;
}

export interface CaoSimulatorSnapshot {
  sessions: SimSession[];
  terminals: SimTerminal[];
  messages: SimMessage[];
}

export interface CaoSimulator {
  url: string;
  version: CaoVersion;
  close(): Promise<void>;
  /** `tmux kill-window`: the window goes, CAO keeps the row. */
  killTerminalOutOfBand(id: string): void;
  /** `tmux kill-session`: the session leaves the listing, CAO keeps the rows. */
  killSessionOutOfBand(name: string): void;
  /** Forces what a terminal's pane shows (an idle/completed receiver then gets its next inbox message). */
  setStatus(id: string, status: string): void;
  /** The next `n` `GET /sessions` answer [] (CAO swallows backend errors that way). */
  failNextListings(n: number): void;
  /** While on, every agent CLI launch fails (CAO's provider init times out). */
  failLaunches(on: boolean): void;
  /**
   * Calls `listener` each time the server types a message into a terminal (deferred task, inbox
   * delivery, run-step prompt, raw input): where CAO's post_send_message hook fires (when the
   * message names a sender and an orchestration type).
   */
  onTyped(listener: (message: SimMessage, terminal: SimTerminal) => void): void;
  snapshot(): CaoSimulatorSnapshot;
}

class HttpError extends Error {
  status: number;
  detail: unknown;
  headers: Record<string, string>;
  constructor(status: number, detail: unknown, headers: Record<string, string> = {}) {
    super(typeof detail === 'string' ? detail : `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
    this.headers = headers;
  }
}
/** Starlette's TrustedHostMiddleware answers in plain text, not JSON. */
class PlainTextError extends HttpError {}

/** A FastAPI/pydantic request-validation error (422) for one field. */
function invalid(type: string, loc: (string | number)[], msg: string, input: unknown, ctx?: object): HttpError {
  return new HttpError(422, [{ type, loc, msg, input, ...(ctx ? { ctx } : {}) }]);
}

interface Ctx {
  params: Record<string, string>;
  query: URLSearchParams;
  body: Record<string, unknown> | undefined;
}
interface Reply {
  status?: number;
  json: unknown;
}
interface Route {
  method: string;
  path: string;
  body?: 'optional' | 'required';
  when?: (t: CaoTraits) => boolean;
  handler: (c: Ctx) => Reply | Promise<Reply>;
}

const TERMINAL_ID = /^[a-f0-9]{8}$/;
const TMUX_NAME = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$/;
const ORCHESTRATION = ['send_message', 'handoff', 'assign'];
const TRUSTED_HOSTS = ['localhost', '127.0.0.1'];
/** CAO's refused working directories (utils/path_validation.py): exact paths, and subtrees. */
const BLOCKED_DIRS = new Set(['/', '/bin', '/sbin', '/usr/bin', '/usr/sbin', '/etc', '/var', '/tmp', '/dev', '/proc', '/sys',
  '/root', '/boot', '/lib', '/lib64']);
const BLOCKED_TREES = ['/bin', '/sbin', '/usr/bin', '/usr/sbin', '/etc', '/dev', '/proc', '/sys', '/boot', '/root', '/lib',
  '/lib64', '/usr/lib', '/usr/lib64', '/var/spool/cron'];

/** CAO's fixed durations (ms, before timeScale). */
const CAO_INIT_TIMEOUT_MS = 15_000;
const KIRO_BLOCKED_CREATE_MS = 65_000;
const LOG_WATCH_MS = 5_000;
const SWEEP_MS = 30_000;
const FAILED_WORKER_TEARDOWN_MS = 500;

const hex = (n: number): string => randomBytes(Math.ceil(n / 2)).toString('hex').slice(0, n);
const p2 = (n: number, w = 2): string => String(n).padStart(w, '0');

/** Python's naive `datetime.now().isoformat()`: local time, microseconds, no zone. */
export function localIso(d: Date = new Date()): string {
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())}T${p2(d.getHours())}:` +
    `${p2(d.getMinutes())}:${p2(d.getSeconds())}.${p2(d.getMilliseconds(), 3)}000`;
}
/** UTC with microseconds (2.5): `…Z` (Terminal.last_active) or `…+00:00` (inbox created_at). */
function utcIso(d: Date, zone: 'Z' | '+00:00'): string {
  return `${d.toISOString().slice(0, 23)}000${zone}`;
}

/** Python's str() of a float: 5 → "5.0", 2.5 → "2.5". */
const pyFloat = (n: number): string => (Number.isInteger(n) ? `${n}.0` : String(n));

/** The simulated agent's answer to one input. */
const answer = (agent: string, input: string): string => `[simulated ${agent}] Done: ${input.slice(0, 200)}`;

function matchPath(pattern: string, path: string): Record<string, string> | null {
  const ps = pattern.split('/');
  const xs = path.split('/');
  if (ps.length !== xs.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < ps.length; i++) {
    const p = ps[i]!;
    const x = xs[i]!;
    if (p.startsWith('{')) {
      if (x === '') return null;
      try {
        params[p.slice(1, -1)] = decodeURIComponent(x);
      } catch {
        params[p.slice(1, -1)] = x; // a malformed %-escape stays as sent
      }
    } else if (p !== x) return null;
  }
  return params;
}

export async function startCaoSimulator(opts: CaoSimulatorOptions = {}): Promise<CaoSimulator> {
  const version: CaoVersion = opts.version ?? NEWEST_CAO_VERSION;
  const traits = TRAITS[version];
  if (!traits) throw new RangeError(`unknown CAO version ${JSON.stringify(version)}`);
  const initMs = opts.initMs ?? 300;
  const workMs = opts.workMs ?? 300;
  const scale = opts.timeScale ?? 1;
  const scaled = (ms: number): number => Math.max(1, Math.round(ms * scale));

  /** tmux sessions (what GET /sessions lists). */
  const sessions = new Map<string, SimSession & { incarnation: string }>();
  /** DB rows (a row outlives its window until DELETE). */
  const terminals = new Map<string, SimTerminal>();
  const messages: SimMessage[] = [];
  const timers = new Set<NodeJS.Timeout>();
  /** Deferred tasks not yet typed (2.5 masks idle/completed as `unknown` meanwhile). */
  const undelivered = new Set<string>();
  let nextMessageId = 1;
  let nextInputId = 1;
  let failListings = 0;
  let launchesFail = false;
  /** 2.1: a synchronous init holds the event loop; requests wait for this. */
  let blocked: Promise<void> = Promise.resolve();

  const after = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  const wait = (ms: number): Promise<void> => new Promise((r) => after(ms, r));
  const alive = (t: SimTerminal): boolean => terminals.get(t.id) === t;
  const now = (): Date => new Date();
  const lastActive = (d = now()): string => (traits.utcTimes ? utcIso(d, 'Z') : localIso(d));
  const createdAt = (d = now()): string => (traits.utcTimes ? utcIso(d, '+00:00') : localIso(d));

  // ---- query/body helpers (FastAPI's validation answers) ----
  const q = (c: Ctx, name: string): string | undefined => c.query.get(name) ?? undefined;
  const need = (c: Ctx, name: string): string => {
    const v = q(c, name);
    if (v === undefined) throw invalid('missing', ['query', name], 'Field required', null);
    return v;
  };
  const terminalId = (v: string, loc: (string | number)[]): string => {
    if (!TERMINAL_ID.test(v)) {
      throw invalid('string_pattern_mismatch', loc, "String should match pattern '^[a-f0-9]{8}$'", v,
        { pattern: '^[a-f0-9]{8}$' });
    }
    return v;
  };
  const bool = (c: Ctx, name: string, dflt: boolean): boolean => {
    const v = q(c, name);
    if (v === undefined) return dflt;
    if (['true', '1', 'yes', 'on', 't', 'y'].includes(v.toLowerCase())) return true;
    if (['false', '0', 'no', 'off', 'f', 'n'].includes(v.toLowerCase())) return false;
    throw invalid('bool_parsing', ['query', name], 'Input should be a valid boolean, unable to interpret input', v);
  };
  const tmuxName = (name: string, kind = 'session_name'): string => {
    if (!TMUX_NAME.test(name)) throw new HttpError(400, `Invalid ${kind}: '${name}'`);
    return name;
  };
  const orchestration = (v: unknown): string | null => {
    if (v === undefined || v === null || v === '') return null;
    if (typeof v !== 'string' || !ORCHESTRATION.includes(v)) {
      throw new HttpError(400, `invalid initial_message_orchestration_type: '${String(v)}'`);
    }
    return v;
  };
  const getTerminal = (id: string): SimTerminal => {
    const t = terminals.get(id);
    if (!t) throw new HttpError(404, `Terminal '${id}' not found`);
    return t;
  };
  /** CAO's working-directory check: must exist, be a directory, and not be a system path. */
  const workingDirectory = (given: string | undefined, wrap: (text: string) => string): string => {
    if (given === undefined) return process.cwd();
    const real = resolvePath(given);
    let problem: string | undefined;
    if (BLOCKED_DIRS.has(real) || BLOCKED_TREES.some((d) => real.startsWith(`${d}/`))) {
      problem = `Working directory not allowed: ${given} (resolves to blocked system path ${real})`;
    } else {
      let isDir = false;
      try {
        isDir = statSync(real).isDirectory();
      } catch {
        isDir = false;
      }
      if (!isDir) problem = `Working directory does not exist: ${given}`;
    }
    if (problem === undefined) return real;
    if (traits.workingDirectoryError === 500) throw new HttpError(500, wrap(problem));
    throw new HttpError(400, problem);
  };

  // ---- state transitions (what CAO, tmux and the agents do) ----
  function record(m: Omit<SimMessage, 'id' | 'created_at'>): SimMessage {
    // CAO's inbox rows are numbered 1, 2, 3… per server (SQLite rowid); typed input has no row.
    const id = m.via === 'inbox' ? nextMessageId++ : nextInputId++;
    const msg: SimMessage = { id, created_at: createdAt(), ...m };
    messages.push(msg);
    return msg;
  }

  /** What the pane shows changed; an idle/completed receiver then gets its next inbox message (≥ 2.3). */
  function show(t: SimTerminal, status: string): void {
    t.status = status;
    if (traits.inboxTrigger === 'status' && (status === 'idle' || status === 'completed')) {
      after(0, () => deliverNext(t.id));
    }
  }

  const typedListeners: Array<(message: SimMessage, terminal: SimTerminal) => void> = [];

  /** The agent receives text and works on it: `processing`, then `completed` with an answer (or `error`). */
  function work(t: SimTerminal, m: SimMessage): void {
    const text = m.message;
    for (const listener of typedListeners) listener(structuredClone(m), structuredClone(t));
    t.inputs.push(text);
    const turn = t.inputs.length;
    t.last_active = lastActive();
    show(t, 'processing');
    const sleep = /__mock_sleep_(\d+)/.exec(text);
    const ms = sleep ? scaled(Number(sleep[1]) * 1000) : workMs;
    after(ms, () => {
      if (!alive(t) || t.inputs.length !== turn || t.status !== 'processing') return;
      if (text.includes('__mock_error__')) {
        show(t, 'error');
        return;
      }
      t.replies.push(answer(t.agent_profile, text));
      show(t, 'completed');
    });
  }

  function newTerminal(session: string, provider: string, agent: string, c: Partial<SimTerminal>): SimTerminal {
    let id = hex(8);
    while (terminals.has(id)) id = hex(8);
    const t: SimTerminal = {
      id, name: `${agent}-${hex(4)}`, session_name: session, provider, agent_profile: agent,
      caller_id: null, allowed_tools: null, description: null, working_directory: process.cwd(),
      status: 'unknown', last_active: lastActive(), initial_delivery: null, deferred_init_failure: null,
      window: true, inputs: [], replies: [], ...c,
    };
    terminals.set(id, t);
    return t;
  }

  const initTimedOut = (t: SimTerminal): string => `${t.provider} initialization timed out after 15 seconds`;

  /**
   * Starts the CLI in a fresh window: the shell (`processing`), then `idle` after `initMs`.
   * Resolves true when it is idle, false when the launch failed (after CAO's init time-out).
   */
  async function startCli(t: SimTerminal): Promise<boolean> {
    after(Math.min(20, initMs), () => {
      if (alive(t) && t.status === 'unknown') show(t, 'processing');
    });
    if (launchesFail) {
      await wait(scaled(traits.initBlocksServer ? KIRO_BLOCKED_CREATE_MS : CAO_INIT_TIMEOUT_MS));
      return false;
    }
    await wait(initMs);
    if (!alive(t)) return false;
    show(t, 'idle');
    return true;
  }

  /** A synchronous create: answers once the CLI is idle; 2.1 blocks the whole server meanwhile. */
  async function startSync(t: SimTerminal): Promise<boolean> {
    if (!traits.initBlocksServer) return startCli(t);
    const started = startCli(t);
    blocked = started.then(() => undefined);
    return started;
  }

  /**
   * Deferred init (2.4/2.5): the CLI starts in the background; then the server types the task
   * with the caller as sender. A CLI that never starts: the caller gets a notice from the worker
   * and the worker is deleted.
   */
  function deferInit(t: SimTerminal, message: string | undefined, type: string | null): void {
    if (message !== undefined) {
      undelivered.add(t.id);
      if (traits.deliveryRecord) t.initial_delivery = { state: 'pending' };
    }
    void startCli(t).then((started) => {
      if (!alive(t)) return;
      if (!started) {
        failDeferred(t);
        return;
      }
      if (message === undefined) return;
      after(Math.min(50, initMs), () => {
        if (!alive(t)) return;
        work(t, record({ via: 'deferred_init', sender_id: t.caller_id, receiver_id: t.id, message, orchestration_type: type ?? 'assign', status: 'delivered' }));
        undelivered.delete(t.id);
        if (traits.deliveryRecord) t.initial_delivery = { state: 'delivered' };
      });
    });
  }

  function failDeferred(t: SimTerminal): void {
    undelivered.delete(t.id);
    const reason = initTimedOut(t);
    let notice: string;
    if (traits.deliveryRecord) {
      const message = `Worker ${t.id} failed to initialize: ${reason}`;
      t.deferred_init_failure = { phase: 'deferred_init', kind: 'provider_init_error', message, exception_type: 'TimeoutError' };
      t.initial_delivery = { state: 'failed', kind: 'provider_init_error', message };
      show(t, 'error');
      notice = `${message} The failed worker terminal will be torn down.`;
    } else {
      notice = `Worker ${t.id} failed to initialize: TimeoutError('${reason}'). It has been deleted — re-assign the task or report the failure.`;
    }
    // The notice waits in the caller's inbox: nothing triggers its delivery before the sweep.
    if (t.caller_id) record({ via: 'inbox', sender_id: t.id, receiver_id: t.caller_id, message: notice, orchestration_type: 'send_message', status: 'pending' });
    const teardown = (): void => void deleteTerminal(t.id);
    if (traits.deliveryRecord) after(scaled(FAILED_WORKER_TEARDOWN_MS), teardown);
    else teardown();
  }

  /** Delivers the receiver's oldest pending inbox message, if it is idle or completed (one per attempt). */
  function deliverNext(receiverId: string, olderThan?: number): void {
    const t = terminals.get(receiverId);
    if (!t || !t.window || (t.status !== 'idle' && t.status !== 'completed')) return;
    const m = messages.find((x) => x.via === 'inbox' && x.receiver_id === receiverId && x.status === 'pending');
    if (!m || (olderThan !== undefined && Date.parse(m.created_at.replace(/(\.\d{3})\d*/, '$1')) > olderThan)) return;
    m.status = 'delivered';
    work(t, m);
  }

  /** 2.1's log watcher (every 5 s), or 2.4/2.5's sweep of messages pending for more than 30 s. */
  const watcher = setInterval(() => {
    const receivers = new Set(messages.filter((m) => m.via === 'inbox' && m.status === 'pending').map((m) => m.receiver_id));
    const cutoff = traits.inboxTrigger === 'log-watch' ? undefined : Date.now() - scaled(SWEEP_MS);
    for (const id of receivers) deliverNext(id, cutoff);
  }, scaled(traits.inboxTrigger === 'log-watch' ? LOG_WATCH_MS : SWEEP_MS));
  watcher.unref();

  /** Deletes a row and its window; tmux destroys a session when its last window goes. */
  function deleteTerminal(id: string): boolean {
    const t = terminals.get(id);
    if (!t) return false;
    terminals.delete(id);
    undelivered.delete(id);
    closeWindow(t);
    return true;
  }

  function closeWindow(t: SimTerminal): void {
    t.window = false;
    if (![...terminals.values()].some((x) => x.session_name === t.session_name && x.window)) sessions.delete(t.session_name);
  }

  function deleteSession(name: string): void {
    for (const t of [...terminals.values()]) if (t.session_name === name) terminals.delete(t.id);
    sessions.delete(name);
  }

  function openSession(name: string): void {
    sessions.set(name, { name, created_at: localIso(), incarnation: hex(32) });
  }

  // ---- response shapes (per release) ----
  /** The status the API reports: 2.5 reads idle/completed as `unknown` while a deferred task waits. */
  function reported(t: SimTerminal): string {
    if (traits.deliveryRecord && undelivered.has(t.id) && (t.status === 'idle' || t.status === 'completed')) return 'unknown';
    return t.status;
  }
  const engineOf = (t: SimTerminal): string | null => (t.provider === 'kiro_cli' ? 'v2' : null);
  const incarnationOf = (t: SimTerminal): string | null => sessions.get(t.session_name)?.incarnation ?? null;

  /** Terminal JSON: GET /terminals/{id}; `created` for the create answers (their own status and fields). */
  function terminalJson(t: SimTerminal, created?: { status: string; shellCommand: string | null }): Record<string, unknown> {
    const status = created?.status ?? reported(t);
    const base = { id: t.id, name: t.name, provider: t.provider, session_name: t.session_name, agent_profile: t.agent_profile };
    if (traits.shape === '2.1') return { ...base, allowed_tools: t.allowed_tools, status, last_active: t.last_active };
    if (traits.shape === '2.4') {
      return {
        ...base, caller_id: t.caller_id, allowed_tools: t.allowed_tools, engine: engineOf(t),
        shell_command: created?.shellCommand ?? null, status, last_active: t.last_active,
      };
    }
    return {
      ...base, model: null, model_honored: false, ephemeral: false, caller_id: t.caller_id, callback_terminal_id: null,
      allowed_tools: t.allowed_tools, engine: engineOf(t), shell_command: created?.shellCommand ?? null, group: null,
      description: t.description, metadata: null, deferred_init_failure: created ? null : t.deferred_init_failure,
      initial_delivery: created ? null : t.initial_delivery, session_incarnation_id: incarnationOf(t),
      status, last_active: t.last_active,
    };
  }
  const createdJson = (t: SimTerminal, status: string): Record<string, unknown> =>
    terminalJson(t, { status, shellCommand: t.provider === 'kiro_cli' && status === 'idle' ? 'bash' : null });

  /** A DB row (GET /sessions/{s} with status, GET /sessions/{s}/terminals without). */
  function rowJson(t: SimTerminal, detail: boolean): Record<string, unknown> {
    const head = { id: t.id, tmux_session: t.session_name, tmux_window: t.name, provider: t.provider, agent_profile: t.agent_profile };
    let row: Record<string, unknown>;
    if (traits.shape === '2.1') row = { ...head, last_active: t.last_active };
    else if (traits.shape === '2.4') row = { ...head, engine: engineOf(t), last_active: t.last_active };
    else {
      row = {
        ...head, description: t.description, model: null, model_honored: false, ephemeral: false,
        working_directory: t.working_directory, engine: engineOf(t), deferred_init_failure: t.deferred_init_failure,
        deferred_init_external_owner: false, deferred_init_runtime_reclaimed: false, session_incarnation_id: incarnationOf(t),
        last_active: t.last_active,
      };
      if (detail) {
        row.pending_inbox_count = messages.filter((m) => m.via === 'inbox' && m.receiver_id === t.id && m.status === 'pending').length;
      }
    }
    if (detail && traits.shape !== '2.1') row.status = reported(t);
    return row;
  }
  const inSession = (name: string): SimTerminal[] => [...terminals.values()].filter((t) => t.session_name === name);
  function sessionJson(s: SimSession): Record<string, unknown> {
    const base = { id: s.name, name: s.name, status: 'detached' };
    if (traits.shape !== '2.5') return base;
    const owner = inSession(s.name)[0];
    return { ...base, working_directory: owner?.working_directory ?? null, agent_profile: owner?.agent_profile ?? null };
  }
  const inboxJson = (m: SimMessage): Record<string, unknown> =>
    ({ id: m.id, sender_id: m.sender_id, receiver_id: m.receiver_id, message: m.message, status: m.status, created_at: m.created_at });

  // ---- routes ----
  const allRoutes: Route[] = [
    { method: 'GET', path: '/health', handler: () => ({
      json: traits.healthDetails
        ? { status: 'ok', service: 'cli-agent-orchestrator', terminal_backend: 'tmux', components: { cao: 'ok', herdr: 'unavailable', claude: 'unavailable' } }
        : { status: 'ok', service: 'cli-agent-orchestrator' },
    }) },
    { method: 'POST', path: '/sessions', body: 'optional', handler: async (c) => {
      const provider = traits.providerRequired ? need(c, 'provider') : (q(c, 'provider') ?? 'kiro_cli');
      const agent = need(c, 'agent_profile');
      const body = traits.deferredInit ? (c.body ?? {}) : {};
      const initial = body.initial_message as string | undefined;
      if (initial === '') throw new HttpError(400, 'initial_message must not be empty');
      if (body.initial_message_orchestration_type && initial === undefined) {
        throw new HttpError(400, 'initial_message_orchestration_type requires initial_message');
      }
      const type = orchestration(body.initial_message_orchestration_type);
      const given = q(c, 'session_name');
      const name = given ? (given.startsWith('cao-') ? given : `cao-${given}`) : `cao-${hex(8)}`;
      tmuxName(name);
      if (sessions.has(name)) throw new HttpError(400, `Session '${name}' already exists`);
      const wd = workingDirectory(q(c, 'working_directory'), (text) => `Failed to create session: Failed to create session '${name}': ${text}`);
      openSession(name);
      const t = newTerminal(name, provider, agent, {
        working_directory: wd, allowed_tools: q(c, 'allowed_tools')?.split(',') ?? null, description: given ?? null,
      });
      if (initial !== undefined) {
        deferInit(t, initial, type);
        return { status: 201, json: createdJson(t, 'unknown') };
      }
      if (!(await startSync(t))) {
        deleteSession(name);
        throw new HttpError(500, `Failed to create session: ${initTimedOut(t)}`);
      }
      return { status: 201, json: createdJson(t, 'idle') };
    } },
    { method: 'GET', path: '/sessions', handler: () => {
      if (failListings > 0) {
        failListings--;
        return { json: [] };
      }
      return { json: [...sessions.values()].filter((s) => s.name.startsWith('cao-')).map(sessionJson) };
    } },
    { method: 'GET', path: '/sessions/{session_name}', handler: (c) => {
      const s = sessions.get(tmuxName(c.params.session_name!));
      if (!s) throw new HttpError(404, `Session '${c.params.session_name}' not found`);
      const session = { id: s.name, name: s.name, status: 'detached' };
      return { json: { session, terminals: inSession(s.name).map((t) => rowJson(t, true)) } };
    } },
    { method: 'DELETE', path: '/sessions/{session_name}', handler: (c) => {
      const name = tmuxName(c.params.session_name!);
      if (traits.deleteUnknownSession === 'not-found' && !sessions.has(name)) throw new HttpError(404, `Session '${name}' not found`);
      deleteSession(name);
      return { json: { success: true, deleted: [name], errors: [] } };
    } },
    { method: 'POST', path: '/sessions/{session_name}/terminals', body: 'optional', handler: async (c) => {
      const session = tmuxName(c.params.session_name!);
      const agent = need(c, 'agent_profile');
      const provider = traits.providerRequired ? need(c, 'provider') : (q(c, 'provider') ?? 'kiro_cli');
      const callerQ = traits.callerIds ? q(c, 'caller_id') : undefined;
      const caller = callerQ === undefined ? null : terminalId(callerQ, ['query', 'caller_id']);
      const defer = traits.deferredInit && bool(c, 'defer_init', false);
      const body = traits.deferredInit ? (c.body ?? {}) : {};
      if (!defer && (body.initial_message != null || body.initial_message_orchestration_type != null)) {
        throw new HttpError(400, 'initial_message / initial_message_orchestration_type require defer_init=true; ' +
          'they are not delivered on the synchronous path');
      }
      const type = orchestration(body.initial_message_orchestration_type);
      if (!sessions.has(session)) throw new HttpError(404, `Session '${session}' not found`);
      const wd = workingDirectory(q(c, 'working_directory'), (text) => `Failed to create terminal: ${text}`);
      const t = newTerminal(session, provider, agent, {
        caller_id: caller, working_directory: wd, allowed_tools: q(c, 'allowed_tools')?.split(',') ?? null,
        description: typeof body.description === 'string' ? body.description : null,
      });
      if (defer) {
        deferInit(t, body.initial_message as string | undefined, type);
        return { status: 201, json: createdJson(t, 'unknown') };
      }
      if (!(await startSync(t))) {
        if (traits.initBlocksServer) {
          // 2.1.1 keeps the half-made terminal's row and window.
          throw new HttpError(500, 'Failed to create terminal: Kiro CLI initialization timed out with TUI and `--legacy-ui`');
        }
        deleteTerminal(t.id);
        throw new HttpError(500, `Failed to create terminal: ${initTimedOut(t)}`);
      }
      return { status: 201, json: createdJson(t, 'idle') };
    } },
    { method: 'GET', path: '/sessions/{session_name}/terminals', handler: (c) =>
      ({ json: inSession(tmuxName(c.params.session_name!)).map((t) => rowJson(t, false)) }) },
    { method: 'POST', path: '/terminals/run-step', body: 'required', when: (t) => t.runStep, handler: (c) => runStep(c.body!) },
    { method: 'GET', path: '/terminals/{terminal_id}', handler: (c) => {
      const t = getTerminal(c.params.terminal_id!);
      // 2.1 reads the status from the live pane: a window killed from outside is an error.
      if (!t.window && traits.shape === '2.1') throw new HttpError(500, 'Failed to get terminal: ');
      return { json: terminalJson(t) };
    } },
    { method: 'POST', path: '/terminals/{terminal_id}/input', handler: (c) => {
      const id = c.params.terminal_id!;
      const message = need(c, 'message');
      const type = q(c, 'orchestration_type') ?? null;
      if (type !== null && !ORCHESTRATION.includes(type)) {
        throw invalid('enum', ['query', 'orchestration_type'], "Input should be 'send_message', 'handoff' or 'assign'", type);
      }
      const t = getTerminal(id);
      work(t, record({ via: 'input', sender_id: q(c, 'sender_id') ?? null, receiver_id: id, message, orchestration_type: type, status: 'delivered' }));
      return { json: { success: true } };
    } },
    { method: 'GET', path: '/terminals/{terminal_id}/output', handler: (c) => {
      const id = c.params.terminal_id!;
      const mode = q(c, 'mode') ?? 'full';
      if (mode !== 'full' && mode !== 'last') {
        throw invalid('enum', ['query', 'mode'], "Input should be 'full' or 'last'", mode, { expected: "'full' or 'last'" });
      }
      const t = getTerminal(id);
      const full = t.inputs.map((text, i) => `> ${text}\n${t.replies[i] ?? ''}\n`).join('');
      if (mode === 'full') return { json: { output: full, mode } };
      const last = t.replies.at(-1);
      if (last !== undefined) return { json: { output: last, mode } };
      if (traits.noReplyOutput === 'not-found') throw new HttpError(404, 'No Kiro CLI response found - no Credits marker or green arrow detected');
      const lines = full.split('\n').filter((l) => l !== '');
      return { json: { output: `[NO RESPONSE - agent completed without producing a text response (${lines.length} lines in buffer)]\n${lines.join('\n')}`, mode } };
    } },
    { method: 'GET', path: '/terminals/{terminal_id}/working-directory', handler: (c) => {
      const t = getTerminal(c.params.terminal_id!);
      return { json: { working_directory: t.working_directory } };
    } },
    { method: 'POST', path: '/terminals/{terminal_id}/exit', handler: (c) => {
      const id = c.params.terminal_id!;
      const t = terminals.get(id);
      if (!t) throw new HttpError(404, `Terminal ${id} not found in database`);
      if (traits.statusAfterExit === 'processing') show(t, 'processing'); // the pane shows its shell again
      return { json: { success: true } }; // the row and the tmux window stay
    } },
    { method: 'DELETE', path: '/terminals/{terminal_id}', handler: (c) => {
      const id = c.params.terminal_id!;
      if (deleteTerminal(id)) return { json: { success: true } };
      if (traits.deleteUnknownTerminal === 'conflict') {
        throw new HttpError(409, `cleanup deferred for terminal '${id}'; retry delete after residual Grok processes exit`);
      }
      return { json: { success: false } };
    } },
    { method: 'POST', path: '/terminals/{receiver_id}/inbox/messages', handler: (c) => {
      const receiver = c.params.receiver_id!;
      const sender = need(c, 'sender_id');
      const message = need(c, 'message');
      if (traits.receiverChecked) getTerminal(receiver);
      const m = record({
        via: 'inbox', sender_id: sender, receiver_id: receiver, message, orchestration_type: 'send_message', status: 'pending',
      });
      deliverNext(receiver); // an idle/completed receiver gets it inside the request
      return { json: { success: true, message_id: m.id, sender_id: sender, receiver_id: receiver, created_at: m.created_at } };
    } },
    { method: 'GET', path: '/terminals/{terminal_id}/inbox/messages', handler: (c) => {
      const id = c.params.terminal_id!;
      const raw = q(c, 'limit') ?? '10';
      const limit = Number(raw);
      if (!/^-?\d+$/.test(raw.trim())) {
        throw invalid('int_parsing', ['query', 'limit'], 'Input should be a valid integer, unable to parse string as an integer', raw);
      }
      if (limit > 100) throw invalid('less_than_equal', ['query', 'limit'], 'Input should be less than or equal to 100', raw, { le: 100 });
      const status = q(c, 'status');
      if (status && !['pending', 'delivered', 'failed'].includes(status)) {
        throw new HttpError(400, `Invalid status: ${status}. Valid values: pending, delivered, failed`);
      }
      const rows = messages.filter((m) => m.via === 'inbox' && m.receiver_id === id && (!status || m.status === status));
      return { json: rows.slice(0, Math.max(limit, 0)).map(inboxJson) };
    } },
  ];
  const routes = allRoutes.filter((r) => !r.when || r.when(traits));

  /** ≥ 2.3's server-side handoff: create a worker, type the prompt, wait, tear it down on success. */
  async function runStep(body: Record<string, unknown>): Promise<Reply> {
    for (const f of ['provider', 'agent', 'prompt']) {
      if (body[f] === undefined) throw invalid('missing', ['body', f], 'Field required', body);
      if (typeof body[f] !== 'string') throw invalid('string_type', ['body', f], 'Input should be a valid string', body[f]);
    }
    const timeout = body.timeout ?? 600;
    if (typeof timeout !== 'number' || timeout <= 0) {
      throw invalid('greater_than', ['body', 'timeout'], 'Input should be greater than 0', timeout, { gt: 0 });
    }
    const caller = typeof body.caller_id === 'string' ? body.caller_id : null;
    let session = typeof body.session_name === 'string' ? body.session_name : null;
    if (session !== null && !sessions.has(session)) throw new HttpError(404, `Session '${session}' not found`);
    if (session === null) {
      // No session_name: run_agent_step creates a fresh auto-named session for the step.
      session = `cao-${hex(8)}`;
      openSession(session);
    }
    const wd = typeof body.working_directory === 'string' ? body.working_directory
      : (caller ? terminals.get(caller)?.working_directory : undefined) ?? process.cwd();
    const t = newTerminal(session, body.provider as string, body.agent as string, {
      caller_id: caller, working_directory: wd,
      allowed_tools: Array.isArray(body.allowed_tools) ? (body.allowed_tools as string[]) : null,
      description: typeof body.description === 'string' ? body.description : null,
    });
    if (!(await startCli(t))) {
      deleteTerminal(t.id);
      throw new HttpError(504, { message: initTimedOut(t), kind: 'timeout', terminal_id: null });
    }
    const prompt = body.prompt as string;
    work(t, record({ via: 'run_step', sender_id: caller, receiver_id: t.id, message: prompt, orchestration_type: 'handoff', status: 'delivered' }));
    const deadline = Date.now() + scaled(timeout * 1000);
    while (alive(t) && t.status === 'processing' && Date.now() < deadline) await wait(Math.min(20, Math.max(1, deadline - Date.now())));
    if (alive(t) && t.status === 'processing') {
      throw new HttpError(504, { message: `step on terminal ${t.id} did not complete within ${pyFloat(timeout)}s`, kind: 'timeout', terminal_id: t.id });
    }
    if (!alive(t) || t.status !== 'completed') {
      throw new HttpError(502, { message: `terminal ${t.id} reached ERROR status`, kind: 'error', terminal_id: t.id });
    }
    const last = t.replies.at(-1) ?? '';
    if (body.teardown !== false) deleteTerminal(t.id);
    return { json: { terminal_id: t.id, last_message: last, status: 'completed', ...(traits.shape === '2.5' ? { replayed: false } : {}) } };
  }

  // ---- HTTP plumbing ----
  async function dispatch(req: IncomingMessage, raw: string): Promise<Reply> {
    await blocked; // 2.1: a synchronous init holds the server
    const host = (req.headers.host ?? '').split(':')[0]!;
    if (!TRUSTED_HOSTS.includes(host)) throw new PlainTextError(400, 'Invalid host header');
    if (opts.token !== undefined) {
      const auth = req.headers.authorization;
      if (!auth?.startsWith('Bearer ')) throw new HttpError(401, 'missing bearer token', { 'www-authenticate': 'Bearer' });
      if (auth.slice(7) !== opts.token) throw new HttpError(401, 'invalid token: signature mismatch', { 'www-authenticate': 'Bearer' });
    }
    const url = new URL(req.url ?? '/', 'http://sim');
    const allowed: string[] = [];
    for (const r of routes) {
      const params = matchPath(r.path, url.pathname);
      if (!params) continue;
      if (r.method !== req.method) {
        allowed.push(r.method);
        continue;
      }
      let body: Record<string, unknown> | undefined;
      if (r.body && raw.trim() !== '') {
        let parsed: unknown;
        try {
          parsed = JSON.parse(raw);
        } catch (e) {
          throw invalid('json_invalid', ['body', 0], 'JSON decode error', {}, { error: (e as Error).message });
        }
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
          throw invalid('model_attributes_type', ['body'], 'Input should be a valid dictionary or object to extract fields from', parsed);
        }
        body = parsed as Record<string, unknown>;
      } else if (r.body === 'required') throw invalid('missing', ['body'], 'Field required', null);
      for (const k of ['terminal_id', 'receiver_id']) if (params[k] !== undefined) terminalId(params[k], ['path', k]);
      return r.handler({ params, query: url.searchParams, body });
    }
    if (allowed.length > 0) throw new HttpError(405, 'Method Not Allowed', { allow: allowed.join(', ') });
    throw new HttpError(404, 'Not Found');
  }

  function send(res: ServerResponse, status: number, text: string, type: string, headers: Record<string, string> = {}): void {
    if (res.destroyed) return;
    res.writeHead(status, { ...headers, 'content-type': type, 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }
  const JSON_TYPE = 'application/json';

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      dispatch(req, Buffer.concat(chunks).toString('utf8')).then(
        (r) => send(res, r.status ?? 200, JSON.stringify(r.json), JSON_TYPE),
        (e: unknown) => {
          if (e instanceof PlainTextError) send(res, e.status, String(e.detail), 'text/plain; charset=utf-8');
          else if (e instanceof HttpError) send(res, e.status, JSON.stringify({ detail: e.detail }), JSON_TYPE, e.headers);
          else send(res, 500, JSON.stringify({ detail: `Internal error: ${(e as Error).message}` }), JSON_TYPE);
        },
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;

  return {
    url: `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`,
    version,
    async close() {
      clearInterval(watcher);
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    killTerminalOutOfBand(id) {
      const t = terminals.get(id);
      if (t) closeWindow(t);
    },
    killSessionOutOfBand(name) {
      for (const t of inSession(name)) t.window = false;
      sessions.delete(name);
    },
    setStatus(id, status) {
      const t = terminals.get(id);
      if (!t) throw new Error(`no terminal ${id}`);
      show(t, status);
    },
    failNextListings(n) {
      failListings = n;
    },
    failLaunches(on) {
      launchesFail = on;
    },
    onTyped(listener) {
      typedListeners.push(listener);
    },
    snapshot: () => structuredClone({
      sessions: [...sessions.values()].map(({ name, created_at }) => ({ name, created_at })),
      terminals: [...terminals.values()],
      messages,
    }),
  };
}
