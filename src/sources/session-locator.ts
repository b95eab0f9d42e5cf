/**
 * Places a gateway event that names only terminals (a message, a terminal delete) in its
 * session: the core's state is asked first (it knows every terminal any source reported);
 * only a terminal it does not know (created before cao-events started) costs one
 * `GET /terminals/{id}` to CAO. Never throws: an event it cannot place goes on as it is.
 */
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import type { CaoEvent } from '../core/events.ts';
import type { CaoStateView } from '../core/state.ts';

export interface SessionLocatorOptions {
  /** cao-server's base URL. */
  upstream: string;
  /** Bearer token for CAO auth (scope cao:read). */
  token?: string;
  state: CaoStateView;
  logger: Logger;
}

export interface SessionLocator {
  locate(event: CaoEvent): Promise<CaoEvent>;
  close(): Promise<void>;
}

export function createSessionLocator(options: SessionLocatorOptions): SessionLocator {
  const agent = new Agent({ connections: 4, headersTimeout: 5_000, bodyTimeout: 5_000 });

  async function askCao(id: string): Promise<string | undefined> {
    try {
      const res = await request(new URL(`/terminals/${encodeURIComponent(id)}`, options.upstream), {
        dispatcher: agent,
        headers: options.token ? { authorization: `Bearer ${options.token}` } : {},
        signal: AbortSignal.timeout(5_000),
      });
      if (res.statusCode !== 200) {
        await res.body.dump();
        return undefined;
      }
      const body = (await res.body.json()) as { session_name?: unknown };
      return typeof body.session_name === 'string' ? body.session_name : undefined;
    } catch (err) {
      options.logger.warn({ terminal: id, error: (err as Error).message }, 'could not look up the session of a terminal');
      return undefined;
    }
  }

  return {
    async locate(event) {
      if (event.sessionName) return event;
      const ids = [event.terminalId, event.sender, event.receiver].filter((id): id is string => Boolean(id));
      if (ids.some((id) => options.state.sessionOfTerminal(id) !== undefined)) return event; // the core places it
      for (const id of ids) {
        const sessionName = await askCao(id);
        if (sessionName) return { ...event, sessionName };
      }
      return event;
    },
    close: () => agent.close(),
  };
}
