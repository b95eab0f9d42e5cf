/**
 * The durable outbox as a queue storage: the outbox IS the sink's queue. Every event accepted is
 * appended to the on-disk log before anything else happens to it; the queue works from a window
 * of at most `memoryEvents` (maxQueue) events read back from the log in order, so an overflow
 * waits on disk (bounded only by `maxBytes`) and is read back as the queue drains, while running
 * and after a restart. An event is marked done in `acks` once delivered (or skipped, or written
 * to the dead-letter file); a segment whose events are all done is deleted.
 *
 * Nothing here throws at the queue. When the disk refuses a write (full, read-only, I/O error)
 * or `maxBytes` is reached, new events wait in memory instead (up to `memoryEvents` of them,
 * behind what is on disk, so order is kept), an ERROR line says so, and the disk is tried again
 * every few seconds; what memory cannot hold either is lost and reported to the LossLog. An ack
 * that cannot be written means the event may be delivered again after a restart (at least
 * once); a dead letter that cannot be written stays pending in the log for the next start.
 * Writes reach the OS at once (a process crash or kill -9 loses nothing); there is no fsync per
 * event (a power loss may lose the last writes).
 */
import { dirname, join } from 'node:path';
import type { CloudEventV1 } from 'cloudevents';
import type { Logger } from 'pino';
import { toPlainObject } from '../cloudevents/encode.ts';
import type { OutboxStats } from '../sink.ts';
import { type Clock, systemClock } from './clock.ts';
import type { LossLog } from './loss-log.ts';
import {
  ACKS_FILE,
  DEAD_LETTER_FILE,
  LOCK_FILE,
  type OutboxFs,
  ackLine,
  explainFsError,
  fsErrorCode,
  listSegments,
  nodeOutboxFs,
  parseAcks,
  recordSeq,
  reviveEvent,
  segmentFileName,
  writeAll,
} from './outbox-files.ts';
import { type GiveUp, type QueueStorage, type QueuedEvent, takeGroup } from './queue-storage.ts';

export const DEFAULT_SEGMENT_BYTES = 4 * 1024 * 1024;
export const DEFAULT_RETRY_DISK_MS = 5_000;
const ACKS_COMPACT_BYTES = 1024 * 1024;
const READ_CHUNK_BYTES = 256 * 1024;

/** The directory cannot be used at start-up (and a degraded start was not asked for). */
export class OutboxUnavailableError extends Error {
  override name = 'OutboxUnavailableError';
  readonly dir: string;
  readonly code: string;
  constructor(dir: string, err: unknown, what: string) {
    super(`${what} ${dir}: ${explainFsError(err)}`);
    this.dir = dir;
    this.code = fsErrorCode(err);
  }
}

/** Another live process uses the directory (a running sidecar, a replay). */
export class OutboxLockedError extends Error {
  override name = 'OutboxLockedError';
  readonly pid: number;
  constructor(dir: string, pid: number) {
    super(`${dir} is in use by process ${pid} (another cao-events on the same outbox directory?)`);
    this.pid = pid;
  }
}

export interface OutboxStorageOptions {
  dir: string;
  /** The sink's name, for logs and dead-letter records. */
  sink: string;
  /** Bytes of log kept at most; beyond it, new events wait in memory (then are lost). */
  maxBytes: number;
  /** Events held in memory at most: the window read from disk, and separately those disk could not take. */
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

interface Segment {
  readonly name: string;
  readonly first: number;
  /** Complete records in the file. */
  records: number;
  /** Of those, done. */
  done: number;
  /** Bytes up to the end of the last complete record. */
  size: number;
  /** No more appends (an old segment, a full one, or one a write failed on). */
  sealed: boolean;
  /** Highest sequence number in it. */
  last: number;
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
  readonly #segmentBytes: number;
  readonly #retryDiskMs: number;

  readonly #segments: Segment[] = [];
  #active: { seg: Segment; fd: number } | undefined;
  #reader: { seg: Segment; fd: number } | undefined;
  #chunk: { seg: Segment; start: number; buf: Buffer } | undefined;
  readonly #doneSeqs = new Set<number>();
  /** Next record to read into the window. */
  #cursor: { seg: Segment | undefined; offset: number } = { seg: undefined, offset: 0 };
  /** Records on disk not read into the window yet (and not done). */
  #unread = 0;
  #pendingOnDisk = 0;
  #diskBytes = 0;
  #nextSeq = 1;
  readonly #window: QueuedEvent[] = [];
  #memoryOnlyInWindow = 0;
  /** Events the disk could not take, waiting behind what is on disk. */
  readonly #tail: CloudEventV1<unknown>[] = [];

  #mode: 'disk' | 'memory' = 'disk';
  #degradedBy: 'full' | 'error' | undefined;
  #retryDiskAt = 0;
  #lastStillFailingLog = 0;
  #probing = false;
  #movedToDisk = 0;
  #acks: { fd: number; size: number } | undefined;
  #acksBroken = false;
  #deadLetterBroken = false;
  #deadLetterSize: number | undefined;
  #writeErrors = 0;
  #deadLettered = 0;
  #lastWriteErrorLog = 0;
  #closed = false;
  #ownsLock = false;

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
    this.#segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.#retryDiskMs = options.retryDiskMs ?? DEFAULT_RETRY_DISK_MS;
    let readable = true;
    try {
      this.#makeDir();
      this.#lock();
      this.#probe();
    } catch (err) {
      if (err instanceof OutboxLockedError) throw err;
      const unavailable = new OutboxUnavailableError(this.dir, err, 'cannot write to');
      if (!options.degradedStart) throw unavailable;
      readable = this.#fs.existsSync(this.dir);
      this.#enterMemoryMode('error', err, true);
    }
    if (readable) this.#recover();
  }

  get waiting(): number {
    return this.#window.length + this.#unread + this.#tail.length;
  }

  stats(): OutboxStats {
    return {
      dir: this.dir,
      pending: this.#pendingOnDisk,
      bytes: this.#diskBytes + (this.#acks?.size ?? 0),
      memoryOnly: this.#memoryOnlyInWindow + this.#tail.length,
      writeErrors: this.#writeErrors,
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
    if (probing) this.#probeDiskWith(this.#tail);
    let rest = events;
    if (this.#mode === 'disk' && this.#tail.length === 0) rest = events.slice(this.#writeToDisk(events));
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
    let acks = '';
    const touched = new Set<Segment>();
    for (const item of items) {
      if (item.seq === undefined || this.#doneSeqs.has(item.seq)) continue;
      const seg = this.#segmentOf(item.seq);
      if (!seg) continue;
      this.#doneSeqs.add(item.seq);
      seg.done += 1;
      this.#pendingOnDisk -= 1;
      touched.add(seg);
      acks += ackLine(item.seq);
    }
    if (acks) this.#appendAcks(acks);
    for (const seg of touched) this.#maybeRetire(seg);
  }

  deadLetter(items: readonly QueuedEvent[], failure: GiveUp): number {
    if (items.length === 0) return 0;
    const at = new Date().toISOString();
    const text = items
      .map((i) => `${JSON.stringify({ event: toPlainObject(i.event), error: failure.reason, kind: failure.kind, at, sink: this.#sink })}\n`)
      .join('');
    const onDisk = items.filter((i) => i.seq !== undefined);
    if (this.#appendDeadLetters(text)) {
      this.#deadLettered += items.length;
      this.done(onDisk);
      return items.length;
    }
    // The dead-letter file cannot be written: what is in the log stays pending there (it is
    // tried again after the next start); what was in memory only is lost (the caller counts it).
    this.#log.error(
      { sink: this.#sink, events: items.length, keptInOutbox: onDisk.length },
      'could not write to the dead-letter file: events that are in the outbox stay pending there for the next start',
    );
    return onDisk.length;
  }

  close(taken: readonly QueuedEvent[]): { keptOnDisk: number; lost: number } {
    if (this.#closed) return { keptOnDisk: this.#pendingOnDisk, lost: 0 };
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
      persisted = this.#writeToDisk(memoryOnly);
      this.#probing = false;
      if (persisted > 0) this.#log.info({ sink: this.#sink, events: persisted }, 'outbox: events held in memory written to disk at shutdown');
    }
    this.#window.length = 0;
    this.#tail.length = 0;
    this.#memoryOnlyInWindow = 0;
    const keptOnDisk = this.#pendingOnDisk;
    this.#closeFiles();
    if (keptOnDisk === 0) this.#removeEmptyLog();
    this.#unlock();
    return { keptOnDisk, lost: memoryOnly.length - persisted };
  }

  // -- start-up --------------------------------------------------------------------------

  /**
   * Creates the directory. A recursive mkdir on a read-only file system reports ENOENT (it
   * tried the missing parent first), so on failure the first missing component is created on
   * its own, to report the real reason (EROFS, EACCES, ENOTDIR).
   */
  #makeDir(): void {
    try {
      this.#fs.mkdirSync(this.dir, { recursive: true });
    } catch (err) {
      if (fsErrorCode(err) !== 'ENOENT') throw err;
      let missing = this.dir;
      while (!this.#fs.existsSync(dirname(missing)) && dirname(missing) !== missing) missing = dirname(missing);
      this.#fs.mkdirSync(missing);
      throw err;
    }
  }

  #lock(): void {
    const path = join(this.dir, LOCK_FILE);
    if (this.#fs.existsSync(path)) {
      const pid = Number(String(this.#fs.readFileSync(path, 'utf8')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) throw new OutboxLockedError(this.dir, pid);
    }
    this.#fs.writeFileSync(path, `${process.pid}\n`);
    this.#ownsLock = true;
  }

  #unlock(): void {
    if (!this.#ownsLock) return;
    this.#ownsLock = false;
    try {
      this.#fs.unlinkSync(join(this.dir, LOCK_FILE));
    } catch {
      // a stale lock is taken over at the next start
    }
  }

  /** A small write and its removal: a full or read-only directory is found now, not at the first event. */
  #probe(): void {
    const path = join(this.dir, '.write-probe');
    this.#fs.writeFileSync(path, Buffer.alloc(4096, 0x0a));
    this.#fs.unlinkSync(path);
  }

  #recover(): void {
    let names: Array<{ name: string; first: number }>;
    let ackText = '';
    try {
      names = listSegments(this.#fs, this.dir);
      const acksPath = join(this.dir, ACKS_FILE);
      if (this.#fs.existsSync(acksPath)) ackText = String(this.#fs.readFileSync(acksPath, 'utf8'));
    } catch (err) {
      this.#log.error({ sink: this.#sink, error: explainFsError(err) }, 'outbox: cannot read the directory; starting with an empty log');
      return;
    }
    const acked = new Set(parseAcks(ackText));
    let maxSeq = 0;
    for (const seq of acked) maxSeq = Math.max(maxSeq, seq);
    let torn = 0;
    let unreadable = 0;
    for (const { name, first } of names) {
      let buf: Buffer;
      try {
        buf = this.#fs.readFileSync(join(this.dir, name)) as Buffer;
      } catch (err) {
        unreadable += 1;
        this.#log.error({ sink: this.#sink, segment: name, error: explainFsError(err) }, 'outbox: a segment cannot be read; its events are skipped');
        continue;
      }
      const seg: Segment = { name, first, records: 0, done: 0, size: 0, sealed: true, last: first };
      let start = 0;
      while (start < buf.length) {
        const nl = buf.indexOf(0x0a, start);
        if (nl < 0) {
          torn += 1; // a crash mid-write: the partial last record is not an event
          break;
        }
        const seq = recordSeq(buf.toString('utf8', start, Math.min(nl, start + 48)));
        if (seq === undefined) torn += 1;
        else {
          seg.records += 1;
          seg.last = Math.max(seg.last, seq);
          if (acked.has(seq)) {
            seg.done += 1;
            this.#doneSeqs.add(seq);
          }
        }
        start = nl + 1;
        seg.size = start;
      }
      maxSeq = Math.max(maxSeq, seg.last);
      this.#segments.push(seg);
      this.#diskBytes += seg.size;
      this.#pendingOnDisk += seg.records - seg.done;
    }
    this.#unread = this.#pendingOnDisk;
    this.#nextSeq = maxSeq + 1;
    this.#cursor = { seg: this.#segments[0], offset: 0 };
    for (const seg of [...this.#segments]) this.#maybeRetire(seg);
    if (this.#mode === 'disk') this.#compactAcks(acked.size);
    if (torn > 0 || unreadable > 0) this.#log.warn({ sink: this.#sink, torn, unreadable }, 'outbox: skipped torn or invalid records');
    if (this.#pendingOnDisk > 0) {
      this.#log.info({ sink: this.#sink, pending: this.#pendingOnDisk }, 'outbox: pending events recovered; they are delivered first, in order');
    }
  }

  // -- writing ---------------------------------------------------------------------------

  /** Appends events to the log; returns how many (from the front) are on disk now. */
  #writeToDisk(events: readonly CloudEventV1<unknown>[]): number {
    const lines: Buffer[] = [];
    let bytes = 0;
    for (const [i, event] of events.entries()) {
      const line = Buffer.from(`${JSON.stringify({ seq: this.#nextSeq + i, event: toPlainObject(event) })}\n`);
      if (this.#diskBytes + bytes + line.length > this.#maxBytes) {
        this.#enterMemoryMode('full', undefined);
        break;
      }
      lines.push(line);
      bytes += line.length;
    }
    if (lines.length === 0) return 0;
    let active: { seg: Segment; fd: number };
    try {
      active = this.#activeSegment();
    } catch (err) {
      this.#enterMemoryMode('error', err);
      return 0;
    }
    const { seg, fd } = active;
    const buf = lines.length === 1 ? lines[0]! : Buffer.concat(lines);
    const { written, error } = writeAll(this.#fs, fd, buf);
    let complete = lines.length;
    if (error !== undefined) {
      // Keep only whole records: cut a partial one off, and never append to this segment again.
      complete = 0;
      let end = 0;
      while (complete < lines.length && end + lines[complete]!.length <= written) end += lines[complete++]!.length;
      if (written > end) {
        try {
          this.#fs.ftruncateSync(fd, seg.size + end);
        } catch {
          // the torn bytes stay at the end of a sealed segment, where they are skipped as torn
        }
      }
      this.#seal();
      this.#enterMemoryMode('error', error);
    }
    const wasCaughtUp = this.#unread === 0 && this.#tail.length === 0 && !this.#closed;
    let offset = seg.size;
    for (let i = 0; i < complete; i++) {
      const seq = this.#nextSeq++;
      const length = lines[i]!.length;
      seg.records += 1;
      seg.last = seq;
      seg.size += length;
      this.#diskBytes += length;
      this.#pendingOnDisk += 1;
      if (wasCaughtUp && this.#unread === 0 && this.#window.length < this.#memoryEvents) {
        // Nothing waits on disk before it: straight into the window, no read-back needed.
        this.#window.push({ event: events[i]!, seq });
        offset += length;
        this.#cursor = { seg, offset };
      } else {
        this.#unread += 1;
      }
    }
    if (error === undefined && seg.size >= this.#segmentBytes) this.#seal();
    return complete;
  }

  #activeSegment(): { seg: Segment; fd: number } {
    if (this.#active) return this.#active;
    const name = segmentFileName(this.#nextSeq);
    const fd = this.#fs.openSync(join(this.dir, name), 'a');
    const seg: Segment = { name, first: this.#nextSeq, records: 0, done: 0, size: 0, sealed: false, last: this.#nextSeq };
    this.#segments.push(seg);
    this.#active = { seg, fd };
    if (!this.#cursor.seg) this.#cursor = { seg, offset: 0 };
    return this.#active;
  }

  #seal(): void {
    if (!this.#active) return;
    const { seg, fd } = this.#active;
    this.#active = undefined;
    seg.sealed = true;
    try {
      this.#fs.closeSync(fd);
    } catch {
      // closing a descriptor cannot lose anything written before
    }
    this.#maybeRetire(seg);
  }

  #holdInMemory(events: readonly CloudEventV1<unknown>[]): void {
    const room = Math.max(0, this.#memoryEvents - this.#memoryOnlyInWindow - this.#tail.length);
    const kept = events.slice(0, room);
    if (this.#unread === 0 && this.#tail.length === 0) {
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

  #enterMemoryMode(by: 'full' | 'error', err: unknown, atStart = false): void {
    const now = this.#clock.now();
    this.#retryDiskAt = now + this.#retryDiskMs;
    if (by === 'error') this.#writeErrors += 1;
    if (this.#mode === 'memory' || this.#probing) {
      this.#mode = 'memory';
      if (now - this.#lastStillFailingLog >= 60_000) {
        this.#lastStillFailingLog = now;
        this.#log.warn({ sink: this.#sink, error: by === 'full' ? 'outbox.maxBytes reached' : explainFsError(err) }, 'outbox: still cannot write to disk; events wait in memory');
      }
      return;
    }
    this.#mode = 'memory';
    this.#degradedBy = by;
    this.#lastStillFailingLog = now;
    const detail = { sink: this.#sink, maxQueue: this.#memoryEvents, retryInMs: this.#retryDiskMs };
    if (by === 'full') {
      this.#log.error({ ...detail, maxBytes: this.#maxBytes }, 'outbox full (outbox.maxBytes): new events wait in memory (up to maxQueue) and are delivered from there; beyond that they are lost and counted');
    } else {
      this.#log.error(
        { ...detail, error: explainFsError(err) },
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
  #probeDiskWith(tail: CloudEventV1<unknown>[]): void {
    this.#probing = true;
    this.#mode = 'disk';
    this.#movedToDisk = this.#writeToDisk(tail);
    tail.splice(0, this.#movedToDisk);
  }

  #probeDone(): void {
    this.#probing = false;
    if (this.#mode !== 'disk') return;
    this.#degradedBy = undefined;
    this.#log.warn({ sink: this.#sink, movedToDisk: this.#movedToDisk }, 'outbox writable again: events are kept on disk again');
  }

  #appendAcks(text: string): void {
    try {
      if (!this.#acks) {
        const path = join(this.dir, ACKS_FILE);
        const fd = this.#fs.openSync(path, 'a');
        this.#acks = { fd, size: this.#fs.existsSync(path) ? this.#fs.statSync(path).size : 0 };
      }
    } catch (err) {
      this.#writeFailed('could not record deliveries in the outbox: those events may be delivered again after a restart', err);
      return;
    }
    const acks = this.#acks;
    const buf = Buffer.from(this.#acksBroken ? `\n${text}` : text);
    const { written, error } = writeAll(this.#fs, acks.fd, buf);
    if (error === undefined) {
      acks.size += written;
      this.#acksBroken = false;
      if (acks.size > ACKS_COMPACT_BYTES && acks.size > 4 * 17 * this.#doneSeqs.size) this.#compactAcks(Number.POSITIVE_INFINITY);
      return;
    }
    try {
      this.#fs.ftruncateSync(acks.fd, acks.size);
    } catch {
      acks.size += written;
      this.#acksBroken = true; // the next write starts a new line: a torn ack never reads as a number
    }
    this.#writeFailed('could not record deliveries in the outbox: those events may be delivered again after a restart', error);
  }

  /** Rewrites `acks` with only the done events of live segments (temporary file, then rename). */
  #compactAcks(onDisk: number): void {
    if (onDisk <= this.#doneSeqs.size) return;
    const path = join(this.dir, ACKS_FILE);
    const tmp = `${path}.tmp`;
    try {
      const text = [...this.#doneSeqs].sort((a, b) => a - b).map(ackLine).join('');
      this.#fs.writeFileSync(tmp, text);
      if (this.#acks) {
        this.#fs.closeSync(this.#acks.fd);
        this.#acks = undefined;
      }
      this.#fs.renameSync(tmp, path);
      this.#acksBroken = false;
    } catch (err) {
      try {
        this.#fs.unlinkSync(tmp);
      } catch {
        // nothing was written
      }
      this.#log.warn({ sink: this.#sink, error: explainFsError(err) }, 'outbox: could not compact the acknowledgements (kept as they are)');
    }
  }

  #appendDeadLetters(text: string): boolean {
    const path = join(this.dir, DEAD_LETTER_FILE);
    let fd: number;
    try {
      fd = this.#fs.openSync(path, 'a');
    } catch (err) {
      this.#writeFailed('could not open the dead-letter file', err);
      return false;
    }
    try {
      this.#deadLetterSize ??= this.#fs.existsSync(path) ? this.#fs.statSync(path).size : 0;
      const { written, error } = writeAll(this.#fs, fd, Buffer.from(this.#deadLetterBroken ? `\n${text}` : text));
      if (error === undefined) {
        this.#deadLetterSize += written;
        this.#deadLetterBroken = false;
        return true;
      }
      try {
        this.#fs.ftruncateSync(fd, this.#deadLetterSize);
      } catch {
        this.#deadLetterSize += written;
        this.#deadLetterBroken = true;
      }
      this.#writeFailed('could not write the dead-letter file', error);
      return false;
    } catch (err) {
      this.#writeFailed('could not write the dead-letter file', err);
      return false;
    } finally {
      try {
        this.#fs.closeSync(fd);
      } catch {
        // nothing to do
      }
    }
  }

  #writeFailed(message: string, err: unknown): void {
    this.#writeErrors += 1;
    const now = this.#clock.now();
    if (now - this.#lastWriteErrorLog < 10_000) return;
    this.#lastWriteErrorLog = now;
    this.#log.warn({ sink: this.#sink, error: explainFsError(err), writeErrors: this.#writeErrors }, `outbox: ${message}`);
  }

  // -- reading ---------------------------------------------------------------------------

  /** Tops the window up from disk (then from memory) when it is down to half. */
  #refill(): void {
    if (this.#window.length > Math.floor(this.#memoryEvents / 2)) return;
    while (this.#window.length < this.#memoryEvents) {
      if (this.#unread > 0) {
        if (!this.#readNext()) break;
      } else if (this.#tail.length > 0) {
        const moved = this.#tail.splice(0, this.#memoryEvents - this.#window.length);
        for (const event of moved) this.#window.push({ event });
        this.#memoryOnlyInWindow += moved.length;
      } else {
        break;
      }
    }
  }

  /** Reads the next pending record at the cursor into the window. False when there is none. */
  #readNext(): boolean {
    for (;;) {
      let seg = this.#cursor.seg ?? this.#segments[0];
      if (!seg) return this.#lostTrack();
      if (this.#cursor.offset >= seg.size) {
        if (!seg.sealed) return this.#lostTrack();
        const next = this.#segments[this.#segments.indexOf(seg) + 1];
        if (!next) return this.#lostTrack();
        this.#cursor = { seg: next, offset: 0 };
        continue;
      }
      const line = this.#lineAt(seg, this.#cursor.offset);
      if (line === undefined) {
        // unreadable: skip the rest of this segment (its events stay on disk for a later start)
        this.#unread -= Math.max(0, seg.records - seg.done);
        this.#cursor = { seg, offset: seg.size };
        if (seg.sealed) {
          const next = this.#segments[this.#segments.indexOf(seg) + 1];
          if (next) this.#cursor = { seg: next, offset: 0 };
        }
        seg = this.#cursor.seg!;
        if (this.#unread <= 0) return this.#lostTrack();
        continue;
      }
      this.#cursor = { seg, offset: line.next };
      let record: { seq?: unknown; event?: unknown };
      try {
        record = JSON.parse(line.text) as typeof record;
      } catch {
        continue; // torn or damaged: counted at start-up
      }
      if (typeof record.seq !== 'number' || this.#doneSeqs.has(record.seq)) continue;
      this.#unread -= 1;
      this.#window.push({ event: reviveEvent(record.event), seq: record.seq });
      return true;
    }
  }

  /** The bookkeeping says there is more on disk, but there is not: say so once, and stop looking. */
  #lostTrack(): boolean {
    if (this.#unread > 0) this.#log.warn({ sink: this.#sink, unread: this.#unread }, 'outbox: fewer records on disk than expected');
    this.#unread = 0;
    return false;
  }

  /** The record line starting at `offset`, and where the next one starts; undefined if unreadable. */
  #lineAt(seg: Segment, offset: number): { text: string; next: number } | undefined {
    const cached = this.#chunk;
    if (cached && cached.seg === seg && offset >= cached.start) {
      const nl = cached.buf.indexOf(0x0a, offset - cached.start);
      if (nl >= 0) return { text: cached.buf.toString('utf8', offset - cached.start, nl), next: cached.start + nl + 1 };
    }
    try {
      if (!this.#reader || this.#reader.seg !== seg) {
        if (this.#reader) this.#fs.closeSync(this.#reader.fd);
        this.#reader = { seg, fd: this.#fs.openSync(join(this.dir, seg.name), 'r') };
      }
      let length = Math.min(READ_CHUNK_BYTES, seg.size - offset);
      for (;;) {
        const buf = Buffer.alloc(length);
        let got = 0;
        while (got < length) {
          const n = this.#fs.readSync(this.#reader.fd, buf, got, length - got, offset + got);
          if (n === 0) break;
          got += n;
        }
        const nl = buf.indexOf(0x0a);
        if (nl >= 0 && nl < got) {
          this.#chunk = { seg, start: offset, buf: buf.subarray(0, got) };
          return { text: buf.toString('utf8', 0, nl), next: offset + nl + 1 };
        }
        if (got < length || length >= seg.size - offset) return undefined;
        length = Math.min(length * 4, seg.size - offset);
      }
    } catch (err) {
      this.#log.error({ sink: this.#sink, segment: seg.name, error: explainFsError(err) }, 'outbox: cannot read a segment');
      return undefined;
    }
  }

  // -- bookkeeping -----------------------------------------------------------------------

  #segmentOf(seq: number): Segment | undefined {
    let lo = 0;
    let hi = this.#segments.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const seg = this.#segments[mid]!;
      if (seq < seg.first) hi = mid - 1;
      else if (mid + 1 < this.#segments.length && seq >= this.#segments[mid + 1]!.first) lo = mid + 1;
      else return seq <= seg.last ? seg : undefined;
    }
    return undefined;
  }

  /** Deletes a sealed segment whose records are all done. */
  #maybeRetire(seg: Segment): void {
    // All its records are done, so the reader has nothing left to take from it.
    if (!seg.sealed || seg.done < seg.records) return;
    try {
      if (this.#reader?.seg === seg) {
        this.#fs.closeSync(this.#reader.fd);
        this.#reader = undefined;
      }
      this.#fs.unlinkSync(join(this.dir, seg.name));
    } catch {
      return; // a read-only directory: it stays, and is skipped as done at the next start
    }
    const index = this.#segments.indexOf(seg);
    if (index < 0) return;
    this.#segments.splice(index, 1);
    if (this.#chunk?.seg === seg) this.#chunk = undefined;
    for (let seq = seg.first; seq <= seg.last; seq++) this.#doneSeqs.delete(seq);
    this.#diskBytes -= seg.size;
    if (this.#cursor.seg === seg) this.#cursor = { seg: this.#segments[index], offset: 0 };
  }

  #closeFiles(): void {
    for (const fd of [this.#active?.fd, this.#reader?.fd, this.#acks?.fd]) {
      if (fd === undefined) continue;
      try {
        this.#fs.closeSync(fd);
      } catch {
        // nothing to do
      }
    }
    if (this.#active) this.#active.seg.sealed = true;
    this.#active = undefined;
    this.#reader = undefined;
    this.#acks = undefined;
  }

  /** Everything is done: the log and its acknowledgements go (the dead-letter file stays). */
  #removeEmptyLog(): void {
    try {
      for (const seg of this.#segments) this.#fs.unlinkSync(join(this.dir, seg.name));
      this.#segments.length = 0;
      if (this.#fs.existsSync(join(this.dir, ACKS_FILE))) this.#fs.unlinkSync(join(this.dir, ACKS_FILE));
    } catch {
      // left for the next start, which skips what is done
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
