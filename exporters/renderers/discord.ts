/**
 * The built-in `discord` sink: CAO sessions as Discord webhook messages a person can follow.
 * Each agent message is posted once, under the name of the agent that speaks (`username`), as an
 * embed titled with its receiver (`→ developer`, `· task`, `· handoff`), the text as description.
 * Lifecycle events are short embeds (`developer joined (claude_code)`). A message's later phases
 * are hidden (`laterPhases: hide`, default) or posted (`post`); a webhook message is not edited.
 * No terminal ids, sources or phases unless `details: true`.
 *
 * Layouts:
 * - `channel` (default): everything in the webhook's channel, the session named in each footer;
 * - `forum`: the webhook belongs to a forum channel; each CAO session is one forum post (a
 *   thread named after the session, created with `thread_name` by the session's first message;
 *   `?wait=true` answers with the message, whose `channel_id` is the thread), every later message
 *   goes into it with `?thread_id=` (Discord unarchives the thread). The session → thread map is
 *   persisted (next to the outbox, or `discord.stateFile`), so a restart keeps the same thread.
 *
 * Discord's limits are respected: ≤ 10 embeds per message, title ≤ 256, description ≤ 4096,
 * footer ≤ 2048, all embeds together ≤ 6000 characters (events that would not fit wait for the
 * next message; one longer than that is cut with a marker), username 1–80 characters without
 * the words Discord forbids in webhook names, thread names ≤ 100 characters.
 * `allowed_mentions: {parse: []}`: nothing an agent writes (@everyone, @here, <@id>) pings anyone.
 * Rate limits: an empty bucket (X-RateLimit-Remaining: 0) pauses the sink for
 * X-RateLimit-Reset-After; a 429's JSON `retry_after` (seconds) is honoured.
 *
 * A retried first message of a session whose answer was lost can open a second forum post
 * (Discord's webhooks take no idempotency key); every other retry posts into the known thread.
 */
import { createHash } from 'node:crypto';
import type { CaoEventData } from '../transform.ts';
import { type ChatSinkParts, SessionStore } from './session-store.ts';
import { agentLabel, dataOf, eventTimeMs, fitText, lifecycleSentence, readableMessage, sessionOf } from './text.ts';
import type { CaoCloudEventLike, ResponseVerdict, Renderer, RenderContext, RenderedRequest, TransformResponse } from './types.ts';

export const DISCORD_LIMITS = {
  content: 2000,
  embeds: 10,
  title: 256,
  description: 4096,
  footer: 2048,
  embedTotal: 6000,
  username: 80,
  threadName: 100,
} as const;

export const DISCORD_LAYOUTS = ['channel', 'forum'] as const;
export type DiscordLayout = (typeof DISCORD_LAYOUTS)[number];

export interface DiscordOptions {
  layout?: DiscordLayout;
  laterPhases?: 'post' | 'hide';
  details?: boolean;
  /** Where the session map is kept; undefined: memory only. */
  stateFile?: string;
  maxSessions?: number;
}

export interface DiscordEmbed {
  title: string;
  description?: string;
  footer?: { text: string };
  timestamp?: string;
  color: number;
}

/** What the Discord sink remembers of a session: its forum thread, and what it has shown. */
export interface DiscordSessionRecord {
  thread?: string;
  started?: boolean;
  ended?: boolean;
  /** Terminals shown as joined (and not left). */
  present: string[];
  /** Messages shown whose later phases may still come: orchestration|sender|digest. */
  open: string[];
  updatedAt: number;
}

const COLORS: Record<string, number> = {
  session_created: 0x2ecc71,
  session_killed: 0xe74c3c,
  terminal_created: 0x95a5a6,
  terminal_killed: 0x7f8c8d,
  assign: 0x3498db,
  handoff: 0x9b59b6,
  send_message: 0x1abc9c,
  failed: 0xe67e22,
};

const KIND: Record<string, string> = { assign: 'task', handoff: 'handoff' };

export const DISCORD_STATE_FORMAT = 'cao-events.discord-sessions';
/** A session record keeps at most this many terminals shown and messages awaiting a later phase (oldest first out). */
const RECORD_BOUNDS = { present: 500, open: 200 } as const;

/** The terminal that speaks for an event: the sender of a message, the terminal of a terminal event. */
function speakerOf(event: CaoCloudEventLike): string | undefined {
  const data = dataOf(event);
  if (data.event_type === 'message_sent') return data.sender ?? data.sender_agent;
  if (data.event_type === 'terminal_created' || data.event_type === 'terminal_killed') return data.terminal_id;
  return undefined;
}

/**
 * A webhook username Discord accepts: 1–80 characters, none of the substrings it refuses in
 * webhook names ("discord", "clyde"), and not "everyone"/"here".
 */
export function discordUsername(name: string | undefined): string {
  let out = (name ?? '').replace(/\s+/g, ' ').replace(/discord|clyde/gi, '').replace(/[@#:]|```/g, '').trim();
  if (/^(everyone|here)$/i.test(out)) out = `agent ${out}`;
  if (out.length === 0) out = 'cao-events';
  return Array.from(out).slice(0, DISCORD_LIMITS.username).join('');
}

function usernameFor(event: CaoCloudEventLike): string {
  const data = dataOf(event);
  if (data.event_type === 'message_sent') return discordUsername(agentLabel(data.sender_agent, data.sender));
  if (data.event_type === 'terminal_created' || data.event_type === 'terminal_killed') return discordUsername(agentLabel(data.agent_name, data.terminal_id));
  return discordUsername('cao-events');
}

function embedChars(embed: DiscordEmbed): number {
  return embed.title.length + (embed.description?.length ?? 0) + (embed.footer?.text.length ?? 0);
}

function openKey(data: CaoEventData): string {
  const digest = createHash('sha256').update(data.message ?? '').digest('hex').slice(0, 16);
  return `${data.orchestration_type ?? ''}|${data.sender ?? data.sender_agent ?? ''}|${digest}`;
}

export interface DiscordView {
  layout: DiscordLayout;
  details: boolean;
}

/** One embed for an event, its description cut to `descriptionRoom` characters at most. */
export function renderDiscordEmbed(
  event: CaoCloudEventLike,
  view: DiscordView = { layout: 'channel', details: false },
  descriptionRoom: number = DISCORD_LIMITS.description,
): DiscordEmbed {
  const data = dataOf(event);
  const footerParts = [
    view.layout === 'channel' ? sessionOf(event) : undefined,
    ...(view.details ? [data.orchestration_type, data.phase, data.observed_by && `observed by ${data.observed_by}`] : []),
  ].filter((x): x is string => Boolean(x));
  const ms = eventTimeMs(event.time);
  const base = {
    ...(footerParts.length > 0 ? { footer: { text: fitText(footerParts.join(' · '), DISCORD_LIMITS.footer, () => '…') } } : {}),
    ...(ms !== undefined ? { timestamp: new Date(ms).toISOString() } : {}),
  };
  if (data.event_type !== 'message_sent') {
    return { title: fitText(lifecycleSentence(data), DISCORD_LIMITS.title, () => '…'), color: COLORS[data.event_type] ?? 0, ...base };
  }
  const orchestration = data.orchestration_type ?? 'send_message';
  const kind = data.phase === 'completed' ? 'handoff result' : KIND[orchestration];
  const status = data.phase === 'delivered' ? '✓ received' : data.phase === 'failed' ? '✗ failed' : undefined;
  const title = fitText(
    [`→ ${agentLabel(data.receiver_agent, data.receiver)}`, kind, status].filter(Boolean).join(' · '),
    DISCORD_LIMITS.title,
    () => '…',
  );
  const room = Math.max(0, Math.min(DISCORD_LIMITS.description, descriptionRoom));
  const description = data.message === undefined || room === 0 ? undefined : fitText(view.details ? data.message : readableMessage(data.message), room);
  return { title, ...(description ? { description } : {}), color: data.phase === 'failed' ? COLORS.failed! : (COLORS[orchestration] ?? 0), ...base };
}

/** As many events as fit in one message (the first always, cut to fit). */
export function packDiscordMessage(
  events: readonly CaoCloudEventLike[],
  view: DiscordView = { layout: 'channel', details: false },
): { embeds: DiscordEmbed[]; consumed: number } {
  const embeds: DiscordEmbed[] = [];
  let total = 0;
  for (const event of events) {
    if (embeds.length === DISCORD_LIMITS.embeds) break;
    let embed = renderDiscordEmbed(event, view);
    if (total + embedChars(embed) > DISCORD_LIMITS.embedTotal) {
      if (embeds.length > 0) break;
      const fixed = embedChars(embed) - (embed.description?.length ?? 0);
      embed = renderDiscordEmbed(event, view, DISCORD_LIMITS.embedTotal - fixed);
    }
    embeds.push(embed);
    total += embedChars(embed);
  }
  return { embeds, consumed: embeds.length };
}

/** A numeric Discord error code from a JSON body (never anything else of it). */
function discordCode(body: string): number | undefined {
  try {
    const code = (JSON.parse(body) as { code?: unknown }).code;
    return typeof code === 'number' ? code : undefined;
  } catch {
    return undefined;
  }
}

/** Unknown Webhook, Invalid Webhook Token: the webhook was deleted or its URL is wrong. */
const GONE_CODES = new Set([10015, 50027]);
/** Unknown Channel: the session's forum post was deleted; a new one is opened. */
const UNKNOWN_CHANNEL = 10003;

function parseDiscordRecord(value: unknown): DiscordSessionRecord | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const r = value as Partial<DiscordSessionRecord>;
  const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  return {
    ...(typeof r.thread === 'string' && /^\d{1,25}$/.test(r.thread) ? { thread: r.thread } : {}),
    ...(r.started === true ? { started: true } : {}),
    ...(r.ended === true ? { ended: true } : {}),
    present: strings(r.present).slice(-RECORD_BOUNDS.present),
    open: strings(r.open).slice(-RECORD_BOUNDS.open),
    updatedAt: typeof r.updatedAt === 'number' ? r.updatedAt : 0,
  };
}

/**
 * Which events of a batch a reader sees (pure over a copy of the record): a session or terminal
 * seen again after a restart is not shown twice, a later phase of a message already shown is
 * hidden unless `post`.
 */
export function visibleEvents(
  events: readonly CaoCloudEventLike[],
  stored: DiscordSessionRecord | undefined,
  laterPhases: 'post' | 'hide',
  now: number,
): { record: DiscordSessionRecord; visible: boolean[] } {
  const record: DiscordSessionRecord = stored ? structuredClone(stored) : { present: [], open: [], updatedAt: now };
  const visible = events.map((event) => {
    const data = dataOf(event);
    switch (data.event_type) {
      case 'session_created':
        if (record.started && !record.ended) return false;
        if (record.ended) Object.assign(record, { thread: undefined, ended: false, present: [], open: [] });
        record.started = true;
        return true;
      case 'session_killed':
        if (record.ended) return false;
        record.ended = true;
        return true;
      case 'terminal_created':
        if (data.terminal_id && record.present.includes(data.terminal_id)) return false;
        if (data.terminal_id) record.present.push(data.terminal_id);
        return true;
      case 'terminal_killed':
        record.present = record.present.filter((t) => t !== data.terminal_id);
        return true;
      case 'message_sent': {
        const key = openKey(data);
        if (data.phase === 'delivered') {
          const at = record.open.indexOf(key);
          if (at >= 0) {
            record.open.splice(at, 1);
            return laterPhases === 'post';
          }
          return true;
        }
        if (data.phase === 'dispatched') record.open.push(key);
        return true;
      }
    }
  });
  record.present = record.present.slice(-RECORD_BOUNDS.present);
  record.open = record.open.slice(-RECORD_BOUNDS.open);
  record.updatedAt = now;
  return { record, visible };
}

export type DiscordSinkParts = ChatSinkParts<DiscordSessionRecord>;

function withQuery(url: string, params: Record<string, string>): string {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

export function createDiscordSink(options: DiscordOptions = {}): DiscordSinkParts {
  const layout = options.layout ?? 'channel';
  const laterPhases = options.laterPhases ?? 'hide';
  const view: DiscordView = { layout, details: options.details === true };
  const sessions = new SessionStore<DiscordSessionRecord>({
    path: options.stateFile,
    format: DISCORD_STATE_FORMAT,
    parse: parseDiscordRecord,
    maxSessions: options.maxSessions,
  });
  const renderer: Renderer = {
    name: `discord (${layout} layout)`,
    maxBatch: DISCORD_LIMITS.embeds,
    // One message has one username: only consecutive events of one speaker in one session
    // travel together (a channel shows them in the order they happened).
    groupBy: (event) => `${sessionOf(event)}\u0000${speakerOf(event) ?? ''}`,
    grouping: 'run',

    encode(events, context: RenderContext): RenderedRequest | null {
      const session = sessionOf(events[0]!);
      const { record, visible } = visibleEvents(events, sessions.get(session), laterPhases, Date.now());
      const shown = events.filter((_, i) => visible[i]);
      if (shown.length === 0) {
        sessions.set(session, record);
        sessions.save();
        return null;
      }
      const { embeds, consumed: shownConsumed } = packDiscordMessage(shown, view);
      // events consumed: everything up to the last shown event this message carries
      let consumed = 0;
      let carried = 0;
      while (consumed < events.length && (carried < shownConsumed || !visible[consumed])) {
        if (visible[consumed]) carried += 1;
        consumed += 1;
      }
      // What this message shows counts as shown once Discord took it (onResponse), not before.
      const known = sessions.get(session);
      const body: Record<string, unknown> = { username: usernameFor(shown[0]!), embeds, allowed_mentions: { parse: [] } };
      let url = context.url;
      const reset = events.slice(0, consumed).some((e) => dataOf(e).event_type === 'session_created') && known?.ended === true;
      const thread = reset ? undefined : known?.thread;
      if (layout === 'forum') {
        if (thread) url = withQuery(context.url, { wait: 'true', thread_id: thread });
        else {
          url = withQuery(context.url, { wait: 'true' });
          body.thread_name = fitText(session || 'CAO session', DISCORD_LIMITS.threadName, () => '…');
        }
      }
      return { url, body, consumed };
    },

    onResponse(response: TransformResponse, events): ResponseVerdict | undefined {
      const { status, headers, body } = response;
      if (status >= 200 && status < 300) {
        const session = sessionOf(events[0]!);
        const { record } = visibleEvents(events, sessions.get(session), laterPhases, Date.now());
        if (layout === 'forum' && !record.thread) {
          try {
            const channel = (JSON.parse(body) as { channel_id?: unknown }).channel_id;
            if (typeof channel === 'string' && /^\d{1,25}$/.test(channel)) record.thread = channel;
          } catch {
            // no JSON: the next message opens a thread again
          }
        }
        sessions.set(session, record);
        sessions.save();
        if (headers['x-ratelimit-remaining'] === '0') {
          const resetAfter = Number(headers['x-ratelimit-reset-after']);
          if (Number.isFinite(resetAfter) && resetAfter > 0) return { pauseMs: Math.ceil(resetAfter * 1000) };
        }
        return undefined;
      }
      if (status === 429) {
        let retryAfter: unknown;
        let global = false;
        try {
          const parsed = JSON.parse(body) as { retry_after?: unknown; global?: unknown };
          retryAfter = parsed.retry_after;
          global = parsed.global === true;
        } catch {
          // the Retry-After header (handled by default) is all there is
        }
        const reason = `HTTP 429${global ? ' (global rate limit)' : ''}`;
        return typeof retryAfter === 'number' && retryAfter >= 0
          ? { outcome: 'retry', reason, retryAfterMs: Math.ceil(retryAfter * 1000) }
          : { outcome: 'retry', reason };
      }
      const code = discordCode(body);
      const reason = `HTTP ${status}${code !== undefined ? ` (Discord code ${code})` : ''}`;
      if (code !== undefined && GONE_CODES.has(code)) return { outcome: 'gone', reason };
      if (code === UNKNOWN_CHANNEL && layout === 'forum') {
        // the session's forum post was deleted: forget it; the session's next message opens a new one
        const record = sessions.get(sessionOf(events[0]!));
        if (record?.thread) {
          delete record.thread;
          sessions.save();
        }
        return { outcome: 'reject', reason: `${reason}: the session's forum post is gone; the next message opens a new one` };
      }
      return { reason };
    },
  };
  return {
    renderer,
    sessions,
    sender: (http, logger) => {
      if (layout === 'forum' && !sessions.path) {
        logger.info('discord: no outbox.dir or discord.stateFile: which forum post shows which session is kept in memory only (a restart opens new ones)');
      }
      sessions.reportTo(logger, 'discord');
      return http;
    },
  };
}

/** The renderer alone (tests, library users): `createDiscordSink(options).renderer`. */
export function createDiscordTransform(options: DiscordOptions = {}): Renderer {
  return createDiscordSink(options).renderer;
}
