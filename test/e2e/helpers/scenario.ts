/**
 * The scripted multi-agent session the e2e suite drives against a real cao-server, through the
 * gateway, exactly as agents and the `cao` CLI would:
 *
 * session `cao-e2e` (supervisor `code_supervisor`):
 *   1. create the session (POST /sessions, as `cao launch`)
 *   2. assign `developer` ("Write the parser") and `reviewer` ("Review the docs"); wait until both did it
 *   3. handoff to `developer` ("Summarise the plan")
 *   4. worker 1 send_message → supervisor while it is idle ("Parser done")
 *   5. supervisor busy (raw input `__mock_sleep_5`), worker 2 sends two messages ("Docs reviewed",
 *      "One more note"); wait until both are delivered
 *   6. worker 2's window killed out of band (`tmux kill-window`)
 *   7. DELETE worker 1; 8. DELETE the session
 * session `cao-e2efail` (failure paths):
 *   1. create; 2. handoff whose worker errors (`__mock_error__`); 3. handoff that times out
 *   (`__mock_sleep_30`, timeout 5 s); 4. assign whose worker CLI cannot start (init failure);
 *   5. DELETE the session
 */
import { CaoClient, mcpTools } from './cao-client.ts';
import type { RealCao } from './real-cao.ts';

export const SESSION = 'cao-e2e';
export const FAIL_SESSION = 'cao-e2efail';

export const TEXT = {
  task1: 'Write the parser',
  task2: 'Review the docs',
  handoff: 'Summarise the plan',
  reply1: 'Parser done',
  reply2: 'Docs reviewed',
  reply3: 'One more note',
  busy: '__mock_sleep_5',
  handoffError: '__mock_error__',
  handoffSlow: '__mock_sleep_30',
  neverStarts: 'This task never starts',
} as const;

export interface ScenarioIds {
  sup: string;
  w1: string;
  w2: string;
  /** The handoff worker (run-step's answer, or the terminal 2.1.x's MCP created). */
  hw: string;
  sup2: string;
  /** Workers of the failed handoffs. */
  errWorker: string;
  slowWorker: string;
  /** The worker whose init failed (2.1.x: the row its failed synchronous create left behind, if any). */
  initWorker?: string;
  /** Facts the test read from CAO itself. */
  observed: {
    handoffOutput?: string;
    /** Inbox of the supervisor after step 5, and of sup2 at the end. */
    supInbox: Awaited<ReturnType<CaoClient['inbox']>>;
    sup2Inbox: Awaited<ReturnType<CaoClient['inbox']>>;
    handoffErrorStatus: number;
    handoffSlowStatus: number;
    initFailureStatus: number;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until a terminal reads idle|completed on 4 probes in a row, 500 ms apart (its CLI is done). */
async function quiet(client: CaoClient, id: string): Promise<void> {
  let streak = 0;
  await client.until(`${id} quiet`, async () => {
    const s = await client.statusOf(id);
    streak = s === 'idle' || s === 'completed' ? streak + 1 : 0;
    await sleep(300);
    return streak;
  }, (n) => n >= 4, 60_000);
}

export async function runScenario(cao: RealCao, client: CaoClient): Promise<ScenarioIds> {
  const tools = mcpTools(cao.version.version, client);
  const provider = cao.version.provider;
  const old = tools.family === '2.1';
  const done = (s: string) => s === 'completed';

  // ---- main session ----
  const created = await client.call('POST', '/sessions', [
    ['provider', provider], ['agent_profile', 'code_supervisor'], ['session_name', 'e2e'], ['working_directory', cao.workDir],
  ]);
  if (created.status !== 201) throw new Error(`POST /sessions → ${created.status} ${JSON.stringify(created.json)}`);
  cao.sessions.add(SESSION);
  const sup = created.json.id as string;

  const a1 = await tools.assign(sup, 'developer', TEXT.task1);
  const a2 = await tools.assign(sup, 'reviewer', TEXT.task2);
  if (!a1.ok || !a2.ok || !a1.terminalId || !a2.terminalId) throw new Error(`assign failed: ${JSON.stringify([a1, a2])}`);
  const w1 = a1.terminalId;
  const w2 = a2.terminalId;
  // A worker has its task once it answered it (`completed`).
  for (const w of [w1, w2]) await client.until(`${w} did its task`, () => client.statusOf(w), done, 60_000);

  // What the server shows now (recorded for the simulator's contract tests): listings and rows
  // with two workers that did their task, and a worker's last answer.
  for (const [path, query] of [['/sessions', []], [`/sessions/${SESSION}`, []], [`/sessions/${SESSION}/terminals`, []],
    [`/terminals/${w1}/output`, [['mode', 'last']]]] as Array<[string, Array<[string, string]>]>) {
    await client.call('GET', path, query, undefined, 'observer');
  }

  const h = await tools.handoff(sup, 'developer', TEXT.handoff, 60);
  if (!h.ok || !h.terminalId) throw new Error(`handoff failed: ${JSON.stringify(h)}`);

  const idle = (s: string) => s === 'idle' || s === 'completed';
  await client.until('supervisor ready', () => client.statusOf(sup), idle);
  await tools.sendMessage(w1, sup, TEXT.reply1);
  await client.until('reply 1 delivered', () => client.inbox(sup), (m) => m.length === 1 && m[0]!.status === 'delivered');
  // The stand-in answers each line of the delivered message: wait until it is done with all of them.
  await quiet(client, sup);

  // Busy receiver: raw input (a user typing) keeps the supervisor `processing` for 5 s.
  await client.call('POST', `/terminals/${sup}/input`, [['message', TEXT.busy]]);
  await client.until('supervisor busy', () => client.statusOf(sup), (s) => s === 'processing', 10_000);
  await tools.sendMessage(w2, sup, TEXT.reply2);
  await tools.sendMessage(w2, sup, TEXT.reply3);
  const supInbox = await client.until('replies 2 and 3 delivered', () => client.inbox(sup),
    (m) => m.length === 3 && m.every((x) => x.status === 'delivered'), 60_000);

  const w2row = await client.terminal(w2);
  await cao.tmux('kill-window', '-t', `${SESSION}:${w2row.json.name}`);
  await sleep(3000); // two poller cycles: a window killed from outside stays a listed row (nothing to see)

  const del = await client.call('DELETE', `/terminals/${w1}`);
  if (del.status !== 200) throw new Error(`DELETE /terminals/${w1} → ${del.status}`);
  await sleep(2000);
  const delS = await client.call('DELETE', `/sessions/${SESSION}`);
  if (delS.status !== 200) throw new Error(`DELETE /sessions/${SESSION} → ${delS.status}`);
  cao.sessions.delete(SESSION);

  // ---- failure session ----
  const created2 = await client.call('POST', '/sessions', [
    ['provider', provider], ['agent_profile', 'code_supervisor'], ['session_name', 'e2efail'], ['working_directory', cao.workDir],
  ]);
  if (created2.status !== 201) throw new Error(`POST /sessions (fail) → ${created2.status}`);
  cao.sessions.add(FAIL_SESSION);
  const sup2 = created2.json.id as string;

  const herr = await tools.handoff(sup2, 'developer', TEXT.handoffError, old ? 10 : 30);
  const hslow = await tools.handoff(sup2, 'developer', TEXT.handoffSlow, 5);
  if (herr.ok || hslow.ok || !herr.terminalId || !hslow.terminalId) throw new Error(`failed handoffs did not fail: ${JSON.stringify([herr, hslow])}`);

  cao.failLaunches(true);
  let initWorker: string | undefined;
  let initFailureStatus: number;
  try {
    const a3 = await tools.assign(sup2, 'reviewer', TEXT.neverStarts);
    initFailureStatus = a3.status;
    initWorker = a3.terminalId;
    if (!old) {
      // Deferred init fails in the background: CAO deletes the worker and tells the caller.
      if (!initWorker) throw new Error(`assign returned no worker: ${JSON.stringify(a3)}`);
      await client.until('failed worker deleted', () => client.statusOf(initWorker!), (s) => s === 'HTTP 404', 60_000);
    } else {
      if (a3.ok) throw new Error('2.1.x assign with a failing CLI succeeded');
      // 2.1.x answers 500 but keeps the half-made terminal's row (and window): find it.
      const rows = await client.call('GET', `/sessions/${FAIL_SESSION}/terminals`, [], undefined, 'observer');
      const known = new Set([sup2, herr.terminalId, hslow.terminalId]);
      initWorker = (rows.json as Array<{ id: string }>).find((r) => !known.has(r.id))?.id;
    }
  } finally {
    cao.failLaunches(false);
  }
  const sup2Inbox = await client.inbox(sup2);
  await sleep(2000);
  const delF = await client.call('DELETE', `/sessions/${FAIL_SESSION}`);
  if (delF.status !== 200) throw new Error(`DELETE /sessions/${FAIL_SESSION} → ${delF.status}`);
  cao.sessions.delete(FAIL_SESSION);

  // How the server answers for things that do not exist (no session is left; none of these
  // fires a plugin hook). Recorded for the simulator's contract tests.
  const nobody = '0badc0de';
  for (const [method, path, query] of [
    ['GET', '/health', []], ['GET', '/sessions', []], ['GET', `/sessions/${SESSION}`, []], ['GET', `/sessions/${SESSION}/terminals`, []],
    ['GET', `/terminals/${nobody}`, []], ['DELETE', `/terminals/${nobody}`, []], ['POST', `/terminals/${nobody}/exit`, []],
    ['POST', `/terminals/${nobody}/input`, [['message', 'hello']]], ['GET', `/terminals/${nobody}/output`, [['mode', 'last']]],
    ['GET', `/terminals/${nobody}/inbox/messages`, [['status', 'lost']]],
    ['POST', `/sessions/${SESSION}/terminals`, [['provider', provider], ['agent_profile', 'developer'], ['working_directory', cao.workDir]]],
    ['POST', '/sessions', [['provider', provider], ['agent_profile', 'developer'], ['session_name', 'e2ewd'], ['working_directory', '/tmp']]],
  ] as Array<[string, string, Array<[string, string]>]>) {
    await client.call(method, path, query, undefined, 'observer');
  }

  return {
    sup, w1, w2, hw: h.terminalId, sup2, errWorker: herr.terminalId, slowWorker: hslow.terminalId,
    ...(initWorker ? { initWorker } : {}),
    observed: {
      ...(h.output !== undefined ? { handoffOutput: h.output } : {}),
      supInbox, sup2Inbox,
      handoffErrorStatus: herr.status, handoffSlowStatus: hslow.status, initFailureStatus,
    },
  };
}
