/**
 * The outbox's files and the one file-system seam they go through (`OutboxFs`, node:fs by
 * default; tests inject failures here when they cannot mount a small or read-only file system).
 *
 * A sink's outbox directory holds:
 * - `seg-<first seq>.jsonl`: the log, one record per line `{"seq":N,"event":{…}}`, in the order
 *   events were accepted; a new segment starts at a size bound, after a write error and at
 *   every start (an old segment is never appended to, so a torn last line stays harmless);
 * - `acks`: the sequence numbers done (delivered, skipped or dead-lettered), one per line,
 *   always 16 digits, so a torn line can never read as another number;
 * - `dead-letter.jsonl`: `{"event":…,"error":"…","kind":"…","at":"<time>","sink":"…"}` per line;
 * - `.lock`: the pid of the process using the directory.
 */
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { CloudEvent, type CloudEventV1 } from 'cloudevents';

export type OutboxFs = Pick<
  typeof nodeFs,
  | 'mkdirSync'
  | 'readdirSync'
  | 'openSync'
  | 'writeSync'
  | 'readSync'
  | 'ftruncateSync'
  | 'closeSync'
  | 'unlinkSync'
  | 'renameSync'
  | 'readFileSync'
  | 'writeFileSync'
  | 'existsSync'
  | 'statSync'
>;

export const nodeOutboxFs: OutboxFs = nodeFs;

export const ACKS_FILE = 'acks';
export const DEAD_LETTER_FILE = 'dead-letter.jsonl';
export const LOCK_FILE = '.lock';
const SEGMENT_RE = /^seg-(\d{16})\.jsonl$/;

export function segmentFileName(firstSeq: number): string {
  return `seg-${String(firstSeq).padStart(16, '0')}.jsonl`;
}

/** The segment files of a directory with their first sequence number, oldest first. */
export function listSegments(fs: OutboxFs, dir: string): Array<{ name: string; first: number }> {
  return fs
    .readdirSync(dir)
    .map((name) => ({ name, match: SEGMENT_RE.exec(name) }))
    .filter((x) => x.match)
    .map((x) => ({ name: x.name, first: Number(x.match![1]) }))
    .sort((a, b) => a.first - b.first);
}

export function ackLine(seq: number): string {
  return `${String(seq).padStart(16, '0')}\n`;
}

/** The sequence numbers of an acks file (whole 16-digit lines only). */
export function parseAcks(text: string): number[] {
  const out: number[] = [];
  for (const line of text.split('\n')) if (/^\d{16}$/.test(line)) out.push(Number(line));
  return out;
}

/** The sequence number at the start of a record line, without parsing the event. */
export function recordSeq(line: string): number | undefined {
  const m = /^\{"seq":(\d+),"event":/.exec(line);
  return m ? Number(m[1]) : undefined;
}

export function reviveEvent(plain: unknown): CloudEventV1<unknown> {
  return new CloudEvent(plain as CloudEventV1<unknown>, false);
}

/** Error code of a file-system error (`ENOSPC`, `EROFS`, …), or the error's name. */
export function fsErrorCode(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : ((err as Error | undefined)?.name ?? 'error');
}

const EXPLAIN: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a path component is not a directory',
  EEXIST: 'exists and is not a directory',
  EIO: 'input/output error',
};

export function explainFsError(err: unknown): string {
  const code = fsErrorCode(err);
  return EXPLAIN[code] ? `${code}: ${EXPLAIN[code]}` : code;
}

/**
 * Writes all of `buf` to `fd` at its end. Returns the bytes written and, if it stopped early,
 * the error (a disk can fill up half-way through a write).
 */
export function writeAll(fs: OutboxFs, fd: number, buf: Buffer): { written: number; error?: unknown } {
  let written = 0;
  try {
    while (written < buf.length) written += fs.writeSync(fd, buf, written, buf.length - written);
    return { written };
  } catch (error) {
    return { written, error };
  }
}

export interface DeadLetter {
  event: CloudEventV1<unknown>;
  error: string;
  kind: string;
  at: string;
  sink?: string;
}

/** Reads JSON lines, skipping torn or invalid ones; returns the records and how many were bad. */
export function readJsonLines(fs: OutboxFs, path: string): { records: unknown[]; bad: number } {
  if (!fs.existsSync(path)) return { records: [], bad: 0 };
  const records: unknown[] = [];
  let bad = 0;
  for (const line of fs.readFileSync(path, 'utf8').split('\n')) {
    if (!line) continue;
    try {
      records.push(JSON.parse(line));
    } catch {
      bad += 1;
    }
  }
  return { records, bad };
}

export function parseDeadLetter(record: unknown): DeadLetter | undefined {
  const d = record as Partial<DeadLetter> | null;
  if (!d || typeof d !== 'object' || !d.event || typeof (d.event as { id?: unknown }).id !== 'string') return undefined;
  return { event: reviveEvent(d.event), error: String(d.error ?? ''), kind: String(d.kind ?? ''), at: String(d.at ?? ''), ...(d.sink ? { sink: String(d.sink) } : {}) };
}

/** The dead letters of a sink directory. */
export function readDeadLetters(dir: string, fs: OutboxFs = nodeOutboxFs): DeadLetter[] {
  return readJsonLines(fs, join(dir, DEAD_LETTER_FILE)).records.map(parseDeadLetter).filter((d): d is DeadLetter => d !== undefined);
}
