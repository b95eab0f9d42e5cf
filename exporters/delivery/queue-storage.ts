/**
 * Where a delivery queue keeps its events: in memory (bounded by maxQueue), or in the durable
 * outbox (on disk, bounded by outbox.maxBytes, with a window of maxQueue events in memory). The
 * queue does not know which: it takes events from the front, puts back what a request did not
 * carry, and reports each event as done (delivered or skipped) or given up. A storage never
 * throws at the queue: what it cannot keep it reports to the sink's LossLog.
 */
import type { CloudEventV1 } from 'cloudevents';
import type { OutboxStats } from '../sink.ts';

export interface QueuedEvent {
  readonly event: CloudEventV1<unknown>;
  /** Position in the outbox log; undefined for an event held in memory only. */
  readonly seq?: number;
}

export interface GiveUp {
  kind: 'rejected' | 'exhausted' | 'gone' | 'render_failed';
  reason: string;
}

export interface QueueStorage {
  readonly kind: 'memory' | 'outbox';
  /** Events waiting to be taken, wherever they are (memory and disk). */
  readonly waiting: number;
  /** Keeps events for delivery, after everything already kept. */
  append(events: readonly CloudEventV1<unknown>[]): void;
  /**
   * Takes up to `max` events from the front (or, with `groupBy`, those sharing the first one's
   * key: the unbroken run at the front with `runOnly`, else gathered from the events in memory).
   */
  take(max: number, groupBy?: (event: CloudEventV1<unknown>) => string, runOnly?: boolean): QueuedEvent[];
  /** Returns taken events to the front, in order (a request carried fewer than it was offered). */
  putBack(items: readonly QueuedEvent[]): void;
  /** Delivered, or nothing to send for them: forgotten. */
  done(items: readonly QueuedEvent[]): void;
  /** Given up on: kept in the dead-letter file where there is one. Returns how many were kept. */
  deadLetter(items: readonly QueuedEvent[], failure: GiveUp): number;
  /**
   * The sink stops. `taken` are events taken and not done (in flight, waiting for a retry).
   * Everything not done is either kept on disk for the next start or lost; returns the counts.
   */
  close(taken: readonly QueuedEvent[]): { keptOnDisk: number; lost: number };
  stats(): OutboxStats | undefined;
}

/**
 * Splices the next request's events out of `window`: up to `max`, all sharing the first one's
 * group key, in order; with `runOnly`, only the unbroken run of them at the front.
 */
export function takeGroup<T>(window: T[], max: number, keyOf?: (item: T) => string, runOnly = false): T[] {
  if (window.length === 0) return [];
  if (!keyOf) return window.splice(0, Math.max(1, max));
  const key = keyOf(window[0]!);
  if (runOnly) {
    let n = 1;
    while (n < max && n < window.length && keyOf(window[n]!) === key) n += 1;
    return window.splice(0, n);
  }
  const taken: T[] = [];
  let kept = 0;
  for (let i = 0; i < window.length; i++) {
    const item = window[i]!;
    if (taken.length < max && keyOf(item) === key) taken.push(item);
    else window[kept++] = item;
  }
  window.length = kept;
  return taken;
}
