/**
 * A stand-in for Slack on 127.0.0.1, because the real service is unreachable from here (and
 * tests never leave loopback). It is written from Slack's documentation (docs.slack.dev method
 * pages, "Rate limits", Block Kit reference), independently of the sink's code, so a test that
 * passes here shows the sink follows the documented contract.
 *
 * Implemented, as documented:
 * - Incoming webhooks (POST /services/T…/B…/<secret>): JSON `text` and/or `blocks`; 200 `ok`;
 *   400 `invalid_payload`, `no_text`, `too_many_blocks` (> 50), `invalid_blocks` (unknown block
 *   type, section text > 3000, header > 150 or not plain_text, context with 0 or > 10
 *   elements), `msg_too_long` (text > 40,000); 404 `no_service`; about one message per second
 *   per webhook, beyond it 429 with `Retry-After: 1`.
 * - Web API (POST /api/<method>), `Authorization: Bearer <token>` (`not_authed`,
 *   `invalid_auth`); HTTP 200 with `{ok: false, error}` for errors; `missing_scope` with
 *   `needed`/`provided` when the token lacks a method's bot scope; write methods take JSON, all
 *   methods take form-encoded bodies.
 *   - chat.postMessage (chat:write): channel id or name; `channel_not_found`, `is_archived`,
 *     `not_in_channel` (a channel the bot is not in, unless public and the token has
 *     chat:write.public), `no_text`, `msg_too_long`, the Block Kit errors above; `thread_ts`;
 *     `metadata` {event_type, event_payload} kept; answer {ok, channel, ts, message}. One
 *     message per second per channel: beyond it HTTP 429, `Retry-After: 1`, `ratelimited`.
 *   - chat.update (chat:write): `message_not_found`, `cant_update_message` (not the bot's),
 *     `is_archived`, Block Kit errors.
 *   - reactions.add (reactions:write): `message_not_found`, `already_reacted`, `invalid_name`.
 *   - conversations.create (channels:manage / groups:write): names of lowercase letters,
 *     digits, hyphens and underscores, ≤ 80 characters: `invalid_name_required`,
 *     `invalid_name_maxlength`, `invalid_name_punctuation`, `invalid_name_specials`;
 *     `name_taken` (also by an archived channel); the creator is a member.
 *   - conversations.join (channels:join): `channel_not_found`, `is_archived`,
 *     `method_not_supported_for_channel_type` (private); already a member: ok with
 *     `warning: already_in_channel`.
 *   - conversations.setTopic (channels:manage): `not_in_channel`, `is_archived`, `too_long` (> 250).
 *   - conversations.invite (channels:manage): comma-separated `users`; `not_in_channel`,
 *     `is_archived`, `user_not_found`, `cant_invite_self`, `already_in_channel`; with
 *     `force`, the valid users are invited and the others listed in `errors`.
 *   - conversations.archive (channels:manage): `already_archived`, `not_in_channel`.
 *   - conversations.list (channels:read): `types`, `exclude_archived`, `limit`, `cursor`;
 *     `is_member` per channel.
 *   - conversations.history / conversations.replies (channels:history): `oldest`, `latest`,
 *     `inclusive`, `limit`, `include_all_metadata` (metadata only when asked); history newest
 *     first, replies oldest first with the parent; `not_in_channel`, `thread_not_found`.
 *   - Rate-limit tiers, per method per minute: Tier 2 (create, setTopic, archive, list) 20,
 *     Tier 3 (join, invite, update, reactions.add, history, replies) 50; beyond it HTTP 429
 *     with the seconds until the window frees as `Retry-After` and `ratelimited`.
 *
 * Not implemented: the workspace-wide posting limit and Slack's tolerance of short bursts
 * (the fake is stricter: never two posts in a second per channel), the Events API, files,
 * user tokens, Enterprise Grid, rich_text blocks, mrkdwn rendering. Choices of the fake where
 * Slack documents nothing: a `thread_ts` that is not a top-level message of the channel is
 * `thread_not_found`; a JSON body to a read method is `invalid_arguments`; `ts` values are
 * `<seconds>.<counter>`.
 *
 * Controls for tests: archive or delete a channel, delete a message, remove the bot from a
 * channel, make a channel someone else's, force 429s, and lose answers (the request is carried
 * out, then the connection is cut before the answer: what a time-out after success looks like).
 */
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readBody } from './read-body.ts';

export interface SlackBlockJson {
  type: string;
  text?: { type: string; text: string };
  elements?: Array<{ type: string; text: string }>;
}

export interface SlackWebhookMessage {
  text?: string;
  blocks?: SlackBlockJson[];
  receivedAt: number;
  body: Record<string, unknown>;
}

export interface SlackPost extends SlackWebhookMessage {
  channel: string;
  ts: string;
  thread_ts?: string;
  headers: IncomingMessage['headers'];
}

export interface FakeMessage {
  ts: string;
  thread_ts?: string;
  text?: string;
  blocks?: SlackBlockJson[];
  metadata?: { event_type: string; event_payload: Record<string, unknown> };
  reactions: Map<string, number>;
  edited: boolean;
  user: string;
  deleted: boolean;
}

export interface FakeChannel {
  id: string;
  name: string;
  is_private: boolean;
  is_archived: boolean;
  deleted: boolean;
  members: Set<string>;
  topic: string;
  messages: FakeMessage[];
}

export interface SlackCall {
  method: string;
  ok: boolean;
  error?: string;
  status: number;
  channel?: string;
  lost?: boolean;
}

export interface SlackFakeOptions {
  /** The bot token the Web API accepts. */
  token?: string;
  /** Existing channels: id → name (public, the bot not a member unless `memberOf`). */
  channels?: Record<string, string>;
  /** Channels (ids) the bot is a member of; default: all given channels. */
  memberOf?: string[];
  /** Users of the workspace (ids). */
  users?: string[];
  /** The token's scopes; default: every scope the Slack sink can use. */
  scopes?: string[];
  /** Minimum spacing of accepted messages per webhook / per channel (Slack: about 1 s). */
  minIntervalMs?: number;
  /** Enforce the per-method tiers (default true). */
  tiers?: boolean;
}

export interface SlackFake {
  url: string;
  webhookUrl: string;
  /** The Web API base (`…/api/`). */
  apiBase: string;
  /** chat.postMessage's URL (the first Slack sink's configuration). */
  apiUrl: string;
  botUser: string;
  /** Accepted incoming-webhook messages, in order. */
  messages: SlackWebhookMessage[];
  /** Accepted chat.postMessage calls, in order. */
  posts: SlackPost[];
  /** Every Web API call, in order. */
  calls: SlackCall[];
  /** Requests refused with 4xx or ok:false: status and Slack error code. */
  refused: Array<{ status: number; error: string; method?: string }>;
  /** 429s answered. */
  rateLimited: number;
  channels: Map<string, FakeChannel>;
  channelByName(name: string): FakeChannel | undefined;
  /** The next `count` requests are answered 429 whatever the rate. */
  forceRateLimit(count: number): void;
  /** The next `count` calls of `method` are carried out, then their connection is cut before the answer. */
  loseAnswers(method: string, count: number): void;
  archive(channelId: string): void;
  deleteChannel(channelId: string): void;
  deleteMessage(channelId: string, ts: string): void;
  removeBot(channelId: string): void;
  /** A channel created by someone else (the bot is not a member). */
  addChannel(name: string, options?: { private?: boolean; member?: boolean }): FakeChannel;
  /** What a person reading the channel sees, top to bottom (threads indented). */
  transcript(channelId: string, options?: { thread?: string }): string[];
  close(): Promise<void>;
}

const WEBHOOK_PATH = '/services/T0CAOEVTS/B0FAKEHOOK/fakeWebhookSecret0123';
const BOT_USER = 'U0CAOBOT00';
export const ALL_SCOPES = [
  'chat:write', 'chat:write.public', 'reactions:write', 'channels:manage', 'groups:write', 'channels:join',
  'channels:read', 'groups:read', 'channels:history', 'groups:history',
];

const TIER: Record<string, number> = {
  'conversations.create': 20, 'conversations.setTopic': 20, 'conversations.archive': 20, 'conversations.list': 20,
  'conversations.join': 50, 'conversations.invite': 50, 'chat.update': 50, 'reactions.add': 50,
  'conversations.history': 50, 'conversations.replies': 50,
};
const READ_METHODS = new Set(['conversations.list', 'conversations.history', 'conversations.replies']);

/** Block Kit validation, as far as these tests need it: the error code, or undefined when valid. */
function blocksError(blocks: unknown): string | undefined {
  if (blocks === undefined) return undefined;
  if (!Array.isArray(blocks)) return 'invalid_blocks_format';
  if (blocks.length > 50) return 'too_many_blocks';
  const textOk = (t: unknown, max: number, plainOnly = false): boolean => {
    const o = t as { type?: unknown; text?: unknown } | undefined;
    return (
      !!o && (o.type === 'plain_text' || (!plainOnly && o.type === 'mrkdwn')) &&
      typeof o.text === 'string' && o.text.length >= 1 && o.text.length <= max
    );
  };
  for (const block of blocks as SlackBlockJson[]) {
    switch (block?.type) {
      case 'section':
        if (!textOk(block.text, 3000)) return 'invalid_blocks';
        break;
      case 'header':
        if (!textOk(block.text, 150, true)) return 'invalid_blocks';
        break;
      case 'context':
        if (!Array.isArray(block.elements) || block.elements.length < 1 || block.elements.length > 10) return 'invalid_blocks';
        if (!block.elements.every((e) => textOk(e, 3000))) return 'invalid_blocks';
        break;
      case 'divider':
        break;
      default:
        return 'invalid_blocks';
    }
  }
  return undefined;
}

/** The scope a method needs for a channel (the groups:* twin for private channels). */
function scopeFor(method: string, isPrivate: boolean): string {
  switch (method) {
    case 'chat.postMessage':
    case 'chat.update':
      return 'chat:write';
    case 'reactions.add':
      return 'reactions:write';
    case 'conversations.create':
    case 'conversations.setTopic':
    case 'conversations.invite':
    case 'conversations.archive':
      return isPrivate ? 'groups:write' : 'channels:manage';
    case 'conversations.join':
      return 'channels:join';
    case 'conversations.list':
      return isPrivate ? 'groups:read' : 'channels:read';
    default:
      return isPrivate ? 'groups:history' : 'channels:history';
  }
}

function blockText(message: { blocks?: SlackBlockJson[]; text?: string }): string {
  if (!message.blocks) return message.text ?? '';
  return message.blocks.map((b) => (b.text ? b.text.text : (b.elements ?? []).map((e) => e.text).join(' '))).join('\n');
}

export async function startSlackFake(options: SlackFakeOptions = {}): Promise<SlackFake> {
  const token = options.token ?? 'xoxb-fake-bot-token';
  const scopes = new Set(options.scopes ?? ALL_SCOPES);
  const users = new Set([...(options.users ?? ['U0ALICE001', 'U0BOB00002']), BOT_USER]);
  const minInterval = options.minIntervalMs ?? 1000;
  const tiers = options.tiers ?? true;
  const lastAccepted = new Map<string, number>();
  const methodCalls = new Map<string, number[]>();
  const lose = new Map<string, number>();
  let tsCounter = 0;
  let channelCounter = 0;
  let forced = 0;
  const channels = new Map<string, FakeChannel>();
  const given = options.channels ?? { C0CAOEVENTS: 'cao-events' };
  for (const [id, name] of Object.entries(given)) {
    const member = options.memberOf ? options.memberOf.includes(id) : true;
    channels.set(id, { id, name, is_private: false, is_archived: false, deleted: false, members: new Set(member ? [BOT_USER] : []), topic: '', messages: [] });
  }
  const fake = {
    messages: [] as SlackWebhookMessage[],
    posts: [] as SlackPost[],
    calls: [] as SlackCall[],
    refused: [] as Array<{ status: number; error: string; method?: string }>,
    rateLimited: 0,
  };

  function nextTs(now: number): string {
    tsCounter += 1;
    return `${Math.floor(now / 1000)}.${String(tsCounter).padStart(6, '0')}`;
  }

  function forcedLimit(): boolean {
    if (forced > 0) {
      forced -= 1;
      return true;
    }
    return false;
  }

  function find(ref: unknown): FakeChannel | undefined {
    if (typeof ref !== 'string') return undefined;
    const name = ref.replace(/^#/, '');
    const byId = channels.get(ref);
    const channel = byId ?? [...channels.values()].find((c) => c.name === name && !c.deleted);
    return channel && !channel.deleted ? channel : undefined;
  }

  function webhook(req: IncomingMessage, res: ServerResponse, raw: string, now: number): void {
    const answer = (status: number, text: string): void => {
      if (status >= 400 && status !== 429) fake.refused.push({ status, error: text });
      res.writeHead(status, { 'content-type': 'text/html' }).end(text);
    };
    if (req.url !== WEBHOOK_PATH) return answer(404, 'no_service');
    const last = lastAccepted.get(WEBHOOK_PATH);
    if (forcedLimit() || (last !== undefined && now - last < minInterval)) {
      fake.rateLimited += 1;
      res.writeHead(429, { 'retry-after': '1', 'content-type': 'text/html' }).end('rate_limited');
      return;
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw) as Record<string, unknown>;
      if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Error('not an object');
    } catch {
      return answer(400, 'invalid_payload');
    }
    if (body.text === undefined && body.blocks === undefined) return answer(400, 'no_text');
    if (typeof body.text === 'string' && body.text.length > 40_000) return answer(400, 'msg_too_long');
    const blockError = blocksError(body.blocks);
    if (blockError) return answer(400, blockError);
    lastAccepted.set(WEBHOOK_PATH, now);
    fake.messages.push({ text: body.text as string | undefined, blocks: body.blocks as SlackBlockJson[] | undefined, receivedAt: now, body });
    answer(200, 'ok');
  }

  type Reply = { status: number; payload: Record<string, unknown>; headers?: Record<string, string>; channel?: string };
  const err = (error: string, extra: Record<string, unknown> = {}): Reply => ({ status: 200, payload: { ok: false, error, ...extra } });
  const ok = (payload: Record<string, unknown> = {}): Reply => ({ status: 200, payload: { ok: true, ...payload } });
  const limited = (retryAfter: number): Reply => ({ status: 429, payload: { ok: false, error: 'ratelimited' }, headers: { 'retry-after': String(retryAfter) } });

  function needScope(method: string, isPrivate: boolean): Reply | undefined {
    const needed = scopeFor(method, isPrivate);
    return scopes.has(needed) ? undefined : err('missing_scope', { needed, provided: [...scopes].join(',') });
  }

  /**
   * The channel a method names, or Slack's answer when it cannot be used, checked in Slack's
   * order: the method's scope, the channel's existence, then (where the method asks) that it is
   * not archived (`archived`: the error code) and that the bot is a member.
   */
  function target(method: string, body: Record<string, unknown>, checks: { archived?: string; member?: boolean } = {}): FakeChannel | Reply {
    const channel = find(body.channel);
    const scope = needScope(method, channel?.is_private ?? false);
    if (scope) return scope;
    if (!channel) return err('channel_not_found');
    if (checks.archived && channel.is_archived) return err(checks.archived);
    if (checks.member && !channel.members.has(BOT_USER)) return err('not_in_channel');
    return channel;
  }
  const isReply = (x: FakeChannel | Reply): x is Reply => 'payload' in x;

  function channelJson(c: FakeChannel): Record<string, unknown> {
    return {
      id: c.id, name: c.name, is_channel: !c.is_private, is_group: c.is_private, is_private: c.is_private,
      is_archived: c.is_archived, is_member: c.members.has(BOT_USER), topic: { value: c.topic }, num_members: c.members.size,
    };
  }

  function messageJson(m: FakeMessage, withMetadata: boolean): Record<string, unknown> {
    return {
      type: 'message', user: m.user, ts: m.ts, text: m.text ?? '', ...(m.blocks ? { blocks: m.blocks } : {}),
      ...(m.thread_ts ? { thread_ts: m.thread_ts } : {}),
      ...(withMetadata && m.metadata ? { metadata: m.metadata } : {}),
      ...(m.reactions.size > 0 ? { reactions: [...m.reactions].map(([name, count]) => ({ name, count, users: [BOT_USER] })) } : {}),
      ...(m.edited ? { edited: { user: BOT_USER, ts: m.ts } } : {}),
    };
  }

  function validMessage(body: Record<string, unknown>): Reply | undefined {
    if (body.text === undefined && body.blocks === undefined) return err('no_text');
    if (typeof body.text === 'string' && body.text.length > 40_000) return err('msg_too_long');
    const blockError = blocksError(body.blocks);
    return blockError ? err(blockError) : undefined;
  }

  function api(method: string, body: Record<string, unknown>, now: number): Reply {
    switch (method) {
      case 'chat.postMessage': {
        const channel = target(method, body, { archived: 'is_archived' });
        if (isReply(channel)) return channel;
        if (!channel.members.has(BOT_USER) && !(scopes.has('chat:write.public') && !channel.is_private)) return err('not_in_channel');
        const last = lastAccepted.get(channel.id);
        if (forcedLimit() || (last !== undefined && now - last < minInterval)) return { ...limited(1), channel: channel.id };
        const invalid = validMessage(body);
        if (invalid) return invalid;
        const threadTs = typeof body.thread_ts === 'string' ? body.thread_ts : undefined;
        if (threadTs !== undefined && !channel.messages.some((m) => m.ts === threadTs && !m.thread_ts && !m.deleted)) return err('thread_not_found');
        const ts = nextTs(now);
        const metadata = body.metadata as FakeMessage['metadata'] | undefined;
        channel.messages.push({
          ts, ...(threadTs ? { thread_ts: threadTs } : {}), text: body.text as string | undefined, blocks: body.blocks as SlackBlockJson[] | undefined,
          ...(metadata && typeof metadata.event_type === 'string' ? { metadata } : {}), reactions: new Map(), edited: false, user: BOT_USER, deleted: false,
        });
        lastAccepted.set(channel.id, now);
        return { ...ok({ channel: channel.id, ts, message: { text: body.text, ts, ...(threadTs ? { thread_ts: threadTs } : {}) } }), channel: channel.id };
      }
      case 'chat.update': {
        const channel = target(method, body, { archived: 'is_archived' });
        if (isReply(channel)) return channel;
        const message = channel.messages.find((m) => m.ts === body.ts && !m.deleted);
        if (!message) return err('message_not_found');
        if (message.user !== BOT_USER) return err('cant_update_message');
        const invalid = validMessage(body);
        if (invalid) return invalid;
        if (body.text !== undefined) message.text = body.text as string;
        if (body.blocks !== undefined) message.blocks = body.blocks as SlackBlockJson[];
        message.edited = true;
        return { ...ok({ channel: channel.id, ts: message.ts, text: message.text }), channel: channel.id };
      }
      case 'reactions.add': {
        const channel = target(method, body, { archived: 'is_archived' });
        if (isReply(channel)) return channel;
        if (typeof body.name !== 'string' || !/^[a-z0-9_+-]+$/.test(body.name)) return err('invalid_name');
        const message = channel.messages.find((m) => m.ts === body.timestamp && !m.deleted);
        if (!message) return err('message_not_found');
        if (message.reactions.has(body.name)) return err('already_reacted');
        message.reactions.set(body.name, 1);
        return ok();
      }
      case 'conversations.create': {
        const isPrivate = body.is_private === true || body.is_private === 'true';
        const scope = needScope(method, isPrivate);
        if (scope) return scope;
        const name = typeof body.name === 'string' ? body.name : '';
        if (name === '') return err('invalid_name_required');
        if (name.length > 80) return err('invalid_name_maxlength');
        if (!/^[a-z0-9_-]+$/.test(name)) return err('invalid_name_specials');
        if (!/[a-z0-9]/.test(name)) return err('invalid_name_punctuation');
        if ([...channels.values()].some((c) => c.name === name && !c.deleted)) return err('name_taken');
        channelCounter += 1;
        const id = `C0NEW${String(channelCounter).padStart(5, '0')}`;
        const channel: FakeChannel = { id, name, is_private: isPrivate, is_archived: false, deleted: false, members: new Set([BOT_USER]), topic: '', messages: [] };
        channels.set(id, channel);
        return { ...ok({ channel: channelJson(channel) }), channel: id };
      }
      case 'conversations.join': {
        const channel = find(body.channel);
        const scope = needScope(method, false);
        if (scope) return scope;
        if (!channel) return err('channel_not_found');
        if (channel.is_archived) return err('is_archived');
        if (channel.is_private) return err('method_not_supported_for_channel_type');
        const already = channel.members.has(BOT_USER);
        channel.members.add(BOT_USER);
        return ok({ channel: channelJson(channel), ...(already ? { warning: 'already_in_channel' } : {}) });
      }
      case 'conversations.setTopic': {
        const channel = target(method, body, { archived: 'is_archived', member: true });
        if (isReply(channel)) return channel;
        const topic = typeof body.topic === 'string' ? body.topic : '';
        if (topic.length > 250) return err('too_long');
        channel.topic = topic;
        return ok({ channel: channelJson(channel) });
      }
      case 'conversations.invite': {
        const channel = target(method, body, { archived: 'is_archived', member: true });
        if (isReply(channel)) return channel;
        const ids = String(body.users ?? '').split(',').map((u) => u.trim()).filter(Boolean);
        const force = body.force === true || body.force === 'true';
        const errors: Array<{ user: string; ok: false; error: string }> = [];
        for (const user of ids) {
          if (user === BOT_USER) errors.push({ user, ok: false, error: 'cant_invite_self' });
          else if (!users.has(user)) errors.push({ user, ok: false, error: 'user_not_found' });
          else if (channel.members.has(user)) errors.push({ user, ok: false, error: 'already_in_channel' });
        }
        if (errors.length > 0 && (!force || errors.length === ids.length)) return err(errors[0]!.error, { errors });
        for (const user of ids) if (users.has(user) && user !== BOT_USER) channel.members.add(user);
        return ok({ channel: channelJson(channel), ...(errors.length > 0 ? { errors } : {}) });
      }
      case 'conversations.archive': {
        const channel = target(method, body, { archived: 'already_archived', member: true });
        if (isReply(channel)) return channel;
        channel.is_archived = true;
        return ok();
      }
      case 'conversations.list': {
        const types = String(body.types ?? 'public_channel').split(',');
        const scope = needScope(method, !types.includes('public_channel'));
        if (scope) return scope;
        const exclude = body.exclude_archived === true || body.exclude_archived === 'true';
        const all = [...channels.values()].filter((c) => !c.deleted && types.includes(c.is_private ? 'private_channel' : 'public_channel') && !(exclude && c.is_archived))
          .filter((c) => !c.is_private || c.members.has(BOT_USER));
        const limit = Math.max(1, Math.min(1000, Number(body.limit ?? 100) || 100));
        const start = Number(body.cursor ?? 0) || 0;
        const page = all.slice(start, start + limit);
        const next = start + limit < all.length ? String(start + limit) : '';
        return ok({ channels: page.map(channelJson), response_metadata: { next_cursor: next } });
      }
      case 'conversations.history':
      case 'conversations.replies': {
        const channel = target(method, body, { member: true });
        if (isReply(channel)) return channel;
        const inclusive = body.inclusive === true || body.inclusive === 'true';
        const oldest = Number(body.oldest ?? 0);
        const latest = body.latest === undefined ? Infinity : Number(body.latest);
        const inRange = (m: FakeMessage): boolean => {
          const t = Number(m.ts);
          return (inclusive ? t >= oldest : t > oldest) && (inclusive ? t <= latest : t < latest);
        };
        const withMetadata = body.include_all_metadata === true || body.include_all_metadata === 'true';
        const limit = Math.max(1, Math.min(999, Number(body.limit ?? 100) || 100));
        let list: FakeMessage[];
        if (method === 'conversations.history') {
          list = channel.messages.filter((m) => !m.thread_ts && !m.deleted && inRange(m)).reverse();
        } else {
          const parent = channel.messages.find((m) => m.ts === body.ts && !m.deleted);
          if (!parent) return err('thread_not_found');
          list = [parent, ...channel.messages.filter((m) => m.thread_ts === parent.ts && !m.deleted)].filter((m) => m === parent || inRange(m));
        }
        return ok({ messages: list.slice(0, limit).map((m) => messageJson(m, withMetadata)), has_more: list.length > limit });
      }
      default:
        return { status: 404, payload: { ok: false, error: 'unknown_method' } };
    }
  }

  function webApi(req: IncomingMessage, res: ServerResponse, raw: string, now: number): void {
    const method = (req.url ?? '').split('?')[0]!.slice('/api/'.length);
    const send = (reply: Reply): void => {
      const error = reply.payload.ok === false ? String(reply.payload.error) : undefined;
      const lost = (lose.get(method) ?? 0) > 0 && reply.status === 200 && reply.payload.ok === true;
      if (lost) lose.set(method, lose.get(method)! - 1);
      fake.calls.push({ method, ok: reply.payload.ok === true, ...(error ? { error } : {}), status: reply.status, ...(reply.channel ? { channel: reply.channel } : {}), ...(lost ? { lost } : {}) });
      if (reply.status === 429) fake.rateLimited += 1;
      else if (error) fake.refused.push({ status: reply.status, error, method });
      if (lost) {
        res.socket?.destroy();
        return;
      }
      res.writeHead(reply.status, { 'content-type': 'application/json; charset=utf-8', ...(reply.headers ?? {}) }).end(JSON.stringify(reply.payload));
    };
    const auth = req.headers.authorization;
    if (!auth) return send(err('not_authed'));
    if (auth !== `Bearer ${token}`) return send(err('invalid_auth'));
    const type = String(req.headers['content-type'] ?? '');
    let body: Record<string, unknown>;
    if (type.startsWith('application/json')) {
      if (READ_METHODS.has(method)) return send(err('invalid_arguments'));
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        return send(err('invalid_json'));
      }
    } else {
      body = {};
      for (const [k, v] of new URLSearchParams(raw)) {
        body[k] = (k === 'blocks' || k === 'metadata') ? (() => { try { return JSON.parse(v) as unknown; } catch { return v; } })() : v;
      }
    }
    const perMinute = TIER[method];
    if (perMinute && tiers) {
      const calls = (methodCalls.get(method) ?? []).filter((t) => t > now - 60_000);
      methodCalls.set(method, calls);
      if (forcedLimit() || calls.length >= perMinute) return send(limited(Math.max(1, Math.ceil((calls[0]! + 60_000 - now) / 1000))));
      calls.push(now);
    }
    const reply = api(method, body, now);
    if (method === 'chat.postMessage' && reply.payload.ok === true) {
      const channel = channels.get(String(reply.channel))!;
      const message = channel.messages.at(-1)!;
      fake.posts.push({
        channel: channel.id, ts: message.ts, ...(message.thread_ts ? { thread_ts: message.thread_ts } : {}), text: message.text,
        blocks: message.blocks, receivedAt: now, body, headers: req.headers,
      });
    }
    send(reply);
  }

  const server = createServer((req, res) => {
    const now = Date.now();
    readBody(req).then((raw) => {
      if (req.method !== 'POST') res.writeHead(405).end();
      else if ((req.url ?? '').startsWith('/api/')) webApi(req, res, raw, now);
      else webhook(req, res, raw, now);
    }, () => res.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  function transcript(channelId: string, opts: { thread?: string } = {}): string[] {
    const channel = channels.get(channelId);
    if (!channel) return [];
    const render = (m: FakeMessage, indent: string): string[] => {
      const reactions = [...m.reactions.keys()].map((r) => `:${r}:`).join(' ');
      const lines = blockText(m).split('\n');
      const tail = `${m.edited ? ' (edited)' : ''}${reactions ? `  [${reactions}]` : ''}`;
      lines[lines.length - 1] += tail;
      return lines.map((l) => `${indent}${l}`);
    };
    const out: string[] = [];
    const top = channel.messages.filter((m) => !m.thread_ts && !m.deleted && (!opts.thread || m.ts === opts.thread));
    for (const m of top) {
      out.push(...render(m, ''));
      for (const reply of channel.messages.filter((r) => r.thread_ts === m.ts && !r.deleted)) out.push(...render(reply, '  │ '));
    }
    return out;
  }

  return Object.assign(fake, {
    url,
    webhookUrl: `${url}${WEBHOOK_PATH}`,
    apiBase: `${url}/api/`,
    apiUrl: `${url}/api/chat.postMessage`,
    botUser: BOT_USER,
    channels,
    channelByName: (name: string) => [...channels.values()].find((c) => c.name === name && !c.deleted),
    forceRateLimit(count: number) {
      forced += count;
    },
    loseAnswers(method: string, count: number) {
      lose.set(method, (lose.get(method) ?? 0) + count);
    },
    archive(id: string) {
      channels.get(id)!.is_archived = true;
    },
    deleteChannel(id: string) {
      channels.get(id)!.deleted = true;
    },
    deleteMessage(id: string, ts: string) {
      const m = channels.get(id)!.messages.find((x) => x.ts === ts);
      if (m) m.deleted = true;
    },
    removeBot(id: string) {
      channels.get(id)!.members.delete(BOT_USER);
    },
    addChannel(name: string, opts: { private?: boolean; member?: boolean } = {}) {
      channelCounter += 1;
      const id = `C0OLD${String(channelCounter).padStart(5, '0')}`;
      const channel: FakeChannel = { id, name, is_private: opts.private === true, is_archived: false, deleted: false, members: new Set(opts.member ? [BOT_USER, 'U0ALICE001'] : ['U0ALICE001']), topic: '', messages: [] };
      channels.set(id, channel);
      return channel;
    },
    transcript,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  });
}

/** All text of a message's blocks, joined (for assertions). */
export { blockText };
