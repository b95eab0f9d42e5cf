/**
 * Gateway classification rules: recorded CAO exchange sequences (HEAD and v2.0.0 shapes) in,
 * exact CaoEvents out; then each CAO version's simulator driven directly (no proxy) with every
 * real request/response pair fed to the classifier.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { type CaoEvent, validateCaoEvent } from '../src/core/events.ts';
import { hrTimeToMillis, toHrTime } from '../src/core/time.ts';
import {
  type ClassifiedExchange,
  ExchangeClassifier,
  senderFromMessage,
  shouldCapture,
} from '../src/sources/classify.ts';
import { startCaoSimulator } from '../src/demo/cao-simulator.ts';
import type { CaoSimulator, CaoVersion } from '../src/demo/cao-simulator.ts';

const S = 'cao-3f2a9c1d';
const SUP = 'a1b2c3d4';
const W = 'e5f6a7b8';
const H = '0badc0de';
const T0 = Date.parse('2026-08-22T10:00:00.000Z');

// ---- recorded shapes ----

function headTerminal(id: string, agent: string, provider: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id, name: `${agent}-1a2b`, provider, session_name: S, agent_profile: agent, caller_id: null, allowed_tools: null,
    engine: null, shell_command: 'bash', group: null, metadata: null, status: 'idle',
    last_active: '2026-08-22T12:00:00.123000', ...extra,
  };
}
function v2Terminal(id: string, agent: string, provider: string, status = 'idle'): Record<string, unknown> {
  return { id, name: `${agent}-1a2b`, provider, session_name: S, agent_profile: agent, status, last_active: '2026-08-22T12:00:00.123000' };
}

interface Call {
  status: number;
  /** A JSON value, or a raw string sent as is. */
  req?: unknown;
  res?: unknown;
  /** ms after T0 the request arrived (default: one more than the previous call). */
  at?: number;
}

const body = (v: unknown): Buffer | undefined =>
  v === undefined ? undefined : Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));

/** Feeds recorded exchanges to one classifier, checking every event it emits. */
class Recording {
  readonly c: ExchangeClassifier;
  #clock = T0;
  constructor(c = new ExchangeClassifier()) {
    this.c = c;
  }
  exchange(method: string, target: string, call: Call): ClassifiedExchange {
    const url = new URL(target, 'http://127.0.0.1:9889');
    this.#clock = call.at !== undefined ? T0 + call.at : this.#clock + 1;
    return {
      method, path: url.pathname, query: url.searchParams, requestBody: body(call.req), status: call.status,
      responseBody: body(call.res), startedAt: new Date(this.#clock), finishedAt: new Date(this.#clock + 5),
    };
  }
  /** onRequest then onExchange, as the proxy calls them; returns both results (time stripped). */
  feed(method: string, target: string, call: Call): CaoEvent[] {
    const x = this.exchange(method, target, call);
    const { status: _s, responseBody: _r, ...arrived } = x;
    return [...checked(this.c.onRequest(arrived)), ...checked(this.c.onExchange(x))];
  }
}

/** Every event is valid, from the gateway, timed; returns them without `time` for deepEqual. */
function checked(events: CaoEvent[]): CaoEvent[] {
  return events.map((e) => {
    assert.deepEqual(validateCaoEvent(e), e, 'an emitted event passes validateCaoEvent unchanged');
    assert.equal(e.source, 'gateway');
    assert.ok(Array.isArray(e.time) && e.time.length === 2, 'timed (an HrTime, sub-millisecond)');
    const { time: _t, ...rest } = e;
    return rest;
  });
}

const G = { source: 'gateway' } as const;

// ---- unit tests ----

describe('classification of recorded CAO exchanges', () => {
  describe('supervisor launch', () => {
    it('HEAD: POST /sessions 201 → session_created + terminal_created', () => {
      const r = new Recording();
      assert.deepEqual(r.feed('POST', '/sessions?agent_profile=supervisor&working_directory=/tmp', {
        status: 201, res: headTerminal(SUP, 'supervisor', 'kiro_cli'),
      }), [
        { type: 'session_created', sessionName: S, ...G },
        { type: 'terminal_created', sessionName: S, terminalId: SUP, agentName: 'supervisor', provider: 'kiro_cli', ...G },
      ]);
    });

    it('HEAD: an initial_message is the new terminal\'s first task (assign unless the body names a type)', () => {
      const r = new Recording();
      assert.deepEqual(r.feed('POST', '/sessions?agent_profile=supervisor&session_name=3f2a9c1d', {
        status: 201, req: { initial_message: 'Plan the release' }, res: headTerminal(SUP, 'supervisor', 'kiro_cli', { status: 'unknown' }),
      }), [
        { type: 'session_created', sessionName: S, ...G },
        { type: 'terminal_created', sessionName: S, terminalId: SUP, agentName: 'supervisor', provider: 'kiro_cli', ...G },
        { type: 'message_sent', orchestrationType: 'assign', phase: 'dispatched', sessionName: S, receiver: SUP, message: 'Plan the release', ...G },
      ]);
      const typed = r.feed('POST', '/sessions?agent_profile=reviewer', {
        status: 201,
        req: { initial_message: 'Review it', initial_message_orchestration_type: 'handoff' },
        res: headTerminal(W, 'reviewer', 'kiro_cli', { status: 'unknown' }),
      });
      assert.deepEqual(typed[2], {
        type: 'message_sent', orchestrationType: 'handoff', phase: 'dispatched', sessionName: S, receiver: W, message: 'Review it', ...G,
      });
      const envOnly = r.feed('POST', '/sessions?agent_profile=x', { status: 201, req: { env_vars: { A: 'b' } }, res: headTerminal(H, 'x', 'kiro_cli') });
      assert.deepEqual(envOnly.map((e) => e.type), ['session_created', 'terminal_created']);
    });

    it('v2.0.0: POST /sessions 201 → session_created + terminal_created; the query fills what the response lacks', () => {
      const r = new Recording();
      assert.deepEqual(r.feed('POST', '/sessions?provider=kiro_cli&agent_profile=supervisor&working_directory=/tmp', {
        status: 201, res: v2Terminal(SUP, 'supervisor', 'kiro_cli'),
      }), [
        { type: 'session_created', sessionName: S, ...G },
        { type: 'terminal_created', sessionName: S, terminalId: SUP, agentName: 'supervisor', provider: 'kiro_cli', ...G },
      ]);
      const sparse = { id: W, name: 'w', provider: 'q_cli', session_name: S, agent_profile: null, status: 'idle', last_active: null };
      assert.deepEqual(r.feed('POST', '/sessions?provider=q_cli&agent_profile=developer', { status: 201, res: sparse })[1], {
        type: 'terminal_created', sessionName: S, terminalId: W, agentName: 'developer', provider: 'q_cli', ...G,
      });
    });
  });

  describe('assign', () => {
    it('HEAD: deferred create with caller_id → terminal_created + assign dispatched', () => {
      const r = new Recording();
      const task = 'Implement the parser.\n\n[Assigned by terminal a1b2c3d4. When done, send results back to terminal a1b2c3d4 using send_message]';
      assert.deepEqual(r.feed('POST', `/sessions/${S}/terminals?provider=claude_code&agent_profile=developer&caller_id=${SUP}&defer_init=true`, {
        status: 201,
        req: { initial_message: task, initial_message_orchestration_type: 'assign' },
        res: headTerminal(W, 'developer', 'claude_code', { caller_id: SUP, status: 'unknown', shell_command: null }),
      }), [
        { type: 'terminal_created', sessionName: S, terminalId: W, agentName: 'developer', provider: 'claude_code', ...G },
        { type: 'message_sent', orchestrationType: 'assign', phase: 'dispatched', sessionName: S, sender: SUP, receiver: W, message: task, ...G },
      ]);
      // Later inputs to the worker without orchestration_type (answer_user_prompt, a human) are not messages.
      assert.deepEqual(r.feed('POST', `/terminals/${W}/input?message=2&sender_id=${SUP}`, { status: 200, res: { success: true } }), []);
      assert.deepEqual(r.feed('POST', `/terminals/${W}/input?message=y`, { status: 200, res: { success: true } }), []);
    });

    it('HEAD: a create without defer_init carries no message', () => {
      const r = new Recording();
      assert.deepEqual(r.feed('POST', `/sessions/${S}/terminals?provider=claude_code&agent_profile=developer`, {
        status: 201, res: headTerminal(W, 'developer', 'claude_code'),
      }).map((e) => e.type), ['terminal_created']);
      // HEAD terminals (a caller_id key in their JSON) never follow the v2.0.0 pattern.
      assert.deepEqual(r.feed('POST', `/terminals/${W}/input?message=hi`, { status: 200, res: { success: true } }), []);
    });

    it('v2.0.0 pattern: the supervisor looks itself up, creates, sends input at once → assign from the supervisor', () => {
      const r = new Recording();
      r.feed('POST', '/sessions?provider=kiro_cli&agent_profile=supervisor', { status: 201, res: v2Terminal(SUP, 'supervisor', 'kiro_cli') });
      assert.deepEqual(r.feed('GET', `/terminals/${SUP}`, { status: 200, res: v2Terminal(SUP, 'supervisor', 'kiro_cli', 'processing') }), []);
      assert.deepEqual(r.feed('GET', `/terminals/${SUP}/working-directory`, { status: 200, res: { working_directory: '/repo' } }), []);
      assert.deepEqual(r.feed('POST', `/sessions/${S}/terminals?provider=kiro_cli&agent_profile=developer&working_directory=/repo`, {
        status: 201, res: v2Terminal(W, 'developer', 'kiro_cli'),
      }), [{ type: 'terminal_created', sessionName: S, terminalId: W, agentName: 'developer', provider: 'kiro_cli', ...G }]);
      assert.deepEqual(r.feed('POST', `/terminals/${W}/input?message=Implement+the+parser`, { status: 200, res: { success: true } }), [
        { type: 'message_sent', orchestrationType: 'assign', phase: 'dispatched', sender: SUP, receiver: W, message: 'Implement the parser', ...G },
      ]);
      // Only the first input is the task.
      assert.deepEqual(r.feed('POST', `/terminals/${W}/input?message=again`, { status: 200, res: { success: true } }), []);
    });

    it('v2.0.0 pattern: the sender comes from the [Assigned by terminal X…] suffix, else it is unknown', () => {
      const r = new Recording();
      const suffixed = `Do it.\n\n[Assigned by terminal ${SUP}. When done, send results back to terminal ${SUP} using send_message]`;
      r.feed('POST', `/sessions/${S}/terminals?provider=kiro_cli&agent_profile=developer`, { status: 201, res: v2Terminal(W, 'developer', 'kiro_cli') });
      assert.deepEqual(r.feed('POST', `/terminals/${W}/input?message=${encodeURIComponent(suffixed)}`, { status: 200, res: { success: true } }), [
        { type: 'message_sent', orchestrationType: 'assign', phase: 'dispatched', sender: SUP, receiver: W, message: suffixed, ...G },
      ]);
      r.feed('POST', `/sessions/${S}/terminals?provider=kiro_cli&agent_profile=developer`, { status: 201, res: v2Terminal(H, 'developer', 'kiro_cli') });
      assert.deepEqual(r.feed('POST', `/terminals/${H}/input?message=Do+it`, { status: 200, res: { success: true } }), [
        { type: 'message_sent', orchestrationType: 'assign', phase: 'dispatched', receiver: H, message: 'Do it', ...G },
      ]);
    });

    it('v2.0.0 pattern: a stale working-directory lookup (or one in another session) names no caller', () => {
      // Which session the supervisor is in is the core's knowledge: here, another session.
      const r = new Recording(new ExchangeClassifier({ sessionOfTerminal: (id) => (id === SUP ? 'cao-other' : undefined) }));
      r.feed('GET', `/terminals/${SUP}/working-directory`, { status: 200, res: { working_directory: '/' }, at: 0 });
      r.feed('POST', `/sessions/${S}/terminals?provider=kiro_cli&agent_profile=developer`, { status: 201, res: v2Terminal(W, 'developer', 'kiro_cli'), at: 60_000 });
      assert.equal(r.feed('POST', `/terminals/${W}/input?message=x`, { status: 200, res: { success: true } })[0]?.sender, undefined);

      r.feed('GET', `/terminals/${SUP}/working-directory`, { status: 200, res: { working_directory: '/' } });
      r.feed('POST', `/sessions/${S}/terminals?provider=kiro_cli&agent_profile=developer`, { status: 201, res: v2Terminal(H, 'developer', 'kiro_cli') });
      assert.equal(r.feed('POST', `/terminals/${H}/input?message=x`, { status: 200, res: { success: true } })[0]?.sender, undefined);
    });

    it('plain input to a terminal not created through the gateway is raw user input', () => {
      const r = new Recording();
      assert.deepEqual(r.feed('POST', `/terminals/${SUP}/input?message=hello`, { status: 200, res: { success: true } }), []);
      r.feed('POST', '/sessions?provider=kiro_cli&agent_profile=supervisor', { status: 201, res: v2Terminal(W, 'supervisor', 'kiro_cli') });
      assert.deepEqual(r.feed('POST', `/terminals/${W}/input?message=hello`, { status: 200, res: { success: true } }), []);
    });
  });

  describe('handoff', () => {
    const body = {
      provider: 'claude_code', agent: 'reviewer', prompt: 'Review the diff', teardown: true, timeout: 600,
      use_worktree: false, session_name: S, caller_id: SUP,
    };
    // The worker does not exist yet: the dispatch names the receiver's agent profile only.
    const dispatched = {
      type: 'message_sent', orchestrationType: 'handoff', phase: 'dispatched', sessionName: S,
      sender: SUP, receiverAgent: 'reviewer', message: 'Review the diff', ...G,
    } as const;

    it('HEAD run-step 200 → dispatched on arrival, completed with the worker\'s last message', () => {
      const r = new Recording();
      const x = r.exchange('POST', '/terminals/run-step', { status: 200, req: body });
      const { status: _s, responseBody: _r, ...arrived } = x;
      assert.deepEqual(checked(r.c.onRequest(arrived)), [dispatched]);
      const done = { ...x, responseBody: body === undefined ? undefined : Buffer.from(JSON.stringify({
        terminal_id: H, last_message: 'LGTM', status: 'completed', replayed: false,
      })) };
      assert.deepEqual(checked(r.c.onExchange(done)), [{
        type: 'message_sent', orchestrationType: 'handoff', phase: 'completed', sessionName: S, senderAgent: 'reviewer',
        sender: H, receiver: SUP, message: 'LGTM', ...G,
      }]);
    });

    it('HEAD run-step 504 timeout / 502 error → failed; other statuses → nothing after the dispatch', () => {
      const r = new Recording();
      const failed = (message: string, worker?: string) => ({
        type: 'message_sent', orchestrationType: 'handoff', phase: 'failed', sessionName: S, senderAgent: 'reviewer',
        ...(worker ? { sender: worker } : {}), receiver: SUP, message, ...G,
      });
      assert.deepEqual(r.feed('POST', '/terminals/run-step', {
        status: 504, req: body, res: { detail: { message: `terminal ${H} did not complete within 600.0s`, kind: 'timeout', terminal_id: H } },
      }), [dispatched, failed(`terminal ${H} did not complete within 600.0s`, H)]);
      assert.deepEqual(r.feed('POST', '/terminals/run-step', {
        status: 502, req: body, res: { detail: { message: `terminal ${H} entered ERROR state`, kind: 'error', terminal_id: H } },
      }), [dispatched, failed(`terminal ${H} entered ERROR state`, H)]);
      assert.deepEqual(r.feed('POST', '/terminals/run-step', {
        status: 504, req: body, res: { detail: { message: 'input blocked', kind: 'timeout', terminal_id: null } },
      }), [dispatched, failed('input blocked')]);
      for (const [status, res] of [
        [500, { detail: 'Failed to run step: boom' }],
        [404, { detail: "Session 'cao-x' not found" }],
        [409, { detail: { message: 'diverged', kind: 'diverged', step_id: 's1' } }],
        [422, { detail: [{ type: 'missing', loc: ['body', 'prompt'], msg: 'Field required' }] }],
      ] as const) {
        assert.deepEqual(r.feed('POST', '/terminals/run-step', { status, req: body, res }), [dispatched], `status ${status}`);
      }
    });

    it('HEAD run-step from outside a CAO terminal: no caller, so only the worker\'s completion is an event', () => {
      const r = new Recording();
      const { caller_id: _c, session_name: _n, ...outside } = body;
      assert.deepEqual(r.feed('POST', '/terminals/run-step', {
        status: 200, req: outside, res: { terminal_id: H, last_message: 'ok', status: 'completed', replayed: false },
      }), [{
        type: 'message_sent', orchestrationType: 'handoff', phase: 'completed', senderAgent: 'reviewer', sender: H, message: 'ok', ...G,
      }]);
    });

    it('workflow run-step (env_vars with CAO_WORKFLOW_RUN_ID) → no message events', () => {
      const r = new Recording();
      const step = { ...body, env_vars: { CAO_WORKFLOW_RUN_ID: 'run-7', CAO_WORKFLOW_STEP_ID: 'build' } };
      assert.deepEqual(r.feed('POST', '/terminals/run-step', {
        status: 200, req: step, res: { terminal_id: H, last_message: 'built', status: 'completed', replayed: false },
      }), []);
      assert.deepEqual(r.feed('POST', '/terminals/run-step', {
        status: 504, req: step, res: { detail: { message: 't', kind: 'timeout', terminal_id: H } },
      }), []);
    });

    it('v2.0.0 pattern: create, polls, input → dispatched; polls, output?mode=last → completed once', () => {
      const r = new Recording();
      r.feed('POST', '/sessions?provider=kiro_cli&agent_profile=supervisor', { status: 201, res: v2Terminal(SUP, 'supervisor', 'kiro_cli') });
      r.feed('GET', `/terminals/${SUP}`, { status: 200, res: v2Terminal(SUP, 'supervisor', 'kiro_cli', 'processing') });
      r.feed('GET', `/terminals/${SUP}/working-directory`, { status: 200, res: { working_directory: '/repo' } });
      assert.deepEqual(r.feed('POST', `/sessions/${S}/terminals?provider=kiro_cli&agent_profile=reviewer&working_directory=/repo`, {
        status: 201, res: v2Terminal(H, 'reviewer', 'kiro_cli'),
      }), [{ type: 'terminal_created', sessionName: S, terminalId: H, agentName: 'reviewer', provider: 'kiro_cli', ...G }]);
      for (let i = 0; i < 2; i++) {
        assert.deepEqual(r.feed('GET', `/terminals/${H}`, { status: 200, res: v2Terminal(H, 'reviewer', 'kiro_cli', 'idle') }), []);
      }
      assert.deepEqual(r.feed('POST', `/terminals/${H}/input?message=Review+the+diff`, { status: 200, res: { success: true }, at: 2_100 }), [
        { type: 'message_sent', orchestrationType: 'handoff', phase: 'dispatched', sender: SUP, receiver: H, message: 'Review the diff', ...G },
      ]);
      r.feed('GET', `/terminals/${H}`, { status: 200, res: v2Terminal(H, 'reviewer', 'kiro_cli', 'processing') });
      // Someone reading the output while the worker still works is not the result.
      assert.deepEqual(r.feed('GET', `/terminals/${H}/output?mode=last`, { status: 200, res: { output: 'half', mode: 'last' } }), []);
      r.feed('GET', `/terminals/${H}`, { status: 200, res: v2Terminal(H, 'reviewer', 'kiro_cli', 'completed') });
      assert.deepEqual(r.feed('GET', `/terminals/${H}/output?mode=full`, { status: 200, res: { output: 'all', mode: 'full' } }), []);
      assert.deepEqual(r.feed('GET', `/terminals/${H}/output?mode=last`, { status: 200, res: { output: 'LGTM', mode: 'last' } }), [{
        type: 'message_sent', orchestrationType: 'handoff', phase: 'completed', sender: H, receiver: SUP, message: 'LGTM', ...G,
      }]);
      assert.deepEqual(r.feed('GET', `/terminals/${H}/output?mode=last`, { status: 200, res: { output: 'LGTM', mode: 'last' } }), []);
      assert.deepEqual(r.feed('POST', `/terminals/${H}/exit`, { status: 200, res: { success: true } }), []);
    });

    it('v2.0.0 pattern: a codex worker\'s [CAO Handoff] banner names the supervisor', () => {
      const r = new Recording();
      const banner = `[CAO Handoff] Supervisor terminal ID: ${SUP}. This is a blocking handoff — do the work.\n\nReview`;
      r.feed('POST', `/sessions/${S}/terminals?provider=codex&agent_profile=reviewer`, { status: 201, res: v2Terminal(H, 'reviewer', 'codex') });
      r.feed('GET', `/terminals/${H}`, { status: 200, res: v2Terminal(H, 'reviewer', 'codex') });
      assert.deepEqual(r.feed('POST', `/terminals/${H}/input?message=${encodeURIComponent(banner)}`, { status: 200, res: { success: true } }), [
        { type: 'message_sent', orchestrationType: 'handoff', phase: 'dispatched', sender: SUP, receiver: H, message: banner, ...G },
      ]);
      assert.deepEqual(r.feed('GET', `/terminals/${H}/output?mode=last`, { status: 200, res: { output: 'done', mode: 'last' } })[0]?.receiver, SUP);
    });

    it('v2.1–v2.2: input with orchestration_type is a message of that type; a handoff\'s result completes it', () => {
      const r = new Recording();
      assert.deepEqual(r.feed('POST', `/terminals/${H}/input?message=Review&sender_id=${SUP}&orchestration_type=handoff`, { status: 200, res: { success: true } }), [
        { type: 'message_sent', orchestrationType: 'handoff', phase: 'dispatched', sender: SUP, receiver: H, message: 'Review', ...G },
      ]);
      assert.deepEqual(r.feed('GET', `/terminals/${H}/output?mode=last`, { status: 200, res: { output: 'ok', mode: 'last' } }), [
        { type: 'message_sent', orchestrationType: 'handoff', phase: 'completed', sender: H, receiver: SUP, message: 'ok', ...G },
      ]);
      assert.deepEqual(r.feed('POST', `/terminals/${W}/input?message=Build&sender_id=${SUP}&orchestration_type=assign`, { status: 200, res: { success: true } }), [
        { type: 'message_sent', orchestrationType: 'assign', phase: 'dispatched', sender: SUP, receiver: W, message: 'Build', ...G },
      ]);
      assert.deepEqual(r.feed('GET', `/terminals/${W}/output?mode=last`, { status: 200, res: { output: 'ok', mode: 'last' } }), []);
    });
  });

  describe('send_message, deletes', () => {
    it('POST /terminals/{id}/inbox/messages → send_message dispatched (sender from the query, else the response)', () => {
      const r = new Recording();
      r.feed('POST', '/sessions?provider=kiro_cli&agent_profile=supervisor', { status: 201, res: v2Terminal(SUP, 'supervisor', 'kiro_cli') });
      const res = { success: true, message_id: 3, sender_id: W, receiver_id: SUP, created_at: '2026-08-22T12:00:01.000000' };
      assert.deepEqual(r.feed('POST', `/terminals/${SUP}/inbox/messages?sender_id=${W}&message=done`, { status: 200, res }), [
        { type: 'message_sent', orchestrationType: 'send_message', phase: 'dispatched', sender: W, receiver: SUP, message: 'done', ...G },
      ]);
      assert.deepEqual(r.feed('POST', `/terminals/${H}/inbox/messages?message=hi`, { status: 200, res: { ...res, sender_id: W, receiver_id: H } }), [
        { type: 'message_sent', orchestrationType: 'send_message', phase: 'dispatched', sender: W, receiver: H, message: 'hi', ...G },
      ]);
    });

    it('a 2xx that does not report success is no event: inbox, input (typed and v2.0 pattern), terminal delete', () => {
      const r = new Recording();
      r.feed('POST', '/sessions?provider=kiro_cli&agent_profile=supervisor', { status: 201, res: v2Terminal(SUP, 'supervisor', 'kiro_cli') });
      r.feed('POST', `/sessions/${S}/terminals?provider=kiro_cli&agent_profile=developer`, { status: 201, res: v2Terminal(W, 'developer', 'kiro_cli') });
      // inbox: {success: false}, an empty body, a body that is not CAO's answer
      assert.deepEqual(r.feed('POST', `/terminals/${SUP}/inbox/messages?sender_id=${W}&message=done`, { status: 200, res: { success: false } }), []);
      assert.deepEqual(r.feed('POST', `/terminals/${SUP}/inbox/messages?sender_id=${W}&message=done`, { status: 200, res: '' }), []);
      assert.deepEqual(r.feed('POST', `/terminals/${SUP}/inbox/messages?sender_id=${W}&message=done`, { status: 200, res: 'ok' }), []);
      // input: CAO answers {"success": false} when send_input did not send
      assert.deepEqual(r.feed('POST', `/terminals/${W}/input?message=Build&sender_id=${SUP}&orchestration_type=assign`, { status: 200, res: { success: false } }), []);
      assert.deepEqual(r.feed('POST', `/terminals/${W}/input?message=Implement+the+parser`, { status: 200, res: { success: false } }), []);
      // DELETE /terminals/{unknown}: CAO 2.4.1 answers 200 {"success": false}
      assert.deepEqual(r.feed('DELETE', `/terminals/${H}`, { status: 200, res: { success: false } }), []);
      // and the same requests answered with success are events
      assert.equal(r.feed('POST', `/terminals/${SUP}/inbox/messages?sender_id=${W}&message=done`, { status: 200, res: { success: true, message_id: 1 } }).length, 1);
      assert.equal(r.feed('POST', `/terminals/${W}/input?message=Implement+the+parser`, { status: 200, res: { success: true } })[0]?.orchestrationType, 'assign');
    });

    it('DELETE /terminals/{id} → terminal_killed only on {success: true}', () => {
      const r = new Recording();
      r.feed('POST', `/sessions/${S}/terminals?provider=kiro_cli&agent_profile=developer`, { status: 201, res: v2Terminal(W, 'developer', 'kiro_cli') });
      assert.deepEqual(r.feed('DELETE', `/terminals/${W}`, { status: 200, res: { success: true } }), [
        { type: 'terminal_killed', terminalId: W, ...G },
      ]);
      assert.deepEqual(r.feed('DELETE', `/terminals/${H}`, { status: 200, res: { success: true } }), [
        { type: 'terminal_killed', terminalId: H, ...G },
      ]);
      assert.deepEqual(r.feed('DELETE', `/terminals/${H}`, { status: 200, res: { success: false } }), []);
      assert.deepEqual(r.feed('DELETE', `/terminals/${H}`, {
        status: 409, res: { detail: `cleanup deferred for terminal '${H}'; retry delete after residual Grok processes exit` },
      }), []);
    });

    it('DELETE /sessions/{name} → session_killed (the core ends the session\'s terminals with it)', () => {
      const r = new Recording();
      r.feed('POST', '/sessions?agent_profile=supervisor', { status: 201, res: headTerminal(SUP, 'supervisor', 'kiro_cli') });
      r.feed('POST', `/sessions/${S}/terminals?provider=claude_code&agent_profile=developer`, { status: 201, res: headTerminal(W, 'developer', 'claude_code') });
      const deleted = { success: true, deleted: [S], errors: [] };
      assert.deepEqual(r.feed('DELETE', `/sessions/${S}`, { status: 200, res: deleted }), [{ type: 'session_killed', sessionName: S, ...G }]);
      // HEAD answers 200 for a session that no longer exists: the core judges it a repeat.
      assert.deepEqual(r.feed('DELETE', `/sessions/${S}`, { status: 200, res: deleted }), [{ type: 'session_killed', sessionName: S, ...G }]);
      assert.deepEqual(r.feed('DELETE', `/sessions/${S}`, { status: 200, res: { success: true, deleted: [], errors: [{ terminal_id: W }] } }), []);
      assert.deepEqual(r.feed('DELETE', `/sessions/${S}`, { status: 409, res: { detail: 'cleanup deferred' } }), []);
    });

    it('v2.0.0: DELETE /sessions/{name} of a missing session is a 404 → nothing', () => {
      const r = new Recording();
      assert.deepEqual(r.feed('DELETE', '/sessions/cao-nope', { status: 404, res: { detail: "Session 'cao-nope' not found" } }), []);
    });
  });

  describe('failures and garbage', () => {
    it('4xx/5xx answers are no events, and do not consume the v2.0.0 first input', () => {
      const r = new Recording();
      for (const status of [400, 404, 409, 422, 500, 502]) {
        const detail = { detail: 'no' };
        assert.deepEqual(r.feed('POST', '/sessions?agent_profile=supervisor', { status, res: detail }), [], `POST /sessions ${status}`);
        assert.deepEqual(r.feed('POST', `/sessions/${S}/terminals?provider=kiro_cli&agent_profile=d&caller_id=${SUP}&defer_init=true`, {
          status, req: { initial_message: 'x', initial_message_orchestration_type: 'assign' }, res: detail,
        }), [], `create ${status}`);
        assert.deepEqual(r.feed('POST', `/terminals/${SUP}/inbox/messages?sender_id=${W}&message=x`, { status, res: detail }), []);
        assert.deepEqual(r.feed('POST', `/terminals/${SUP}/input?message=x&sender_id=${W}&orchestration_type=assign`, { status, res: detail }), []);
        assert.deepEqual(r.feed('DELETE', `/terminals/${SUP}`, { status, res: detail }), []);
        assert.deepEqual(r.feed('DELETE', `/sessions/${S}`, { status, res: detail }), []);
      }
      r.feed('POST', `/sessions/${S}/terminals?provider=kiro_cli&agent_profile=developer`, { status: 201, res: v2Terminal(W, 'developer', 'kiro_cli') });
      assert.deepEqual(r.feed('POST', `/terminals/${W}/input?message=x`, { status: 500, res: { detail: 'tmux' } }), []);
      assert.deepEqual(r.feed('POST', `/terminals/${W}/input?message=x`, { status: 200, res: { success: true } }).map((e) => e.orchestrationType), ['assign']);
    });

    it('unparseable or truncated bodies are no events, never a throw', () => {
      const r = new Recording();
      const garbage = ['not json', '{"id": "a1b2c3d4", "session_na', '[1,2]', 'null', '"str"', '\u0000\u00ff'];
      for (const g of garbage) {
        assert.deepEqual(r.feed('POST', '/sessions?agent_profile=s', { status: 201, res: g }), []);
        assert.deepEqual(r.feed('POST', `/sessions/${S}/terminals?agent_profile=s`, { status: 201, res: g }), []);
        assert.deepEqual(r.feed('POST', '/terminals/run-step', { status: 200, req: g, res: { terminal_id: H, last_message: 'x' } }), []);
        assert.deepEqual(r.feed('POST', '/terminals/run-step', {
          status: 200, req: { agent: 'a', prompt: 'p', caller_id: SUP, provider: 'x' }, res: g,
        }).map((e) => e.phase), ['dispatched']);
        assert.deepEqual(r.feed('DELETE', `/terminals/${W}`, { status: 200, res: g }), []);
        assert.deepEqual(r.feed('DELETE', `/sessions/${S}`, { status: 200, res: g }), []);
        assert.deepEqual(r.feed('POST', `/terminals/${W}/inbox/messages?sender_id=${SUP}&message=x`, { status: 200, res: g }), []);
        assert.deepEqual(r.feed('GET', `/sessions/${S}`, { status: 200, res: g }), []);
        assert.deepEqual(r.feed('GET', `/terminals/${W}`, { status: 200, res: g }), []);
      }
      // Wrong types inside valid JSON.
      assert.deepEqual(r.feed('POST', '/sessions', { status: 201, res: { id: 42, session_name: S } }), []);
      assert.deepEqual(r.feed('POST', '/terminals/run-step', {
        status: 502, req: { caller_id: SUP, prompt: 'p' }, res: { detail: 'plain string' },
      }).map((e) => e.phase), ['dispatched']);
      assert.deepEqual(r.feed('GET', `/sessions/${S}`, { status: 200, res: { terminals: [null, 3, { id: 7 }, 'x'] } }), []);
      // Exotic input objects.
      const c = new ExchangeClassifier();
      assert.deepEqual(c.onExchange({} as ClassifiedExchange), []);
      assert.deepEqual(c.onRequest(null as unknown as ClassifiedExchange), []);
      assert.deepEqual(c.onExchange({ method: 'POST', path: '/sessions', status: 201, startedAt: new Date() } as ClassifiedExchange), []);
      assert.deepEqual(r.feed('DELETE', '/sessions/%E0%A4%A', { status: 200, res: { success: true } }), [
        { type: 'session_killed', sessionName: '%E0%A4%A', ...G },
      ]);
    });

    it('GETs, exit, workflows and unknown routes are no events', () => {
      const r = new Recording();
      const routes: [string, string][] = [
        ['GET', '/health'], ['GET', '/sessions'], ['GET', `/sessions/${S}/terminals`], ['GET', `/terminals/${W}`],
        ['GET', `/terminals/${W}/inbox/messages?limit=10`], ['POST', `/terminals/${W}/exit`], ['POST', '/workflows/runs'],
        ['GET', '/workflows/runs/r1/events'], ['POST', `/terminals/${W}/key?key=Enter`], ['PATCH', `/terminals/${W}/group`],
        ['POST', '/flows/daily/run'], ['GET', '/agents/profiles'],
      ];
      for (const [method, target] of routes) {
        assert.deepEqual(r.feed(method, target, { status: 200, res: { success: true, id: W, session_name: S } }), [], `${method} ${target}`);
      }
    });
  });

  describe('capture predicate, times, bounds', () => {
    it('shouldCapture selects only the routes whose bodies the rules read', () => {
      const yes: [string, string][] = [
        ['POST', '/sessions'], ['DELETE', `/sessions/${S}`], ['POST', `/sessions/${S}/terminals`],
        ['POST', '/terminals/run-step'], ['GET', `/terminals/${W}`], ['GET', `/terminals/${W}/output`],
        ['DELETE', `/terminals/${W}`], ['POST', `/terminals/${W}/inbox/messages`], ['post', '/sessions'],
        ['POST', `/terminals/${W}/input`], // for its {success} answer
      ];
      const no: [string, string][] = [
        ['GET', '/sessions'], ['GET', '/health'], ['POST', `/terminals/${W}/exit`],
        ['GET', `/terminals/${W}/inbox/messages`], ['GET', `/terminals/${W}/working-directory`], ['GET', `/sessions/${S}/terminals`],
        ['POST', '/workflows/runs'], ['GET', `/terminals/${W}/ws`], ['PUT', '/sessions'], ['GET', '/sessions/'], ['POST', '/sessions/a/b/c'],
        ['GET', `/sessions/${S}`],
      ];
      for (const [m, p] of yes) assert.equal(shouldCapture(m, p), true, `${m} ${p}`);
      for (const [m, p] of no) assert.equal(shouldCapture(m, p), false, `${m} ${p}`);
    });

    it('the classifier\'s own capture copies output only of terminals awaiting a handoff result', () => {
      const r = new Recording();
      assert.equal(r.c.capture('GET', `/terminals/${H}/output`), false);
      assert.equal(r.c.capture('POST', '/sessions'), true);
      assert.equal(r.c.capture('POST', `/terminals/${H}/input`), true);
      r.feed('POST', `/terminals/${H}/input?message=x&sender_id=${SUP}&orchestration_type=handoff`, { status: 200, res: { success: true } });
      assert.equal(r.c.capture('GET', `/terminals/${H}/output`), true);
      r.feed('GET', `/terminals/${H}/output?mode=last`, { status: 200, res: { output: 'x', mode: 'last' } });
      assert.equal(r.c.capture('GET', `/terminals/${H}/output`), false);
    });

    it('dispatch-type events carry the arrival time, the others the end of the exchange (or now)', () => {
      const c = new ExchangeClassifier();
      const startedAt = new Date(T0);
      const finishedAt = new Date(T0 + 1234);
      const run = { method: 'POST', path: '/terminals/run-step', query: new URLSearchParams(), startedAt, finishedAt,
        requestBody: Buffer.from(JSON.stringify({ caller_id: SUP, prompt: 'p', agent: 'a' })) };
      assert.deepEqual(c.onRequest(run).map((e) => e.time), [toHrTime(startedAt)]);
      const done = c.onExchange({ ...run, status: 200, responseBody: Buffer.from(JSON.stringify({ terminal_id: H, last_message: 'm' })) });
      assert.deepEqual(done.map((e) => e.time), [toHrTime(finishedAt)]);
      const before = Date.now();
      const created = c.onExchange({
        method: 'POST', path: '/sessions', query: new URLSearchParams(), startedAt, status: 201,
        requestBody: Buffer.from(JSON.stringify({ initial_message: 'go' })),
        responseBody: Buffer.from(JSON.stringify(headTerminal(SUP, 's', 'kiro_cli'))),
      });
      assert.deepEqual(created.map((e) => e.type), ['session_created', 'terminal_created', 'message_sent']);
      assert.ok(hrTimeToMillis(toHrTime(created[0]!.time!)!) >= before, 'no finishedAt: now');
      assert.deepEqual(created[2]!.time, created[1]!.time, 'a task handed over with a create is dispatched when its receiver exists');
    });

    it('memory is bounded by maxTracked', () => {
      const r = new Recording(new ExchangeClassifier({ maxTracked: 2 }));
      for (const id of [SUP, W, H]) {
        r.feed('POST', `/sessions/${S}/terminals?provider=kiro_cli&agent_profile=d`, { status: 201, res: v2Terminal(id, 'd', 'kiro_cli') });
      }
      assert.equal(r.c.trackedTerminals, 2);
      for (let i = 0; i < 50; i++) {
        r.feed('GET', `/terminals/${i.toString(16).padStart(8, '0')}`, { status: 200, res: v2Terminal('x', 'd', 'kiro_cli') });
      }
      assert.equal(r.c.trackedTerminals, 2);
    });

    it('senderFromMessage reads the markers CAO\'s MCP server writes', () => {
      assert.equal(senderFromMessage(`task\n\n[Assigned by terminal ${SUP}. When done, send results back to terminal ${SUP} using send_message]`), SUP);
      assert.equal(senderFromMessage(`hi\n\n[Message from terminal ${W}. Use send_message MCP tool for any follow-up work.]`), W);
      assert.equal(senderFromMessage(`[CAO Handoff] Supervisor terminal ID: ${H}. This is a blocking handoff`), H);
      assert.equal(senderFromMessage(`quote [Assigned by terminal ${W}. x]\n\n[Assigned by terminal ${SUP}. y]`), SUP);
      assert.equal(senderFromMessage('[Assigned by terminal unknown. When done…]'), undefined);
      assert.equal(senderFromMessage('[CAO Handoff] Supervisor terminal ID: unknown. x'), undefined);
      assert.equal(senderFromMessage('plain'), undefined);
      assert.equal(senderFromMessage(undefined), undefined);
    });
  });
});

// ---- integration: the simulator driven directly, every exchange fed to the classifier ----

interface Driven {
  status: number;
  json: any;
  events: CaoEvent[];
}

function driver(sim: CaoSimulator, c: ExchangeClassifier, capture: (m: string, p: string) => boolean) {
  return async (method: string, target: string, json?: unknown): Promise<Driven> => {
    const url = new URL(target, sim.url);
    const reqBody = json === undefined ? undefined : Buffer.from(JSON.stringify(json));
    const keep = capture(method, url.pathname);
    const arrived = { method, path: url.pathname, query: url.searchParams, requestBody: keep ? reqBody : undefined, startedAt: new Date() };
    const events = checked(c.onRequest(arrived));
    const res = await request(url, {
      method: method as 'GET', body: reqBody, headers: reqBody ? { 'content-type': 'application/json' } : {},
    });
    const raw = Buffer.from(await res.body.arrayBuffer());
    events.push(...checked(c.onExchange({
      ...arrived, status: res.statusCode, responseBody: keep ? raw : undefined, finishedAt: new Date(),
    })));
    return { status: res.statusCode, json: JSON.parse(raw.toString('utf8')), events };
  };
}

async function pollUntil(call: ReturnType<typeof driver>, id: string, statuses: string[]): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const r = await call('GET', `/terminals/${id}`);
    assert.deepEqual(r.events, []);
    if (statuses.includes(r.json.status)) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail(`terminal ${id} never reached ${statuses.join('|')}`);
}

async function withSim(version: CaoVersion, fn: (sim: CaoSimulator) => Promise<void>): Promise<void> {
  const sim = await startCaoSimulator({ version, initMs: 20, workMs: 20, timeScale: 0.01 });
  try {
    await fn(sim);
  } finally {
    await sim.close();
  }
}

describe('classification of real exchanges with the CAO simulator', () => {
  for (const version of ['2.4.1', '2.5.4'] as const) it(`${version}: launch, deferred assign, run-step handoff, workflow step, send_message, deletes`, () =>
    withSim(version, async (sim) => {
      const call = driver(sim, new ExchangeClassifier(), shouldCapture);

      const launch = await call('POST', '/sessions?agent_profile=supervisor');
      assert.equal(launch.status, 201);
      const sup: string = launch.json.id;
      const s: string = launch.json.session_name;
      assert.deepEqual(launch.events, [
        { type: 'session_created', sessionName: s, ...G },
        { type: 'terminal_created', sessionName: s, terminalId: sup, agentName: 'supervisor', provider: 'kiro_cli', ...G },
      ]);

      const task = `Write the tests.\n\n[Assigned by terminal ${sup}. When done, send results back to terminal ${sup} using send_message]`;
      const assign = await call('POST', `/sessions/${s}/terminals?provider=claude_code&agent_profile=developer&caller_id=${sup}&defer_init=true`,
        { initial_message: task, initial_message_orchestration_type: 'assign' });
      assert.equal(assign.status, 201);
      const worker: string = assign.json.id;
      assert.deepEqual(assign.events, [
        { type: 'terminal_created', sessionName: s, terminalId: worker, agentName: 'developer', provider: 'claude_code', ...G },
        { type: 'message_sent', orchestrationType: 'assign', phase: 'dispatched', sessionName: s, sender: sup, receiver: worker, message: task, ...G },
      ]);

      const step = { provider: 'claude_code', agent: 'reviewer', prompt: 'Review the diff', teardown: true, timeout: 60, use_worktree: false, session_name: s, caller_id: sup };
      const handoff = await call('POST', '/terminals/run-step', step);
      assert.equal(handoff.status, 200);
      const h: string = handoff.json.terminal_id;
      assert.deepEqual(handoff.events, [
        { type: 'message_sent', orchestrationType: 'handoff', phase: 'dispatched', sessionName: s, sender: sup, receiverAgent: 'reviewer', message: 'Review the diff', ...G },
        { type: 'message_sent', orchestrationType: 'handoff', phase: 'completed', sessionName: s, senderAgent: 'reviewer', sender: h, receiver: sup, message: handoff.json.last_message, ...G },
      ]);
      assert.match(handoff.json.last_message, /Review the diff/);

      const workflow = await call('POST', '/terminals/run-step', { ...step, env_vars: { CAO_WORKFLOW_RUN_ID: 'run-1' } });
      assert.equal(workflow.status, 200);
      assert.deepEqual(workflow.events, []);

      const msg = await call('POST', `/terminals/${sup}/inbox/messages?sender_id=${worker}&message=${encodeURIComponent('tests done')}`);
      assert.equal(msg.status, 200);
      assert.deepEqual(msg.events, [
        { type: 'message_sent', orchestrationType: 'send_message', phase: 'dispatched', sender: worker, receiver: sup, message: 'tests done', ...G },
      ]);

      assert.deepEqual((await call('POST', `/terminals/${sup}/input?message=hello`)).events, []);
      for (const [method, target, status] of [
        ['POST', '/terminals/deadbeef/input?message=x', 404],
        ['POST', `/terminals/deadbeef/inbox/messages?sender_id=${sup}&message=x`, 404],
        ['POST', '/sessions/cao-nope/terminals?provider=kiro_cli&agent_profile=x', 404],
        ['POST', `/sessions?agent_profile=x&session_name=${s}`, 400],
        ['POST', '/terminals/run-step', 422],
      ] as const) {
        const r = await call(method, target, target === '/terminals/run-step' ? { agent: 'x' } : undefined);
        assert.equal(r.status, status, target);
        assert.deepEqual(r.events, [], target);
      }

      const del = await call('DELETE', `/terminals/${worker}`);
      assert.deepEqual(del.events, [{ type: 'terminal_killed', terminalId: worker, ...G }]);
      assert.deepEqual((await call('DELETE', `/terminals/${worker}`)).events, [], 'a second delete: 409 (2.5.4) or {success: false} (2.4.1)');

      assert.deepEqual((await call('GET', `/sessions/${s}`)).events, []);
      const kill = await call('DELETE', `/sessions/${s}`);
      assert.equal(kill.status, 200);
      assert.deepEqual(kill.events, [{ type: 'session_killed', sessionName: s, ...G }]);
    }));

  it('run-step error and time-out (the stand-in CLI\'s __mock_error__ / __mock_sleep_N) are handoff failures', () =>
    withSim('2.5.4', async (sim) => {
      const call = driver(sim, new ExchangeClassifier(), shouldCapture);
      const launch = await call('POST', '/sessions?agent_profile=supervisor');
      const sup: string = launch.json.id;
      for (const [prompt, status] of [['__mock_error__', 502], ['__mock_sleep_30', 504]] as const) {
        const r = await call('POST', '/terminals/run-step', { provider: 'kiro_cli', agent: 'dev', prompt, timeout: 5, caller_id: sup, session_name: launch.json.session_name });
        assert.equal(r.status, status);
        const worker: string = r.json.detail.terminal_id;
        assert.deepEqual(r.events.map((e) => [e.phase, e.sender, e.senderAgent, e.receiver, e.receiverAgent, e.message]), [
          ['dispatched', sup, undefined, undefined, 'dev', prompt],
          ['failed', worker, 'dev', sup, undefined, status === 502 ? `terminal ${worker} reached ERROR status` : `step on terminal ${worker} did not complete within 5.0s`],
        ]);
      }
    }));

  it('2.1.1: assign and handoff as its MCP server types them (orchestration_type), the result read back', () =>
    withSim('2.1.1', async (sim) => {
      const c = new ExchangeClassifier();
      const call = driver(sim, c, (m, p) => c.capture(m, p));
      const launch = await call('POST', '/sessions?provider=kiro_cli&agent_profile=supervisor');
      const sup: string = launch.json.id;
      const s: string = launch.json.session_name;
      const w: string = (await call('POST', `/sessions/${s}/terminals?provider=kiro_cli&agent_profile=developer`)).json.id;
      await pollUntil(call, w, ['idle']);
      const assigned = await call('POST', `/terminals/${w}/input?message=Write%20it&sender_id=${sup}&orchestration_type=assign`);
      assert.deepEqual(assigned.events, [
        { type: 'message_sent', orchestrationType: 'assign', phase: 'dispatched', sender: sup, receiver: w, message: 'Write it', ...G },
      ]);
      const h: string = (await call('POST', `/sessions/${s}/terminals?provider=kiro_cli&agent_profile=reviewer`)).json.id;
      await pollUntil(call, h, ['idle', 'completed']);
      const sent = await call('POST', `/terminals/${h}/input?message=Review&sender_id=${sup}&orchestration_type=handoff`);
      assert.deepEqual(sent.events.map((e) => [e.orchestrationType, e.phase, e.sender, e.receiver]), [['handoff', 'dispatched', sup, h]]);
      await pollUntil(call, h, ['completed']);
      const out = await call('GET', `/terminals/${h}/output?mode=last`);
      assert.deepEqual(out.events, [
        { type: 'message_sent', orchestrationType: 'handoff', phase: 'completed', sender: h, receiver: sup, message: out.json.output, ...G },
      ]);
      assert.deepEqual((await call('POST', `/terminals/${h}/exit`)).events, []);
    }));

  // v2.0.x's MCP server sent no orchestration markers (read from its source; 2.0.0 was never on
  // PyPI): the classifier tells assign from handoff by the request pattern. The 2.1.1 simulator
  // has the API shape those requests meet (no caller ids).
  it('the v2.0.x request pattern (no markers) against the 2.1.1 API: assign and handoff by pattern, send_message, deletes', () =>
    withSim('2.1.1', async (sim) => {
      const c = new ExchangeClassifier();
      const call = driver(sim, c, (m, p) => c.capture(m, p));

      const launch = await call('POST', '/sessions?provider=kiro_cli&agent_profile=supervisor');
      assert.equal(launch.status, 201);
      const sup: string = launch.json.id;
      const s: string = launch.json.session_name;
      assert.deepEqual(launch.events, [
        { type: 'session_created', sessionName: s, ...G },
        { type: 'terminal_created', sessionName: s, terminalId: sup, agentName: 'supervisor', provider: 'kiro_cli', ...G },
      ]);

      // assign (MCP server with CAO_ENABLE_SENDER_ID_INJECTION=true): look itself up, create, input at once.
      assert.deepEqual((await call('GET', `/terminals/${sup}`)).events, []);
      const created = await call('POST', `/sessions/${s}/terminals?provider=kiro_cli&agent_profile=developer`);
      assert.equal(created.status, 201);
      const worker: string = created.json.id;
      assert.deepEqual(created.events, [
        { type: 'terminal_created', sessionName: s, terminalId: worker, agentName: 'developer', provider: 'kiro_cli', ...G },
      ]);
      const task = `Write the tests.\n\n[Assigned by terminal ${sup}. When done, send results back to terminal ${sup} using send_message]`;
      const input = await call('POST', `/terminals/${worker}/input?message=${encodeURIComponent(task)}`);
      assert.equal(input.status, 200);
      assert.deepEqual(input.events, [
        { type: 'message_sent', orchestrationType: 'assign', phase: 'dispatched', sender: sup, receiver: worker, message: task, ...G },
      ]);

      // handoff: create, poll until ready, input, poll until completed, read the last output, exit.
      await call('GET', `/terminals/${sup}`);
      const hc = await call('POST', `/sessions/${s}/terminals?provider=kiro_cli&agent_profile=reviewer`);
      const h: string = hc.json.id;
      assert.deepEqual(hc.events.map((e) => e.type), ['terminal_created']);
      await pollUntil(call, h, ['idle', 'completed']);
      const sent = await call('POST', `/terminals/${h}/input?message=${encodeURIComponent('Review the diff')}`);
      assert.deepEqual(sent.events, [
        { type: 'message_sent', orchestrationType: 'handoff', phase: 'dispatched', receiver: h, message: 'Review the diff', ...G },
      ]);
      await pollUntil(call, h, ['completed']);
      const out = await call('GET', `/terminals/${h}/output?mode=last`);
      assert.equal(out.status, 200);
      assert.deepEqual(out.events, [
        { type: 'message_sent', orchestrationType: 'handoff', phase: 'completed', sender: h, message: out.json.output, ...G },
      ]);
      assert.match(out.json.output, /Review the diff/);
      assert.deepEqual((await call('POST', `/terminals/${h}/exit`)).events, []);

      const msg = await call('POST', `/terminals/${sup}/inbox/messages?sender_id=${worker}&message=done`);
      assert.deepEqual(msg.events, [
        { type: 'message_sent', orchestrationType: 'send_message', phase: 'dispatched', sender: worker, receiver: sup, message: 'done', ...G },
      ]);

      assert.deepEqual((await call('POST', '/terminals/deadbeef/input?message=x')).events, []);
      const missing = await call('DELETE', '/sessions/cao-nope');
      assert.equal(missing.status, 404);
      assert.deepEqual(missing.events, []);

      assert.deepEqual((await call('DELETE', `/terminals/${worker}`)).events, [{ type: 'terminal_killed', terminalId: worker, ...G }]);
      const kill = await call('DELETE', `/sessions/${s}`);
      assert.equal(kill.status, 200);
      assert.deepEqual(kill.events, [{ type: 'session_killed', sessionName: s, ...G }]);
    }));
});

describe('dispatches CAO may deliver before it answers (the gateway holds their deliveries)', () => {
  const arrival = (path: string, query: string) => ({ method: 'POST', path, query: new URLSearchParams(query), startedAt: new Date() });
  it('an inbox POST, and 2.1\'s typed input with an orchestration type; raw input is none', () => {
    const c = new ExchangeClassifier();
    assert.deepEqual(c.dispatchOf(arrival('/terminals/abcd1234/inbox/messages', 'sender_id=11112222&message=x')),
      { orchestrationType: 'send_message', sender: '11112222', receiver: 'abcd1234' });
    assert.deepEqual(c.dispatchOf(arrival('/terminals/abcd1234/input', 'message=x&sender_id=11112222&orchestration_type=assign')),
      { orchestrationType: 'assign', sender: '11112222', receiver: 'abcd1234' });
    assert.equal(c.dispatchOf(arrival('/terminals/abcd1234/input', 'message=x')), undefined);
    assert.equal(c.dispatchOf(arrival('/terminals/abcd1234/input', 'message=x&orchestration_type=shout')), undefined);
    assert.equal(c.dispatchOf({ ...arrival('/terminals/abcd1234/inbox/messages', 'sender_id=1'), method: 'GET' }), undefined);
  });
});
