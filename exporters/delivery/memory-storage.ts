/**
 * Queue storage in memory: at most `maxEvents` events wait; beyond that new events are lost
 * (counted and logged by the sink's LossLog as `queue_full`). At shutdown, what is left is lost
 * (there is no disk to keep it): the sink says how many.
 */
import type { CloudEventV1 } from 'cloudevents';
import type { LossLog } from './loss-log.ts';
import { type GiveUp, type QueueStorage, type QueuedEvent, takeGroup } from './queue-storage.ts';

export interface MemoryStorageOptions {
  maxEvents: number;
  losses: LossLog;
  /**
   * The events are also kept elsewhere (a dead-letter file being replayed): given-up events
   * count as kept, not lost.
   */
  keptElsewhere?: boolean;
  /** Told about events done (delivered or skipped), e.g. to remove them from a replayed file. */
  onDone?: (items: readonly QueuedEvent[]) => void;
}

export class MemoryStorage implements QueueStorage {
  readonly kind = 'memory';
  readonly #max: number;
  readonly #losses: LossLog;
  readonly #keptElsewhere: boolean;
  readonly #onDone: MemoryStorageOptions['onDone'];
  #window: QueuedEvent[] = [];
  #closed = false;

  constructor(options: MemoryStorageOptions) {
    this.#max = Math.max(1, options.maxEvents);
    this.#losses = options.losses;
    this.#keptElsewhere = options.keptElsewhere ?? false;
    this.#onDone = options.onDone;
  }

  get waiting(): number {
    return this.#window.length;
  }

  append(events: readonly CloudEventV1<unknown>[]): void {
    if (this.#closed) {
      this.#losses.lost(events.length, 'sink_closed');
      return;
    }
    const room = Math.max(0, this.#max - this.#window.length);
    for (const event of events.slice(0, room)) this.#window.push({ event });
    if (events.length > room) this.#losses.lost(events.length - room, 'queue_full');
  }

  take(max: number, groupBy?: (event: CloudEventV1<unknown>) => string, runOnly?: boolean): QueuedEvent[] {
    return takeGroup(this.#window, max, groupBy && ((item) => groupBy(item.event)), runOnly);
  }

  putBack(items: readonly QueuedEvent[]): void {
    this.#window.unshift(...items);
  }

  done(items: readonly QueuedEvent[]): void {
    // nothing to forget: taken events are no longer held
    this.#onDone?.(items);
  }

  deadLetter(items: readonly QueuedEvent[], _failure: GiveUp): number {
    return this.#keptElsewhere ? items.length : 0;
  }

  close(taken: readonly QueuedEvent[]): { keptOnDisk: number; lost: number } {
    this.#closed = true;
    const left = this.#window.length + taken.length;
    this.#window = [];
    return { keptOnDisk: 0, lost: this.#keptElsewhere ? 0 : left };
  }

  stats(): undefined {
    return undefined;
  }
}
