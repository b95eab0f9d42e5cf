/**
 * One fact, one event. Several sources (gateway, poller, plugin, library) can observe the same
 * creation, kill or message; the ledger admits the first report of a fact and refuses the
 * repeats, so one CloudEvent goes out. State is bounded.
 */
import { createHash } from 'node:crypto';
import type { CaoEvent } from './events.ts';

export interface FactLedgerOptions {
  /** How long an identical message report counts as the same message. */
  messageWindowMs?: number;
  /** Facts remembered at most, per kind. */
  maxRemembered?: number;
  now?: () => number;
}

class BoundedSet<K> {
  readonly #map = new Map<K, number>();
  readonly #limit: number;
  constructor(limit: number) {
    this.#limit = limit;
  }
  has(key: K): boolean {
    return this.#map.has(key);
  }
  get(key: K): number | undefined {
    return this.#map.get(key);
  }
  add(key: K, value = 0): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.#limit) {
      const oldest = this.#map.keys().next();
      if (!oldest.done) this.#map.delete(oldest.value);
    }
  }
  delete(key: K): void {
    this.#map.delete(key);
  }
}

export function messageFactKey(event: CaoEvent): string {
  const digest = createHash('sha1').update(event.message ?? '').digest('base64url');
  return [event.orchestrationType, event.phase, event.sender ?? '', event.receiver ?? '', digest].join('|');
}

export class FactLedger {
  readonly #liveSessions: BoundedSet<string>;
  readonly #killedSessions: BoundedSet<string>;
  readonly #liveTerminals: BoundedSet<string>;
  readonly #killedTerminals: BoundedSet<string>;
  readonly #messages: BoundedSet<string>;
  readonly #windowMs: number;
  readonly #now: () => number;

  constructor(options: FactLedgerOptions = {}) {
    const limit = options.maxRemembered ?? 50_000;
    this.#liveSessions = new BoundedSet(limit);
    this.#killedSessions = new BoundedSet(limit);
    this.#liveTerminals = new BoundedSet(limit);
    this.#killedTerminals = new BoundedSet(limit);
    this.#messages = new BoundedSet(limit);
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
      case 'session_created': {
        const name = event.sessionName ?? '';
        if (this.#liveSessions.has(name)) return false;
        this.#liveSessions.add(name);
        this.#killedSessions.delete(name);
        return true;
      }
      case 'session_killed': {
        const name = event.sessionName ?? '';
        if (this.#killedSessions.has(name) && !this.#liveSessions.has(name)) return false;
        this.#liveSessions.delete(name);
        this.#killedSessions.add(name);
        return true;
      }
      case 'terminal_created': {
        const id = event.terminalId ?? '';
        if (this.#liveTerminals.has(id)) return false;
        this.#liveTerminals.add(id);
        this.#killedTerminals.delete(id);
        return true;
      }
      case 'terminal_killed': {
        const id = event.terminalId ?? '';
        if (this.#killedTerminals.has(id) && !this.#liveTerminals.has(id)) return false;
        this.#liveTerminals.delete(id);
        this.#killedTerminals.add(id);
        return true;
      }
      case 'message_sent': {
        const key = messageFactKey(event);
        const now = this.#now();
        const seen = this.#messages.get(key);
        if (seen !== undefined && now - seen < this.#windowMs) return false;
        this.#messages.add(key, now);
        return true;
      }
    }
  }
}
