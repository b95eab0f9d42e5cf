/**
 * CAO's plugin hooks, in CAO's own order, for tests that cannot run a real cao-server: an HTTP
 * server in front of the CAO simulator that forwards every request and, at the points a real
 * cao-server 2.4/2.5 dispatches its plugin hooks, posts the body our plugin would send
 * (integrations/cao-plugin: CAO's field names, a microsecond UTC timestamp, one event_id per
 * hook call) to the ingest endpoint — before it answers the request, as CAO does. Where each
 * order comes from (real-cao.md §5 and the realcao stream's runs of 2.4.1 and 2.5.4):
 *
 * - POST /sessions: post_create_terminal of the first terminal, then post_create_session,
 *   both before the 201;
 * - POST /sessions/{s}/terminals: post_create_terminal before the 201; with a deferred task,
 *   post_send_message(assign, sender = caller) when the server types the task (the simulator
 *   says when: its onTyped);
 * - POST /terminals/{r}/inbox/messages to an idle or completed receiver: delivered inside the
 *   POST, post_send_message(send_message) reaches the ingest before the 200;
 * - POST /terminals/run-step (handoff) 200: only post_kill_terminal of the worker (teardown),
 *   no create, no message;
 * - DELETE /terminals/{id}: post_kill_terminal before the answer;
 * - DELETE /sessions/{s}: post_kill_terminal for every row, then post_kill_session.
 *
 * `inboxDelayMs` holds back the answers to the poller's inbox listings (a poll in flight while
 * something else happens). `sessionsAfterCreate` makes session listings (GET /sessions…) wait for
 * a POST /sessions in flight and its hooks: on real CAO the poller may list a new session before
 * the plugin's hooks arrive; a test about the hooks' own order must not depend on that race.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import type { CaoSimulator } from '../../src/demo/cao-simulator.ts';
import { readBody } from './read-body.ts';

export interface CaoHooksOptions {
  /** The CAO simulator's URL. */
  upstream: string;
  /** The plugin ingest URL (…/v1/cao/events). */
  ingestUrl: string;
  /** The simulator behind `upstream`: it says when a deferred task is typed. */
  simulator: CaoSimulator;
  /** Session listings wait for a session being created and its hooks (default false). */
  sessionsAfterCreate?: boolean;
}

export interface CaoHooks {
  url: string;
  /** Hooks posted so far, in order. */
  readonly fired: Array<Record<string, unknown>>;
  /** Inbox listings (GET /terminals/{id}/inbox/messages) answered this much later. */
  inboxDelayMs: number;
  /** Resolves once an inbox listing of this terminal has reached the simulator. */
  inboxAsked(terminalId: string): Promise<void>;
  close(): Promise<void>;
}

type Json = Record<string, unknown>;

function microsNow(): string {
  const ms = performance.timeOrigin + performance.now();
  const micros = Math.floor((ms % 1) * 1000);
  return `${new Date(Math.floor(ms)).toISOString().slice(0, 23)}${String(micros).padStart(3, '0')}Z`;
}

export async function startCaoHooks(options: CaoHooksOptions): Promise<CaoHooks> {
  const fired: Json[] = [];
  const pending = new Set<Promise<void>>();
  const askedWaiters = new Map<string, Array<() => void>>();
  const creating = new Set<Promise<void>>();

  async function fire(eventType: string, session: string, fields: Json): Promise<void> {
    const body = { event_type: eventType, timestamp: microsNow(), session_id: session, traceparent: null, ...fields, event_id: randomUUID().replaceAll('-', '') };
    fired.push(body);
    const res = await request(options.ingestUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    await res.body.dump();
    if (res.statusCode !== 202) throw new Error(`ingest answered ${res.statusCode} to ${eventType}`);
  }

  async function upstreamJson(method: string, path: string): Promise<{ status: number; json: unknown }> {
    const res = await request(new URL(path, options.upstream), { method: method as 'GET' });
    const text = await res.body.text();
    return { status: res.statusCode, json: text ? (JSON.parse(text) as unknown) : undefined };
  }

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const method = req.method ?? 'GET';
      const path = url.pathname;
      const body = await readBody(req);
      const parts = path.split('/').filter(Boolean);
      let created: (() => void) | undefined;
      if (options.sessionsAfterCreate && method === 'POST' && path === '/sessions') {
        const done = new Promise<void>((resolve) => (created = resolve));
        creating.add(done);
        void done.then(() => creating.delete(done));
      } else if (options.sessionsAfterCreate && method === 'GET' && parts[0] === 'sessions') {
        await Promise.all([...creating]);
      }

      // Before forwarding: what a kill needs to name (CAO reads the rows it deletes).
      let rows: Json[] = [];
      let killed: Json | undefined;
      if (method === 'DELETE' && parts[0] === 'sessions' && parts.length === 2) {
        const detail = await upstreamJson('GET', `/sessions/${parts[1]}`);
        rows = detail.status === 200 ? ((detail.json as { terminals?: Json[] }).terminals ?? []) : [];
      }
      if (method === 'DELETE' && parts[0] === 'terminals' && parts.length === 2) {
        const t = await upstreamJson('GET', `/terminals/${parts[1]}`);
        killed = t.status === 200 ? (t.json as Json) : undefined;
      }
      if (method === 'GET' && parts[0] === 'terminals' && parts[2] === 'inbox') {
        for (const wake of askedWaiters.get(parts[1]!) ?? []) wake();
        askedWaiters.delete(parts[1]!);
      }

      const up = await request(new URL(req.url ?? '/', options.upstream), {
        method: method as 'GET',
        headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
        body: body.length > 0 ? body : undefined,
      });
      const text = await up.body.text();
      const json = (() => {
        try {
          return JSON.parse(text) as Json;
        } catch {
          return {} as Json;
        }
      })();
      const ok = up.statusCode >= 200 && up.statusCode < 300;

      if (ok && method === 'POST' && path === '/sessions') {
        await fire('post_create_terminal', String(json.session_name), { terminal_id: json.id, agent_name: json.agent_profile, provider: json.provider });
        await fire('post_create_session', String(json.session_name), { session_name: json.session_name });
      } else if (ok && method === 'POST' && parts[0] === 'sessions' && parts[2] === 'terminals') {
        await fire('post_create_terminal', String(json.session_name), { terminal_id: json.id, agent_name: json.agent_profile, provider: json.provider });
      } else if (ok && method === 'POST' && parts[0] === 'terminals' && parts[2] === 'inbox') {
        const receiver = await upstreamJson('GET', `/terminals/${parts[1]}`);
        const r = receiver.json as Json;
        await fire('post_send_message', String(r.session_name), {
          sender: url.searchParams.get('sender_id'), receiver: parts[1], message: url.searchParams.get('message'), orchestration_type: 'send_message',
        });
      } else if (ok && method === 'POST' && path === '/terminals/run-step') {
        const step = JSON.parse(body) as Json;
        await fire('post_kill_terminal', String(step.session_name), { terminal_id: json.terminal_id, agent_name: step.agent });
      } else if (ok && killed && json.success === true) {
        await fire('post_kill_terminal', String(killed.session_name), { terminal_id: killed.id, agent_name: killed.agent_profile });
      } else if (ok && method === 'DELETE' && parts[0] === 'sessions' && json.success === true) {
        for (const row of rows) await fire('post_kill_terminal', parts[1]!, { terminal_id: row.id, agent_name: row.agent_profile });
        await fire('post_kill_session', parts[1]!, { session_name: parts[1] });
      }

      if (method === 'GET' && parts[0] === 'terminals' && parts[2] === 'inbox' && hooks.inboxDelayMs > 0) {
        await new Promise((r) => setTimeout(r, hooks.inboxDelayMs));
      }
      created?.();
      res.writeHead(up.statusCode, { 'content-type': String(up.headers['content-type'] ?? 'application/json') }).end(text);
    })().catch((err: unknown) => {
      res.writeHead(599).end(String(err));
    });
  });
  // A deferred task typed by the server: post_send_message(assign, sender = caller) at that moment.
  options.simulator.onTyped((m, t) => {
    if (m.via !== 'deferred_init' || !m.sender_id) return;
    const typed = fire('post_send_message', t.session_name, { sender: m.sender_id, receiver: t.id, message: m.message, orchestration_type: m.orchestration_type });
    pending.add(typed);
    void typed.finally(() => pending.delete(typed));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const hooks: CaoHooks = {
    url: `http://127.0.0.1:${port}`,
    fired,
    inboxDelayMs: 0,
    inboxAsked: (terminalId) => new Promise<void>((resolve) => {
      askedWaiters.set(terminalId, [...(askedWaiters.get(terminalId) ?? []), resolve]);
    }),
    async close() {
      await Promise.allSettled([...pending]);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return hooks;
}
