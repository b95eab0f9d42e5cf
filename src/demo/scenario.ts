/**
 * A scripted multi-agent CAO session, driven through the gateway with the exact requests CAO's
 * CLI and MCP tools send (see shared/cao-api.md) for the chosen CAO version: a supervisor is
 * launched, assigns work to two workers, hands off to a reviewer, the workers report back with
 * send_message, one worker is deleted, and the session is shut down.
 */
import { request } from 'undici';
import type { CaoSimulator, CaoVersion } from './cao-simulator.ts';

export interface ScenarioResult {
  sessionName: string;
  supervisor: string;
  workers: [string, string];
  reviewer?: string;
}

interface Terminal {
  id: string;
  session_name: string;
  status?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function call(base: string, method: string, path: string, query: Record<string, string> = {}, body?: unknown) {
  const url = new URL(path, base);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const res = await request(url, {
    method: method as 'GET',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.body.text();
  if (res.statusCode >= 400) throw new Error(`${method} ${path} → ${res.statusCode}: ${text.slice(0, 200)}`);
  return text ? (JSON.parse(text) as unknown) : undefined;
}

async function waitForStatus(base: string, id: string, wanted: string[]): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const t = (await call(base, 'GET', `/terminals/${id}`)) as Terminal;
    if (t.status && wanted.includes(t.status)) return;
    await sleep(50);
  }
  throw new Error(`terminal ${id} never reached ${wanted.join('/')}`);
}

const TASKS = [
  'Implement the CSV parser in src/parse.ts with streaming support. Report back when the tests pass.',
  'Write property-based tests for the CSV parser: quoting, embedded newlines, BOM handling.',
];
const REVIEW = 'Review the parser and its tests for correctness and performance; list concrete issues.';

export async function runScenario(
  base: string,
  version: CaoVersion,
  simulator: CaoSimulator,
  pauseMs = 400,
): Promise<ScenarioResult> {
  const sessionName = 'cao-demo';
  // cao launch --agents code_supervisor
  const sup = (await call(base, 'POST', '/sessions', {
    provider: 'kiro_cli',
    agent_profile: 'code_supervisor',
    working_directory: '/home/dev/csv-tool',
    session_name: sessionName,
  })) as Terminal;
  await sleep(pauseMs);

  // assign ×2 (MCP tool, called by the supervisor)
  const workers: string[] = [];
  for (const [i, task] of TASKS.entries()) {
    const agent = i === 0 ? 'developer' : 'tester';
    if (version === 'head') {
      const w = (await call(
        base, 'POST', `/sessions/${sessionName}/terminals`,
        { provider: 'claude_code', agent_profile: agent, caller_id: sup.id, defer_init: 'true', working_directory: '/home/dev/csv-tool' },
        { initial_message: task, initial_message_orchestration_type: 'assign' },
      )) as Terminal;
      workers.push(w.id);
    } else {
      // v2.0.0's MCP server looks up its own terminal and working directory before creating one
      await call(base, 'GET', `/terminals/${sup.id}`);
      await call(base, 'GET', `/terminals/${sup.id}/working-directory`);
      const w = (await call(base, 'POST', `/sessions/${sessionName}/terminals`, { provider: 'claude_code', agent_profile: agent })) as Terminal;
      await call(base, 'POST', `/terminals/${w.id}/input`, { message: task });
      workers.push(w.id);
    }
    await sleep(pauseMs);
  }

  // handoff to a reviewer (blocks until the reviewer is done)
  let reviewer: string | undefined;
  if (version === 'head') {
    const r = (await call(base, 'POST', '/terminals/run-step', {}, {
      provider: 'claude_code', agent: 'reviewer', prompt: REVIEW, teardown: true, timeout: 600,
      use_worktree: false, session_name: sessionName, caller_id: sup.id,
    })) as { terminal_id: string };
    reviewer = r.terminal_id;
  } else {
    await call(base, 'GET', `/terminals/${sup.id}`);
    await call(base, 'GET', `/terminals/${sup.id}/working-directory`);
    const r = (await call(base, 'POST', `/sessions/${sessionName}/terminals`, { provider: 'claude_code', agent_profile: 'reviewer' })) as Terminal;
    reviewer = r.id;
    await waitForStatus(base, r.id, ['idle', 'completed']);
    await call(base, 'POST', `/terminals/${r.id}/input`, { message: REVIEW });
    await sleep(100);
    await waitForStatus(base, r.id, ['completed']);
    await call(base, 'GET', `/terminals/${r.id}/output`, { mode: 'last' });
    await call(base, 'POST', `/terminals/${r.id}/exit`);
  }
  await sleep(pauseMs);

  // the workers report back (send_message MCP tool)
  const reports = [
    'Parser done: streaming, RFC 4180 quoting, 38 tests green.',
    'Property tests added (quoting, newlines, BOM); found and fixed an off-by-one in the tokenizer.',
  ];
  for (const [i, w] of workers.entries()) {
    await call(base, 'POST', `/terminals/${sup.id}/inbox/messages`, { sender_id: w, message: reports[i]! });
  }
  await sleep(pauseMs * 2);

  // one worker is deleted
  await call(base, 'DELETE', `/terminals/${workers[0]}`);
  await sleep(pauseMs);

  // cao shutdown: an HTTP DELETE at HEAD; in v2.0.0 the CLI calls the service in-process (no HTTP)
  if (version === 'head') await call(base, 'DELETE', `/sessions/${sessionName}`);
  else simulator.killSessionOutOfBand(sessionName);
  return { sessionName, supervisor: sup.id, workers: [workers[0]!, workers[1]!], reviewer };
}
