/**
 * A small persisted map from CAO session name to a chat sink's own state (which Slack channel
 * or thread, which Discord thread, which posts), so a restart of cao-events keeps posting where
 * it posted before. One JSON file, written whole and atomically (a temporary file, fsync,
 * rename) after each change; at most `maxSessions` sessions (ended ones are forgotten first, then
 * the least recently used). Without a path it lives in memory only.
 *
 * A file that cannot be read as such is set aside (`<file>.unreadable-<time>`) and the map starts
 * empty; a write that fails is reported once and retried at the next change: the sink keeps
 * working from memory. Problems are logged once the owner names its logger (`reportTo`); those
 * met before are logged then.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { Sender } from '../delivery/sender.ts';
import type { Renderer } from './types.ts';

export interface SessionStoreOptions<T> {
  /** The file; undefined: memory only. */
  path?: string;
  /** Written into the file and checked when it is read (`cao-events.slack-sessions`). */
  format: string;
  /** Validates one stored record; undefined drops it. */
  parse: (value: unknown) => T | undefined;
  maxSessions?: number;
}

/** What a chat sink (Slack, Discord) is made of: its renderer, the sender around the sink's HTTP one, its session map. */
export interface ChatSinkParts<T extends { updatedAt: number; ended?: boolean }> {
  renderer: Renderer;
  sender: (http: Sender, logger: Logger) => Sender;
  sessions: SessionStore<T>;
}

export interface StoreProblem {
  kind: 'unreadable' | 'write_failed';
  message: string;
}

const PROBLEM_TEXT: Record<StoreProblem['kind'], string> = {
  unreadable: 'the session map could not be read; starting with an empty one',
  write_failed: 'the session map could not be saved; posting continues from memory (a restart may open new threads, channels or posts)',
};

const VERSION = 1;
/** Sessions remembered at most: the file is rewritten after every change, so it stays small. */
export const DEFAULT_MAX_SESSIONS = 200;

export class SessionStore<T extends { updatedAt: number; ended?: boolean }> {
  readonly path: string | undefined;
  readonly #format: string;
  readonly #parse: (value: unknown) => T | undefined;
  readonly #max: number;
  readonly #sessions = new Map<string, T>();
  #writeFailing = false;
  /** Problems met (file set aside, writes failing) before `reportTo` named a logger. */
  #problems: StoreProblem[] = [];
  #report: ((problem: StoreProblem) => void) | undefined;

  constructor(options: SessionStoreOptions<T>) {
    this.path = options.path;
    this.#format = options.format;
    this.#parse = options.parse;
    this.#max = options.maxSessions ?? DEFAULT_MAX_SESSIONS;
    this.#load();
  }

  get size(): number {
    return this.#sessions.size;
  }

  get(session: string): T | undefined {
    return this.#sessions.get(session);
  }

  set(session: string, record: T): void {
    this.#sessions.delete(session);
    this.#sessions.set(session, record);
    this.#evict();
  }

  entries(): IterableIterator<[string, T]> {
    return this.#sessions.entries();
  }

  /** Writes the map (atomically). Never throws; a failure is reported once until a write succeeds again. */
  save(): void {
    if (!this.path) return;
    const body = `${JSON.stringify({ format: this.#format, version: VERSION, sessions: Object.fromEntries(this.#sessions) })}\n`;
    const tmp = `${this.path}.tmp-${process.pid}`;
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, body);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.path);
      this.#writeFailing = false;
    } catch (err) {
      if (!this.#writeFailing) {
        this.#problem({ kind: 'write_failed', message: `${(err as NodeJS.ErrnoException).code ?? 'error'}: ${(err as Error).message.split('\n')[0]}` });
      }
      this.#writeFailing = true;
    }
  }

  /** Logs every problem at WARN, naming the sink: those met so far now, later ones as they happen. */
  reportTo(logger: Logger, sink: string): void {
    this.#report = (problem) => logger.warn({ file: this.path, problem: problem.kind, error: problem.message }, `${sink}: ${PROBLEM_TEXT[problem.kind]}`);
    for (const problem of this.#problems.splice(0)) this.#report(problem);
  }

  #problem(problem: StoreProblem): void {
    if (this.#report) this.#report(problem);
    else this.#problems.push(problem);
  }

  #load(): void {
    if (!this.path || !existsSync(this.path)) return;
    let parsed: { format?: unknown; version?: unknown; sessions?: unknown };
    try {
      parsed = JSON.parse(readFileSync(this.path, 'utf8')) as typeof parsed;
      if (parsed?.format !== this.#format || parsed.version !== VERSION || parsed.sessions === null || typeof parsed.sessions !== 'object') {
        throw new Error(`not a ${this.#format} file of version ${VERSION}`);
      }
    } catch (err) {
      const aside = `${this.path}.unreadable-${Date.now()}`;
      try {
        renameSync(this.path, aside);
      } catch {
        // left where it is; it is overwritten at the next save
      }
      this.#problem({ kind: 'unreadable', message: `${(err as Error).message.split('\n')[0]}; set aside as ${aside}` });
      return;
    }
    const rows = Object.entries(parsed.sessions as Record<string, unknown>)
      .map(([name, value]) => [name, this.#parse(value)] as const)
      .filter((row): row is readonly [string, T] => row[1] !== undefined)
      .sort((a, b) => a[1].updatedAt - b[1].updatedAt);
    for (const [name, record] of rows) this.#sessions.set(name, record);
    this.#evict();
  }

  #evict(): void {
    while (this.#sessions.size > this.#max) {
      let victim: string | undefined;
      for (const [name, record] of this.#sessions) {
        if (record.ended) {
          victim = name;
          break;
        }
      }
      victim ??= this.#sessions.keys().next().value;
      if (victim === undefined) return;
      this.#sessions.delete(victim);
    }
  }
}
