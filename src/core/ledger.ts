/**
 * One fact, one event; two occurrences, two events. Several sources (gateway, poller, plugin,
 * library) can observe the same creation, kill or message; the ledger admits the first report
 * of a fact and refuses the repeats.
 *
 * - Sessions and terminals: judged against the core's state (CaoState). A creation is new
 *   unless the incarnation's creation was recorded already; a kill is new unless the
 *   incarnation (or terminal) is known killed.
 * - Messages: there is no id all sources share (CAO's post_send_message carries no inbox
 *   message id; the poller sees the inbox row's id but not the plugin's hook), so reports are
 *   paired per route — (orchestration type, phase, sender, receiver) — in order: the n-th report
 *   of a source pairs with the oldest occurrence of that route no report of the same source has
 *   claimed yet and whose content matches (a report without content, such as the poller's
 *   deferred-assign delivery, matches any). A source reports each occurrence it sees once, so:
 *   the same delivery seen by the plugin and the poller → one event; two deliveries of the same
 *   text → two events (each source reports two). CAO delivers an inbox oldest first, so pairing
 *   in order pairs the same deliveries. A report repeating an observation id already seen from
 *   that source (the plugin's per-hook id, the poller's inbox id) is the same observation.
 *   Occurrences are remembered `messageWindowMs` (default 10 minutes; keep it above the
 *   poller's interval).
 */
import { createHash } from 'node:crypto';
import { BoundedMap } from './bounded-map.ts';
import type { ValidCaoEvent } from './events.ts';
import type { EventSource } from './fields.ts';
import type { CaoState, SessionRecord } from './state.ts';

export interface FactLedgerOptions {
  /** The state lifecycle facts are judged against. */
  state: CaoState;
  /** How long an occurrence of a message waits for the other sources' reports of it. */
  messageWindowMs?: number;
  /** Message occurrences (and observation ids) remembered at most; the oldest go first. */
  maxRemembered?: number;
  now?: () => number;
}

export const DEFAULT_MESSAGE_WINDOW_MS = 10 * 60_000;

interface Occurrence {
  route: Route;
  digest?: string;
  sources: Set<EventSource>;
  at: number;
}

interface Route {
  key: string;
  /** Oldest first (a suffix of the global queue's order). */
  occurrences: Occurrence[];
  /** Every source that reported on this route (one source alone never pairs: skip the scan). */
  sources: Set<EventSource>;
  /** Occurrences before this index were claimed by every source of the route: not scanned. */
  open: number;
}

const claimedByAll = (o: Occurrence, sources: Set<EventSource>): boolean => {
  for (const source of sources) if (!o.sources.has(source)) return false;
  return true;
};

export function messageRouteKey(event: ValidCaoEvent): string {
  return [event.orchestrationType, event.phase, event.sender ?? '', event.receiver ?? ''].join('|');
}

function digestOf(message: string | undefined): string | undefined {
  return message === undefined ? undefined : createHash('sha1').update(message).digest('base64url');
}

export class FactLedger {
  readonly #routes = new Map<string, Route>();
  /** Every remembered occurrence, oldest first, from `#head` on. */
  #queue: Occurrence[] = [];
  #head = 0;
  readonly #observations: BoundedMap<string, true>;
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #state: CaoState;

  constructor(options: FactLedgerOptions) {
    this.#state = options.state;
    this.#limit = Math.max(1, options.maxRemembered ?? 50_000);
    this.#observations = new BoundedMap(this.#limit);
    this.#windowMs = options.messageWindowMs ?? DEFAULT_MESSAGE_WINDOW_MS;
    this.#now = options.now ?? Date.now;
  }

  /** Message occurrences remembered now. */
  get size(): number {
    return this.#queue.length - this.#head;
  }

  /**
   * True when the event reports a fact not reported before. `place` is the incarnation the
   * state assigns it (undefined: the event opens a new one). Records message occurrences.
   */
  admit(event: ValidCaoEvent, place: SessionRecord | undefined = this.#state.placeOf(event)): boolean {
    const state = this.#state;
    switch (event.type) {
      case 'session_created':
        return place === undefined || !place.created;
      case 'session_killed':
        return place === undefined || place.killedAt === undefined;
      case 'terminal_created': {
        const t = place && state.terminalRecord(event.terminalId!);
        if (!t || t.session !== place) return true;
        if (!t.created) return true;
        return false;
      }
      case 'terminal_killed': {
        const t = place && state.terminalRecord(event.terminalId!);
        return !t || t.session !== place || t.killedAt === undefined;
      }
      case 'message_sent':
        return this.#admitMessage(event);
    }
  }

  /** Forgets the oldest occurrences: past the window, or beyond the bound. */
  #forget(now: number): void {
    while (this.#head < this.#queue.length) {
      const oldest = this.#queue[this.#head]!;
      if (now - oldest.at < this.#windowMs && this.size <= this.#limit) break;
      this.#head++;
      const route = oldest.route;
      if (route.occurrences[0] === oldest) {
        route.occurrences.shift();
        route.open = Math.max(0, route.open - 1);
      }
      if (route.occurrences.length === 0 && this.#routes.get(route.key) === route) this.#routes.delete(route.key);
    }
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }

  #admitMessage(event: ValidCaoEvent): boolean {
    const source = event.source ?? 'api';
    if (event.observationId !== undefined) {
      const key = `${source}|${event.observationId}`;
      if (this.#observations.has(key)) return false;
      this.#observations.set(key, true);
    }
    const now = this.#now();
    this.#forget(now);
    const key = messageRouteKey(event);
    let route = this.#routes.get(key);
    if (!route) {
      route = { key, occurrences: [], sources: new Set(), open: 0 };
      this.#routes.set(key, route);
    }
    const digest = digestOf(event.message);
    let same: Occurrence | undefined;
    if (route.sources.size > 1 || (route.sources.size === 1 && !route.sources.has(source))) {
      for (let i = route.open; i < route.occurrences.length; i++) {
        const o = route.occurrences[i]!;
        if (!o.sources.has(source) && (digest === undefined || o.digest === undefined || o.digest === digest)) {
          same = o;
          break;
        }
      }
    }
    if (!route.sources.has(source)) {
      route.sources.add(source);
      route.open = 0; // a new source may claim any occurrence
    }
    if (same) {
      same.sources.add(source);
      same.digest ??= digest;
      while (route.open < route.occurrences.length && claimedByAll(route.occurrences[route.open]!, route.sources)) route.open++;
      return false;
    }
    const occurrence: Occurrence = { route, ...(digest ? { digest } : {}), sources: new Set([source]), at: now };
    route.occurrences.push(occurrence);
    this.#queue.push(occurrence);
    this.#forget(now);
    return true;
  }
}
