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
import { dirname, join } from 'node:path';
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

/**
 * Appends whole lines to a file, or nothing: a write that fails half-way is cut back to the
 * last whole line (or, if even that fails, the next write starts on a new line, so the torn
 * bytes stay a line of their own that readers skip). The file is opened on first use.
 */
export class LineAppender {
  readonly path: string;
  readonly #fs: OutboxFs;
  #fd: number | undefined;
  #size = 0;
  #broken = false;

  constructor(fs: OutboxFs, path: string) {
    this.#fs = fs;
    this.path = path;
  }

  get size(): number {
    return this.#size;
  }

  /** Throws when the file cannot be opened, or the write failed (then nothing of it is kept, or it is a line of its own). */
  append(text: string): void {
    if (this.#fd === undefined) {
      this.#fd = this.#fs.openSync(this.path, 'a');
      this.#size = this.#fs.statSync(this.path).size;
    }
    const { written, error } = writeAll(this.#fs, this.#fd, Buffer.from(this.#broken ? `\n${text}` : text));
    if (error === undefined) {
      this.#size += written;
      this.#broken = false;
      return;
    }
    try {
      this.#fs.ftruncateSync(this.#fd, this.#size);
    } catch {
      this.#size += written;
      this.#broken = true;
    }
    throw error;
  }

  close(): void {
    if (this.#fd === undefined) return;
    try {
      this.#fs.closeSync(this.#fd);
    } catch {
      // closing loses nothing already written
    }
    this.#fd = undefined;
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

/**
 * Creates the directory and proves it can be written (a 64 KiB file written and removed: a disk
 * with less room than that is full for the outbox's purpose), so a full or read-only directory
 * is found at start-up, not at the first event. A recursive mkdir
 * on a read-only file system reports ENOENT (it tried the missing parent first), so on failure
 * the first missing component is created on its own, to throw the real reason (EROFS, EACCES,
 * ENOTDIR).
 */
export function prepareDirectory(fs: OutboxFs, dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (err) {
    if (fsErrorCode(err) !== 'ENOENT') throw err;
    let missing = dir;
    while (!fs.existsSync(dirname(missing)) && dirname(missing) !== missing) missing = dirname(missing);
    fs.mkdirSync(missing);
    throw err;
  }
  const probe = join(dir, '.write-probe');
  fs.writeFileSync(probe, Buffer.alloc(64 * 1024, 0x0a));
  fs.unlinkSync(probe);
}

/** Takes the directory for this process (a lock left by a process that is gone is taken over). */
export function lockDirectory(fs: OutboxFs, dir: string): void {
  const path = join(dir, LOCK_FILE);
  if (fs.existsSync(path)) {
    const pid = Number(String(fs.readFileSync(path, 'utf8')).trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) throw new OutboxLockedError(dir, pid);
  }
  fs.writeFileSync(path, `${process.pid}\n`);
}

export function unlockDirectory(fs: OutboxFs, dir: string): void {
  try {
    fs.unlinkSync(join(dir, LOCK_FILE));
  } catch {
    // a stale lock is taken over at the next start
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
