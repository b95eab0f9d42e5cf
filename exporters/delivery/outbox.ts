/**
 * The durable outbox as a queue storage: the outbox IS the sink's queue. Every event accepted is
 * appended to the on-disk log (outbox-log.ts) before anything else happens to it; the queue works
 * from a window of at most `memoryEvents` (maxQueue) events read back from the log in order, so
 * an overflow waits on disk (bounded by `maxBytes` and the disk) and is read back as the queue
 * drains, while running and after a restart. Events given up on go to the dead-letter file.
 *
 * Nothing here throws at the queue. When the disk refuses a write (full, read-only, I/O error)
 * or `maxBytes` is reached, new events wait in memory instead (up to `memoryEvents` of them,
 * behind what is on disk, so order is kept), an ERROR line says so, and the disk is tried again
 * every few seconds with what waits in memory first; what memory cannot hold either is lost and
 * reported to the LossLog. A dead letter that cannot be written stays pending in the log for the
 * next start. Writes reach the OS at once (a process crash or kill -9 loses nothing); there is no
 * fsync per event (a power loss may lose the last writes).
 */
import { join } from 'node:path';
import type { CloudEventV1 } from 'cloudevents';
import type { Logger } from 'pino';
import { toPlainObject } from '../cloudevents/encode.ts';
import type { OutboxStats } from '../sink.ts';
import { type Clock, systemClock } from './clock.ts';
import type { LossLog } from './loss-log.ts';
import {
  DEAD_LETTER_FILE,
  LineAppender,
  OutboxLockedError,
  type OutboxFs,
  explainFsError,
  fsErrorCode,
  lockDirectory,
  nodeOutboxFs,
  prepareDirectory,
  unlockDirectory,
} from './outbox-files.ts';
import { type AppendStop, OutboxLog } from './outbox-log.ts';
import { type GiveUp, type QueueStorage, type QueuedEvent, takeGroup } from './queue-storage.ts';

export { OutboxLockedError } from './outbox-files.ts';

export const DEFAULT_RETRY_DISK_MS = 5_000;

/** The directory cannot be used at start-up (and a degraded start was not asked for). */
export class OutboxUnavailableError extends Error {
  override name = 'OutboxUnavailableError';
  readonly dir: string;
  readonly code: string;
  constructor(dir: string, err: unknown) {
    super(`cannot write to ${dir}: ${explainFsError(err)}`);
    this.dir = dir;
    this.code = fsErrorCode(err);
  }
}

export interface OutboxStorageOptions {
  dir: string;
  /** The sink's name, for logs and dead-letter records. */
  sink: string;
  /** Bytes of log kept at most; beyond it, new events wait in memory (then are lost). */
  maxBytes: number;
  /** Events held in memory at most: the window read from disk, and separately those the disk could not take. */
  memoryEvents: number;
  logger: Logger;
  losses: LossLog;
  /** Start even when the directory cannot be written: events then wait in memory until it can. */
  degradedStart?: boolean;
  fs?: OutboxFs;
  clock?: Clock;
  segmentBytes?: number;
  retryDiskMs?: number;
}

export class OutboxStorage implements QueueStorage {
  readonly kind = 'outbox';
  readonly dir: string;
  readonly #fs: OutboxFs;
  readonly #log: Logger;
  readonly #losses: LossLog;
  readonly #clock: Clock;
  readonly #sink: string;
  readonly #maxBytes: number;
  readonly #memoryEvents: number;
  readonly #retryDiskMs: number;
  readonly #disk: OutboxLog;
  readonly #deadLetters: LineAppender;

  readonly #window: QueuedEvent[] = [];
  #memoryOnlyInWindow = 0;
  /** Events the disk could not take, waiting behind what is on disk. */
  readonly #tail: CloudEventV1<unknown>[] = [];
  #mode: 'disk' | 'memory' = 'disk';
  #degradedBy: AppendStop['by'] | undefined;
  #retryDiskAt = 0;
  #probing = false;
  #lastStillFailingLog = 0;
  #deadLetterErrors = 0;
  #deadLettered = 0;
  #closed = false;
  #locked = false;

  /** Opens (or creates) a sink's outbox. Throws OutboxUnavailableError / OutboxLockedError at start-up. */
  static open(options: OutboxStorageOptions): OutboxStorage {
    return new OutboxStorage(options);
  }

  private constructor(options: OutboxStorageOptions) {
    this.dir = options.dir;
    this.#fs = options.fs ?? nodeOutboxFs;
    this.#log = options.logger.child({ outbox: options.dir });
    this.#losses = options.losses;
    this.#clock = options.clock ?? systemClock;
    this.#sink = options.sink;
    this.#maxBytes = options.maxBytes;
    this.#memoryEvents = Math.max(1, options.memoryEvents);
    this.#retryDiskMs = options.retryDiskMs ?? DEFAULT_RETRY_DISK_MS;
    this.#disk = new OutboxLog({ dir: this.dir, fs: this.#fs, logger: this.#log, sink: this.#sink, maxBytes: this.#maxBytes, segmentBytes: options.segmentBytes });
    this.#deadLetters = new LineAppender(this.#fs, join(this.dir, DEAD_LETTER_FILE));
    let readable = true;
    try {
      prepareDirectory(this.#fs, this.dir);
      lockDirectory(this.#fs, this.dir);
      this.#locked = true;
    } catch (err) {
      if (err instanceof OutboxLockedError) throw err;
      if (!options.degradedStart) throw new OutboxUnavailableError(this.dir, err);
      readable = this.#fs.existsSync(this.dir);
      this.#enterMemoryMode({ by: 'error', error: err }, true);
    }
    if (readable) this.#disk.recover();
  }

  get waiting(): number {
    return this.#window.length + this.#disk.unread + this.#tail.length;
  }

  stats(): OutboxStats {
    return {
      dir: this.dir,
      pending: this.#disk.pending,
      bytes: this.#disk.bytes,
      memoryOnly: this.#memoryOnlyInWindow + this.#tail.length,
      writeErrors: this.#disk.writeErrors + this.#deadLetterErrors,
      degraded: this.#mode === 'memory',
      deadLettered: this.#deadLettered,
    };
  }

  append(events: readonly CloudEventV1<unknown>[]): void {
    if (events.length === 0) return;
    if (this.#closed) {
      this.#losses.lost(events.length, 'sink_closed');
      return;
    }
    const probing = this.#mode === 'memory' && this.#clock.now() >= this.#retryDiskAt;
    if (probing) this.#probeDisk();
    let rest = events;
    if (this.#mode === 'disk' && this.#tail.length === 0) rest = events.slice(this.#write(events));
    if (probing) this.#probeDone();
    if (rest.length > 0) this.#holdInMemory(rest);
  }

  take(max: number, groupBy?: (event: CloudEventV1<unknown>) => string, runOnly?: boolean): QueuedEvent[] {
    this.#refill();
    const items = takeGroup(this.#window, max, groupBy && ((item) => groupBy(item.event)), runOnly);
    for (const item of items) if (item.seq === undefined) this.#memoryOnlyInWindow -= 1;
    return items;
  }

  putBack(items: readonly QueuedEvent[]): void {
    this.#window.unshift(...items);
    for (const item of items) if (item.seq === undefined) this.#memoryOnlyInWindow += 1;
  }

  done(items: readonly QueuedEvent[]): void {
    this.#disk.done(items.flatMap((i) => (i.seq === undefined ? [] : [i.seq])));
  }

  deadLetter(items: readonly QueuedEvent[], failure: GiveUp): number {
    if (items.length === 0) return 0;
    const at = new Date().toISOString();
    const text = items
      .map((i) => `${JSON.stringify({ event: toPlainObject(i.event), error: failure.reason, kind: failure.kind, at, sink: this.#sink })}\n`)
      .join('');
    const onDisk = items.filter((i) => i.seq !== undefined);
    try {
      this.#deadLetters.append(text);
    } catch (err) {
      // What is in the log stays pending there (it is tried again after the next start); what
      // was in memory only is lost (the caller counts it).
      this.#deadLetterErrors += 1;
      this.#log.error(
        { sink: this.#sink, events: items.length, keptInOutbox: onDisk.length, error: explainFsError(err) },
        'could not write to the dead-letter file: events that are in the outbox stay pending there for the next start',
      );
      return onDisk.length;
    }
    this.#deadLettered += items.length;
    this.done(onDisk);
    return items.length;
  }

  close(taken: readonly QueuedEvent[]): { keptOnDisk: number; lost: number } {
    if (this.#closed) return { keptOnDisk: this.#disk.pending, lost: 0 };
    // Events held in memory only: one last try to put them on disk.
    const memoryOnly = [
      ...this.#window.filter((i) => i.seq === undefined).map((i) => i.event),
      ...taken.filter((i) => i.seq === undefined).map((i) => i.event),
      ...this.#tail,
    ];
    this.#closed = true;
    let persisted = 0;
    if (memoryOnly.length > 0) {
      this.#probing = this.#mode === 'memory';
      this.#mode = 'disk';
      persisted = this.#write(memoryOnly);
      this.#probing = false;
      if (persisted > 0) this.#log.info({ sink: this.#sink, events: persisted }, 'outbox: events held in memory written to disk at shutdown');
    }
    this.#window.length = 0;
    this.#tail.length = 0;
    this.#memoryOnlyInWindow = 0;
    const keptOnDisk = this.#disk.close();
    this.#deadLetters.close();
    if (this.#locked) unlockDirectory(this.#fs, this.dir);
    this.#locked = false;
    return { keptOnDisk, lost: memoryOnly.length - persisted };
  }

  /** Appends to the log; returns how many (from the front) are on disk now, keeping the first ones in the window when it can. */
  #write(events: readonly CloudEventV1<unknown>[]): number {
    const caughtUp = this.#disk.unread === 0 && this.#tail.length === 0 && !this.#closed;
    const room = caughtUp ? Math.max(0, this.#memoryEvents - this.#window.length) : 0;
    const { records, stop } = this.#disk.append(events, room);
    for (const record of records.slice(0, caughtUp ? room : 0)) this.#window.push(record);
    if (stop) this.#enterMemoryMode(stop);
    return records.length;
  }

  #holdInMemory(events: readonly CloudEventV1<unknown>[]): void {
    const room = Math.max(0, this.#memoryEvents - this.#memoryOnlyInWindow - this.#tail.length);
    const kept = events.slice(0, room);
    if (this.#disk.unread === 0 && this.#tail.length === 0) {
      const intoWindow = kept.slice(0, Math.max(0, this.#memoryEvents - this.#window.length));
      for (const event of intoWindow) this.#window.push({ event });
      this.#memoryOnlyInWindow += intoWindow.length;
      this.#tail.push(...kept.slice(intoWindow.length));
    } else {
      this.#tail.push(...kept);
    }
    if (events.length > room) {
      this.#losses.lost(events.length - room, this.#degradedBy === 'full' ? 'outbox_full' : 'outbox_write_failed');
    }
  }

  #enterMemoryMode(stop: AppendStop, atStart = false): void {
    const now = this.#clock.now();
    this.#retryDiskAt = now + this.#retryDiskMs;
    const error = stop.by === 'full' ? 'outbox.maxBytes reached' : explainFsError(stop.error);
    if (this.#mode === 'memory' || this.#probing) {
      this.#mode = 'memory';
      if (now - this.#lastStillFailingLog >= 60_000) {
        this.#lastStillFailingLog = now;
        this.#log.warn({ sink: this.#sink, error }, 'outbox: still cannot write to disk; events wait in memory');
      }
      return;
    }
    this.#mode = 'memory';
    this.#degradedBy = stop.by;
    this.#lastStillFailingLog = now;
    const detail = { sink: this.#sink, error, maxQueue: this.#memoryEvents, retryInMs: this.#retryDiskMs };
    if (stop.by === 'full') {
      this.#log.error({ ...detail, maxBytes: this.#maxBytes }, 'outbox full (outbox.maxBytes): new events wait in memory (up to maxQueue) and are delivered from there; beyond that they are lost and counted');
    } else {
      this.#log.error(
        detail,
        atStart
          ? 'outbox directory not writable: starting degraded; events wait in memory (up to maxQueue) and are delivered from there until the directory can be written'
          : 'outbox write failed: new events wait in memory (up to maxQueue) and are delivered from there; beyond that they are lost and counted',
      );
    }
  }

  /**
   * In memory mode, after the retry interval: try the disk again, first with what waits in
   * memory behind it (so order is kept). A failure now is "still failing", not a new episode.
   */
  #probeDisk(): void {
    this.#probing = true;
    this.#mode = 'disk';
    const moved = this.#write(this.#tail);
    this.#tail.splice(0, moved);
  }

  #probeDone(): void {
    this.#probing = false;
    if (this.#mode !== 'disk') return;
    this.#degradedBy = undefined;
    this.#log.warn({ sink: this.#sink }, 'outbox writable again: events are kept on disk again');
  }

  /** Tops the window up from disk (then from memory) when it is down to half. */
  #refill(): void {
    if (this.#window.length > Math.floor(this.#memoryEvents / 2)) return;
    while (this.#window.length < this.#memoryEvents) {
      const record = this.#disk.unread > 0 ? this.#disk.readNext() : undefined;
      if (record) {
        this.#window.push(record);
      } else if (this.#disk.unread === 0 && this.#tail.length > 0) {
        const moved = this.#tail.splice(0, this.#memoryEvents - this.#window.length);
        for (const event of moved) this.#window.push({ event });
        this.#memoryOnlyInWindow += moved.length;
      } else {
        break;
      }
    }
  }
}
