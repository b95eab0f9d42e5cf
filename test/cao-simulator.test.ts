/**
 * The CAO simulator's behaviour per release mode (2.1.1, 2.4.1, 2.5.4), as the real releases
 * showed it (test/e2e, test/fixtures/real-cao/). test/simulator-contract.test.ts replays the
 * recorded real exchanges; this file checks the behaviours one by one, including the ones a
 * recording shows only once (timelines, failures, out-of-band kills).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { rmSync } from 'node:fs';
import { startCaoSimulator } from '../src/demo/cao-simulator.ts';
import type { CaoSimulator, CaoSimulatorOptions } from '../src/demo/cao-simulator.ts';
import { CAO_VERSIONS, NEWEST_CAO_VERSION, parseCaoVersion, TRAITS, UnknownCaoVersionError } from '../src/demo/cao-versions.ts';
import { scratchDir } from './helpers/scratch-dir.ts';

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
  for (let i = 0; i < 1000; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}

const NAIVE_ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/;
const UTC_Z = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
const UTC_OFFSET = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/;
/** Terminal JSON keys per release, in the order real cao-server sends them. */
const TERMINAL_KEYS: Record<string, string[]> = {
  '2.1.1': ['id', 'name', 'provider', 'session_name', 'agent_profile', 'allowed_tools', 'status', 'last_active'],
  '2.4.1': ['id', 'name', 'provider', 'session_name', 'agent_profile', 'caller_id', 'allowed_tools', 'engine', 'shell_command', 'status', 'last_active'],
  '2.5.4': ['id', 'name', 'provider', 'session_name', 'agent_profile', 'model', 'model_honored', 'ephemeral', 'caller_id', 'callback_terminal_id',
    'allowed_tools', 'engine', 'shell_command', 'group', 'description', 'metadata', 'deferred_init_failure', 'initial_delivery',
    'session_incarnation_id', 'status', 'last_active'],
};
const ROW_KEYS: Record<string, string[]> = {
  '2.1.1': ['id', 'tmux_session', 'tmux_window', 'provider', 'agent_profile', 'last_active'],
  '2.4.1': ['id', 'tmux_session', 'tmux_window', 'provider', 'agent_profile', 'engine', 'last_active', 'status'],
  '2.5.4': ['id', 'tmux_session', 'tmux_window', 'provider', 'agent_profile', 'description', 'model', 'model_honored', 'ephemeral',
    'working_directory', 'engine', 'deferred_init_failure', 'deferred_init_external_owner', 'deferred_init_runtime_reclaimed',
    'session_incarnation_id', 'last_active', 'pending_inbox_count', 'status'],
};
const FAST: CaoSimulatorOptions = { initMs: 20, workMs: 20, timeScale: 0.01 };

let project: string;
before(() => {
  project = scratchDir('cao-sim-test-');
});
after(() => rmSync(project, { recursive: true, force: true }));

async function launch(sim: CaoSimulator, extra = '', body?: object): Promise<any> {
  const r = await call(sim, 'POST', `/sessions?agent_profile=supervisor&provider=kiro_cli&working_directory=${encodeURIComponent(project)}${extra}`,
    body ? { body: JSON.stringify(body) } : {});
  assert.equal(r.status, 201, JSON.stringify(r.json));
  return r.json;
}
async function addTerminal(sim: CaoSimulator, session: string, extra = '', body?: object): Promise<Res> {
  return call(sim, 'POST', `/sessions/${session}/terminals?provider=claude_code&agent_profile=developer${extra}`,
    body ? { body: JSON.stringify(body) } : {});
}
const statusOf = async (sim: CaoSimulator, id: string): Promise<string> => {
  const r = await call(sim, 'GET', `/terminals/${id}`);
  return r.status === 200 ? r.json.status : `HTTP ${r.status}`;
};

describe('CAO versions', () => {
  it('are named after real releases; the newest is the default; anything else is refused naming them', () => {
    assert.deepEqual([...CAO_VERSIONS], ['2.1.1', '2.4.1', '2.5.4']);
    assert.equal(NEWEST_CAO_VERSION, '2.5.4');
    assert.equal(parseCaoVersion('2.4.1'), '2.4.1');
    for (const bad of ['head', '2.0.0', '2.5', '']) {
      assert.throws(() => parseCaoVersion(bad), (e: Error) => e instanceof UnknownCaoVersionError && /one of 2\.1\.1, 2\.4\.1, 2\.5\.4/.test(e.message));
    }
  });
});

for (const version of CAO_VERSIONS) {
  const traits = TRAITS[version];
  describe(`CAO simulator ${version}`, () => {
    let sim: CaoSimulator;
    before(async () => {
      sim = await startCaoSimulator({ version, ...FAST });
    });
    after(() => sim.close());

    it('listens on loopback and reports its version', () => {
      assert.match(sim.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(sim.version, version);
    });

    it('/health as the release answers it', async () => {
      const r = await call(sim, 'GET', '/health');
      assert.deepEqual(Object.keys(r.json), traits.healthDetails
        ? ['status', 'service', 'terminal_backend', 'components'] : ['status', 'service']);
    });

    it('POST /sessions: synchronous create, the release\'s Terminal shape and time format', async () => {
      const t = await launch(sim, '&session_name=proj');
      assert.deepEqual(Object.keys(t), TERMINAL_KEYS[version]);
      assert.match(t.id, /^[0-9a-f]{8}$/);
      assert.equal(t.session_name, 'cao-proj');
      assert.match(t.name, /^supervisor-[0-9a-f]{4}$/);
      assert.equal(t.status, 'idle');
      assert.match(t.last_active, traits.utcTimes ? UTC_Z : NAIVE_ISO);
      if (version === '2.5.4') assert.equal(t.description, 'proj');
      const dup = await call(sim, 'POST', `/sessions?agent_profile=x&provider=kiro_cli&session_name=cao-proj`);
      assert.deepEqual([dup.status, dup.json.detail], [400, "Session 'cao-proj' already exists"]);
      const noProvider = await call(sim, 'POST', '/sessions?agent_profile=x');
      if (traits.providerRequired) {
        assert.equal(noProvider.status, 422);
        assert.deepEqual(noProvider.json.detail[0].loc, ['query', 'provider']);
      } else assert.deepEqual([noProvider.status, noProvider.json.provider], [201, 'kiro_cli']);
    });

    it('working directories: a missing or system directory is refused as the release refuses it', async () => {
      for (const [dir, text] of [['/tmp', 'Working directory not allowed: /tmp (resolves to blocked system path /tmp)'],
        ['/nonexistent/dir', 'Working directory does not exist: /nonexistent/dir']] as const) {
        const r = await call(sim, 'POST', `/sessions?agent_profile=x&provider=kiro_cli&session_name=wd&working_directory=${encodeURIComponent(dir)}`);
        if (traits.workingDirectoryError === 500) {
          assert.deepEqual([r.status, r.json.detail], [500, `Failed to create session: Failed to create session 'cao-wd': ${text}`]);
        } else assert.deepEqual([r.status, r.json.detail], [400, text]);
      }
    });

    it('GET /sessions, /sessions/{name} and /sessions/{name}/terminals: the release\'s rows; 404 and [] when missing', async () => {
      const t = await launch(sim);
      const listed = (await call(sim, 'GET', '/sessions')).json.find((x: any) => x.id === t.session_name);
      assert.deepEqual(Object.keys(listed), traits.shape === '2.5' ? ['id', 'name', 'status', 'working_directory', 'agent_profile'] : ['id', 'name', 'status']);
      const r = await call(sim, 'GET', `/sessions/${t.session_name}`);
      assert.deepEqual(r.json.session, { id: t.session_name, name: t.session_name, status: 'detached' });
      assert.deepEqual(Object.keys(r.json.terminals[0]), ROW_KEYS[version]);
      const rows = (await call(sim, 'GET', `/sessions/${t.session_name}/terminals`)).json;
      assert.deepEqual(Object.keys(rows[0]), ROW_KEYS[version]!.filter((k) => k !== 'status' && k !== 'pending_inbox_count'));
      assert.deepEqual([(await call(sim, 'GET', '/sessions/cao-nope')).status, (await call(sim, 'GET', '/sessions/cao-nope')).json.detail],
        [404, "Session 'cao-nope' not found"]);
      assert.deepEqual((await call(sim, 'GET', '/sessions/cao-nope/terminals')).json, []);
      sim.failNextListings(1);
      assert.deepEqual((await call(sim, 'GET', '/sessions')).json, [], 'CAO answers [] on backend errors');
    });

    it('input: processing, then completed with an answer; output modes; /exit keeps the row', async () => {
      const t = await launch(sim);
      const last0 = await call(sim, 'GET', `/terminals/${t.id}/output?mode=last`);
      if (traits.noReplyOutput === 'not-found') assert.equal(last0.status, 404);
      else assert.match(last0.json.output, /^\[NO RESPONSE - agent completed without producing a text response/);
      assert.deepEqual((await call(sim, 'POST', `/terminals/${t.id}/input?message=${encodeURIComponent('write tests')}`)).json, { success: true });
      assert.equal(await statusOf(sim, t.id), 'processing');
      await waitFor('completed', async () => (await statusOf(sim, t.id)) === 'completed');
      assert.match((await call(sim, 'GET', `/terminals/${t.id}/output?mode=last`)).json.output, /write tests/);
      assert.match((await call(sim, 'GET', `/terminals/${t.id}/output`)).json.output, /> write tests/);
      assert.equal((await call(sim, 'GET', `/terminals/${t.id}/output?mode=tail`)).status, 422);
      assert.equal((await call(sim, 'POST', `/terminals/${t.id}/input`)).status, 422);
      assert.deepEqual((await call(sim, 'POST', '/terminals/0badcafe/input?message=x')).json, { detail: "Terminal '0badcafe' not found" });
      assert.deepEqual((await call(sim, 'POST', `/terminals/${t.id}/exit`)).json, { success: true });
      assert.equal(await statusOf(sim, t.id), traits.statusAfterExit === 'processing' ? 'processing' : 'completed');
      const unknownExit = await call(sim, 'POST', '/terminals/0badcafe/exit');
      assert.deepEqual([unknownExit.status, unknownExit.json.detail], [404, 'Terminal 0badcafe not found in database']);
      assert.equal((await call(sim, 'GET', '/terminals/not-hex')).json.detail[0].type, 'string_pattern_mismatch');
    });

    it('inbox: delivered inside the POST to an idle receiver; a busy receiver gets them one per attempt', async () => {
      // the receiver works long enough on each message for the pending ones to be listed
      const sim = await startCaoSimulator({ version, initMs: 20, workMs: 300, timeScale: 0.01 });
      try {
        const a = await launch(sim);
        const b = (await addTerminal(sim, a.session_name)).json;
        const first = await call(sim, 'POST', `/terminals/${b.id}/inbox/messages?sender_id=${a.id}&message=one`);
        assert.deepEqual(Object.keys(first.json), ['success', 'message_id', 'sender_id', 'receiver_id', 'created_at']);
        assert.match(first.json.created_at, traits.utcTimes ? UTC_OFFSET : NAIVE_ISO);
        const rows = (await call(sim, 'GET', `/terminals/${b.id}/inbox/messages`)).json;
        assert.deepEqual(rows.map((m: any) => [m.message, m.status]), [['one', 'delivered']], 'delivered before the answer');
        assert.deepEqual(Object.keys(rows[0]), ['id', 'sender_id', 'receiver_id', 'message', 'status', 'created_at']);
        // b is busy with "one": the next two wait, then arrive one by one, each its own input
        for (const text of ['two', 'three']) await call(sim, 'POST', `/terminals/${b.id}/inbox/messages?sender_id=${a.id}&message=${text}`);
        assert.deepEqual((await call(sim, 'GET', `/terminals/${b.id}/inbox/messages?status=pending`)).json.map((m: any) => m.message), ['two', 'three']);
        await waitFor('both delivered', async () => (await call(sim, 'GET', `/terminals/${b.id}/inbox/messages?status=delivered`)).json.length === 3);
        const inputs = sim.snapshot().terminals.find((t) => t.id === b.id)!.inputs;
        assert.deepEqual(inputs, ['one', 'two', 'three'], 'never batched');
        assert.equal((await call(sim, 'GET', `/terminals/${b.id}/inbox/messages?limit=101`)).status, 422);
        assert.deepEqual((await call(sim, 'GET', `/terminals/${b.id}/inbox/messages?status=lost`)).json, { detail: 'Invalid status: lost. Valid values: pending, delivered, failed' });
        const toNobody = await call(sim, 'POST', `/terminals/0badcafe/inbox/messages?sender_id=${a.id}&message=hi`);
        assert.equal(toNobody.status, traits.receiverChecked ? 404 : 200);
      } finally {
        await sim.close();
      }
    });

    it('DELETE /terminals and /sessions: the release\'s answers, also for unknown ones', async () => {
      const t = await launch(sim);
      const w = (await addTerminal(sim, t.session_name)).json;
      assert.deepEqual((await call(sim, 'DELETE', `/terminals/${w.id}`)).json, { success: true });
      const again = await call(sim, 'DELETE', `/terminals/${w.id}`);
      if (traits.deleteUnknownTerminal === 'conflict') assert.equal(again.status, 409);
      else assert.deepEqual([again.status, again.json], [200, { success: false }]);
      const r = await call(sim, 'DELETE', `/sessions/${t.session_name}`);
      assert.deepEqual([r.status, r.json], [200, { success: true, deleted: [t.session_name], errors: [] }]);
      assert.equal(await statusOf(sim, t.id), 'HTTP 404');
      const unknown = await call(sim, 'DELETE', '/sessions/cao-nope');
      if (traits.deleteUnknownSession === 'ok') assert.deepEqual([unknown.status, unknown.json.deleted], [200, ['cao-nope']]);
      else assert.deepEqual([unknown.status, unknown.json.detail], [404, "Session 'cao-nope' not found"]);
    });

    it('a window killed out of band keeps its row; the session leaves the listing with its last window', async () => {
      const t = await launch(sim);
      const w = (await addTerminal(sim, t.session_name)).json;
      sim.killTerminalOutOfBand(w.id);
      assert.equal(await statusOf(sim, w.id), traits.shape === '2.1' ? 'HTTP 500' : 'idle', '2.4/2.5 answer the cached status; 2.1 reads the dead pane');
      assert.deepEqual((await call(sim, 'GET', `/sessions/${t.session_name}`)).json.terminals.map((x: any) => x.id), [t.id, w.id]);
      sim.killTerminalOutOfBand(t.id);
      assert.equal((await call(sim, 'GET', `/sessions/${t.session_name}`)).status, 404);
      assert.deepEqual((await call(sim, 'GET', `/sessions/${t.session_name}/terminals`)).json.length, 2, 'the rows stay');
    });

    it('answers FastAPI-style 404 and 405, and Starlette\'s TrustedHost 400', async () => {
      assert.deepEqual((await call(sim, 'GET', '/nope')).json, { detail: 'Not Found' });
      const m = await call(sim, 'PUT', '/sessions');
      assert.deepEqual([m.status, m.json], [405, { detail: 'Method Not Allowed' }]);
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

describe('deferred init (2.4.1, 2.5.4): the assign path', () => {
  for (const version of ['2.4.1', '2.5.4'] as const) {
    it(`${version}: 201 unknown at once; processing (shell), then the task typed with the caller as sender; never batched with anything`, async () => {
      const sim = await startCaoSimulator({ version, initMs: 150, workMs: 150 });
      try {
        const sup = await launch(sim);
        const r = await addTerminal(sim, sup.session_name, `&caller_id=${sup.id}&defer_init=true`,
          { initial_message: 'build the parser', initial_message_orchestration_type: 'assign' });
        assert.deepEqual([r.status, r.json.status, r.json.caller_id], [201, 'unknown', sup.id]);
        if (version === '2.5.4') assert.equal(r.json.initial_delivery, null, 'the create\'s answer has no record yet');
        const id = r.json.id;
        const seen: string[] = [];
        const records: string[] = [];
        await waitFor('the task answered', async () => {
          const t = (await call(sim, 'GET', `/terminals/${id}`)).json;
          if (seen.at(-1) !== t.status) seen.push(t.status);
          const d = t.initial_delivery?.state;
          if (d && records.at(-1) !== d) records.push(d);
          return t.status === 'completed';
        });
        assert.equal(seen[0] === 'unknown' ? seen[1] : seen[0], 'processing', `first the pane's shell: ${seen.join(' → ')}`);
        if (version === '2.4.1') assert.ok(seen.includes('idle'), `the CLI idle before the task: ${seen.join(' → ')}`);
        else {
          assert.ok(!seen.includes('idle'), `2.5 reads idle as unknown while the task waits: ${seen.join(' → ')}`);
          assert.deepEqual(records, ['pending', 'delivered']);
        }
        const m = sim.snapshot().messages.find((x) => x.receiver_id === id)!;
        assert.deepEqual([m.via, m.sender_id, m.message, m.orchestration_type], ['deferred_init', sup.id, 'build the parser', 'assign']);
        assert.deepEqual((await call(sim, 'GET', `/terminals/${id}/inbox/messages`)).json, [], 'typed, not an inbox row');
      } finally {
        await sim.close();
      }
    });

    it(`${version}: a CLI that cannot start: after CAO's init time-out the caller gets a pending notice from the worker, and the worker goes`, async () => {
      const sim = await startCaoSimulator({ version, ...FAST });
      try {
        const sup = await launch(sim);
        sim.failLaunches(true);
        const w = (await addTerminal(sim, sup.session_name, `&caller_id=${sup.id}&defer_init=true`, { initial_message: 'never' })).json;
        await waitFor('the worker deleted', async () => (await statusOf(sim, w.id)) === 'HTTP 404');
        const inbox = (await call(sim, 'GET', `/terminals/${sup.id}/inbox/messages?status=pending`)).json;
        assert.equal(inbox.length, 1);
        assert.equal(inbox[0].sender_id, w.id);
        assert.match(inbox[0].message, version === '2.4.1'
          ? new RegExp(`^Worker ${w.id} failed to initialize: TimeoutError\\('claude_code initialization timed out after 15 seconds'\\)\\. It has been deleted — re-assign the task or report the failure\\.$`)
          : new RegExp(`^Worker ${w.id} failed to initialize: claude_code initialization timed out after 15 seconds The failed worker terminal will be torn down\\.$`));
        assert.ok(!sim.snapshot().messages.some((m) => m.via === 'deferred_init'), 'the task was never typed');
      } finally {
        await sim.close();
      }
    });
  }

  it('2.5.4: the failed worker reads `error` with its failure record before it goes', async () => {
    const sim = await startCaoSimulator({ version: '2.5.4', initMs: 20, workMs: 20, timeScale: 0.05 });
    try {
      const sup = await launch(sim);
      sim.failLaunches(true);
      const w = (await addTerminal(sim, sup.session_name, `&caller_id=${sup.id}&defer_init=true`, { initial_message: 'never' })).json;
      let failed: any;
      await waitFor('the error', async () => {
        const r = await call(sim, 'GET', `/terminals/${w.id}`);
        if (r.status === 200 && r.json.status === 'error') failed = r.json;
        return failed !== undefined || r.status === 404;
      });
      assert.ok(failed, 'seen in error before the 404');
      assert.equal(failed.initial_delivery.state, 'failed');
      assert.equal(failed.deferred_init_failure.kind, 'provider_init_error');
    } finally {
      await sim.close();
    }
  });

  it('an initial_message without defer_init is refused; a bad orchestration type too; POST /sessions with one answers unknown', async () => {
    const sim = await startCaoSimulator({ version: '2.5.4', ...FAST });
    try {
      const sup = await launch(sim);
      assert.equal((await addTerminal(sim, sup.session_name, '', { initial_message: 'x' })).status, 400);
      const bad = { initial_message: 'x', initial_message_orchestration_type: 'shout' };
      assert.equal((await addTerminal(sim, sup.session_name, '&defer_init=true', bad)).status, 400);
      const t = await launch(sim, '&session_name=first', { initial_message: 'hello team' });
      assert.equal(t.status, 'unknown');
      await waitFor('initial delivery', () => sim.snapshot().messages.some((m) => m.receiver_id === t.id));
      assert.equal(sim.snapshot().messages.find((x) => x.receiver_id === t.id)!.sender_id, null);
      assert.equal((await call(sim, 'POST', '/sessions?agent_profile=x', { body: '{nope' })).json.detail[0].type, 'json_invalid');
    } finally {
      await sim.close();
    }
  });

  it('2.1.1 has no deferred init: defer_init, caller_id and the body are ignored; the create is synchronous', async () => {
    const sim = await startCaoSimulator({ version: '2.1.1', ...FAST });
    try {
      const sup = await launch(sim);
      const r = await addTerminal(sim, sup.session_name, `&caller_id=${sup.id}&defer_init=true`, { initial_message: 'ignored' });
      assert.deepEqual([r.status, r.json.status, 'caller_id' in r.json], [201, 'idle', false]);
      await new Promise((res) => setTimeout(res, 100));
      assert.ok(!sim.snapshot().messages.some((m) => m.receiver_id === r.json.id));
    } finally {
      await sim.close();
    }
  });
});

describe('2.1.1: a synchronous create holds the whole server; a CLI that cannot start leaves its row', () => {
  it('every request waits for a create in progress; the failed create answers 500 and its row stays', async () => {
    const sim = await startCaoSimulator({ version: '2.1.1', initMs: 20, workMs: 20, timeScale: 0.005 });
    try {
      const sup = await launch(sim);
      sim.failLaunches(true);
      const creating = addTerminal(sim, sup.session_name);
      await new Promise((r) => setTimeout(r, 30));
      let healthAnswered = false;
      const health = call(sim, 'GET', '/health').then(() => {
        healthAnswered = true;
      });
      const failed = await creating;
      assert.deepEqual([failed.status, failed.json.detail], [500, 'Failed to create terminal: Kiro CLI initialization timed out with TUI and `--legacy-ui`']);
      await health;
      assert.ok(healthAnswered);
      const rows = (await call(sim, 'GET', `/sessions/${sup.session_name}/terminals`)).json;
      assert.equal(rows.length, 2, 'the half-made terminal\'s row stays');
    } finally {
      await sim.close();
    }
  });
});

describe('run-step (2.4.1, 2.5.4): the server-side handoff', () => {
  for (const version of ['2.4.1', '2.5.4'] as const) {
    it(`${version}: worker visible during the call, torn down after; answer shape of the release`, async () => {
      const sim = await startCaoSimulator({ version, initMs: 150, workMs: 200 });
      try {
        const sup = await launch(sim);
        const pending = call(sim, 'POST', '/terminals/run-step', {
          body: JSON.stringify({ provider: 'claude_code', agent: 'reviewer', prompt: 'review PR 7', teardown: true,
            timeout: 600, use_worktree: false, session_name: sup.session_name, caller_id: sup.id }),
        });
        let worker: any;
        await waitFor('worker row', async () => {
          worker = (await call(sim, 'GET', `/sessions/${sup.session_name}`)).json.terminals.find((x: any) => x.id !== sup.id);
          return worker !== undefined;
        });
        assert.deepEqual([worker.agent_profile, worker.provider], ['reviewer', 'claude_code']);
        const r = await pending;
        assert.equal(r.status, 200);
        assert.deepEqual(Object.keys(r.json), version === '2.5.4' ? ['terminal_id', 'last_message', 'status', 'replayed'] : ['terminal_id', 'last_message', 'status']);
        assert.deepEqual([r.json.terminal_id, r.json.status], [worker.id, 'completed']);
        assert.match(r.json.last_message, /review PR 7/);
        assert.deepEqual((await call(sim, 'GET', `/sessions/${sup.session_name}`)).json.terminals.map((x: any) => x.id), [sup.id]);
      } finally {
        await sim.close();
      }
    });
  }

  it('__mock_error__ → 502, __mock_sleep_N beyond the timeout → 504; the worker is kept; no session_name → its own session', async () => {
    const sim = await startCaoSimulator({ version: '2.5.4', ...FAST });
    try {
      const sup = await launch(sim);
      const step = { provider: 'claude_code', agent: 'dev', session_name: sup.session_name, caller_id: sup.id };
      const err = await call(sim, 'POST', '/terminals/run-step', { body: JSON.stringify({ ...step, prompt: '__mock_error__', timeout: 30 }) });
      assert.deepEqual(err.json.detail, { message: `terminal ${err.json.detail.terminal_id} reached ERROR status`, kind: 'error', terminal_id: err.json.detail.terminal_id });
      assert.equal(err.status, 502);
      const slow = await call(sim, 'POST', '/terminals/run-step', { body: JSON.stringify({ ...step, prompt: '__mock_sleep_30', timeout: 5 }) });
      assert.equal(slow.status, 504);
      assert.deepEqual(slow.json.detail, { message: `step on terminal ${slow.json.detail.terminal_id} did not complete within 5.0s`, kind: 'timeout', terminal_id: slow.json.detail.terminal_id });
      for (const w of [err.json.detail.terminal_id, slow.json.detail.terminal_id]) assert.equal((await call(sim, 'GET', `/terminals/${w}`)).status, 200, 'kept');
      const before = sim.snapshot().sessions.length;
      assert.equal((await call(sim, 'POST', '/terminals/run-step', { body: JSON.stringify({ provider: 'kiro_cli', agent: 'a', prompt: 'p' }) })).status, 200);
      assert.equal(sim.snapshot().sessions.length, before, 'its own session went with its worker');
      const missing = await call(sim, 'POST', '/terminals/run-step', { body: JSON.stringify({ provider: 'kiro_cli', agent: 'a' }) });
      assert.deepEqual([missing.status, missing.json.detail[0].loc], [422, ['body', 'prompt']]);
    } finally {
      await sim.close();
    }
  });

  it('2.1.1 has no run-step route: 405 (the path matches GET/DELETE /terminals/{id})', async () => {
    const sim = await startCaoSimulator({ version: '2.1.1', ...FAST });
    try {
      const r = await call(sim, 'POST', '/terminals/run-step', { body: JSON.stringify({ provider: 'kiro_cli', agent: 'a', prompt: 'p' }) });
      assert.deepEqual([r.status, r.json], [405, { detail: 'Method Not Allowed' }]);
    } finally {
      await sim.close();
    }
  });
});

describe('CAO simulator, token auth', () => {
  it('needs the bearer token on every request', async () => {
    const sim = await startCaoSimulator({ token: 's3cret', ...FAST });
    try {
      const none = await call(sim, 'GET', '/sessions');
      assert.equal(none.status, 401);
      assert.equal(none.headers.get('www-authenticate'), 'Bearer');
      assert.equal((await call(sim, 'GET', '/sessions', { token: 'wrong' })).status, 401);
      assert.deepEqual((await call(sim, 'GET', '/sessions', { token: 's3cret' })).json, []);
    } finally {
      await sim.close();
    }
  });
});
