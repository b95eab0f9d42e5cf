import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startCaoSimulator } from '../src/demo/cao-simulator.ts';
import type { CaoSimulator, CaoSimulatorOptions, CaoVersion } from '../src/demo/cao-simulator.ts';

interface Res {
  status: number;
  json: any;
  headers: Headers;
}

async function call(sim: CaoSimulator, method: string, path: string, init: { body?: string; token?: string } = {}): Promise<Res> {
  const headers: Record<string, string> = {};
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  const r = await fetch(sim.url + path, { method, headers, body: init.body });
  const text = await r.text();
  assert.match(r.headers.get('content-type') ?? '', /application\/json/);
  return { status: r.status, json: JSON.parse(text), headers: r.headers };
}

/** Polls until `check` returns true (a safety bound, not a timing assertion). */
async function waitFor(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}

const NAIVE_ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/;
const HEAD_TERMINAL_KEYS = ['agent_profile', 'allowed_tools', 'caller_id', 'engine', 'group', 'id', 'last_active',
  'metadata', 'name', 'provider', 'session_name', 'shell_command', 'status'];
const V2_TERMINAL_KEYS = ['agent_profile', 'id', 'last_active', 'name', 'provider', 'session_name', 'status'];
const FAST: CaoSimulatorOptions = { deliveryDelayMs: 20, runStepDurationMs: 100 };

async function launch(sim: CaoSimulator, extra = '', body?: object): Promise<any> {
  const provider = sim.version === '2.0.0' ? '&provider=kiro_cli' : '';
  const r = await call(sim, 'POST', `/sessions?agent_profile=supervisor&working_directory=/tmp${provider}${extra}`,
    body ? { body: JSON.stringify(body) } : {});
  assert.equal(r.status, 201, JSON.stringify(r.json));
  return r.json;
}
async function addTerminal(sim: CaoSimulator, session: string, extra = '', body?: object): Promise<Res> {
  return call(sim, 'POST', `/sessions/${session}/terminals?provider=claude_code&agent_profile=developer${extra}`,
    body ? { body: JSON.stringify(body) } : {});
}

for (const version of ['head', '2.0.0'] as CaoVersion[]) {
  const isHead = version === 'head';
  describe(`CAO simulator, version ${version}`, () => {
    let sim: CaoSimulator;
    before(async () => {
      sim = await startCaoSimulator({ version, ...FAST });
    });
    after(() => sim.close());

    it('listens on loopback and reports its version', () => {
      assert.match(sim.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(sim.version, version);
    });

    it('POST /sessions creates a session and answers the version Terminal shape', async () => {
      const t = await launch(sim);
      assert.deepEqual(Object.keys(t).sort(), isHead ? HEAD_TERMINAL_KEYS : V2_TERMINAL_KEYS);
      assert.match(t.id, /^[0-9a-f]{8}$/);
      assert.match(t.session_name, /^cao-[0-9a-f]{8}$/);
      assert.match(t.name, /^supervisor-[0-9a-f]{4}$/);
      assert.equal(t.provider, 'kiro_cli');
      assert.equal(t.status, 'idle');
      assert.match(t.last_active, NAIVE_ISO);
      if (isHead) assert.equal(t.caller_id, null);

      const named = await launch(sim, '&session_name=proj');
      assert.equal(named.session_name, 'cao-proj');
      const dup = await call(sim, 'POST', `/sessions?agent_profile=x&provider=kiro_cli&session_name=cao-proj`);
      assert.equal(dup.status, 400);
      assert.equal(dup.json.detail, "Session 'cao-proj' already exists");
    });

    it('POST /sessions requires provider at 2.0.0 only', async () => {
      const r = await call(sim, 'POST', '/sessions?agent_profile=x');
      if (isHead) {
        assert.equal(r.status, 201);
        assert.equal(r.json.provider, 'kiro_cli');
      } else {
        assert.equal(r.status, 422);
        assert.deepEqual(r.json.detail[0].loc, ['query', 'provider']);
      }
    });

    it('GET /sessions lists cao- sessions; failNextListings answers [] with 200', async () => {
      const t = await launch(sim);
      const r = await call(sim, 'GET', '/sessions');
      assert.equal(r.status, 200);
      const s = r.json.find((x: any) => x.id === t.session_name);
      assert.ok(s);
      assert.equal(s.name, s.id);
      assert.ok(['active', 'detached'].includes(s.status));
      if (isHead) {
        assert.equal(s.working_directory, '/tmp');
        assert.equal(s.agent_profile, 'supervisor');
      } else assert.deepEqual(Object.keys(s).sort(), ['id', 'name', 'status']);

      sim.failNextListings(2);
      assert.deepEqual((await call(sim, 'GET', '/sessions')).json, []);
      assert.deepEqual((await call(sim, 'GET', '/sessions')).json, []);
      assert.ok((await call(sim, 'GET', '/sessions')).json.length > 0);
    });

    it('GET /sessions/{name} and /terminals answer rows; 404 and [] when missing', async () => {
      const t = await launch(sim);
      const r = await call(sim, 'GET', `/sessions/${t.session_name}`);
      assert.equal(r.status, 200);
      assert.deepEqual(r.json.session, { id: t.session_name, name: t.session_name, status: 'detached' });
      assert.equal(r.json.terminals.length, 1);
      const row = r.json.terminals[0];
      const rowKeys = ['agent_profile', 'id', 'last_active', 'provider', 'tmux_session', 'tmux_window'];
      assert.deepEqual(Object.keys(row).sort(), isHead ? [...rowKeys, 'engine', 'status', 'working_directory'].sort() : rowKeys);
      assert.equal(row.tmux_window, t.name);
      if (isHead) assert.equal(row.status, 'idle');

      const list = await call(sim, 'GET', `/sessions/${t.session_name}/terminals`);
      assert.deepEqual(list.json.map((x: any) => x.id), [t.id]);
      assert.equal('status' in list.json[0], false);

      const missing = await call(sim, 'GET', '/sessions/cao-nope');
      assert.equal(missing.status, 404);
      assert.equal(missing.json.detail, "Session 'cao-nope' not found");
      assert.deepEqual((await call(sim, 'GET', '/sessions/cao-nope/terminals')).json, []);
    });

    it('POST /sessions/{s}/terminals adds a terminal; 404 for an unknown session', async () => {
      const t = await launch(sim);
      const r = await addTerminal(sim, t.session_name);
      assert.equal(r.status, 201);
      assert.equal(r.json.session_name, t.session_name);
      assert.equal(r.json.provider, 'claude_code');
      assert.equal(r.json.status, 'idle');
      const rows = (await call(sim, 'GET', `/sessions/${t.session_name}/terminals`)).json;
      assert.equal(rows.length, 2);
      assert.equal((await addTerminal(sim, 'cao-nope')).status, 404);
    });

    it('GET /terminals/{id}: shape, 404 when missing, 422 for a malformed id', async () => {
      const t = await launch(sim);
      const r = await call(sim, 'GET', `/terminals/${t.id}`);
      assert.equal(r.status, 200);
      assert.deepEqual(Object.keys(r.json).sort(), isHead ? HEAD_TERMINAL_KEYS : V2_TERMINAL_KEYS);
      assert.equal((await call(sim, 'GET', '/terminals/0badcafe')).status, 404);
      const bad = await call(sim, 'GET', '/terminals/not-hex');
      assert.equal(bad.status, 422);
      assert.equal(bad.json.detail[0].type, 'string_pattern_mismatch');
    });

    it('input makes a terminal processing then completed; output quotes the input; exit keeps the row', async () => {
      const t = await launch(sim);
      const sent = await call(sim, 'POST', `/terminals/${t.id}/input?message=${encodeURIComponent('write tests')}`);
      assert.deepEqual(sent.json, { success: true });
      await waitFor('completed', async () => (await call(sim, 'GET', `/terminals/${t.id}`)).json.status === 'completed');
      const last = await call(sim, 'GET', `/terminals/${t.id}/output?mode=last`);
      assert.equal(last.json.mode, 'last');
      assert.match(last.json.output, /write tests/);
      const full = await call(sim, 'GET', `/terminals/${t.id}/output`);
      assert.equal(full.json.mode, 'full');
      assert.match(full.json.output, /> write tests/);
      assert.equal((await call(sim, 'GET', `/terminals/${t.id}/output?mode=tail`)).status, 422);
      assert.equal((await call(sim, 'POST', `/terminals/${t.id}/input`)).status, 422);
      assert.equal((await call(sim, 'POST', '/terminals/0badcafe/input?message=x')).status, 404);

      assert.deepEqual((await call(sim, 'POST', `/terminals/${t.id}/exit`)).json, { success: true });
      assert.equal((await call(sim, 'GET', `/terminals/${t.id}`)).status, 200);
      assert.equal((await call(sim, 'POST', '/terminals/0badcafe/exit')).status, 404);
      assert.ok(sim.snapshot().messages.some((m) => m.via === 'input' && m.receiver_id === t.id && m.message === 'write tests'));
    });

    it('DELETE /terminals/{id}: success, unknown id per version, last terminal takes the session', async () => {
      const t = await launch(sim);
      const w = (await addTerminal(sim, t.session_name)).json;
      assert.deepEqual((await call(sim, 'DELETE', `/terminals/${w.id}`)).json, { success: true });
      assert.equal((await call(sim, 'GET', `/sessions/${t.session_name}`)).status, 200);
      const unknown = await call(sim, 'DELETE', `/terminals/${w.id}`);
      if (isHead) assert.equal(unknown.status, 409);
      else assert.deepEqual([unknown.status, unknown.json], [200, { success: false }]);
      await call(sim, 'DELETE', `/terminals/${t.id}`);
      assert.equal((await call(sim, 'GET', `/sessions/${t.session_name}`)).status, 404);
      assert.equal(sim.snapshot().sessions.some((s) => s.name === t.session_name), false);
    });

    it('DELETE /sessions/{name} removes its terminals; a missing session per version', async () => {
      const t = await launch(sim);
      await addTerminal(sim, t.session_name);
      const r = await call(sim, 'DELETE', `/sessions/${t.session_name}`);
      assert.deepEqual([r.status, r.json], [200, { success: true, deleted: [t.session_name], errors: [] }]);
      assert.equal(sim.snapshot().terminals.some((x) => x.session_name === t.session_name), false);
      assert.equal((await call(sim, 'GET', `/terminals/${t.id}`)).status, 404);
      const again = await call(sim, 'DELETE', `/sessions/${t.session_name}`);
      if (isHead) assert.deepEqual([again.status, again.json.success], [200, true]);
      else assert.equal(again.status, 404);
    });

    it('inbox: a message is pending, then delivered by the server; listing filters and limits', async () => {
      const a = await launch(sim);
      const b = (await addTerminal(sim, a.session_name)).json;
      sim.setStatus(b.id, 'processing'); // a busy receiver keeps its messages pending
      const sent = [];
      for (const text of ['one', 'two', 'three']) {
        const r = await call(sim, 'POST', `/terminals/${b.id}/inbox/messages?sender_id=${a.id}&message=${text}`);
        assert.equal(r.status, 200);
        sent.push(r.json);
      }
      assert.deepEqual(Object.keys(sent[0]).sort(), ['created_at', 'message_id', 'receiver_id', 'sender_id', 'success']);
      assert.equal(sent[0].receiver_id, b.id);
      assert.match(sent[0].created_at, NAIVE_ISO);
      const pending = (await call(sim, 'GET', `/terminals/${b.id}/inbox/messages?status=pending`)).json;
      assert.deepEqual(pending.map((m: any) => m.message), ['one', 'two', 'three']);
      assert.deepEqual(Object.keys(pending[0]).sort(), ['created_at', 'id', 'message', 'receiver_id', 'sender_id', 'status']);
      assert.equal(pending[0].id, sent[0].message_id);
      assert.equal((await call(sim, 'GET', `/terminals/${b.id}/inbox/messages?limit=2`)).json.length, 2);

      sim.setStatus(b.id, 'idle');
      await waitFor('delivery', async () =>
        (await call(sim, 'GET', `/terminals/${b.id}/inbox/messages?status=delivered`)).json.length === 3);
      assert.deepEqual((await call(sim, 'GET', `/terminals/${b.id}/inbox/messages?status=pending`)).json, []);
      assert.equal((await call(sim, 'GET', `/terminals/${b.id}`)).json.status === 'idle', false);

      assert.equal((await call(sim, 'GET', `/terminals/${b.id}/inbox/messages?limit=101`)).status, 422);
      assert.equal((await call(sim, 'GET', `/terminals/${b.id}/inbox/messages?status=lost`)).status, 400);
      assert.deepEqual((await call(sim, 'GET', '/terminals/0badcafe/inbox/messages')).json, []);
      const toNobody = await call(sim, 'POST', `/terminals/0badcafe/inbox/messages?sender_id=${a.id}&message=hi`);
      assert.equal(toNobody.status, isHead ? 404 : 200); // v2.0.0 does not check the receiver
    });

    it('out-of-band kills remove rows, and the session with its last terminal', async () => {
      const t = await launch(sim);
      const w = (await addTerminal(sim, t.session_name)).json;
      sim.killTerminalOutOfBand(w.id);
      assert.equal((await call(sim, 'GET', `/terminals/${w.id}`)).status, 404);
      assert.equal((await call(sim, 'GET', `/sessions/${t.session_name}`)).json.terminals.length, 1);
      sim.killTerminalOutOfBand(t.id);
      assert.equal((await call(sim, 'GET', `/sessions/${t.session_name}`)).status, 404);

      const s = await launch(sim);
      await addTerminal(sim, s.session_name);
      sim.killSessionOutOfBand(s.session_name);
      const names = (await call(sim, 'GET', '/sessions')).json.map((x: any) => x.name);
      assert.equal(names.includes(s.session_name), false);
      assert.equal(sim.snapshot().terminals.some((x) => x.session_name === s.session_name), false);
    });

    it('answers FastAPI-style 404 and 405 for routes it does not have', async () => {
      const r = await call(sim, 'GET', '/nope');
      assert.deepEqual([r.status, r.json], [404, { detail: 'Not Found' }]);
      const m = await call(sim, 'PUT', '/sessions');
      assert.deepEqual([m.status, m.json], [405, { detail: 'Method Not Allowed' }]);
    });

    it('rejects an untrusted Host header as Starlette TrustedHostMiddleware does', async () => {
      const { port } = new URL(sim.url);
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path: '/sessions', headers: { host: 'evil.example' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(status, 400);
    });
  });
}

describe('CAO simulator, HEAD-only behaviour', () => {
  let sim: CaoSimulator;
  before(async () => {
    sim = await startCaoSimulator({ version: 'head', ...FAST });
  });
  after(() => sim.close());

  it('deferred assign: status unknown, then the server delivers the task from caller_id', async () => {
    const sup = await launch(sim);
    const body = { initial_message: 'build the parser', initial_message_orchestration_type: 'assign' };
    const r = await addTerminal(sim, sup.session_name, `&caller_id=${sup.id}&defer_init=true`, body);
    assert.equal(r.status, 201);
    assert.equal(r.json.status, 'unknown');
    assert.equal(r.json.caller_id, sup.id);
    const id = r.json.id;
    await waitFor('assign delivery', () => sim.snapshot().messages.some((m) => m.receiver_id === id));
    const m = sim.snapshot().messages.find((x) => x.receiver_id === id)!;
    assert.deepEqual([m.via, m.sender_id, m.message, m.orchestration_type, m.status],
      ['deferred_init', sup.id, 'build the parser', 'assign', 'delivered']);
    await waitFor('worker completed', async () => (await call(sim, 'GET', `/terminals/${id}`)).json.status === 'completed');
    // The task went in by terminal input, not through the inbox table.
    assert.deepEqual((await call(sim, 'GET', `/terminals/${id}/inbox/messages`)).json, []);
  });

  it('an initial_message without defer_init is refused; a bad orchestration type too', async () => {
    const sup = await launch(sim);
    assert.equal((await addTerminal(sim, sup.session_name, '', { initial_message: 'x' })).status, 400);
    const bad = { initial_message: 'x', initial_message_orchestration_type: 'shout' };
    assert.equal((await addTerminal(sim, sup.session_name, '&defer_init=true', bad)).status, 400);
  });

  it('POST /sessions with initial_message delivers it later with no sender', async () => {
    const t = await launch(sim, '', { initial_message: 'hello team', env_vars: { A: '1' } });
    assert.equal(t.status, 'unknown');
    await waitFor('initial delivery', () => sim.snapshot().messages.some((m) => m.receiver_id === t.id));
    const m = sim.snapshot().messages.find((x) => x.receiver_id === t.id)!;
    assert.deepEqual([m.sender_id, m.message, m.status], [null, 'hello team', 'delivered']);
  });

  it('bad JSON is a 422', async () => {
    const r = await call(sim, 'POST', '/sessions?agent_profile=x', { body: '{nope' });
    assert.equal(r.status, 422);
    assert.equal(r.json.detail[0].type, 'json_invalid');
  });

  it('run-step: the worker is visible during the call, deleted after, and the answer quotes the prompt', async () => {
    const sup = await launch(sim);
    const pending = call(sim, 'POST', '/terminals/run-step', {
      body: JSON.stringify({ provider: 'claude_code', agent: 'reviewer', prompt: 'review PR 7', teardown: true,
        timeout: 600, use_worktree: false, session_name: sup.session_name, caller_id: sup.id }),
    });
    let worker: any;
    await waitFor('worker row', async () => {
      const rows = (await call(sim, 'GET', `/sessions/${sup.session_name}`)).json.terminals;
      worker = rows.find((x: any) => x.id !== sup.id);
      return worker !== undefined;
    });
    assert.deepEqual([worker.agent_profile, worker.provider, worker.status], ['reviewer', 'claude_code', 'processing']);
    const workerId: string = worker.id;
    const r = await pending;
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.json).sort(), ['last_message', 'replayed', 'status', 'terminal_id']);
    assert.deepEqual([r.json.terminal_id, r.json.status, r.json.replayed], [workerId, 'completed', false]);
    assert.match(r.json.last_message, /review PR 7/);
    const rows = (await call(sim, 'GET', `/sessions/${sup.session_name}`)).json.terminals;
    assert.deepEqual(rows.map((x: any) => x.id), [sup.id]);
    const m = sim.snapshot().messages.find((x) => x.receiver_id === workerId)!;
    assert.deepEqual([m.via, m.sender_id, m.orchestration_type], ['run_step', sup.id, 'handoff']);
  });

  it('run-step without session_name runs in a fresh session that goes with the worker', async () => {
    const before = sim.snapshot().sessions.length;
    const r = await call(sim, 'POST', '/terminals/run-step', { body: JSON.stringify({ provider: 'kiro_cli', agent: 'a', prompt: 'p' }) });
    assert.equal(r.status, 200);
    assert.equal(sim.snapshot().sessions.length, before);
    const missing = await call(sim, 'POST', '/terminals/run-step', { body: JSON.stringify({ provider: 'kiro_cli', agent: 'a' }) });
    assert.equal(missing.status, 422);
    assert.deepEqual(missing.json.detail[0].loc, ['body', 'prompt']);
  });

  for (const [outcome, code] of [['timeout', 504], ['error', 502]] as const) {
    it(`run-step outcome ${outcome} answers ${code} with a structured detail and keeps the worker`, async () => {
      const s = await startCaoSimulator({ version: 'head', runStepOutcome: outcome, runStepDurationMs: 10 });
      try {
        const sup = await launch(s);
        const r = await call(s, 'POST', '/terminals/run-step', {
          body: JSON.stringify({ provider: 'kiro_cli', agent: 'dev', prompt: 'p', session_name: sup.session_name }),
        });
        assert.equal(r.status, code);
        assert.equal(r.json.detail.kind, outcome);
        assert.match(r.json.detail.terminal_id, /^[0-9a-f]{8}$/);
        assert.equal(typeof r.json.detail.message, 'string');
        assert.equal((await call(s, 'GET', `/terminals/${r.json.detail.terminal_id}`)).status, 200);
      } finally {
        await s.close();
      }
    });
  }
});

describe('CAO simulator, agent state while it works', () => {
  for (const version of ['head', '2.0.0'] as CaoVersion[]) {
    it(`a working terminal is processing and keeps inbox messages pending (${version})`, async () => {
      const sim = await startCaoSimulator({ version, deliveryDelayMs: 60_000 });
      try {
        const a = await launch(sim);
        const b = (await addTerminal(sim, a.session_name)).json;
        await call(sim, 'POST', `/terminals/${b.id}/input?message=work`);
        assert.equal((await call(sim, 'GET', `/terminals/${b.id}`)).json.status, 'processing');
        await call(sim, 'POST', `/terminals/${b.id}/inbox/messages?sender_id=${a.id}&message=later`);
        const rows = (await call(sim, 'GET', `/terminals/${b.id}/inbox/messages`)).json;
        assert.deepEqual(rows.map((m: any) => [m.message, m.status, m.sender_id]), [['later', 'pending', a.id]]);
      } finally {
        await sim.close();
      }
    });
  }
});

describe('CAO simulator, 2.0.0-only behaviour', () => {
  it('has no run-step route: FastAPI answers 405 (the path matches GET/DELETE /terminals/{id})', async () => {
    const sim = await startCaoSimulator({ version: '2.0.0', ...FAST });
    try {
      const r = await call(sim, 'POST', '/terminals/run-step', { body: JSON.stringify({ provider: 'kiro_cli', agent: 'a', prompt: 'p' }) });
      assert.deepEqual([r.status, r.json], [405, { detail: 'Method Not Allowed' }]);
      assert.deepEqual(r.headers.get('allow')?.split(', ').sort(), ['DELETE', 'GET']);
    } finally {
      await sim.close();
    }
  });

  it('a handoff-style poll loop sees the worker completed, and the terminal keeps no HEAD fields', async () => {
    const sim = await startCaoSimulator({ version: '2.0.0', ...FAST });
    try {
      const sup = await launch(sim);
      const w = (await addTerminal(sim, sup.session_name, '', { initial_message: 'ignored at 2.0.0' })).json;
      assert.equal(w.status, 'idle');
      await call(sim, 'POST', `/terminals/${w.id}/input?message=task`);
      await waitFor('completed', async () => (await call(sim, 'GET', `/terminals/${w.id}`)).json.status === 'completed');
      assert.match((await call(sim, 'GET', `/terminals/${w.id}/output?mode=last`)).json.output, /task/);
      assert.equal((await call(sim, 'POST', `/terminals/${w.id}/exit`)).status, 200);
    } finally {
      await sim.close();
    }
  });
});

describe('CAO simulator, token auth', () => {
  for (const version of ['head', '2.0.0'] as CaoVersion[]) {
    it(`needs the bearer token on every request (${version})`, async () => {
      const sim = await startCaoSimulator({ version, token: 's3cret', ...FAST });
      try {
        const none = await call(sim, 'GET', '/sessions');
        assert.equal(none.status, 401);
        assert.equal(none.headers.get('www-authenticate'), 'Bearer');
        assert.equal((await call(sim, 'GET', '/sessions', { token: 'wrong' })).status, 401);
        assert.equal((await call(sim, 'GET', '/nope')).status, 401);
        assert.deepEqual((await call(sim, 'GET', '/sessions', { token: 's3cret' })).json, []);
      } finally {
        await sim.close();
      }
    });
  }
});
