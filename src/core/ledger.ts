/**
 * One fact, one event. Several sources (gateway, poller, plugin, library) can observe the same
 * creation, kill or message; the ledger admits the first report of a fact and refuses the
 * repeats, so one CloudEvent goes out. State is bounded.
 */
import { createHash } from 'node:crypto';
import { BoundedMap } from './bounded-map.ts';
import type { CaoEvent } from './events.ts';

export interface FactLedgerOptions {
  /** How long an identical message report counts as the same message. */
  messageWindowMs?: number;
  /** Facts remembered at most, per kind. */
  maxRemembered?: number;
  now?: () => number;
}

type Facts = BoundedMap<string, number>;

/** A creation is new unless the thing is live already. */
function created(live: Facts, gone: Facts, key: string): boolean {
  if (live.has(key)) return false;
  live.set(key, 0);
  gone.delete(key);
  return true;
}

/** A kill is new unless the thing is known gone (and not live again). */
function killed(live: Facts, gone: Facts, key: string): boolean {
  if (gone.has(key) && !live.has(key)) return false;
  live.delete(key);
  gone.set(key, 0);
  return true;
}

function routeKey(event: CaoEvent): string {
  return [event.orchestrationType, event.phase, event.sender ?? '', event.receiver ?? ''].join('|');
}

export function messageFactKey(event: CaoEvent): string {
  const digest = createHash('sha1').update(event.message ?? '').digest('base64url');
  return [event.orchestrationType, event.phase, event.sender ?? '', event.receiver ?? '', digest].join('|');
}

export class FactLedger {
  readonly #liveSessions: BoundedMap<string, number>;
  readonly #killedSessions: BoundedMap<string, number>;
  readonly #liveTerminals: BoundedMap<string, number>;
  readonly #killedTerminals: BoundedMap<string, number>;
  readonly #messages: BoundedMap<string, number>;
  readonly #windowMs: number;
  readonly #now: () => number;

  constructor(options: FactLedgerOptions = {}) {
    const limit = options.maxRemembered ?? 50_000;
    this.#liveSessions = new BoundedMap(limit);
    this.#killedSessions = new BoundedMap(limit);
    this.#liveTerminals = new BoundedMap(limit);
    this.#killedTerminals = new BoundedMap(limit);
    this.#messages = new BoundedMap(limit);
    this.#windowMs = options.messageWindowMs ?? 30_000;
    this.#now = options.now ?? Date.now;
  }

  isSessionLive(name: string): boolean {
    return this.#liveSessions.has(name);
  }

  isTerminalLive(id: string): boolean {
    return this.#liveTerminals.has(id);
  }

  /** True when the event reports a fact not reported before (and records it). */
  admit(event: CaoEvent): boolean {
    switch (event.type) {
      case 'session_created':
        return created(this.#liveSessions, this.#killedSessions, event.sessionName ?? '');
      case 'session_killed':
        return killed(this.#liveSessions, this.#killedSessions, event.sessionName ?? '');
      case 'terminal_created':
        return created(this.#liveTerminals, this.#killedTerminals, event.terminalId ?? '');
      case 'terminal_killed':
        return killed(this.#liveTerminals, this.#killedTerminals, event.terminalId ?? '');
      case 'message_sent': {
        // A report without content (the poller seeing a deferred task delivered) is the same fact
        // as a report with content on the same route and phase within the window, either way round.
        const now = this.#now();
        const recent = (key: string): boolean => {
          const seen = this.#messages.get(key);
          return seen !== undefined && now - seen < this.#windowMs;
        };
        const key = messageFactKey(event);
        const route = `route|${routeKey(event)}`;
        const contentless = `bare|${routeKey(event)}`;
        if (recent(key)) return false;
        if (event.message === undefined ? recent(route) : recent(contentless)) return false;
        this.#messages.set(key, now);
        this.#messages.set(route, now);
        if (event.message === undefined) this.#messages.set(contentless, now);
        return true;
      }
    }
  }
}
