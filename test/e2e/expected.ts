/**
 * The CloudEvents each observer must deliver for the scenario of helpers/scenario.ts, per CAO
 * release — what REAL CAO lets each source see (test/e2e/README.md), not what the simulator does.
 * Every expectation is strict: it must arrive exactly once, and nothing else may arrive.
 * `unseen` lists facts a source cannot see, or that would be wrong, with the reason: asserted
 * absent. Findings (F…) are in test/e2e/README.md; the README's "Verified CAO versions" table is
 * this file in prose.
 */
import type { Expectation, Fact, Source, Unseen } from './helpers/facts.ts';
import type { ObserverName } from './helpers/real-run.ts';
import { FAIL_SESSION as FAIL, SESSION as MAIN, type ScenarioIds, TEXT } from './helpers/scenario.ts';

export type Family = '2.1' | '2.4';

export function familyOf(version: string): Family {
  const minor = Number(version.split('.')[1]);
  return minor >= 3 ? '2.4' : '2.1';
}

/** CAO ≥ 2.5 keeps its own record of a deferred task's delivery (`initial_delivery`). */
export function hasDeliveryRecord(version: string): boolean {
  const [major, minor] = version.split('.').map(Number) as [number, number];
  return major > 2 || minor >= 5;
}

export interface Expected {
  expected: Expectation[];
  unseen: Unseen[];
}

const assignText = (task: string, sup: string) =>
  `${task}\n\n[Assigned by terminal ${sup}. When done, send results back to terminal ${sup} using send_message]`;
const replyText = (text: string, from: string) => `${text}\n\n[Message from terminal ${from}. Use send_message MCP tool for any follow-up work.]`;

/** Agent profiles of the scenario's terminals (helpers/scenario.ts). */
const SUPERVISOR = 'code_supervisor';
const DEVELOPER = 'developer';
const REVIEWER = 'reviewer';

export function expectedEvents(version: string, observer: ObserverName, ids: ScenarioIds): Expected {
  const family = familyOf(version);
  const { sup, w1, w2, hw, sup2, errWorker, slowWorker, initWorker } = ids;
  const agentOf: Record<string, string> = {
    [sup]: SUPERVISOR, [w1]: DEVELOPER, [w2]: REVIEWER, [hw]: DEVELOPER,
    [sup2]: SUPERVISOR, [errWorker]: DEVELOPER, [slowWorker]: DEVELOPER, ...(initWorker ? { [initWorker]: REVIEWER } : {}),
  };
  const plugin = observer === 'gateway+poller+plugin';
  const gateway = observer !== 'watch';
  const S = (...s: Source[]): Source[] => s.filter((x) => x !== 'plugin' || plugin).filter((x) => x !== 'gateway' || gateway);
  const e: Expectation[] = [];
  const unseen: Unseen[] = [];
  const add = (fact: Fact) => e.push({ fact });
  const term = (type: 'terminal_created' | 'terminal_killed', session: string, terminal: string, by: Source[]) =>
    add({ type, session, terminal, agent: agentOf[terminal], by });
  /**
   * A message event: sender/receiver and their agent profiles (every message event names the
   * agents of the terminals it names; `receiverAgent` overrides for a receiver not yet created).
   */
  const msg = (session: string, orch: Fact['orch'], phase: Fact['phase'], sender: string | null, receiver: string | null,
    message: Fact['message'], by: Source[], receiverAgent?: string) =>
    add({
      type: 'message_sent', session, orch, phase, sender, receiver,
      senderAgent: sender ? agentOf[sender]! : null,
      receiverAgent: receiverAgent ?? (receiver ? agentOf[receiver]! : null),
      ...(message !== undefined ? { message } : {}), by,
    });
  const none = (session: string, orch: Fact['orch'], phase: Fact['phase'], sender: string | null, receiver: string | null, why: string) =>
    unseen.push({ fact: { type: 'message_sent', session, orch, phase, sender, receiver }, why });

  // ---- main session: lifecycle ----
  add({ type: 'session_created', session: MAIN, by: S('gateway', 'poller', 'plugin') });
  term('terminal_created', MAIN, sup, S('gateway', 'poller', 'plugin'));
  term('terminal_created', MAIN, w1, S('gateway', 'poller', 'plugin'));
  term('terminal_created', MAIN, w2, S('gateway', 'poller', 'plugin'));
  term('terminal_created', MAIN, hw, S('gateway', 'poller', 'plugin'));

  if (family === '2.4') {
    // assign: dispatched at the create call (gateway); the server types the task seconds later.
    for (const [w, task] of [[w1, TEXT.task1], [w2, TEXT.task2]] as const) {
      if (gateway) msg(MAIN, 'assign', 'dispatched', sup, w, assignText(task, sup), ['gateway']);
      else none(MAIN, 'assign', 'dispatched', sup, w, 'the create call with the task never reaches the poller');
      // Delivered: the plugin's post_send_message(assign) when CAO types it; the poller's report
      // when the worker shows it started (2.4) or CAO's own record says delivered (2.5). One event,
      // with the task text the dispatch named whoever reports first.
      if (gateway) msg(MAIN, 'assign', 'delivered', sup, w, assignText(task, sup), S('plugin', 'poller'));
      else if (hasDeliveryRecord(version)) msg(MAIN, 'assign', 'delivered', sup, w, null, ['poller']);
      else none(MAIN, 'assign', 'delivered', sup, w, 'the poller alone cannot tell an assign worker from a handoff worker on 2.4.x (both carry caller_id; CAO 2.4 keeps no delivery record)');
    }
    // handoff: one run-step request; the worker is created, driven and deleted inside the server.
    if (gateway) {
      msg(MAIN, 'handoff', 'dispatched', sup, null, TEXT.handoff, ['gateway'], DEVELOPER);
      msg(MAIN, 'handoff', 'completed', hw, sup, TEXT.handoff, ['gateway']);
    } else {
      none(MAIN, 'handoff', 'dispatched', sup, null, 'run-step is one HTTP call: only the gateway sees it');
      none(MAIN, 'handoff', 'completed', hw, sup, 'run-step is one HTTP call: only the gateway sees it');
    }
    none(MAIN, 'handoff', 'delivered', sup, hw, 'CAO ≥ 2.3 types the handoff prompt inside the server and fires no plugin hook');
    // P1 (fixed): a run-step worker carries caller_id too, but nothing was assigned to it.
    none(MAIN, 'assign', 'delivered', sup, hw, `${hw} is a handoff (run-step) worker: nothing was assigned to it`);
    term('terminal_killed', MAIN, hw, S('poller', 'plugin'));
  } else {
    // 2.1.x: the MCP server orchestrates with typed input (orchestration_type) over HTTP.
    for (const [w, task] of [[w1, TEXT.task1], [w2, TEXT.task2]] as const) {
      if (gateway) msg(MAIN, 'assign', 'dispatched', sup, w, task, ['gateway']);
      else none(MAIN, 'assign', 'dispatched', sup, w, 'typed input is HTTP only');
      // the plugin fires at the typed input; the poller sees the worker answer the task it knows was sent
      if (gateway) msg(MAIN, 'assign', 'delivered', sup, w, task, S('plugin', 'poller'));
      else none(MAIN, 'assign', 'delivered', sup, w, 'the poller alone never learns a worker was assigned (2.1.x terminals have no caller_id)');
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
    none(MAIN, 'assign', 'delivered', sup, hw, `${hw} is a handoff worker: nothing was assigned to it`);
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
  term('terminal_killed', MAIN, w1, S('gateway', 'poller', 'plugin'));
  const bySessionDelete = family === '2.1' ? S('gateway', 'poller') : S('gateway', 'poller', 'plugin');
  term('terminal_killed', MAIN, sup, bySessionDelete);
  term('terminal_killed', MAIN, w2, bySessionDelete);
  if (family === '2.1') term('terminal_killed', MAIN, hw, bySessionDelete);
  add({ type: 'session_killed', session: MAIN, by: S('gateway', 'poller', 'plugin') });

  // ---- failure session ----
  add({ type: 'session_created', session: FAIL, by: S('gateway', 'poller', 'plugin') });
  term('terminal_created', FAIL, sup2, S('gateway', 'poller', 'plugin'));
  term('terminal_created', FAIL, errWorker, S('gateway', 'poller', 'plugin'));
  term('terminal_created', FAIL, slowWorker, S('gateway', 'poller', 'plugin'));
  if (family === '2.4') {
    if (gateway) {
      msg(FAIL, 'handoff', 'dispatched', sup2, null, TEXT.handoffError, ['gateway'], DEVELOPER);
      msg(FAIL, 'handoff', 'failed', errWorker, sup2, `terminal ${errWorker} reached ERROR status`, ['gateway']);
      msg(FAIL, 'handoff', 'dispatched', sup2, null, TEXT.handoffSlow, ['gateway'], DEVELOPER);
      msg(FAIL, 'handoff', 'failed', slowWorker, sup2, `step on terminal ${slowWorker} did not complete within 5.0s`, ['gateway']);
    } else {
      none(FAIL, 'handoff', 'failed', errWorker, sup2, 'the 502/504 of run-step is HTTP only');
      none(FAIL, 'handoff', 'failed', slowWorker, sup2, 'the 502/504 of run-step is HTTP only');
    }
    for (const w of [errWorker, slowWorker]) none(FAIL, 'assign', 'delivered', sup2, w, `${w} is a handoff (run-step) worker: nothing was assigned to it`);
    // init failure: 201 at once; the worker never starts; CAO writes the caller a notice from the
    // worker (which stays pending) and deletes the worker. The poller reads the notice (F7).
    term('terminal_created', FAIL, initWorker!, S('gateway', 'poller', 'plugin'));
    if (gateway) msg(FAIL, 'assign', 'dispatched', sup2, initWorker!, assignText(TEXT.neverStarts, sup2), ['gateway']);
    msg(FAIL, 'assign', 'failed', sup2, initWorker!, new RegExp(`^Worker ${initWorker} failed to initialize: `), ['poller']);
    term('terminal_killed', FAIL, initWorker!, S('poller', 'plugin'));
    none(FAIL, 'assign', 'delivered', sup2, initWorker!, 'the task is never typed (the CLI never started)');
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
    // task is sent, but CAO keeps the half-made terminal's row: only the poller sees it created;
    // it is still live when the session is deleted, so the session delete's observer ends it.
    none(FAIL, 'assign', 'dispatched', sup2, null, 'the create call failed (500): nothing was assigned');
    none(FAIL, 'assign', 'failed', sup2, null, 'the create call failed (500) before any assign existed');
    if (initWorker) {
      term('terminal_created', FAIL, initWorker, ['poller']);
      term('terminal_killed', FAIL, initWorker, S('gateway', 'poller'));
    }
  }
  const failDelete = family === '2.1' ? S('gateway', 'poller') : S('gateway', 'poller', 'plugin');
  term('terminal_killed', FAIL, sup2, failDelete);
  term('terminal_killed', FAIL, errWorker, failDelete);
  term('terminal_killed', FAIL, slowWorker, failDelete);
  add({ type: 'session_killed', session: FAIL, by: S('gateway', 'poller', 'plugin') });

  return { expected: e, unseen };
}
