/**
 * The outbox's durable log: events appended in order to segment files, read back in order from a
 * cursor, marked done in `acks`; a segment whose events are all done is deleted. It holds nothing
 * in memory but its bookkeeping (segment sizes, the done marks of live segments, a read buffer),
 * so what it can hold is bounded by `maxBytes` and the disk, not by memory.
 *
 * A failed write keeps only whole records (a partial one is cut off) and seals the segment, so
 * the next write starts a new file; a torn or damaged record found at start-up is skipped and
 * counted. Every operation that touches the disk catches its errors: an append reports how far
 * it got, an ack that cannot be written is a WARN line (that event may be delivered again after a
 * restart), a segment that cannot be read or deleted is left for the next start.
 */
import { join } from 'node:path';
import type { CloudEventV1 } from 'cloudevents';
import type { Logger } from 'pino';
import { toPlainObject } from '../cloudevents/encode.ts';
import {
  ACKS_FILE,
  LineAppender,
  type OutboxFs,
  ackLine,
  explainFsError,
  listSegments,
  parseAcks,
  recordSeq,
  reviveEvent,
  segmentFileName,
  writeAll,
} from './outbox-files.ts';

export const DEFAULT_SEGMENT_BYTES = 4 * 1024 * 1024;
const ACKS_COMPACT_BYTES = 1024 * 1024;
const READ_CHUNK_BYTES = 256 * 1024;

export interface LogRecord {
  seq: number;
  event: CloudEventV1<unknown>;
}

/** Why an append stopped before the end: the byte bound, or the disk. */
export type AppendStop = { by: 'full' } | { by: 'error'; error: unknown };

export interface OutboxLogOptions {
  dir: string;
  fs: OutboxFs;
  logger: Logger;
  /** For log lines. */
  sink: string;
  maxBytes: number;
  segmentBytes?: number;
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

export class OutboxLog {
  readonly #dir: string;
  readonly #fs: OutboxFs;
  readonly #log: Logger;
  readonly #sink: string;
  readonly #maxBytes: number;
  readonly #segmentBytes: number;
  readonly #segments: Segment[] = [];
  readonly #acks: LineAppender;
  #active: { seg: Segment; fd: number } | undefined;
  #reader: { seg: Segment; fd: number } | undefined;
  #chunk: { seg: Segment; start: number; buf: Buffer } | undefined;
  readonly #doneSeqs = new Set<number>();
  /** Where the next record to read starts. */
  #cursor: { seg: Segment | undefined; offset: number } = { seg: undefined, offset: 0 };
  #unread = 0;
  #pending = 0;
  #segmentBytesOnDisk = 0;
  #nextSeq = 1;
  #writeErrors = 0;
  #lastAckWarning = 0;

  constructor(options: OutboxLogOptions) {
    this.#dir = options.dir;
    this.#fs = options.fs;
    this.#log = options.logger;
    this.#sink = options.sink;
    this.#maxBytes = options.maxBytes;
    this.#segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.#acks = new LineAppender(this.#fs, join(this.#dir, ACKS_FILE));
  }

  /** Events on disk not done yet. */
  get pending(): number {
    return this.#pending;
  }

  /** Of those, not read back yet. */
  get unread(): number {
    return this.#unread;
  }

  /** Bytes the log takes on disk. */
  get bytes(): number {
    return this.#segmentBytesOnDisk + this.#acks.size;
  }

  /** Appends and acks that failed. */
  get writeErrors(): number {
    return this.#writeErrors;
  }

  /** Reads what the directory holds: pending events are read back first, in order. */
  recover(): void {
    let names: Array<{ name: string; first: number }>;
    let ackText = '';
    try {
      names = listSegments(this.#fs, this.#dir);
      const acksPath = join(this.#dir, ACKS_FILE);
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
        buf = this.#fs.readFileSync(join(this.#dir, name)) as Buffer;
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
      this.#segmentBytesOnDisk += seg.size;
      this.#pending += seg.records - seg.done;
    }
    this.#unread = this.#pending;
    this.#nextSeq = maxSeq + 1;
    this.#cursor = { seg: this.#segments[0], offset: 0 };
    for (const seg of [...this.#segments]) this.#maybeRetire(seg);
    if (acked.size > this.#doneSeqs.size) this.#compactAcks();
    if (torn > 0 || unreadable > 0) this.#log.warn({ sink: this.#sink, torn, unreadable }, 'outbox: skipped torn or invalid records');
    if (this.#pending > 0) {
      this.#log.info({ sink: this.#sink, pending: this.#pending }, 'outbox: pending events recovered; they are delivered first, in order');
    }
  }

  /**
   * Appends events in order. Returns the records now on disk (a prefix of `events`) and, when
   * not all could be written, why. The first `readNow` of the new records count as read (the
   * caller keeps them in memory) when nothing unread comes before them; the rest are read back.
   */
  append(events: readonly CloudEventV1<unknown>[], readNow = 0): { records: LogRecord[]; stop?: AppendStop } {
    const lines: Buffer[] = [];
    let bytes = 0;
    let stop: AppendStop | undefined;
    for (const [i, event] of events.entries()) {
      const line = Buffer.from(`${JSON.stringify({ seq: this.#nextSeq + i, event: toPlainObject(event) })}\n`);
      if (this.#segmentBytesOnDisk + bytes + line.length > this.#maxBytes) {
        stop = { by: 'full' };
        break;
      }
      lines.push(line);
      bytes += line.length;
    }
    if (lines.length === 0) return { records: [], stop };
    let active: { seg: Segment; fd: number };
    try {
      active = this.#activeSegment();
    } catch (error) {
      this.#writeErrors += 1;
      return { records: [], stop: { by: 'error', error } };
    }
    const { seg, fd } = active;
    const { written, error } = writeAll(this.#fs, fd, lines.length === 1 ? lines[0]! : Buffer.concat(lines));
    let complete = lines.length;
    if (error !== undefined) {
      // Keep only whole records: cut a partial one off, and never append to this segment again.
      this.#writeErrors += 1;
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
      stop = { by: 'error', error };
    }
    const readAtOnce = this.#unread === 0 ? Math.min(readNow, complete) : 0;
    const records: LogRecord[] = [];
    for (let i = 0; i < complete; i++) {
      const seq = this.#nextSeq++;
      const length = lines[i]!.length;
      seg.records += 1;
      seg.last = seq;
      seg.size += length;
      this.#segmentBytesOnDisk += length;
      this.#pending += 1;
      records.push({ seq, event: events[i]! });
      if (i < readAtOnce) this.#cursor = { seg, offset: seg.size };
      else this.#unread += 1;
    }
    if (error === undefined && seg.size >= this.#segmentBytes) this.#seal();
    return { records, stop };
  }

  /** The next pending record at the cursor, or undefined when everything was read. */
  readNext(): LogRecord | undefined {
    while (this.#unread > 0) {
      const seg = this.#cursor.seg ?? this.#segments[0];
      if (!seg) return this.#lostTrack();
      if (this.#cursor.offset >= seg.size) {
        const next = seg.sealed ? this.#segments[this.#segments.indexOf(seg) + 1] : undefined;
        if (!next) return this.#lostTrack();
        this.#cursor = { seg: next, offset: 0 };
        continue;
      }
      const line = this.#lineAt(seg, this.#cursor.offset);
      if (line === undefined) {
        // unreadable: skip the rest of this segment (its events stay on disk for a later start)
        this.#unread -= Math.max(0, seg.records - seg.done);
        this.#cursor = { seg, offset: seg.size };
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
      return { seq: record.seq, event: reviveEvent(record.event) };
    }
    return undefined;
  }

  /** Marks events done (delivered, skipped, dead-lettered); deletes segments that are all done. */
  done(seqs: Iterable<number>): void {
    let acks = '';
    const touched = new Set<Segment>();
    for (const seq of seqs) {
      if (this.#doneSeqs.has(seq)) continue;
      const seg = this.#segmentOf(seq);
      if (!seg) continue;
      this.#doneSeqs.add(seq);
      seg.done += 1;
      this.#pending -= 1;
      touched.add(seg);
      acks += ackLine(seq);
    }
    if (!acks) return;
    try {
      this.#acks.append(acks);
      if (this.#acks.size > ACKS_COMPACT_BYTES && this.#acks.size > 4 * 17 * this.#doneSeqs.size) this.#compactAcks();
    } catch (err) {
      this.#writeErrors += 1;
      if (Date.now() - this.#lastAckWarning >= 10_000) {
        this.#lastAckWarning = Date.now();
        this.#log.warn(
          { sink: this.#sink, error: explainFsError(err), writeErrors: this.#writeErrors },
          'outbox: could not record deliveries: those events may be delivered again after a restart',
        );
      }
    }
    for (const seg of touched) this.#maybeRetire(seg);
  }

  /** Closes the files; with nothing pending the log is removed. Returns the events left pending. */
  close(): number {
    for (const fd of [this.#active?.fd, this.#reader?.fd]) {
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
    this.#acks.close();
    if (this.#pending === 0) {
      try {
        for (const seg of this.#segments) this.#fs.unlinkSync(join(this.#dir, seg.name));
        this.#segments.length = 0;
        if (this.#fs.existsSync(this.#acks.path)) this.#fs.unlinkSync(this.#acks.path);
      } catch {
        // left for the next start, which skips what is done
      }
    }
    return this.#pending;
  }

  #activeSegment(): { seg: Segment; fd: number } {
    if (this.#active) return this.#active;
    const name = segmentFileName(this.#nextSeq);
    const fd = this.#fs.openSync(join(this.#dir, name), 'a');
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

  /** Rewrites `acks` with only the done events of live segments (temporary file, then rename). */
  #compactAcks(): void {
    const tmp = `${this.#acks.path}.tmp`;
    try {
      this.#fs.writeFileSync(tmp, [...this.#doneSeqs].sort((a, b) => a - b).map(ackLine).join(''));
      this.#acks.close();
      this.#fs.renameSync(tmp, this.#acks.path);
    } catch (err) {
      try {
        this.#fs.unlinkSync(tmp);
      } catch {
        // nothing was written
      }
      this.#log.warn({ sink: this.#sink, error: explainFsError(err) }, 'outbox: could not compact the acknowledgements (kept as they are)');
    }
  }

  /** The bookkeeping says there is more on disk, but there is not: say so once, and stop looking. */
  #lostTrack(): undefined {
    if (this.#unread > 0) this.#log.warn({ sink: this.#sink, unread: this.#unread }, 'outbox: fewer records on disk than expected');
    this.#unread = 0;
    return undefined;
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
        this.#reader = { seg, fd: this.#fs.openSync(join(this.#dir, seg.name), 'r') };
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

  /** Deletes a sealed segment whose records are all done (so the reader has nothing left in it). */
  #maybeRetire(seg: Segment): void {
    if (!seg.sealed || seg.done < seg.records) return;
    try {
      if (this.#reader?.seg === seg) {
        this.#fs.closeSync(this.#reader.fd);
        this.#reader = undefined;
      }
      this.#fs.unlinkSync(join(this.#dir, seg.name));
    } catch {
      return; // a read-only directory: it stays, and is skipped as done at the next start
    }
    const index = this.#segments.indexOf(seg);
    if (index < 0) return;
    this.#segments.splice(index, 1);
    if (this.#chunk?.seg === seg) this.#chunk = undefined;
    for (let seq = seg.first; seq <= seg.last; seq++) this.#doneSeqs.delete(seq);
    this.#segmentBytesOnDisk -= seg.size;
    if (this.#cursor.seg === seg) this.#cursor = { seg: this.#segments[index], offset: 0 };
  }
}
