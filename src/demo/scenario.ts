/**
 * A scripted multi-agent CAO session, driven through the gateway with the requests CAO's own CLI
 * and MCP tools send on the chosen release (as recorded from the real cao-mcp-server of each
 * release, test/e2e/helpers/cao-client.ts): a supervisor is launched, assigns work to two workers,
 * hands off to a reviewer, the workers report back with send_message, one worker is deleted, and
 * the session is shut down (`cao shutdown` → DELETE /sessions/{name}).
 *
 * - 2.4.1 / 2.5.4: assign = create with `defer_init` and the task in the body (the server types
 *   it later); handoff = one `POST /terminals/run-step`; messages carry the MCP server's sender
 *   suffixes.
 * - 2.1.1: assign = synchronous create, then typed input with `orchestration_type=assign`;
 *   handoff = create, status polls, typed input (`handoff`), polls, `output?mode=last`, `/exit`.
 */
import { request } from 'undici';
import type { CaoVersion } from './cao-versions.ts';

export interface ScenarioResult {
  sessionName: string;
  supervisor: string;
  workers: [string, string];
  reviewer?: string;
}

interface Terminal {
  id: string;
  session_name: string;
  provider: string;
  status?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One request to CAO (or a gateway in front of it), as CAO's clients send it; a 4xx/5xx answer throws. */
export async function call(base: string, method: string, path: string, query: Record<string, string> = {}, body?: unknown): Promise<unknown> {
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

/** Polls `GET /terminals/{id}` (as the MCP tools and a waiting user do) until one of `wanted`. */
async function waitForStatus(base: string, id: string, wanted: string[], pollMs = 50): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const t = (await call(base, 'GET', `/terminals/${id}`)) as Terminal;
    if (t.status && wanted.includes(t.status)) return;
    await sleep(pollMs);
  }
  throw new Error(`terminal ${id} never reached ${wanted.join('/')}`);
}

const TASKS = [
  'Implement the CSV parser in src/parse.ts with streaming support. Report back when the tests pass.',
  'Write property-based tests for the CSV parser: quoting, embedded newlines, BOM handling.',
];
const REVIEW = 'Review the parser and its tests for correctness and performance; list concrete issues.';
const REPORTS = [
  'Parser done: streaming, RFC 4180 quoting, 38 tests green.',
  'Property tests added (quoting, newlines, BOM); found and fixed an off-by-one in the tokenizer.',
];

const assignSuffix = (self: string) =>
  `\n\n[Assigned by terminal ${self}. When done, send results back to terminal ${self} using send_message]`;
const messageSuffix = (self: string) => `\n\n[Message from terminal ${self}. Use send_message MCP tool for any follow-up work.]`;

/** What each release's MCP tools send (HTTP only). */
interface Tools {
  assign(sup: Terminal, agent: string, task: string): Promise<string>;
  handoff(sup: Terminal, agent: string, prompt: string): Promise<string>;
  sendMessage(from: string, to: string, text: string): Promise<void>;
}

function serverSideTools(base: string): Tools {
  return {
    async assign(sup, agent, task) {
      await call(base, 'GET', `/terminals/${sup.id}`);
      const wd = (await call(base, 'GET', `/terminals/${sup.id}/working-directory`)) as { working_directory: string };
      const w = (await call(base, 'POST', `/sessions/${sup.session_name}/terminals`, {
        provider: sup.provider, agent_profile: agent, caller_id: sup.id, working_directory: wd.working_directory, defer_init: 'true',
      }, { initial_message: task + assignSuffix(sup.id), initial_message_orchestration_type: 'assign' })) as Terminal;
      await call(base, 'GET', `/terminals/${sup.id}`);
      await call(base, 'GET', `/sessions/${sup.session_name}/terminals`);
      return w.id;
    },
    async handoff(sup, agent, prompt) {
      await call(base, 'GET', `/terminals/${sup.id}`);
      const r = (await call(base, 'POST', '/terminals/run-step', {}, {
        provider: sup.provider, agent, prompt, teardown: true, timeout: 600, use_worktree: false,
        session_name: sup.session_name, caller_id: sup.id,
      })) as { terminal_id: string };
      return r.terminal_id;
    },
    async sendMessage(from, to, text) {
      await call(base, 'POST', `/terminals/${to}/inbox/messages`, { sender_id: from, message: text + messageSuffix(from) });
    },
  };
}

function clientSideTools(base: string, pauseMs: number): Tools {
  const create = async (sup: Terminal, agent: string): Promise<Terminal> => {
    await call(base, 'GET', `/terminals/${sup.id}`);
    const wd = (await call(base, 'GET', `/terminals/${sup.id}/working-directory`)) as { working_directory: string };
    return (await call(base, 'POST', `/sessions/${sup.session_name}/terminals`, {
      provider: sup.provider, agent_profile: agent, working_directory: wd.working_directory,
    })) as Terminal;
  };
  return {
    async assign(sup, agent, task) {
      const w = await create(sup, agent);
      await waitForStatus(base, w.id, ['idle', 'completed']);
      await call(base, 'POST', `/terminals/${w.id}/input`, { message: task, sender_id: sup.id, orchestration_type: 'assign' });
      return w.id;
    },
    async handoff(sup, agent, prompt) {
      const w = await create(sup, agent);
      await waitForStatus(base, w.id, ['idle', 'completed']);
      await sleep(pauseMs); // the MCP tool waits 2 s before typing
      await call(base, 'POST', `/terminals/${w.id}/input`, { message: prompt, sender_id: sup.id, orchestration_type: 'handoff' });
      await waitForStatus(base, w.id, ['completed']);
      await call(base, 'GET', `/terminals/${w.id}/output`, { mode: 'last' });
      await call(base, 'POST', `/terminals/${w.id}/exit`);
      return w.id;
    },
    async sendMessage(from, to, text) {
      await call(base, 'POST', `/terminals/${to}/inbox/messages`, { sender_id: from, message: text });
    },
  };
}

export async function runScenario(
  base: string,
  version: CaoVersion,
  workingDirectory: string,
  pauseMs = 400,
): Promise<ScenarioResult> {
  const sessionName = 'cao-demo';
  const tools = version === '2.1.1' ? clientSideTools(base, pauseMs) : serverSideTools(base);
  // cao launch --agents code_supervisor
  const sup = (await call(base, 'POST', '/sessions', {
    provider: 'kiro_cli',
    agent_profile: 'code_supervisor',
    working_directory: workingDirectory,
    session_name: sessionName,
  })) as Terminal;
  await sleep(pauseMs);

  // assign ×2 (MCP tool, called by the supervisor)
  const workers: string[] = [];
  for (const [i, task] of TASKS.entries()) {
    workers.push(await tools.assign(sup, i === 0 ? 'developer' : 'tester', task));
    await sleep(pauseMs);
  }

  // handoff to a reviewer (blocks until the reviewer is done)
  const reviewer = await tools.handoff(sup, 'reviewer', REVIEW);
  await sleep(pauseMs);

  // the workers report back once they have done their task (send_message MCP tool)
  for (const [i, w] of workers.entries()) {
    await waitForStatus(base, w, ['completed']);
    await tools.sendMessage(w, sup.id, REPORTS[i]!);
  }
  // the supervisor reads both (CAO delivers one message per attempt; 2.1.1's log watcher every 5 s)
  for (let i = 0; i < 600; i++) {
    const inbox = (await call(base, 'GET', `/terminals/${sup.id}/inbox/messages`, { status: 'delivered' })) as unknown[];
    if (inbox.length >= REPORTS.length) break;
    await sleep(50);
  }
  await sleep(pauseMs * 2);

  // one worker is deleted, then cao shutdown
  await call(base, 'DELETE', `/terminals/${workers[0]}`);
  await sleep(pauseMs);
  await call(base, 'DELETE', `/sessions/${sessionName}`);
  return { sessionName, supervisor: sup.id, workers: [workers[0]!, workers[1]!], reviewer };
}

/** The texts the workers report back (for checks of what the callback received). */
export const DEMO_REPORTS: readonly string[] = REPORTS;
