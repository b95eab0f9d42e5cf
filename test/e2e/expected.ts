/**
 * The CloudEvents each observer must deliver for the scenario of helpers/scenario.ts, per CAO
 * release family — what REAL CAO lets each source see (test/e2e/README.md), not what the simulator
 * does. `todo` marks correct events the current code does not emit yet; `wrong` lists events it
 * emits that reality contradicts; `unseen` lists facts a source cannot see (asserted absent).
 * Findings (F…) are in test/e2e/README.md.
 */
import type { Expectation, Fact, KnownWrong, Source, Unseen } from './helpers/facts.ts';
import type { ObserverName } from './helpers/real-run.ts';
import { FAIL_SESSION as FAIL, SESSION as MAIN, type ScenarioIds, TEXT } from './helpers/scenario.ts';

export type Family = '2.1' | '2.4';

export function familyOf(version: string): Family {
  const minor = Number(version.split('.')[1]);
  return minor >= 3 ? '2.4' : '2.1';
}

export interface Expected {
  expected: Expectation[];
  wrong: KnownWrong[];
  unseen: Unseen[];
  /** Set when one trace per session does not hold with the current code. */
  traceTodo?: string;
}

const assignText = (task: string, sup: string) =>
  `${task}\n\n[Assigned by terminal ${sup}. When done, send results back to terminal ${sup} using send_message]`;
const replyText = (text: string, from: string) => `${text}\n\n[Message from terminal ${from}. Use send_message MCP tool for any follow-up work.]`;

const P1 = 'the poller infers assign delivery from a worker leaving status `unknown`; real workers are first seen `processing` (2.4.1: never `unknown`; 2.5.4: `unknown` only after init): F2, P1';
const P2 = 'a report after session_killed opens a second trace (the recorder forgets the session at the kill): F9, P2';
const INIT_FAIL = 'a deferred assign whose worker never starts is not reported as failed (CAO deletes the worker and writes the caller an inbox message): F7';

export function expectedEvents(family: Family, observer: ObserverName, ids: ScenarioIds): Expected {
  const { sup, w1, w2, hw, sup2, errWorker, slowWorker, initWorker } = ids;
  const plugin = observer === 'gateway+poller+plugin';
  const gateway = observer !== 'watch';
  const S = (...s: Source[]): Source[] => s.filter((x) => x !== 'plugin' || plugin).filter((x) => x !== 'gateway' || gateway);
  const e: Expectation[] = [];
  const wrong: KnownWrong[] = [];
  const unseen: Unseen[] = [];
  const add = (fact: Fact, todo?: string) => e.push(todo ? { fact, todo } : { fact });
  const term = (type: 'terminal_created' | 'terminal_killed', session: string, terminal: string, agent: string, by: Source[]) =>
    add({ type, session, terminal, agent, by });
  const msg = (session: string, orch: Fact['orch'], phase: Fact['phase'], sender: string | null, receiver: string | null, message: Fact['message'], by: Source[], todo?: string) =>
    add({ type: 'message_sent', session, orch, phase, sender, receiver, ...(message !== undefined ? { message } : {}), by }, todo);
  const none = (session: string, orch: Fact['orch'], phase: Fact['phase'], sender: string | null, receiver: string | null, why: string) =>
    unseen.push({ fact: { type: 'message_sent', session, orch, phase, sender, receiver }, why });

  // ---- main session: lifecycle ----
  add({ type: 'session_created', session: MAIN, by: S('gateway', 'poller', 'plugin') });
  term('terminal_created', MAIN, sup, 'code_supervisor', S('gateway', 'poller', 'plugin'));
  term('terminal_created', MAIN, w1, 'developer', S('gateway', 'poller', 'plugin'));
  term('terminal_created', MAIN, w2, 'reviewer', S('gateway', 'poller', 'plugin'));
  term('terminal_created', MAIN, hw, 'developer', S('gateway', 'poller', 'plugin'));

  if (family === '2.4') {
    // assign: dispatched at the create call (gateway); the server types the task later.
    for (const [w, task] of [[w1, TEXT.task1], [w2, TEXT.task2]] as const) {
      if (gateway) msg(MAIN, 'assign', 'dispatched', sup, w, assignText(task, sup), ['gateway']);
      else none(MAIN, 'assign', 'dispatched', sup, w, 'the create call with the task never reaches the poller');
      // With the plugin, post_send_message(assign) carries the task; the poller's content-less
      // report (P1) may win the dedup, so the text is checked by the `wrong` entry below.
      if (plugin) msg(MAIN, 'assign', 'delivered', sup, w, undefined, ['plugin', 'poller']);
      else msg(MAIN, 'assign', 'delivered', sup, w, undefined, ['poller'], P1);
    }
    // handoff: one run-step request; the worker is created, driven and deleted inside the server.
    if (gateway) {
      msg(MAIN, 'handoff', 'dispatched', sup, null, TEXT.handoff, ['gateway']);
      msg(MAIN, 'handoff', 'completed', hw, sup, TEXT.handoff, ['gateway']);
    } else {
      none(MAIN, 'handoff', 'dispatched', sup, null, 'run-step is one HTTP call: only the gateway sees it');
      none(MAIN, 'handoff', 'completed', hw, sup, 'run-step is one HTTP call: only the gateway sees it');
    }
    none(MAIN, 'handoff', 'delivered', sup, hw, 'CAO ≥ 2.3 types the handoff prompt inside the server and fires no plugin hook');
    term('terminal_killed', MAIN, hw, 'developer', S('poller', 'plugin'));
  } else {
    // 2.1.x: the MCP server orchestrates with typed input (orchestration_type) over HTTP.
    for (const [w, task] of [[w1, TEXT.task1], [w2, TEXT.task2]] as const) {
      if (gateway) msg(MAIN, 'assign', 'dispatched', sup, w, task, ['gateway']);
      else none(MAIN, 'assign', 'dispatched', sup, w, 'typed input is HTTP only');
      if (plugin) msg(MAIN, 'assign', 'delivered', sup, w, task, ['plugin']);
      else none(MAIN, 'assign', 'delivered', sup, w, 'without the plugin nothing reports the typed task reaching the CLI');
    }
    if (gateway) {
      msg(MAIN, 'handoff', 'dispatched', sup, hw, TEXT.handoff, ['gateway']);
      msg(MAIN, 'handoff', 'completed', hw, sup, `MOCK: ${TEXT.handoff}`, ['gateway']);
    } else {
      none(MAIN, 'handoff', 'dispatched', sup, hw, 'typed input is HTTP only');
      none(MAIN, 'handoff', 'completed', hw, sup, 'the result is read over HTTP (output?mode=last)');
    }
    if (plugin) msg(MAIN, 'handoff', 'delivered', sup, hw, TEXT.handoff, ['plugin']);
    else none(MAIN, 'handoff', 'delivered', sup, hw, 'without the plugin nothing reports the typed prompt reaching the CLI');
    // 2.1.x's handoff only exits the worker's CLI: the row and window stay until the session dies.
  }

  // send_message: to an idle receiver (delivered inside the POST), then two to a busy one (one delivery each).
  const reply = (text: string, from: string) => (family === '2.4' ? replyText(text, from) : text);
  for (const [from, text] of [[w1, TEXT.reply1], [w2, TEXT.reply2], [w2, TEXT.reply3]] as const) {
    if (gateway) msg(MAIN, 'send_message', 'dispatched', from, sup, reply(text, from), ['gateway']);
    else none(MAIN, 'send_message', 'dispatched', from, sup, 'the inbox POST is HTTP only; the poller sees only deliveries');
    msg(MAIN, 'send_message', 'delivered', from, sup, reply(text, from), S('plugin', 'poller'));
  }

  // w2's window killed from outside: CAO keeps its row, so nothing can report it until the session dies.
  term('terminal_killed', MAIN, w1, 'developer', S('gateway', 'poller', 'plugin'));
  const bySessionDelete = family === '2.1' ? S('gateway', 'poller') : S('gateway', 'poller', 'plugin');
  term('terminal_killed', MAIN, sup, 'code_supervisor', bySessionDelete);
  term('terminal_killed', MAIN, w2, 'reviewer', bySessionDelete);
  if (family === '2.1') term('terminal_killed', MAIN, hw, 'developer', bySessionDelete);
  add({ type: 'session_killed', session: MAIN, by: S('gateway', 'poller', 'plugin') });

  // ---- failure session ----
  add({ type: 'session_created', session: FAIL, by: S('gateway', 'poller', 'plugin') });
  term('terminal_created', FAIL, sup2, 'code_supervisor', S('gateway', 'poller', 'plugin'));
  term('terminal_created', FAIL, errWorker, 'developer', S('gateway', 'poller', 'plugin'));
  term('terminal_created', FAIL, slowWorker, 'developer', S('gateway', 'poller', 'plugin'));
  if (family === '2.4') {
    if (gateway) {
      msg(FAIL, 'handoff', 'dispatched', sup2, null, TEXT.handoffError, ['gateway']);
      msg(FAIL, 'handoff', 'failed', errWorker, sup2, `terminal ${errWorker} reached ERROR status`, ['gateway']);
      msg(FAIL, 'handoff', 'dispatched', sup2, null, TEXT.handoffSlow, ['gateway']);
      msg(FAIL, 'handoff', 'failed', slowWorker, sup2, `step on terminal ${slowWorker} did not complete within 5.0s`, ['gateway']);
    } else {
      none(FAIL, 'handoff', 'failed', errWorker, sup2, 'the 502/504 of run-step is HTTP only');
      none(FAIL, 'handoff', 'failed', slowWorker, sup2, 'the 502/504 of run-step is HTTP only');
    }
    // init failure: 201 at once; the worker never starts; CAO deletes it and messages the caller.
    term('terminal_created', FAIL, initWorker!, 'reviewer', S('gateway', 'poller', 'plugin'));
    if (gateway) msg(FAIL, 'assign', 'dispatched', sup2, initWorker!, assignText(TEXT.neverStarts, sup2), ['gateway']);
    msg(FAIL, 'assign', 'failed', sup2, initWorker!, undefined, S('gateway', 'poller', 'plugin'), INIT_FAIL);
    term('terminal_killed', FAIL, initWorker!, 'reviewer', S('poller', 'plugin'));
    none(FAIL, 'assign', 'delivered', sup2, initWorker!, 'the task is never typed');
  } else {
    // 2.1.x: the MCP tool waits only for `completed`; an erroring or slow worker just times out
    // client-side, with no HTTP that marks the failure.
    if (gateway) {
      msg(FAIL, 'handoff', 'dispatched', sup2, errWorker, TEXT.handoffError, ['gateway']);
      msg(FAIL, 'handoff', 'dispatched', sup2, slowWorker, TEXT.handoffSlow, ['gateway']);
    }
    if (plugin) {
      msg(FAIL, 'handoff', 'delivered', sup2, errWorker, TEXT.handoffError, ['plugin']);
      msg(FAIL, 'handoff', 'delivered', sup2, slowWorker, TEXT.handoffSlow, ['plugin']);
    }
    none(FAIL, 'handoff', 'failed', errWorker, sup2, "2.1.x's MCP handoff times out client-side: nothing on the wire says so");
    none(FAIL, 'handoff', 'failed', slowWorker, sup2, "2.1.x's MCP handoff times out client-side: nothing on the wire says so");
    // The synchronous create answers 500 after ~65 s (the whole server is blocked meanwhile); no
    // task is sent, but CAO keeps the half-made terminal's row: only the poller sees it, created
    // and (at the session delete) gone.
    none(FAIL, 'assign', 'dispatched', sup2, null, 'the create call failed (500): nothing was assigned');
    if (initWorker) {
      term('terminal_created', FAIL, initWorker, 'reviewer', ['poller']);
      term('terminal_killed', FAIL, initWorker, 'reviewer', ['poller']);
    }
  }
  const failDelete = family === '2.1' ? S('gateway', 'poller') : S('gateway', 'poller', 'plugin');
  term('terminal_killed', FAIL, sup2, 'code_supervisor', failDelete);
  term('terminal_killed', FAIL, errWorker, 'developer', failDelete);
  term('terminal_killed', FAIL, slowWorker, 'developer', failDelete);
  add({ type: 'session_killed', session: FAIL, by: S('gateway', 'poller', 'plugin') });

  // Known-wrong reports of the current code.
  if (family === '2.4') {
    // P1 fires for run-step workers too (they carry caller_id): seen for real on 2.4.1 and 2.5.4.
    const notAssigned = (session: string, caller: string, worker: string): KnownWrong => ({
      fact: { type: 'message_sent', session, orch: 'assign', phase: 'delivered', sender: caller, receiver: worker },
      todo: `${P1}; ${worker} is a handoff (run-step) worker, never assigned anything`,
    });
    wrong.push(notAssigned(MAIN, sup, hw), notAssigned(FAIL, sup2, errWorker), notAssigned(FAIL, sup2, slowWorker));
    wrong.push({ ...notAssigned(FAIL, sup2, initWorker!), todo: `${P1}; the task of ${initWorker} was never delivered (its CLI never started)` });
    if (plugin) {
      for (const w of [w1, w2]) {
        wrong.push({
          fact: { type: 'message_sent', session: MAIN, orch: 'assign', phase: 'delivered', sender: sup, receiver: w, message: null },
          todo: `${P1}; the poller's content-less report of this delivery came before the plugin's and the ledger kept it without the task text`,
        });
      }
    }
  }
  return {
    expected: e, wrong, unseen,
    // Terminals the gateway never saw created (run-step workers; 2.1.x's failed create) are reported
    // gone by the poller after the gateway's session_killed; the plugin's kills can also trail it.
    // watch alone reports a session's terminals before the session.
    ...(observer !== 'watch' ? { traceTodo: P2 } : {}),
  };
}
