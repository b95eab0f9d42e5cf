/**
 * Drives a real cao-server the way CAO's own clients do, recording every exchange.
 *
 * `mcpTools(version)` sends, per CAO release family, exactly the HTTP requests that release's
 * `cao-mcp-server` sends for its `assign`, `handoff` and `send_message` tools (recorded from the real
 * cao-mcp-server of each version: see test/e2e/README.md), through the gateway as agents do
 * (CAO_API_PORT = gateway). Bodies are serialised like Python's `json.dumps` (requests' `json=`).
 * The test plays the agents' decisions: which tool, with which text, when.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'undici';

export interface Exchange {
  method: string;
  path: string;
  /** Query parameters in the order sent. */
  query: Array<[string, string]>;
  /** The request body as sent (JSON text), or null. */
  body: string | null;
  status: number;
  /** Parsed JSON when the response is JSON, else the text. */
  response: unknown;
  /** Who sent it: 'mcp' (what cao-mcp-server would send), 'client' (a user/CLI call), 'observer' (the test's own reads and waits, to the server directly). */
  by: 'mcp' | 'client' | 'observer';
  /** ms since the client was created. */
  at: number;
}

/** Python's json.dumps with default separators: `{"a": 1, "b": [1.0, null]}`; `float` marks numbers Python holds as floats. */
export function pyJson(value: unknown): string {
  if (value instanceof PyFloat) return Number.isInteger(value.value) ? `${value.value}.0` : String(value.value);
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return `[${value.map(pyJson).join(', ')}]`;
  if (typeof value === 'object') {
    return `{${Object.entries(value as Record<string, unknown>).map(([k, v]) => `${pyString(k)}: ${pyJson(v)}`).join(', ')}}`;
  }
  if (typeof value === 'string') return pyString(value);
  return JSON.stringify(value);
}

/** json.dumps escapes every non-ASCII character (ensure_ascii). */
function pyString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export class PyFloat {
  readonly value: number;
  constructor(value: number) {
    this.value = value;
  }
}

export class CaoClient {
  readonly exchanges: Exchange[] = [];
  readonly #gateway: string;
  readonly #server: string;
  readonly #t0 = Date.now();

  /** `gateway`: where clients and agents send requests; `server`: the real cao-server (for the test's own waits). */
  constructor(gateway: string, server: string) {
    this.#gateway = gateway;
    this.#server = server;
  }

  async call(
    method: string,
    path: string,
    query: Array<[string, string | undefined]> = [],
    body?: unknown,
    by: Exchange['by'] = 'client',
  ): Promise<{ status: number; json: any }> {
    const q = query.filter((p): p is [string, string] => p[1] !== undefined);
    // Python requests encodes a space as '+' (urlencode), as URLSearchParams does.
    const search = q.length > 0 ? `?${new URLSearchParams(q).toString()}` : '';
    const text = body === undefined ? null : pyJson(body);
    const base = by === 'observer' ? this.#server : this.#gateway;
    const res = await request(`${base}${path}${search}`, {
      method: method as 'GET',
      headers: text === null ? {} : { 'content-type': 'application/json' },
      body: text ?? undefined,
      headersTimeout: 600_000,
      bodyTimeout: 600_000,
    });
    const raw = await res.body.text();
    let json: unknown = raw;
    try {
      json = JSON.parse(raw);
    } catch {
      // not JSON: keep the text
    }
    this.exchanges.push({ method, path, query: q, body: text, status: res.statusCode, response: json, by, at: Date.now() - this.#t0 });
    return { status: res.statusCode, json };
  }

  /** GET /terminals/{id} on the server itself (not through the gateway): the test's own observation. */
  async terminal(id: string): Promise<{ status: number; json: any }> {
    return this.call('GET', `/terminals/${id}`, [], undefined, 'observer');
  }

  async inbox(id: string): Promise<Array<{ id: number; sender_id: string; receiver_id: string; message: string; status: string; created_at: string }>> {
    const r = await this.call('GET', `/terminals/${id}/inbox/messages`, [['limit', '100']], undefined, 'observer');
    return Array.isArray(r.json) ? r.json : [];
  }

  /** Polls the server until `predicate` holds (a bound, not a measurement). */
  async until<T>(what: string, probe: () => Promise<T>, predicate: (v: T) => boolean, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await probe();
      if (predicate(v)) return v;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(v).slice(0, 500)})`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async statusOf(id: string): Promise<string> {
    const r = await this.terminal(id);
    return r.status === 200 ? String(r.json.status) : `HTTP ${r.status}`;
  }
}

export interface ToolResult {
  ok: boolean;
  terminalId?: string;
  output?: string;
  status: number;
}

/** The three orchestration tools as one CAO release's cao-mcp-server performs them (HTTP only). */
export interface McpTools {
  family: string;
  assign(self: string, agentProfile: string, message: string): Promise<ToolResult>;
  handoff(self: string, agentProfile: string, message: string, timeoutSeconds: number): Promise<ToolResult>;
  sendMessage(self: string, receiver: string, message: string): Promise<ToolResult>;
}

/**
 * What `_resolve_child_allowed_tools` yields for the built-in profiles we use (a supervisor created
 * with the built-in code_supervisor profile), as the real cao-mcp-server sent it.
 */
const CHILD_TOOLS: Record<string, Record<string, string>> = {
  '2.1': { developer: '@builtin,fs_*,execute_bash,@cao-mcp-server', reviewer: '@builtin,fs_read,fs_list,@cao-mcp-server' },
  '2.4': { developer: '@builtin,fs_*,execute_bash,web_fetch,@cao-mcp-server', reviewer: '@builtin,fs_read,fs_list,@cao-mcp-server' },
};

const assignSuffix = (self: string) =>
  `\n\n[Assigned by terminal ${self}. When done, send results back to terminal ${self} using send_message]`;
const messageSuffix = (self: string) => `\n\n[Message from terminal ${self}. Use send_message MCP tool for any follow-up work.]`;

function childTools(family: '2.1' | '2.4', profile: string): string {
  const tools = CHILD_TOOLS[family]![profile];
  if (!tools) throw new Error(`no recorded allowed_tools for profile ${profile} (CAO ${family}.x)`);
  return tools;
}

/** 2.3 ≤ CAO < 2.5 (recorded on 2.4.1): deferred-init assign, run-step handoff, inbox send_message with sender suffix. */
function tools24(c: CaoClient): McpTools {
  return {
    family: '2.4',
    async assign(self, profile, message) {
      const me = await c.call('GET', `/terminals/${self}`, [], undefined, 'mcp');
      const wd = await c.call('GET', `/terminals/${self}/working-directory`, [], undefined, 'mcp');
      const session = me.json.session_name as string;
      const created = await c.call('POST', `/sessions/${session}/terminals`, [
        ['provider', me.json.provider], ['agent_profile', profile], ['caller_id', self],
        ['working_directory', wd.json.working_directory], ['allowed_tools', childTools('2.4', profile)], ['defer_init', 'true'],
      ], { initial_message: message + assignSuffix(self), initial_message_orchestration_type: 'assign' }, 'mcp');
      if (created.status !== 201) return { ok: false, status: created.status };
      await c.call('GET', `/terminals/${self}`, [], undefined, 'mcp');
      await c.call('GET', `/sessions/${session}/terminals`, [], undefined, 'mcp');
      return { ok: true, terminalId: created.json.id, status: created.status };
    },
    async handoff(self, profile, message, timeoutSeconds) {
      const me = await c.call('GET', `/terminals/${self}`, [], undefined, 'mcp');
      const r = await c.call('POST', '/terminals/run-step', [], {
        provider: me.json.provider, agent: profile, prompt: message, teardown: true, timeout: new PyFloat(timeoutSeconds),
        session_name: me.json.session_name, caller_id: self, allowed_tools: childTools('2.4', profile).split(','),
      }, 'mcp');
      if (r.status !== 200) return { ok: false, status: r.status, terminalId: r.json?.detail?.terminal_id ?? undefined };
      await c.call('GET', `/terminals/${self}`, [], undefined, 'mcp');
      await c.call('GET', `/sessions/${me.json.session_name}/terminals`, [], undefined, 'mcp');
      return { ok: true, status: r.status, terminalId: r.json.terminal_id, output: r.json.last_message };
    },
    async sendMessage(self, receiver, message) {
      const r = await c.call('POST', `/terminals/${receiver}/inbox/messages`, [['sender_id', self], ['message', message + messageSuffix(self)]], undefined, 'mcp');
      return { ok: r.status === 200, status: r.status };
    },
  };
}

/** CAO 2.5.x: as 2.4 plus the extra lookups, `description`/`job_id`/`use_worktree`, and send_message's access check. */
function tools25(c: CaoClient): McpTools {
  return {
    family: '2.5',
    async assign(self, profile, message) {
      let me = await c.call('GET', `/terminals/${self}`, [], undefined, 'mcp');
      let wd = await c.call('GET', `/terminals/${self}/working-directory`, [], undefined, 'mcp');
      me = await c.call('GET', `/terminals/${self}`, [], undefined, 'mcp');
      wd = await c.call('GET', `/terminals/${self}/working-directory`, [], undefined, 'mcp');
      const session = me.json.session_name as string;
      const created = await c.call('POST', `/sessions/${session}/terminals`, [
        ['provider', me.json.provider], ['agent_profile', profile], ['caller_id', self],
        ['working_directory', wd.json.working_directory], ['allowed_tools', childTools('2.4', profile)], ['defer_init', 'true'],
      ], { description: null, initial_message: message + assignSuffix(self), initial_message_orchestration_type: 'assign' }, 'mcp');
      if (created.status !== 201) return { ok: false, status: created.status };
      await c.call('GET', `/terminals/${self}`, [], undefined, 'mcp');
      await c.call('GET', `/sessions/${session}/terminals`, [], undefined, 'mcp');
      return { ok: true, terminalId: created.json.id, status: created.status };
    },
    async handoff(self, profile, message, timeoutSeconds) {
      await c.call('GET', `/terminals/${self}`, [], undefined, 'mcp');
      await c.call('GET', `/terminals/${self}/working-directory`, [], undefined, 'mcp');
      const me = await c.call('GET', `/terminals/${self}`, [], undefined, 'mcp');
      const r = await c.call('POST', '/terminals/run-step', [], {
        provider: me.json.provider, agent: profile, prompt: message, teardown: true, timeout: new PyFloat(timeoutSeconds),
        use_worktree: false, job_id: randomBytes(16).toString('hex'), description: null,
        session_name: me.json.session_name, caller_id: self, allowed_tools: childTools('2.4', profile).split(','),
      }, 'mcp');
      if (r.status !== 200) return { ok: false, status: r.status, terminalId: r.json?.detail?.terminal_id ?? undefined };
      await c.call('GET', `/terminals/${self}`, [], undefined, 'mcp');
      await c.call('GET', `/sessions/${me.json.session_name}/terminals`, [], undefined, 'mcp');
      return { ok: true, status: r.status, terminalId: r.json.terminal_id, output: r.json.last_message };
    },
    async sendMessage(self, receiver, message) {
      await c.call('GET', `/terminals/${receiver}`, [], undefined, 'mcp');
      await c.call('GET', `/terminals/${self}`, [], undefined, 'mcp');
      const r = await c.call('POST', `/terminals/${receiver}/inbox/messages`, [['sender_id', self], ['message', message + messageSuffix(self)]], undefined, 'mcp');
      return { ok: r.status === 200, status: r.status };
    },
  };
}

/**
 * CAO 2.1.x–2.2.x: the MCP server orchestrates client-side: synchronous create, status polls every
 * second, typed input with `orchestration_type`; handoff reads `output?mode=last` and exits the CLI
 * (no DELETE). No sender suffixes (CAO_ENABLE_SENDER_ID_INJECTION defaults to false).
 */
function tools21(c: CaoClient): McpTools {
  const create = async (self: string, profile: string) => {
    const me = await c.call('GET', `/terminals/${self}`, [], undefined, 'mcp');
    const wd = await c.call('GET', `/terminals/${self}/working-directory`, [], undefined, 'mcp');
    return c.call('POST', `/sessions/${me.json.session_name}/terminals`, [
      ['provider', me.json.provider], ['agent_profile', profile],
      ['working_directory', wd.json.working_directory], ['allowed_tools', childTools('2.1', profile)],
    ], undefined, 'mcp');
  };
  /** wait_until_terminal_status: GET every 1 s until one of `wanted`, at most `timeoutS`. */
  const waitStatus = async (id: string, wanted: string[], timeoutS: number): Promise<boolean> => {
    const deadline = Date.now() + timeoutS * 1000;
    while (Date.now() < deadline) {
      const r = await c.call('GET', `/terminals/${id}`, [], undefined, 'mcp');
      if (r.status === 200 && wanted.includes(r.json.status)) return true;
      await new Promise((res) => setTimeout(res, 1000));
    }
    return false;
  };
  return {
    family: '2.1',
    async assign(self, profile, message) {
      const created = await create(self, profile);
      if (created.status !== 201) return { ok: false, status: created.status };
      const id = created.json.id as string;
      if (!(await waitStatus(id, ['idle', 'completed'], 60))) return { ok: false, status: 0, terminalId: id };
      const r = await c.call('POST', `/terminals/${id}/input`, [['message', message], ['sender_id', self], ['orchestration_type', 'assign']], undefined, 'mcp');
      return { ok: r.status === 200, status: r.status, terminalId: id };
    },
    async handoff(self, profile, message, timeoutSeconds) {
      const created = await create(self, profile);
      if (created.status !== 201) return { ok: false, status: created.status };
      const id = created.json.id as string;
      if (!(await waitStatus(id, ['idle', 'completed'], 120))) return { ok: false, status: 0, terminalId: id };
      await new Promise((res) => setTimeout(res, 2000));
      await c.call('POST', `/terminals/${id}/input`, [['message', message], ['sender_id', self], ['orchestration_type', 'handoff']], undefined, 'mcp');
      if (!(await waitStatus(id, ['completed'], timeoutSeconds))) return { ok: false, status: 0, terminalId: id };
      const out = await c.call('GET', `/terminals/${id}/output`, [['mode', 'last']], undefined, 'mcp');
      await c.call('POST', `/terminals/${id}/exit`, [], undefined, 'mcp');
      return { ok: true, status: out.status, terminalId: id, output: out.json.output };
    },
    async sendMessage(self, receiver, message) {
      const r = await c.call('POST', `/terminals/${receiver}/inbox/messages`, [['sender_id', self], ['message', message]], undefined, 'mcp');
      return { ok: r.status === 200, status: r.status };
    },
  };
}

export function mcpTools(version: string, client: CaoClient): McpTools {
  const [major, minor] = version.split('.').map(Number) as [number, number];
  if (major !== 2) throw new Error(`no MCP request model for CAO ${version}`);
  if (minor >= 5) return tools25(client);
  if (minor >= 3) return tools24(client);
  if (minor >= 1) return tools21(client);
  throw new Error(`no MCP request model for CAO ${version} (2.0.x is not installable)`);
}
