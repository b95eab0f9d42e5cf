/**
 * Re-sending what a sink's outbox directory holds, through that sink's own layers (its
 * renderer, signing, headers and sender: the caller builds the queue), each event with its
 * original id so receivers de-duplicate:
 *
 * - dead letters: the file is first renamed aside (a running sidecar keeps appending new dead
 *   letters to a fresh one), the selected entries are sent, and every entry not delivered now
 *   is appended back to `dead-letter.jsonl`;
 * - pending events (only while no sidecar uses the directory: its lock is taken): the outbox is
 *   opened and drained exactly as a sidecar start would.
 */
import { existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { CloudEventV1 } from 'cloudevents';
import type { Logger } from 'pino';
import type { DeliveryQueue } from './delivery-queue.ts';
import { LossLog } from './loss-log.ts';
import { MemoryStorage } from './memory-storage.ts';
import { OutboxStorage } from './outbox.ts';
import { DEAD_LETTER_FILE, type OutboxFs, nodeOutboxFs, parseDeadLetter, readJsonLines } from './outbox-files.ts';
import type { QueueStorage } from './queue-storage.ts';

export interface ReplayTarget {
  /** The sink's name. */
  name: string;
  /** Its outbox directory. */
  dir: string;
  /** Builds the sink's queue (renderer, sender, retry policy) over a storage. */
  queue(storage: QueueStorage, losses: LossLog): DeliveryQueue;
  /** Memory window for pending replay (the sink's maxQueue). */
  maxQueue: number;
  maxBytes: number;
}

export interface ReplayOptions {
  /** Only dead letters whose event `time` is at or after this. */
  since?: Date;
  /** How long to keep trying before giving up on what is left (it stays where it was). */
  timeoutMs?: number;
  logger: Logger;
  fs?: OutboxFs;
}

export interface ReplayResult {
  sink: string;
  selected: number;
  delivered: number;
  failed: number;
}

function after(since: Date | undefined) {
  return (event: CloudEventV1<unknown>): boolean =>
    since === undefined || (typeof event.time === 'string' && Date.parse(event.time) >= since.getTime());
}

/** Re-sends a sink's dead letters; what is not delivered goes back into the dead-letter file. */
export async function replayDeadLetters(target: ReplayTarget, options: ReplayOptions): Promise<ReplayResult> {
  const fs = options.fs ?? nodeOutboxFs;
  const result: ReplayResult = { sink: target.name, selected: 0, delivered: 0, failed: 0 };
  if (!existsSync(target.dir)) return result;
  const path = join(target.dir, DEAD_LETTER_FILE);
  const claimed = readdirSync(target.dir).filter((f) => f.startsWith('dead-letter.replaying-')).map((f) => join(target.dir, f));
  if (existsSync(path)) {
    const aside = join(target.dir, `dead-letter.replaying-${Date.now()}-${process.pid}.jsonl`);
    renameSync(path, aside);
    claimed.push(aside);
  }
  const lines: Array<{ raw: unknown; event: CloudEventV1<unknown> }> = [];
  for (const file of claimed) {
    for (const raw of readJsonLines(fs, file).records) {
      const d = parseDeadLetter(raw);
      if (d) lines.push({ raw, event: d.event });
    }
  }
  const selected = lines.filter((l) => after(options.since)(l.event));
  result.selected = selected.length;
  const delivered = new Set<string>();
  if (selected.length > 0) {
    const losses = new LossLog(options.logger);
    const storage = new MemoryStorage({
      maxEvents: selected.length,
      losses,
      keptElsewhere: true,
      onDone: (items) => {
        for (const i of items) delivered.add(i.event.id);
      },
    });
    const queue = target.queue(storage, losses);
    queue.enqueue(selected.map((l) => l.event));
    await queue.forceFlush(options.timeoutMs ?? 60_000);
    await queue.shutdown(0);
  }
  const back = lines.filter((l) => !delivered.has(l.event.id)).map((l) => `${JSON.stringify(l.raw)}\n`).join('');
  if (back) fs.writeFileSync(path, back, { flag: 'a' });
  for (const file of claimed) rmSync(file, { force: true });
  result.delivered = delivered.size;
  result.failed = result.selected - result.delivered;
  return result;
}

/** Delivers what is pending in a sink's outbox (the sidecar must not be running on it). */
export async function replayPending(target: ReplayTarget, options: ReplayOptions): Promise<ReplayResult> {
  const result: ReplayResult = { sink: target.name, selected: 0, delivered: 0, failed: 0 };
  if (!existsSync(target.dir)) return result;
  const losses = new LossLog(options.logger);
  const storage = OutboxStorage.open({
    dir: target.dir,
    sink: target.name,
    maxBytes: target.maxBytes,
    memoryEvents: target.maxQueue,
    logger: options.logger,
    losses,
    fs: options.fs,
  });
  result.selected = storage.stats().pending;
  const queue = target.queue(storage, losses); // starts on what the outbox holds
  await queue.forceFlush(options.timeoutMs ?? 60_000);
  const summary = await queue.shutdown(0);
  const stats = queue.stats;
  result.delivered = stats.delivered + stats.skipped;
  result.failed = summary.keptOnDisk;
  return result;
}
