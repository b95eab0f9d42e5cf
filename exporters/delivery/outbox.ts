/**
 * The durable outbox of one sink: every CloudEvent accepted for delivery is appended to an
 * on-disk log before its first attempt and acknowledged when delivered, so a crash or restart
 * of the sidecar loses nothing; on start-up what is still pending is delivered first, in the
 * order it was accepted. Events the sink gives up on (rejected, retries exhausted, 410) go to a
 * dead-letter file with the last error, for `cao-events replay`.
 *
 * Format: JSON lines. outbox.jsonl holds `{"add":<event>}` and `{"ack":"<id>"}` records;
 * dead-letter.jsonl holds `{"event":<event>,"error":"…","kind":"…","at":"<time>"}`. A torn last
 * line (a crash mid-write) is skipped and counted. Writes go to the OS at once (appendFileSync),
 * which survives a process crash or kill -9; an fsync per event (power loss) is not done.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudEvent, type CloudEventV1 } from 'cloudevents';
import type { Logger } from 'pino';
import type { CloudEventSink } from '../cloudevents/span-exporter.ts';
import { toPlainObject } from '../cloudevents/encode.ts';
import type { SinkFailure, SinkStats } from './delivery-queue.ts';

export const OUTBOX_FILE = 'outbox.jsonl';
export const DEAD_LETTER_FILE = 'dead-letter.jsonl';

export interface DeadLetter {
  event: CloudEventV1<unknown>;
  error: string;
  kind: string;
  at: string;
}

export interface OutboxOptions {
  dir: string;
  /** Bytes of pending events kept at most; beyond it new events are refused (counted, logged). */
  maxBytes?: number;
  logger: Logger;
}

function revive(plain: unknown): CloudEventV1<unknown> {
  return new CloudEvent(plain as CloudEventV1<unknown>, false);
}

/** Reads a JSON-lines file, skipping torn or invalid lines; returns the records and how many were bad. */
export function readJsonLines(path: string): { records: unknown[]; bad: number } {
  if (!existsSync(path)) return { records: [], bad: 0 };
  const records: unknown[] = [];
  let bad = 0;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line) continue;
    try {
      records.push(JSON.parse(line));
    } catch {
      bad += 1;
    }
  }
  return { records, bad };
}

export class Outbox {
  readonly dir: string;
  readonly #path: string;
  readonly #deadPath: string;
  readonly #maxBytes: number;
  readonly #log: Logger;
  /** Pending events by id, in acceptance order, as their serialized add-record. */
  readonly #pending = new Map<string, string>();
  #bytes = 0;
  #acksSinceCompaction = 0;
  #refused = 0;
  #lastRefusedLog = 0;
  readonly #recovered: CloudEventV1<unknown>[] = [];

  constructor(options: OutboxOptions) {
    this.dir = options.dir;
    this.#path = join(options.dir, OUTBOX_FILE);
    this.#deadPath = join(options.dir, DEAD_LETTER_FILE);
    this.#maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    this.#log = options.logger;
    mkdirSync(options.dir, { recursive: true });
    const { records, bad } = readJsonLines(this.#path);
    for (const record of records) {
      const r = record as { add?: { id?: string }; ack?: string };
      if (r.add && typeof r.add.id === 'string') {
        const line = JSON.stringify({ add: r.add });
        this.#pending.set(r.add.id, line);
      } else if (typeof r.ack === 'string') {
        this.#pending.delete(r.ack);
      }
    }
    for (const line of this.#pending.values()) {
      this.#bytes += line.length + 1;
      this.#recovered.push(revive((JSON.parse(line) as { add: unknown }).add));
    }
    this.#compact();
    if (bad > 0) this.#log.warn({ dir: this.dir, bad }, 'outbox: skipped torn or invalid records');
    if (this.#recovered.length > 0) {
      this.#log.info({ dir: this.dir, pending: this.#recovered.length }, 'outbox: pending events recovered');
    }
  }

  /** Events that were pending when the outbox was opened, oldest first. */
  recovered(): CloudEventV1<unknown>[] {
    return this.#recovered;
  }

  get size(): { events: number; bytes: number; refused: number } {
    return { events: this.#pending.size, bytes: this.#bytes, refused: this.#refused };
  }

  /** Appends events; returns those accepted (the rest are over the byte bound: counted, logged once per interval). */
  add(events: readonly CloudEventV1<unknown>[]): CloudEventV1<unknown>[] {
    const accepted: CloudEventV1<unknown>[] = [];
    let out = '';
    for (const event of events) {
      if (this.#pending.has(event.id)) continue; // a re-export of an event already held
      const line = JSON.stringify({ add: toPlainObject(event) });
      if (this.#bytes + line.length + 1 > this.#maxBytes) {
        this.#refused += 1;
        continue;
      }
      this.#pending.set(event.id, line);
      this.#bytes += line.length + 1;
      out += `${line}\n`;
      accepted.push(event);
    }
    if (out) appendFileSync(this.#path, out);
    if (accepted.length < events.length && this.#refused > 0) {
      const now = Date.now();
      if (now - this.#lastRefusedLog > 10_000) {
        this.#lastRefusedLog = now;
        this.#log.warn({ dir: this.dir, refused: this.#refused, maxBytes: this.#maxBytes }, 'outbox full: events dropped');
      }
    }
    return accepted;
  }

  /** Marks events as done (delivered, or moved to the dead-letter file). */
  ack(ids: readonly string[]): void {
    let out = '';
    for (const id of ids) {
      const line = this.#pending.get(id);
      if (line === undefined) continue;
      this.#pending.delete(id);
      this.#bytes -= line.length + 1;
      out += `${JSON.stringify({ ack: id })}\n`;
      this.#acksSinceCompaction += 1;
    }
    if (out) appendFileSync(this.#path, out);
    if (this.#acksSinceCompaction > 10_000 && this.#acksSinceCompaction > this.#pending.size) this.#compact();
  }

  deadLetter(events: readonly CloudEventV1<unknown>[], failure: SinkFailure): void {
    const at = new Date().toISOString();
    const out = events
      .map((event) => JSON.stringify({ event: toPlainObject(event), error: failure.reason, kind: failure.kind, at }))
      .join('\n');
    if (out) appendFileSync(this.#deadPath, `${out}\n`);
    this.ack(events.map((e) => e.id));
  }

  /** Rewrites the log with only the pending events (write to a temporary file, then rename). */
  #compact(): void {
    const tmp = `${this.#path}.tmp`;
    writeFileSync(tmp, [...this.#pending.values()].map((l) => `${l}\n`).join(''));
    renameSync(tmp, this.#path);
    this.#acksSinceCompaction = 0;
  }
}

export interface DurableSinkHooks {
  onDelivered: (events: readonly CloudEventV1<unknown>[]) => void;
  onFailed: (events: readonly CloudEventV1<unknown>[], failure: SinkFailure) => void;
}

/**
 * A sink whose events pass through an Outbox. `create` builds the inner (HTTP) sink with the
 * hooks that acknowledge deliveries and dead-letter failures. Events dropped from memory
 * (queue full, shutdown) stay pending on disk and are delivered after the next start.
 */
export class DurableSink implements CloudEventSink {
  readonly name: string;
  readonly outbox: Outbox;
  readonly inner: CloudEventSink;

  constructor(outbox: Outbox, create: (hooks: DurableSinkHooks) => CloudEventSink) {
    this.outbox = outbox;
    this.inner = create({
      onDelivered: (events) => outbox.ack(events.map((e) => e.id)),
      onFailed: (events, failure) => {
        if (failure.kind === 'dropped' && !failure.reason.includes('410')) return; // kept on disk
        outbox.deadLetter(events, failure);
      },
    });
    this.name = this.inner.name;
    const recovered = outbox.recovered();
    if (recovered.length > 0) this.inner.enqueue(recovered);
  }

  /** The inner sink's counters (events refused by a full outbox count as dropped). */
  get stats(): SinkStats | undefined {
    const inner = (this.inner as { stats?: SinkStats }).stats;
    return inner && { ...inner, dropped: inner.dropped + this.outbox.size.refused };
  }

  enqueue(events: readonly CloudEventV1<unknown>[]): void {
    const accepted = this.outbox.add(events);
    if (accepted.length > 0) this.inner.enqueue(accepted);
  }

  forceFlush(timeoutMs?: number): Promise<void> {
    return this.inner.forceFlush(timeoutMs);
  }

  shutdown(timeoutMs?: number): Promise<void> {
    return this.inner.shutdown(timeoutMs);
  }
}

/** Reads a dead-letter file. */
export function readDeadLetters(dir: string): DeadLetter[] {
  return readJsonLines(join(dir, DEAD_LETTER_FILE)).records.map((r) => {
    const d = r as { event: unknown; error: string; kind: string; at: string };
    return { event: revive(d.event), error: d.error, kind: d.kind, at: d.at };
  });
}

/** Rewrites a dead-letter file keeping only the entries whose event id is not in `done`. */
export function removeDeadLetters(dir: string, done: ReadonlySet<string>): void {
  const path = join(dir, DEAD_LETTER_FILE);
  const kept = readJsonLines(path).records.filter((r) => !done.has((r as { event: { id: string } }).event.id));
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, kept.map((r) => `${JSON.stringify(r)}\n`).join(''));
  renameSync(tmp, path);
}
