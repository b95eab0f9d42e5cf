import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startCaoSimulator } from '../src/demo/cao-simulator.ts';
import type { CaoSimulator, CaoSimulatorOptions } from '../src/demo/cao-simulator.ts';
import { CAO_VERSIONS } from '../src/demo/cao-versions.ts';
import { createPoller } from '../src/sources/poller.ts';
import type { Poller, PollerOptions } from '../src/sources/poller.ts';
import type { CaoEvent } from '../src/core/events.ts';
import { createCaoTelemetry } from '../src/core/telemetry.ts';
import { createLogger } from '../src/logger.ts';
import { logCapture } from './helpers/log-capture.ts';
import type { LogCapture } from './helpers/log-capture.ts';

// ---- helpers ----

async function call(sim: CaoSimulator, method: string, path: string, init: { body?: object; token?: string } = {}): Promise<any> {
  const headers: Record<string, string> = {};
  if (init.body) headers['content-type'] = 'application/json';
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  const r = await fetch(sim.url + path, { method, headers, body: init.body ? JSON.stringify(init.body) : undefined });
  const json = await r.json();
  assert.ok(r.ok, `${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
  return json;
}

/** Polls until `check` is true (a safety bound, not a timing assertion). */
async function waitFor(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}

async function launch(sim: CaoSimulator, name: string, token?: string): Promise<any> {
  return call(sim, 'POST', `/sessions?agent_profile=supervisor&session_name=${name}&provider=kiro_cli`, { token });
}
async function addTerminal(sim: CaoSimulator, session: string, agent = 'developer', token?: string): Promise<any> {
  return call(sim, 'POST', `/sessions/${session}/terminals?provider=claude_code&agent_profile=${agent}`, { token });
}
async function send(sim: CaoSimulator, from: string, to: string, message: string): Promise<void> {
  await call(sim, 'POST', `/terminals/${to}/inbox/messages?sender_id=${from}&message=${encodeURIComponent(message)}`);
}
const delivered = (sim: CaoSimulator, receiver: string): number =>
  sim.snapshot().messages.filter((m) => m.via === 'inbox' && m.receiver_id === receiver && m.status === 'delivered').length;

interface Harness {
  poller: Poller;
  events: CaoEvent[];
  logs: LogCapture;
  /** Runs one cycle and returns the events it produced. */
  cycle(): Promise<CaoEvent[]>;
}
/**
 * Every event carries the time of the request that observed it (an HrTime); deliveries carry
 * CAO's inbox id as their observation id. The harness checks both and keeps the rest.
 */
function observed(e: CaoEvent): CaoEvent {
  const { time, observationId, ...rest } = e;
  assert.ok(Array.isArray(time) && time.length === 2, `${e.type} carries an HrTime`);
  if (e.type === 'message_sent') assert.match(observationId ?? '', /^(inbox|assign-task|assign-failed):/);
  else assert.equal(observationId, undefined);
  return rest;
}
function harness(baseUrl: string, extra: Partial<PollerOptions> = {}): Harness {
  const events: CaoEvent[] = [];
  const logs = logCapture();
  const poller = createPoller({ baseUrl, onEvent: (e) => events.push(observed(e)), logger: createLogger('debug', logs.stream), ...extra });
  return {
    poller, events, logs,
    async cycle() {
      const before = events.length;
      await poller.pollOnce();
      return events.slice(before);
    },
  };
}
/** A compact view of events for deepEqual: `type:id-or-name`. */
const brief = (events: CaoEvent[]): string[] =>
  events.map((e) => `${e.type}:${e.type.startsWith('session') ? e.sessionName : e.type === 'message_sent' ? e.message : e.terminalId}`);
const warns = (logs: LogCapture): Array<Record<string, unknown>> => logs.lines().filter((l) => l.level === 40);

// ---- against the simulator, both CAO versions ----

/** Fast simulated agents, and CAO's own fixed durations (log watcher, sweep, init time-out) ×0.01. */
const FAST: CaoSimulatorOptions = { initMs: 20, workMs: 20, timeScale: 0.01 };

for (const version of CAO_VERSIONS) {
  const serverSide = version !== '2.1.1';
  describe(`poller against the CAO simulator, version ${version}`, () => {
    const sims: CaoSimulator[] = [];
    const pollers: Poller[] = [];
    let n = 0;
    async function sim(extra: CaoSimulatorOptions = {}): Promise<CaoSimulator> {
      const s = await startCaoSimulator({ version, ...FAST, ...extra });
      sims.push(s);
      return s;
    }
    function poll(s: CaoSimulator, extra: Partial<PollerOptions> = {}): Harness {
      const h = harness(s.url, extra);
      pollers.push(h.poller);
      return h;
    }
    const name = (): string => `cao-t${++n}`;
    after(async () => {
      await Promise.all(pollers.map((p) => p.stop()));
      await Promise.all(sims.map((s) => s.close()));
    });

    it('start-up reconciliation reports what already exists, once', async () => {
      const s = await sim();
      const session = name();
      const sup = await launch(s, session);
      const dev = await addTerminal(s, session);
      const h = poll(s);
      const first = await h.cycle();
      assert.deepEqual(brief(first), [`session_created:${session}`, `terminal_created:${sup.id}`, `terminal_created:${dev.id}`]);
      assert.deepEqual(first[0], { type: 'session_created', sessionName: session, sessionId: session, source: 'poller' });
      assert.deepEqual(first[1], {
        type: 'terminal_created', sessionName: session, sessionId: session, terminalId: sup.id,
        agentName: 'supervisor', provider: 'kiro_cli', source: 'poller',
      });
      assert.equal(first[2]!.agentName, 'developer');
      assert.equal(first[2]!.provider, 'claude_code');
      assert.deepEqual(await h.cycle(), []);
      assert.deepEqual(await h.cycle(), []);
      assert.deepEqual(warns(h.logs), []);
    });

    it('through the core, start-up reconciliation and later identical observations give each fact once', async () => {
      const s = await sim();
      const session = name();
      const sup = await launch(s, session);
      const core = createCaoTelemetry({ otlp: false });
      // The gateway already reported the launch before the sidecar's poller started.
      assert.ok(core.emit({ type: 'session_created', sessionName: session, source: 'gateway' }));
      const admitted: CaoEvent[] = [];
      const onEvent = (e: CaoEvent): void => {
        if (core.emit(e)) admitted.push(e);
      };
      const a = poll(s, { onEvent });
      await a.poller.pollOnce();
      await a.poller.pollOnce();
      // A restarted sidecar (fresh poller) observes the same state again.
      const b = poll(s, { onEvent });
      await b.poller.pollOnce();
      const dev = await addTerminal(s, session);
      await a.poller.pollOnce();
      await b.poller.pollOnce();
      assert.deepEqual(brief(admitted), [`terminal_created:${sup.id}`, `terminal_created:${dev.id}`]);
    });

    it('a terminal created behind the gateway\'s back is reported, and its end after `confirmations` cycles', async () => {
      // The worker lives long enough for a cycle to see it (not a timing assertion: the test waits for it).
      const s = await sim({ initMs: 700, workMs: 800 });
      const session = name();
      const sup = await launch(s, session);
      const h = poll(s, { confirmations: 2 });
      await h.cycle();
      let worker: string;
      if (serverSide) {
        // ≥ 2.3 handoff: the server creates, runs and deletes the worker; the poller is the only witness.
        const finished = call(s, 'POST', '/terminals/run-step', {
          body: { provider: 'claude_code', agent: 'reviewer', prompt: 'review it', session_name: session, caller_id: sup.id },
        });
        await waitFor('the run-step worker', () => s.snapshot().terminals.length === 2);
        worker = s.snapshot().terminals.find((t) => t.id !== sup.id)!.id;
        assert.deepEqual(await h.cycle(), [{
          type: 'terminal_created', sessionName: session, sessionId: session, terminalId: worker,
          agentName: 'reviewer', provider: 'claude_code', source: 'poller',
        }]);
        assert.equal((await finished).terminal_id, worker);
        assert.equal(s.snapshot().terminals.length, 1, 'the worker was torn down');
      } else {
        // 2.1.x: a terminal created in the session by a client the gateway does not see, then deleted.
        worker = (await addTerminal(s, session, 'reviewer')).id;
        assert.deepEqual(brief(await h.cycle()), [`terminal_created:${worker}`]);
        await call(s, 'DELETE', `/terminals/${worker}`);
      }
      assert.deepEqual(await h.cycle(), [], 'one absence is not enough');
      // The poller reports what it saw (the terminal is gone); the core adds its agent and provider.
      assert.deepEqual(await h.cycle(), [{
        type: 'terminal_killed', sessionName: session, sessionId: session, terminalId: worker, source: 'poller',
      }]);
      assert.deepEqual(await h.cycle(), []);
    });

    if (serverSide) {
      it('a run-step worker in its own auto-named session: session and terminal reported, then both gone', async () => {
        const s = await sim({ initMs: 700, workMs: 800 });
        const h = poll(s);
        assert.deepEqual(await h.cycle(), []);
        const finished = fetch(`${s.url}/terminals/run-step`, {
          method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ provider: 'claude_code', agent: 'reviewer', prompt: 'go' }),
        });
        await waitFor('the worker', () => s.snapshot().terminals.length === 1);
        const t = s.snapshot().terminals[0]!;
        assert.deepEqual(brief(await h.cycle()), [`session_created:${t.session_name}`, `terminal_created:${t.id}`]);
        await (await finished).text();
        // tmux dropped the session with its last window: no hook, no request through a gateway.
        assert.equal(s.snapshot().sessions.length, 0);
        assert.deepEqual(await h.cycle(), []);
        assert.deepEqual(brief(await h.cycle()), [`terminal_killed:${t.id}`, `session_killed:${t.session_name}`]);
      });
    }

    it('an out-of-band session kill: terminal_killed for each terminal, then session_killed, only after confirmations', async () => {
      const s = await sim();
      const session = name();
      const keep = name();
      const sup = await launch(s, session);
      const dev = await addTerminal(s, session);
      await launch(s, keep);
      const h = poll(s, { confirmations: 3 });
      await h.cycle();
      s.killSessionOutOfBand(session);
      assert.deepEqual(await h.cycle(), []);
      assert.deepEqual(await h.cycle(), []);
      const killed = await h.cycle();
      assert.deepEqual(brief(killed), [`terminal_killed:${sup.id}`, `terminal_killed:${dev.id}`, `session_killed:${session}`]);
      assert.deepEqual(killed[2], { type: 'session_killed', sessionName: session, sessionId: session, source: 'poller' });
      assert.deepEqual(await h.cycle(), []);
    });

    it('empty listings (CAO backend errors) never report a kill', async () => {
      const s = await sim();
      const session = name();
      await launch(s, session);
      await addTerminal(s, session);
      const h = poll(s, { confirmations: 2 });
      assert.equal((await h.cycle()).length, 3);
      s.failNextListings(6);
      for (let i = 0; i < 6; i++) assert.deepEqual(await h.cycle(), [], `cycle ${i}`);
      assert.deepEqual(await h.cycle(), []);
      // A session created while the listing failed is reported once the listing works again.
      s.failNextListings(2);
      const other = name();
      await launch(s, other);
      assert.deepEqual(await h.cycle(), []);
      assert.deepEqual(await h.cycle(), []);
      assert.deepEqual(brief(await h.cycle()).slice(0, 1), [`session_created:${other}`]);
    });

    it('an empty listing combined with a real kill: reported only after confirmations of 404', async () => {
      const s = await sim();
      const session = name();
      const sup = await launch(s, session);
      const h = poll(s, { confirmations: 2 });
      await h.cycle();
      s.killSessionOutOfBand(session);
      s.failNextListings(1);
      assert.deepEqual(await h.cycle(), []);
      assert.deepEqual(brief(await h.cycle()), [`terminal_killed:${sup.id}`, `session_killed:${session}`]);
    });

    it('inbox: pending -> delivered gives exactly one message_sent delivered per message', async () => {
      const s = await sim();
      const session = name();
      const sup = await launch(s, session);
      const dev = await addTerminal(s, session);
      const h = poll(s);
      await h.cycle();
      s.setStatus(sup.id, 'processing'); // holds delivery: the messages stay pending
      await send(s, dev.id, sup.id, 'result one');
      await send(s, dev.id, sup.id, 'result two');
      assert.deepEqual(await h.cycle(), [], 'pending is not delivered');
      s.setStatus(sup.id, 'idle');
      await waitFor('delivery', () => delivered(s, sup.id) === 2);
      const got = await h.cycle();
      assert.deepEqual(got, ['result one', 'result two'].map((message) => ({
        type: 'message_sent', orchestrationType: 'send_message', phase: 'delivered',
        sessionName: session, sessionId: session, sender: dev.id, receiver: sup.id, message, source: 'poller',
      })));
      assert.deepEqual(await h.cycle(), []);
      // Delivered between two cycles without ever being seen pending: still reported once.
      await send(s, sup.id, dev.id, 'next task');
      await waitFor('delivery', () => delivered(s, dev.id) === 1);
      assert.deepEqual(brief(await h.cycle()), ['message_sent:next task']);
      assert.deepEqual(await h.cycle(), []);
      assert.ok(!h.logs.text().includes('result one'), 'message bodies are not logged');
    });

    it('history delivered before start-up is not re-emitted; messages pending at start-up are', async () => {
      const s = await sim();
      const session = name();
      const sup = await launch(s, session);
      const dev = await addTerminal(s, session);
      await send(s, dev.id, sup.id, 'old one');
      await send(s, dev.id, sup.id, 'old two');
      await waitFor('delivery', () => delivered(s, sup.id) === 2);
      s.setStatus(dev.id, 'processing');
      await send(s, sup.id, dev.id, 'pending at start-up');
      const h = poll(s);
      assert.deepEqual(brief(await h.cycle()).filter((e) => e.startsWith('message')), []);
      assert.deepEqual(await h.cycle(), []);
      s.setStatus(dev.id, 'idle');
      await waitFor('delivery', () => delivered(s, dev.id) === 1);
      assert.deepEqual(brief(await h.cycle()), ['message_sent:pending at start-up']);
      await send(s, dev.id, sup.id, 'new one');
      await waitFor('delivery', () => delivered(s, sup.id) === 3);
      assert.deepEqual(brief(await h.cycle()), ['message_sent:new one']);
    });

    it('a terminal created after start-up: what it received before first sight is new, not history', async () => {
      const s = await sim();
      const session = name();
      const sup = await launch(s, session);
      const h = poll(s);
      await h.cycle();
      const dev = await addTerminal(s, session);
      await send(s, sup.id, dev.id, 'welcome');
      await waitFor('delivery', () => delivered(s, dev.id) === 1);
      assert.deepEqual(brief(await h.cycle()), [`terminal_created:${dev.id}`, 'message_sent:welcome']);
      assert.deepEqual(await h.cycle(), []);
    });

    it('a saturated inbox (more delivered than inboxLimit): new deliveries are still reported once', async () => {
      const s = await sim();
      const session = name();
      const sup = await launch(s, session);
      const dev = await addTerminal(s, session);
      for (const m of ['h1', 'h2', 'h3']) await send(s, dev.id, sup.id, m);
      await waitFor('delivery', () => delivered(s, sup.id) === 3);
      // and the supervisor is done with the last one (else it would take the next message at once)
      await waitFor('the supervisor done', () => s.snapshot().terminals.find((t) => t.id === sup.id)!.status === 'completed');
      const h = poll(s, { inboxLimit: 2 });
      assert.equal((await h.cycle()).filter((e) => e.type === 'message_sent').length, 0);
      s.setStatus(sup.id, 'processing');
      await send(s, dev.id, sup.id, 'late');
      assert.deepEqual(await h.cycle(), []);
      s.setStatus(sup.id, 'idle');
      await waitFor('delivery', () => delivered(s, sup.id) === 4);
      assert.deepEqual(brief(await h.cycle()), ['message_sent:late']);
      assert.deepEqual(await h.cycle(), []);
    });

    it('token auth: with the token it sees everything; without, it warns and reports nothing', async () => {
      const token = 'poller-secret';
      const s = await sim({ token });
      const session = name();
      await launch(s, session, token);
      const without = poll(s);
      assert.deepEqual(await without.cycle(), []);
      assert.deepEqual(await without.cycle(), []);
      const w = warns(without.logs);
      assert.ok(w.length >= 1);
      assert.equal(w[0]!.reason, 'status 401');
      assert.equal(w[0]!.route, 'GET /sessions');
      const withToken = poll(s, { token });
      assert.deepEqual(brief(await withToken.cycle()).slice(0, 1), [`session_created:${session}`]);
      assert.deepEqual(warns(withToken.logs), []);
      assert.ok(!without.logs.text().includes(token) && !withToken.logs.text().includes(token));
    });
  });
}

// ---- assign tasks: delivered or failed (src/sources/assign-evidence.ts) ----

/** What MCP's assign sends on ≥ 2.3: a deferred create with the task in the body. */
async function assign(sim: CaoSimulator, session: string, caller: string, task: string): Promise<string> {
  const r = await call(sim, 'POST', `/sessions/${session}/terminals?provider=claude_code&agent_profile=developer&caller_id=${caller}&defer_init=true`, {
    body: { initial_message: task, initial_message_orchestration_type: 'assign' },
  });
  return r.id as string;
}
const taskEvents = (events: CaoEvent[]): string[] => events.filter((e) => e.orchestrationType === 'assign')
  .map((e) => `${e.phase} ${e.sender}→${e.receiver}${e.message === undefined ? '' : ` ${e.message}`}`);

describe('poller: an assign\'s task reaching its worker, or not (real CAO timelines)', () => {
  const sims: CaoSimulator[] = [];
  const pollers: Poller[] = [];
  after(async () => {
    await Promise.all(pollers.map((p) => p.stop()));
    await Promise.all(sims.map((s) => s.close()));
  });
  async function setup(version: (typeof CAO_VERSIONS)[number], extra: Partial<PollerOptions> = {}, simExtra: CaoSimulatorOptions = {}) {
    const s = await startCaoSimulator({ version, initMs: 150, workMs: 150, timeScale: 0.02, ...simExtra });
    sims.push(s);
    const h = harness(s.url, extra);
    pollers.push(h.poller);
    return { s, h };
  }
  /** Cycles until `done` or the bound (each cycle is a real poll). */
  async function cycleUntil(h: Harness, done: () => boolean): Promise<void> {
    for (let i = 0; i < 300 && !done(); i++) {
      await h.cycle();
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  it('2.5.4, the poller alone: CAO\'s own record (initial_delivery) says when the task was delivered; a handoff worker is never "assigned"', async () => {
    const { s, h } = await setup('2.5.4');
    const sup = await launch(s, 'cao-a1');
    await h.cycle();
    const w = await assign(s, 'cao-a1', sup.id, 'build it');
    // while CAO has not typed the task, nothing is reported (the worker reads processing/unknown)
    await h.cycle();
    assert.deepEqual(taskEvents(h.events), []);
    await cycleUntil(h, () => taskEvents(h.events).length > 0);
    assert.deepEqual(taskEvents(h.events), [`delivered ${sup.id}→${w}`], 'sender = the caller CAO recorded; no text (the poller cannot read it)');
    assert.ok(s.snapshot().messages.some((m) => m.via === 'deferred_init' && m.receiver_id === w), 'and CAO did type it');
    // a handoff worker carries caller_id too, but no deferred task
    await call(s, 'POST', '/terminals/run-step', { body: { provider: 'claude_code', agent: 'reviewer', prompt: 'review', session_name: 'cao-a1', caller_id: sup.id } });
    for (let i = 0; i < 5; i++) await h.cycle();
    assert.deepEqual(taskEvents(h.events), [`delivered ${sup.id}→${w}`]);
  });

  it('2.4.1, the poller alone cannot tell an assign worker from a handoff worker: no report; with the core\'s knowledge of the dispatch it reports once the worker answered', async () => {
    const alone = await setup('2.4.1');
    const supA = await launch(alone.s, 'cao-a2');
    await alone.h.cycle();
    const wA = await assign(alone.s, 'cao-a2', supA.id, 'build it');
    await waitFor('the task typed and answered', () => alone.s.snapshot().terminals.find((t) => t.id === wA)?.status === 'completed');
    for (let i = 0; i < 3; i++) await alone.h.cycle();
    assert.deepEqual(taskEvents(alone.h.events), []);

    const core = createCaoTelemetry({ otlp: false });
    const withState = await setup('2.4.1');
    const events: CaoEvent[] = [];
    const sup = await launch(withState.s, 'cao-a3');
    core.emit({ type: 'terminal_created', sessionName: 'cao-a3', terminalId: sup.id, agentName: 'supervisor', source: 'gateway' });
    const w = await assign(withState.s, 'cao-a3', sup.id, 'build it');
    // what the gateway reports of the create call
    core.emit({ type: 'terminal_created', sessionName: 'cao-a3', terminalId: w, agentName: 'developer', source: 'gateway' });
    core.emit({ type: 'message_sent', orchestrationType: 'assign', phase: 'dispatched', sessionName: 'cao-a3', sender: sup.id, receiver: w, message: 'build it', source: 'gateway' });
    const poller = createPoller({ baseUrl: withState.s.url, state: core.state, onEvent: (e) => events.push(e) });
    pollers.push(poller);
    // first cycles: shell `processing`, then `idle` — not the task
    await poller.pollOnce();
    assert.deepEqual(taskEvents(events), []);
    for (let i = 0; i < 300 && taskEvents(events).length === 0; i++) {
      await poller.pollOnce();
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.deepEqual(taskEvents(events), [`delivered ${sup.id}→${w}`]);
    const typed = withState.s.snapshot().messages.find((m) => m.via === 'deferred_init' && m.receiver_id === w)!;
    assert.ok(typed && Date.parse(typed.created_at) <= Date.now(), 'CAO typed it before the report');
    for (let i = 0; i < 3; i++) await poller.pollOnce();
    assert.equal(taskEvents(events).length, 1, 'reported once');
    await core.shutdown();
  });

  it('2.1.1: a typed assign the core knows of is reported delivered once the worker answers', async () => {
    const core = createCaoTelemetry({ otlp: false });
    const { s } = await setup('2.1.1');
    const events: CaoEvent[] = [];
    const sup = await launch(s, 'cao-a4');
    const w = (await addTerminal(s, 'cao-a4')).id as string;
    core.emit({ type: 'terminal_created', sessionName: 'cao-a4', terminalId: w, agentName: 'developer', source: 'gateway' });
    const poller = createPoller({ baseUrl: s.url, state: core.state, onEvent: (e) => events.push(e) });
    pollers.push(poller);
    await poller.pollOnce();
    assert.deepEqual(taskEvents(events), [], 'an idle worker with no task');
    await call(s, 'POST', `/terminals/${w}/input?message=build%20it&sender_id=${sup.id}&orchestration_type=assign`);
    core.emit({ type: 'message_sent', orchestrationType: 'assign', phase: 'dispatched', sessionName: 'cao-a4', sender: sup.id, receiver: w, message: 'build it', source: 'gateway' });
    for (let i = 0; i < 300 && taskEvents(events).length === 0; i++) {
      await poller.pollOnce();
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.deepEqual(taskEvents(events), [`delivered ${sup.id}→${w}`]);
    await core.shutdown();
  });

  for (const version of ['2.4.1', '2.5.4'] as const) {
    it(`${version}: a worker whose CLI never starts → assign failed, with CAO's notice to the caller, even for the poller alone`, async () => {
      const { s, h } = await setup(version);
      const sup = await launch(s, `cao-f${version.replaceAll('.', '')}`);
      await h.cycle();
      s.failLaunches(true);
      const w = await assign(s, sup.session_name, sup.id, 'never starts');
      await cycleUntil(h, () => taskEvents(h.events).length > 0 && h.events.some((e) => e.type === 'terminal_killed'));
      const notice = s.snapshot().messages.find((m) => m.sender_id === w)!;
      assert.match(notice.message, new RegExp(`^Worker ${w} failed to initialize: `));
      assert.equal(notice.status, 'pending', 'the notice waits in the caller\'s inbox');
      assert.deepEqual(taskEvents(h.events), [`failed ${sup.id}→${w} ${notice.message}`]);
      assert.ok(h.events.some((e) => e.type === 'terminal_killed' && e.terminalId === w));
      for (let i = 0; i < 4; i++) await h.cycle();
      assert.equal(taskEvents(h.events).length, 1, 'reported once');
    });
  }
});

// ---- against a CAO that misbehaves (a small local server) ----

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
interface FakeCao {
  url: string;
  handler: Handler;
  requests: string[];
  close(): Promise<void>;
}
async function fakeCao(): Promise<FakeCao> {
  const fake: FakeCao = {
    url: '', requests: [], handler: (_q, r) => r.writeHead(500).end(), close: async () => {},
  };
  const server = http.createServer((req, res) => {
    fake.requests.push(`${req.method} ${req.url}`);
    fake.handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return fake;
}
const json = (res: ServerResponse, status: number, body: unknown): void => {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
};
/** A healthy CAO with one session `cao-x` and one terminal, unless `gone`. */
function healthy(state: { gone: boolean }): Handler {
  return (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/sessions') return json(res, 200, state.gone ? [] : [{ id: 'cao-x', name: 'cao-x', status: 'detached' }]);
    if (path === '/sessions/cao-x') {
      if (state.gone) return json(res, 404, { detail: "Session 'cao-x' not found" });
      return json(res, 200, {
        session: { id: 'cao-x', name: 'cao-x', status: 'detached' },
        terminals: [{ id: 'abcd0001', tmux_session: 'cao-x', tmux_window: 'dev-1', provider: 'kiro_cli', agent_profile: 'dev', last_active: 'x' }],
      });
    }
    if (path?.endsWith('/inbox/messages')) return json(res, 200, []);
    return json(res, 404, { detail: 'Not Found' });
  };
}

const SECRET_BODY = 'SECRET-BODY-TEXT';
const BAD: Record<string, Handler> = {
  '500': (_q, r) => json(r, 500, { detail: 'Failed to list sessions' }),
  '503 plain text': (_q, r) => r.writeHead(503, { 'content-type': 'text/plain' }).end('unavailable'),
  'garbage JSON': (_q, r) => r.writeHead(200, { 'content-type': 'application/json' }).end(`{"${SECRET_BODY}": [garbage`),
  'truncated body (content-length)': (_q, r) => {
    r.writeHead(200, { 'content-type': 'application/json', 'content-length': 200 });
    r.write('[{"id": "cao-x", "name": "cao-');
    setImmediate(() => r.socket?.destroy());
  },
  'truncated body (chunked)': (_q, r) => {
    r.writeHead(200, { 'content-type': 'application/json' });
    r.write('[{"id": "cao-x", "name": "cao-x"}');
    setImmediate(() => r.socket?.destroy());
  },
  'wrong shape (object)': (_q, r) => json(r, 200, { sessions: [] }),
  'wrong shape (rows)': (_q, r) => json(r, 200, [{ id: 7 }, 'cao-y']),
  'no answer (time-out)': () => {},
  'connection reset': (q) => q.socket.destroy(),
};

describe('poller against a CAO that errors', () => {
  let fake: FakeCao;
  before(async () => {
    fake = await fakeCao();
  });
  after(() => fake.close());

  for (const [mode, handler] of Object.entries(BAD)) {
    it(`${mode}: no events, no throw, a warn without bodies or query strings`, async () => {
      fake.handler = handler;
      const h = harness(fake.url, { timeoutMs: 200 });
      try {
        assert.deepEqual(await h.cycle(), []);
        assert.deepEqual(await h.cycle(), []);
        const w = warns(h.logs);
        assert.ok(w.length >= 1, 'a warn is logged');
        assert.equal(w[0]!.route, 'GET /sessions');
        assert.ok(!h.logs.text().includes(SECRET_BODY));
      } finally {
        await h.poller.stop();
      }
    });
  }

  it('failures deeper in the cycle (session detail, inbox) are also no observation', async () => {
    const state = { gone: false };
    const ok = healthy(state);
    const h = harness(fake.url, { confirmations: 2 });
    try {
      fake.handler = ok;
      assert.deepEqual(brief(await h.cycle()), ['session_created:cao-x', 'terminal_created:abcd0001']);
      for (const bad of Object.values(BAD).slice(0, 7)) {
        fake.handler = (req, res) => ((req.url ?? '').startsWith('/sessions/') || (req.url ?? '').includes('/inbox/')
          ? bad(req, res) : ok(req, res));
        assert.deepEqual(await h.cycle(), []);
      }
      const w = warns(h.logs);
      assert.ok(w.some((l) => l.route === 'GET /sessions/{name}'));
      assert.ok(w.some((l) => String(l.route).startsWith('GET /terminals/{id}/inbox/messages')));
      assert.ok(!h.logs.text().includes('limit=') && !h.logs.text().includes('status=delivered'), 'no query strings');
      assert.ok(!h.logs.text().includes(SECRET_BODY));
    } finally {
      await h.poller.stop();
    }
  });

  it('a failed cycle neither advances nor resets the absence count; presence resets it', async () => {
    const state = { gone: false };
    const ok = healthy(state);
    const h = harness(fake.url, { confirmations: 2 });
    try {
      fake.handler = ok;
      await h.cycle();
      for (let i = 0; i < 5; i++) {
        fake.handler = BAD['500']!;
        assert.deepEqual(await h.cycle(), []);
      }
      fake.handler = ok;
      state.gone = true;
      assert.deepEqual(await h.cycle(), [], 'absent once');
      state.gone = false;
      assert.deepEqual(await h.cycle(), [], 'present again: count reset');
      state.gone = true;
      assert.deepEqual(await h.cycle(), [], 'absent once more');
      fake.handler = BAD['garbage JSON']!;
      assert.deepEqual(await h.cycle(), [], 'a failed cycle');
      fake.handler = (req, res) => ((req.url ?? '').startsWith('/sessions/') ? BAD['500']!(req, res) : ok(req, res));
      assert.deepEqual(await h.cycle(), [], 'empty listing, but the 404 confirmation failed');
      fake.handler = ok;
      assert.deepEqual(brief(await h.cycle()), ['terminal_killed:abcd0001', 'session_killed:cao-x']);
    } finally {
      await h.poller.stop();
    }
  });

  it('a session listed but answering 404 (a race with a kill) is not counted as absent', async () => {
    const state = { gone: false };
    const ok = healthy(state);
    const h = harness(fake.url, { confirmations: 2 });
    try {
      fake.handler = ok;
      await h.cycle();
      state.gone = true;
      fake.handler = (req, res) => (req.url === '/sessions'
        ? json(res, 200, [{ id: 'cao-x', name: 'cao-x', status: 'detached' }]) : ok(req, res));
      for (let i = 0; i < 4; i++) assert.deepEqual(await h.cycle(), []);
    } finally {
      await h.poller.stop();
    }
  });

  it('a throwing onEvent is logged and the cycle goes on', async () => {
    fake.handler = healthy({ gone: false });
    const seen: string[] = [];
    const logs = logCapture();
    const p = createPoller({
      baseUrl: fake.url, logger: createLogger('debug', logs.stream),
      onEvent: (e) => {
        seen.push(e.type);
        throw new Error('consumer broke');
      },
    });
    await p.pollOnce();
    await p.stop();
    assert.deepEqual(seen, ['session_created', 'terminal_created']);
    assert.equal(warns(logs).length, 2);
  });

  it('start() polls on a timer without overlapping cycles; stop() waits for the cycle in flight', async () => {
    const state = { gone: false };
    const ok = healthy(state);
    let inListing = 0;
    let maxInListing = 0;
    fake.requests.length = 0;
    fake.handler = (req, res) => {
      if (req.url !== '/sessions') return ok(req, res);
      inListing++;
      maxInListing = Math.max(maxInListing, inListing);
      setTimeout(() => {
        inListing--;
        ok(req, res);
      }, 30);
    };
    const h = harness(fake.url, { intervalMs: 5 });
    h.poller.start();
    h.poller.start(); // idempotent
    void h.poller.pollOnce(); // a manual cycle is queued behind the timer's, never run beside it
    await waitFor('several cycles', () => fake.requests.filter((r) => r === 'GET /sessions').length >= 4);
    await h.poller.stop();
    const after = fake.requests.length;
    assert.equal(inListing, 0, 'stop() waited for the cycle in flight');
    assert.equal(maxInListing, 1, 'cycles never overlap');
    assert.deepEqual(brief(h.events), ['session_created:cao-x', 'terminal_created:abcd0001']);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(fake.requests.length, after, 'no requests after stop()');
  });

  it('rejects bad options', () => {
    const onEvent = (): void => {};
    assert.throws(() => createPoller({ baseUrl: 'ftp://x', onEvent }), RangeError);
    assert.throws(() => createPoller({ baseUrl: 'http://127.0.0.1:1', inboxLimit: 101, onEvent }), RangeError);
    assert.throws(() => createPoller({ baseUrl: 'http://127.0.0.1:1', confirmations: 0, onEvent }), RangeError);
  });
});
