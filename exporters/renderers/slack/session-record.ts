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
  /** Terminal id → the name shown for it. */
  names: Record<string, string>;
  /** Terminals shown as having left. */
  left: string[];
  /** Agent messages shown. */
  messages: number;
  updatedAt: number;
}

export const RECORD_BOUNDS = { posts: 500, done: 2_000, open: 200, closed: 200, names: 500 } as const;

export function freshRecord(layout: SlackLayout, now: number): SlackSessionRecord {
  return { layout, posts: {}, done: [], attempts: {}, open: [], closed: [], names: {}, left: [], messages: 0, updatedAt: now };
}

export function cloneRecord(record: SlackSessionRecord): SlackSessionRecord {
  return structuredClone(record);
}

/** Keeps a record's lists within their bounds (oldest first out). */
export function boundRecord(record: SlackSessionRecord): void {
  const trim = <T>(list: T[], max: number): void => {
    if (list.length > max) list.splice(0, list.length - max);
  };
  trim(record.done, RECORD_BOUNDS.done);
  trim(record.open, RECORD_BOUNDS.open);
  trim(record.closed, RECORD_BOUNDS.closed);
  const posts = Object.keys(record.posts);
  for (const key of posts.slice(0, Math.max(0, posts.length - RECORD_BOUNDS.posts))) delete record.posts[key];
  const names = Object.keys(record.names);
  for (const key of names.slice(0, Math.max(0, names.length - RECORD_BOUNDS.names))) delete record.names[key];
}

export function isDone(record: SlackSessionRecord, key: string): boolean {
  return record.done.includes(key);
}

export function markDone(record: SlackSessionRecord, keys: readonly string[]): void {
  for (const key of keys) if (!record.done.includes(key)) record.done.push(key);
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
    names: obj(r.names),
    left: list<string>(r.left).filter((x) => typeof x === 'string'),
    messages: typeof r.messages === 'number' ? r.messages : 0,
    updatedAt: typeof r.updatedAt === 'number' ? r.updatedAt : 0,
  };
}
