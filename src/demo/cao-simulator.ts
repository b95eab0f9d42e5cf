/**
 * CAO API simulator: an in-process stand-in for cao-server (awslabs/cli-agent-orchestrator).
 *
 * A real CAO server (Python, tmux, agent CLIs) cannot run on this machine, so gateway and poller
 * tests and the demo talk to this instead. It is NOT CAO: it speaks the routes and response
 * shapes of /work/shared/cao-api.md for one chosen version ('head' = commit d3efc643, or
 * '2.0.0'), checked against CAO's api/main.py, services/*_service.py and models/terminal.py.
 * Agents are simulated: input makes a terminal `processing`, then `completed` after a delay,
 * and its "reply" is a canned line that quotes the last input.
 *
 * Also simulated, as CAO does it: server-side inbox delivery (pending -> delivered when the
 * receiver is idle/completed), deferred assign delivery (HEAD), the run-step worker life (HEAD),
 * tmux destroying a session when its last window goes, `GET /sessions` answering [] on backend
 * errors, FastAPI's 404/405/422 answers and Starlette's TrustedHost check.
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';

export type CaoVersion = 'head' | '2.0.0';

export interface CaoSimulatorOptions {
  version?: CaoVersion;
  host?: string;
  port?: number;
  /** When set, every request needs `Authorization: Bearer <token>`, else 401. */
  token?: string;
  /** Inbox pending -> delivered, deferred-init delivery, and how long an agent "works". */
  deliveryDelayMs?: number;
  /** How long a deferred-init (HEAD) terminal stays `unknown` before its task is sent; default deliveryDelayMs. */
  deferredInitDelayMs?: number;
  /** How long a run-step worker lives before the response. */
  runStepDurationMs?: number;
  runStepOutcome?: 'completed' | 'timeout' | 'error';
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
  engine: string | null;
  shell_command: string | null;
  group: string[] | null;
  metadata: Record<string, unknown> | null;
  working_directory: string;
  status: string;
  last_active: string;
  /** Every message this terminal's agent received (raw input, deliveries), oldest first. */
  inputs: string[];
}

/** Every message the server handled. Only `via: 'inbox'` rows exist in CAO's inbox table. */
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
  killTerminalOutOfBand(id: string): void;
  killSessionOutOfBand(name: string): void;
  setStatus(id: string, status: string): void;
  failNextListings(n: number): void;
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
  only?: CaoVersion;
  handler: (c: Ctx) => Reply | Promise<Reply>;
}

const TERMINAL_ID = /^[a-f0-9]{8}$/;
const TMUX_NAME = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$/;
const ORCHESTRATION = ['send_message', 'handoff', 'assign'];
const TRUSTED_HOSTS = ['localhost', '127.0.0.1'];

const hex = (n: number): string => randomBytes(Math.ceil(n / 2)).toString('hex').slice(0, n);

/** Python's naive `datetime.now().isoformat()`: local time, microseconds, no zone. */
export function localIso(d: Date = new Date()): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:` +
    `${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}000`;
}

/** The simulated agent's answer to one input. */
const answer = (agent: string, input: string): string => `[simulated ${agent}] Done: ${input.slice(0, 200)}`;
const lastReply = (t: SimTerminal): string => {
  const last = t.inputs.at(-1);
  return last === undefined ? '' : answer(t.agent_profile, last);
};

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
  const version: CaoVersion = opts.version ?? 'head';
  const head = version === 'head';
  const delay = opts.deliveryDelayMs ?? 300;
  const initDelay = opts.deferredInitDelayMs ?? delay;
  const runStepMs = opts.runStepDurationMs ?? 300;
  const outcome = opts.runStepOutcome ?? 'completed';

  const sessions = new Map<string, SimSession>();
  const terminals = new Map<string, SimTerminal>();
  const messages: SimMessage[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let nextMessageId = 1;
  let failListings = 0;

  const after = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  const alive = (t: SimTerminal): boolean => terminals.get(t.id) === t;

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
    if (head && !TMUX_NAME.test(name)) throw new HttpError(400, `Invalid ${kind}: '${name}'`);
    return name;
  };
  const orchestration = (v: unknown): string | null => {
    if (v === undefined || v === null || v === '') return null;
    if (typeof v !== 'string' || !ORCHESTRATION.includes(v)) {
      throw new HttpError(400, `invalid initial_message_orchestration_type: '${String(v)}'`);
    }
    return v;
  };
  const getTerminal = (id: string, notFound = `Terminal '${id}' not found`): SimTerminal => {
    const t = terminals.get(id);
    if (!t) throw new HttpError(404, notFound);
    return t;
  };

  // ---- state transitions (what CAO, tmux and the agents do) ----
  function record(m: Omit<SimMessage, 'id' | 'created_at'>): SimMessage {
    const msg: SimMessage = { id: nextMessageId++, created_at: localIso(), ...m };
    messages.push(msg);
    return msg;
  }

  /** The agent receives text, works for `delay`, then is `completed`. */
  function work(t: SimTerminal, text: string): void {
    t.inputs.push(text);
    t.status = 'processing';
    t.last_active = localIso();
    after(delay, () => {
      if (alive(t) && t.status === 'processing') t.status = 'completed';
    });
  }

  function createTerminal(session: string, provider: string, agent: string, c: Partial<SimTerminal>): SimTerminal {
    let id = hex(8);
    while (terminals.has(id)) id = hex(8);
    const t: SimTerminal = {
      id, name: `${agent}-${hex(4)}`, session_name: session, provider, agent_profile: agent,
      caller_id: null, allowed_tools: null, engine: provider === 'kiro_cli' ? 'v2' : null,
      shell_command: 'bash', group: null, metadata: null, working_directory: process.cwd(),
      status: 'idle', last_active: localIso(), inputs: [], ...c,
    };
    terminals.set(id, t);
    return t;
  }

  /** Deferred init (HEAD): provider starts in the background, then the task is sent to it. */
  function deferInit(t: SimTerminal, message: string | undefined, sender: string | null, type: string | null): void {
    t.status = 'unknown';
    t.shell_command = null;
    after(initDelay, () => {
      if (!alive(t)) return;
      if (message === undefined) {
        t.status = 'idle';
        return;
      }
      const orch = type ?? 'assign';
      record({ via: 'deferred_init', sender_id: sender, receiver_id: t.id, message, orchestration_type: orch, status: 'delivered' });
      work(t, message);
    });
  }

  /** Inbox delivery: all pending messages at once, when the receiver is idle or completed. */
  function deliverInbox(receiverId: string): void {
    const t = terminals.get(receiverId);
    const pending = messages.filter((m) => m.via === 'inbox' && m.receiver_id === receiverId && m.status === 'pending');
    if (!t || pending.length === 0) return;
    if (t.status !== 'idle' && t.status !== 'completed') {
      after(delay, () => deliverInbox(receiverId));
      return;
    }
    for (const m of pending) m.status = 'delivered';
    work(t, pending.map((m) => m.message).join('\n'));
  }

  function deleteTerminal(id: string): boolean {
    const t = terminals.get(id);
    if (!t) return false;
    terminals.delete(id);
    // tmux destroys a session when its last window goes.
    if (![...terminals.values()].some((x) => x.session_name === t.session_name)) sessions.delete(t.session_name);
    return true;
  }

  function deleteSession(name: string): void {
    for (const t of [...terminals.values()]) if (t.session_name === name) terminals.delete(t.id);
    sessions.delete(name);
  }

  // ---- response shapes ----
  function terminalJson(t: SimTerminal, created = false): Record<string, unknown> {
    const base = { id: t.id, name: t.name, provider: t.provider, session_name: t.session_name, agent_profile: t.agent_profile };
    if (!head) return { ...base, status: t.status, last_active: t.last_active };
    return {
      ...base, caller_id: t.caller_id, allowed_tools: t.allowed_tools, engine: t.engine,
      // get_terminal() does not read shell_command back: only the create response carries it.
      shell_command: created ? t.shell_command : null,
      group: t.group, metadata: t.metadata, status: t.status, last_active: t.last_active,
    };
  }
  function rowJson(t: SimTerminal, withStatus: boolean): Record<string, unknown> {
    const row: Record<string, unknown> = {
      id: t.id, tmux_session: t.session_name, tmux_window: t.name, provider: t.provider, agent_profile: t.agent_profile,
    };
    if (head) Object.assign(row, { working_directory: t.working_directory, engine: t.engine });
    row.last_active = t.last_active;
    if (head && withStatus) row.status = t.status;
    return row;
  }
  const inSession = (name: string): SimTerminal[] => [...terminals.values()].filter((t) => t.session_name === name);
  function sessionJson(s: SimSession): Record<string, unknown> {
    const base = { id: s.name, name: s.name, status: 'detached' };
    if (!head) return base;
    const owner = inSession(s.name)[0];
    return { ...base, working_directory: owner?.working_directory ?? null, agent_profile: owner?.agent_profile ?? null };
  }

  // ---- routes ----
  const allRoutes: Route[] = [
    { method: 'GET', path: '/health', handler: () => ({ json: { status: 'ok', service: 'cli-agent-orchestrator' } }) },
    { method: 'POST', path: '/sessions', body: head ? 'optional' : undefined, handler: (c) => {
      const provider = head ? (q(c, 'provider') ?? 'kiro_cli') : need(c, 'provider');
      const agent = need(c, 'agent_profile');
      const body = c.body ?? {};
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
      sessions.set(name, { name, created_at: localIso() });
      const t = createTerminal(name, provider, agent, {
        working_directory: q(c, 'working_directory') ?? process.cwd(),
        allowed_tools: q(c, 'allowed_tools')?.split(',') ?? null,
        group: (body.group as string[] | undefined) ?? null,
        metadata: (body.metadata as Record<string, unknown> | undefined) ?? null,
      });
      if (head && initial !== undefined) deferInit(t, initial, null, type);
      return { status: 201, json: terminalJson(t, true) };
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
      if (!head && !sessions.has(name)) throw new HttpError(404, `Session '${name}' not found`);
      deleteSession(name);
      return { json: { success: true, deleted: [name], errors: [] } };
    } },
    { method: 'POST', path: '/sessions/{session_name}/terminals', body: head ? 'optional' : undefined, handler: (c) => {
      const session = tmuxName(c.params.session_name!);
      const agent = need(c, 'agent_profile');
      const provider = head ? (q(c, 'provider') ?? 'kiro_cli') : need(c, 'provider');
      const callerQ = head ? q(c, 'caller_id') : undefined;
      const caller = callerQ === undefined ? null : terminalId(callerQ, ['query', 'caller_id']);
      const defer = head && bool(c, 'defer_init', false);
      const body = c.body ?? {};
      if (!defer && (body.initial_message != null || body.initial_message_orchestration_type != null)) {
        throw new HttpError(400, 'initial_message / initial_message_orchestration_type require defer_init=true; ' +
          'they are not delivered on the synchronous path');
      }
      const type = orchestration(body.initial_message_orchestration_type);
      if (!sessions.has(session)) throw new HttpError(404, `Session '${session}' not found`);
      const t = createTerminal(session, provider, agent, {
        caller_id: caller,
        working_directory: q(c, 'working_directory') ?? process.cwd(),
        allowed_tools: head ? (q(c, 'allowed_tools')?.split(',') ?? null) : null,
        ...(q(c, 'engine') ? { engine: q(c, 'engine') } : {}),
      });
      if (defer) deferInit(t, body.initial_message as string | undefined, caller, type);
      return { status: 201, json: terminalJson(t, true) };
    } },
    { method: 'GET', path: '/sessions/{session_name}/terminals', handler: (c) =>
      ({ json: inSession(tmuxName(c.params.session_name!)).map((t) => rowJson(t, false)) }) },
    { method: 'POST', path: '/terminals/run-step', body: 'required', only: 'head', handler: (c) => runStep(c.body!) },
    { method: 'GET', path: '/terminals/{terminal_id}', handler: (c) => ({ json: terminalJson(getTerminal(c.params.terminal_id!)) }) },
    { method: 'POST', path: '/terminals/{terminal_id}/input', handler: (c) => {
      const id = c.params.terminal_id!;
      const message = need(c, 'message');
      const type = head ? (q(c, 'orchestration_type') ?? null) : null;
      if (type !== null && !ORCHESTRATION.includes(type)) {
        throw invalid('enum', ['query', 'orchestration_type'], "Input should be 'send_message', 'handoff' or 'assign'", type);
      }
      const t = getTerminal(id);
      const sender = head ? (q(c, 'sender_id') ?? null) : null;
      record({ via: 'input', sender_id: sender, receiver_id: id, message, orchestration_type: type, status: 'delivered' });
      work(t, message);
      return { json: { success: true } };
    } },
    { method: 'GET', path: '/terminals/{terminal_id}/output', handler: (c) => {
      const id = c.params.terminal_id!;
      const mode = q(c, 'mode') ?? 'full';
      if (mode !== 'full' && mode !== 'last') {
        throw invalid('enum', ['query', 'mode'], "Input should be 'full' or 'last'", mode, { expected: "'full' or 'last'" });
      }
      const t = getTerminal(id);
      const full = t.inputs.map((text) => `> ${text}\n${answer(t.agent_profile, text)}\n`).join('');
      return { json: { output: mode === 'last' ? lastReply(t) : full, mode } };
    } },
    { method: 'GET', path: '/terminals/{terminal_id}/working-directory', handler: (c) => {
      const t = getTerminal(c.params.terminal_id!);
      return { json: { working_directory: t.working_directory } };
    } },
    { method: 'POST', path: '/terminals/{terminal_id}/exit', handler: (c) => {
      const id = c.params.terminal_id!;
      getTerminal(id, head ? `Terminal '${id}' not found` : `Provider not found for terminal ${id}`);
      return { json: { success: true } }; // the row and the tmux window stay
    } },
    { method: 'DELETE', path: '/terminals/{terminal_id}', handler: (c) => {
      const id = c.params.terminal_id!;
      const deleted = deleteTerminal(id);
      if (!deleted && head) {
        throw new HttpError(409, `cleanup deferred for terminal '${id}'; retry delete after residual Grok processes exit`);
      }
      return { json: { success: deleted } };
    } },
    { method: 'POST', path: '/terminals/{receiver_id}/inbox/messages', handler: (c) => {
      const receiver = c.params.receiver_id!;
      const sender = need(c, 'sender_id');
      const message = need(c, 'message');
      // v2.0.0's create_inbox_message does not check the receiver; HEAD's does.
      if (head) getTerminal(receiver);
      const m = record({
        via: 'inbox', sender_id: sender, receiver_id: receiver, message, orchestration_type: 'send_message', status: 'pending',
      });
      after(delay, () => deliverInbox(receiver));
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
      return {
        json: rows.slice(0, Math.max(limit, 0)).map((m) => ({
          id: m.id, sender_id: m.sender_id, receiver_id: m.receiver_id, message: m.message, status: m.status, created_at: m.created_at,
        })),
      };
    } },
  ];
  const routes = allRoutes.filter((r) => !r.only || r.only === version);

  /** HEAD's combined handoff: create a worker, run it, exit and delete it, inside the server. */
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
      sessions.set(session, { name: session, created_at: localIso() });
    }
    const wd = typeof body.working_directory === 'string' ? body.working_directory
      : (caller ? terminals.get(caller)?.working_directory : undefined) ?? process.cwd();
    const t = createTerminal(session, body.provider as string, body.agent as string, {
      caller_id: caller, working_directory: wd,
      allowed_tools: Array.isArray(body.allowed_tools) ? (body.allowed_tools as string[]) : null,
    });
    const prompt = body.prompt as string;
    record({ via: 'run_step', sender_id: caller, receiver_id: t.id, message: prompt, orchestration_type: 'handoff', status: 'delivered' });
    t.inputs.push(prompt);
    t.status = 'processing';
    await new Promise<void>((resolve) => after(runStepMs, resolve));
    if (outcome === 'timeout') {
      throw new HttpError(504, { message: `terminal ${t.id} did not complete within ${timeout}s`, kind: 'timeout', terminal_id: t.id });
    }
    if (outcome === 'error' || !alive(t)) {
      t.status = 'error';
      throw new HttpError(502, { message: `terminal ${t.id} entered ERROR state`, kind: 'error', terminal_id: t.id });
    }
    t.status = 'completed';
    const last = lastReply(t);
    if (body.teardown !== false) deleteTerminal(t.id);
    return { json: { terminal_id: t.id, last_message: last, status: 'completed', replayed: false } };
  }

  // ---- HTTP plumbing ----
  async function dispatch(req: IncomingMessage, raw: string): Promise<Reply> {
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
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    killTerminalOutOfBand: (id) => void deleteTerminal(id),
    killSessionOutOfBand: (name) => deleteSession(name),
    setStatus(id, status) {
      const t = terminals.get(id);
      if (!t) throw new Error(`no terminal ${id}`);
      t.status = status;
    },
    failNextListings(n) {
      failListings = n;
    },
    snapshot: () => structuredClone({ sessions: [...sessions.values()], terminals: [...terminals.values()], messages }),
  };
}
