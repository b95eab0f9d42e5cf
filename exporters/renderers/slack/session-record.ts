/**
 * What the Slack sink remembers of one CAO session: Slack's own state, never CAO's. Where the
 * session is shown (channel, thread), which posts it made (for edits, reactions and replies),
 * which steps are done (so a retried or replayed plan never posts twice), which messages may
 * still get a later phase, and the names it has shown for agents (so a second `developer` is
 * `developer 2`). Persisted by SlackSessionMap; pure helpers here.
 */

export type SlackLayout = 'thread' | 'channel' | 'webhook';

/** A message posted whose later phases (received, failed) may still come. */
export interface OpenMessage {
  orchestration: string;
  sender?: string;
  receiver?: string;
  receiverAgent?: string;
  /** sha256 prefix of the text (the text itself is never kept). */
  digest: string;
  /** The post key of its (first) post. */
  post: string;
}

export interface SlackSessionRecord {
  layout: SlackLayout;
  /** Channel id where the session is shown (thread layout: the configured channel's id once known). */
  channel?: string;
  /** Channel layout: the channel's name. */
  channelName?: string;
  /** Thread layout: ts of the thread's parent post. */
  thread?: string;
  /** Channel layout: how many channels this session name has had (name suffix `-2`, `-3`…). */
  generation?: number;
  /** Channels of this session that were archived or deleted under us. */
  lost?: string[];
  /** The session_created was shown (re-sightings after a restart are not shown again). */
  started?: boolean;
  /** Event time of the first event shown (ms). */
  since?: number;
  ended?: boolean;
  /** Archived by the sink at the session's end. */
  archived?: boolean;
  /** Post key → ts. */
  posts: Record<string, string>;
  /** Step keys done (bounded, oldest forgotten first). */
  done: string[];
  /** Post key → ms when a post was sent and no answer came (look for it before posting again). */
  attempts: Record<string, number>;
  open: OpenMessage[];
  /**
   * Later phases already shown (`orchestration|sender|digest|phase`): the same report again
   * (a source that restarted and reports what it saw before) is not shown twice.
   */
  closed: string[];
  /**
   * `[terminal id, the name shown for it]`, in the order first shown. A list, not an object:
   * an all-digit terminal id would be an integer key, which objects keep first, out of order.
   */
  names: Array<[string, string]>;
  /** Terminals shown as joined (and not left since). */
  joined: string[];
  /** Terminals shown as having left. */
  left: string[];
  /** Agent messages shown. */
  messages: number;
  updatedAt: number;
}

/**
 * How much a record keeps. `done` only has to cover steps whose events may come again (the batch
 * in flight when cao-events stopped, a replay); `posts` the posts a later phase may still edit.
 * An ended session keeps less: what late events (the core's grace period) may still need.
 */
export const RECORD_BOUNDS = { posts: 300, done: 500, open: 100, closed: 100, names: 200 } as const;
export const ENDED_BOUNDS = { posts: 50, done: 100, open: 50, closed: 50 } as const;

export function freshRecord(layout: SlackLayout, now: number): SlackSessionRecord {
  return { layout, posts: {}, done: [], attempts: {}, open: [], closed: [], names: [], joined: [], left: [], messages: 0, updatedAt: now };
}

export function cloneRecord(record: SlackSessionRecord): SlackSessionRecord {
  return structuredClone(record);
}

/** Keeps a record's lists within their bounds (oldest first out). */
export function boundRecord(record: SlackSessionRecord): void {
  const bounds = record.ended ? { ...RECORD_BOUNDS, ...ENDED_BOUNDS } : RECORD_BOUNDS;
  const trim = <T>(list: T[], max: number): void => {
    if (list.length > max) list.splice(0, list.length - max);
  };
  trim(record.done, bounds.done);
  trim(record.open, bounds.open);
  trim(record.closed, bounds.closed);
  const posts = Object.keys(record.posts).filter((k) => k !== 'root');
  for (const key of posts.slice(0, Math.max(0, posts.length - bounds.posts))) delete record.posts[key];
  trim(record.names, RECORD_BOUNDS.names);
}

export function isDone(record: SlackSessionRecord, key: string): boolean {
  return record.done.includes(key);
}

export function markDone(record: SlackSessionRecord, keys: readonly string[]): void {
  for (const key of keys) if (!record.done.includes(key)) record.done.push(key);
  boundRecord(record);
}

/**
 * What a step changes in the record once Slack carried it out (never before: a plan that never
 * ran, or was given up, leaves the record as it was, so the same events planned again after a
 * restart are shown as if for the first time).
 */
export interface StepMarks {
  started?: true;
  ended?: true;
  joined?: string[];
  left?: string[];
  messages?: number;
  /** Messages whose later phases may come (pushed). */
  open?: OpenMessage[];
  /** Later phases shown: the open entry of `post` is closed, `key` remembered. */
  close?: Array<{ post: string; key: string }>;
}

export function applyMarks(record: SlackSessionRecord, marks: StepMarks | undefined): void {
  if (!marks) return;
  if (marks.started) record.started = true;
  if (marks.ended) record.ended = true;
  for (const t of marks.joined ?? []) {
    if (!record.joined.includes(t)) record.joined.push(t);
    record.left = record.left.filter((x) => x !== t);
  }
  for (const t of marks.left ?? []) {
    if (!record.left.includes(t)) record.left.push(t);
    record.joined = record.joined.filter((x) => x !== t);
  }
  if (marks.messages) record.messages += marks.messages;
  for (const o of marks.open ?? []) if (!record.open.some((x) => x.post === o.post)) record.open.push(o);
  for (const c of marks.close ?? []) {
    record.open = record.open.filter((o) => o.post !== c.post);
    if (!record.closed.includes(c.key)) record.closed.push(c.key);
  }
  boundRecord(record);
}

/** Validates a record read from disk; undefined when it is not one. */
export function parseRecord(value: unknown): SlackSessionRecord | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const r = value as Partial<SlackSessionRecord>;
  if (r.layout !== 'thread' && r.layout !== 'channel' && r.layout !== 'webhook') return undefined;
  const obj = (v: unknown): Record<string, never> => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, never>) : {});
  const list = <T>(v: unknown): T[] => (Array.isArray(v) ? (v as T[]) : []);
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  return {
    layout: r.layout,
    ...(str(r.channel) ? { channel: str(r.channel) } : {}),
    ...(str(r.channelName) ? { channelName: str(r.channelName) } : {}),
    ...(str(r.thread) ? { thread: str(r.thread) } : {}),
    ...(typeof r.generation === 'number' ? { generation: r.generation } : {}),
    ...(Array.isArray(r.lost) ? { lost: list<string>(r.lost).filter((x) => typeof x === 'string') } : {}),
    ...(r.started === true ? { started: true } : {}),
    ...(typeof r.since === 'number' ? { since: r.since } : {}),
    ...(r.ended === true ? { ended: true } : {}),
    ...(r.archived === true ? { archived: true } : {}),
    posts: obj(r.posts),
    done: list<string>(r.done).filter((x) => typeof x === 'string'),
    attempts: obj(r.attempts),
    open: list<OpenMessage>(r.open).filter((o) => o && typeof o.post === 'string' && typeof o.digest === 'string'),
    closed: list<string>(r.closed).filter((x) => typeof x === 'string'),
    names: namePairs(r.names),
    joined: list<string>(r.joined).filter((x) => typeof x === 'string'),
    left: list<string>(r.left).filter((x) => typeof x === 'string'),
    messages: typeof r.messages === 'number' ? r.messages : 0,
    updatedAt: typeof r.updatedAt === 'number' ? r.updatedAt : 0,
  };
}

/** The stored names: pairs of strings; an object (written before names were a list) in its key order. */
function namePairs(value: unknown): Array<[string, string]> {
  const pairs = Array.isArray(value) ? value : value && typeof value === 'object' ? Object.entries(value) : [];
  return pairs.filter((p): p is [string, string] => Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && typeof p[1] === 'string');
}
