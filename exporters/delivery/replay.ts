/**
 * Re-sending what an outbox holds: the dead-letter entries (events the sink gave up on) or the
 * still-pending events, each with its original id so receivers de-duplicate. Delivered
 * dead letters are removed from the file; what fails again stays.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { CloudEventV1 } from 'cloudevents';
import type { Logger } from 'pino';
import type { ContentMode } from '../cloudevents/encode.ts';
import { HttpSink } from './delivery-queue.ts';
import { DEAD_LETTER_FILE, OUTBOX_FILE, Outbox, readDeadLetters, removeDeadLetters } from './outbox.ts';

export interface ReplayOptions {
  /** The outbox base directory (one sub-directory per sink) or one sink's directory. */
  dir: string;
  url: string;
  mode?: ContentMode;
  deadLetter?: boolean;
  /** Only events whose `time` is at or after this. */
  since?: Date;
  timeoutMs?: number;
  logger: Logger;
}

export interface ReplayResult {
  selected: number;
  delivered: number;
  failed: number;
}

/** The sink directories under `dir` (or `dir` itself when it holds outbox files). */
export function sinkDirs(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const own = [OUTBOX_FILE, DEAD_LETTER_FILE].some((f) => existsSync(join(dir, f)));
  if (own) return [dir];
  return readdirSync(dir)
    .map((name) => join(dir, name))
    .filter((path) => statSync(path).isDirectory() && [OUTBOX_FILE, DEAD_LETTER_FILE].some((f) => existsSync(join(path, f))));
}

function after(since: Date | undefined) {
  return (event: CloudEventV1<unknown>): boolean =>
    since === undefined || (typeof event.time === 'string' && Date.parse(event.time) >= since.getTime());
}

export async function replay(options: ReplayOptions): Promise<ReplayResult> {
  const result: ReplayResult = { selected: 0, delivered: 0, failed: 0 };
  for (const dir of sinkDirs(options.dir)) {
    const delivered = new Set<string>();
    const outbox = options.deadLetter ? undefined : new Outbox({ dir, logger: options.logger });
    const events = options.deadLetter
      ? readDeadLetters(dir).map((d) => d.event)
      : outbox!.recovered();
    const selected = events.filter(after(options.since));
    result.selected += selected.length;
    if (selected.length === 0) continue;
    const sink = new HttpSink({
      url: options.url,
      mode: options.mode,
      timeoutMs: options.timeoutMs,
      logger: options.logger,
      maxQueue: selected.length,
      retry: { maxAttempts: 3 },
      onDelivered: (evs) => {
        for (const e of evs) delivered.add(e.id);
      },
    });
    sink.enqueue(selected);
    await sink.forceFlush(60_000);
    await sink.shutdown(1_000);
    if (options.deadLetter) removeDeadLetters(dir, delivered);
    else outbox!.ack([...delivered]);
    result.delivered += delivered.size;
    result.failed += selected.length - delivered.size;
  }
  return result;
}
