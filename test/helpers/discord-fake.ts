/**
 * A stand-in for Discord's Execute Webhook endpoint, on 127.0.0.1, because the real service is
 * unreachable from here (and tests never leave loopback). It implements the documented
 * request/response and rate-limit behaviour, independently of the `discord` transform's code:
 *
 * - POST /api/webhooks/{id}/{token} with JSON: 204 No Content (200 with the message when
 *   `?wait=true`); 404 `{code: 10015, message: "Unknown Webhook"}` for another path.
 * - 400 `{code: 50006}` for an empty message; 400 `{code: 50035, message: "Invalid Form Body",
 *   errors}` when a limit is broken: content > 2000, > 10 embeds, title > 256, description >
 *   4096, footer text > 2048, > 25 fields, all embeds together > 6000 characters, a username
 *   outside 1–80 characters or containing "discord"/"clyde".
 * - Mentions: without `allowed_mentions` a webhook message's @everyone, @here, <@id>, <@&id> in
 *   `content` ping; `allowed_mentions.parse` limits that. Pings are recorded, never sent.
 * - Forum channels (`forum: true`: the webhook belongs to a forum channel): a message must name
 *   a post (`thread_name` in the body creates one, ≤ 100 characters; `?thread_id=` posts into
 *   one), else 400 `{code: 220001}`; an unknown `thread_id` is 400 `{code: 10003, message:
 *   "Unknown Channel"}`; posting into an archived post unarchives it; with `?wait=true` the
 *   answer's `channel_id` is the post's (thread's) id. `thread_name` on a webhook of a text
 *   channel is refused with 400 `{code: 220003}` (Discord documents the refusal; the code is the
 *   fake's choice).
 * - Rate limit: a bucket of `bucketLimit` requests per `bucketWindowMs` per webhook; every
 *   answer carries X-RateLimit-Limit, -Remaining, -Reset, -Reset-After (seconds, float) and
 *   -Bucket; beyond it 429 with JSON `{message, retry_after (seconds, float), global}` (and a
 *   Retry-After header unless `retryAfterHeader: false`).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readBody } from './read-body.ts';

export interface DiscordEmbedJson {
  title?: string;
  description?: string;
  footer?: { text?: string };
  author?: { name?: string };
  fields?: Array<{ name: string; value: string }>;
  timestamp?: string;
}

export interface DiscordMessage {
  /** The forum post (thread) it went to. */
  thread?: string;
  content?: string;
  username?: string;
  embeds: DiscordEmbedJson[];
  allowed_mentions?: { parse?: string[] };
  receivedAt: number;
}

export interface DiscordFakeOptions {
  bucketLimit?: number;
  bucketWindowMs?: number;
  /** Send a Retry-After header with 429s (default true); without it only the JSON body says. */
  retryAfterHeader?: boolean;
  /** The webhook belongs to a forum channel. */
  forum?: boolean;
}

export interface DiscordThread {
  id: string;
  name: string;
  archived: boolean;
  deleted: boolean;
}

export interface DiscordFake {
  url: string;
  webhookUrl: string;
  messages: DiscordMessage[];
  refused: Array<{ status: number; body: Record<string, unknown> }>;
  rateLimited: number;
  /** Mentions that would have pinged someone. */
  pings: string[];
  /** Forum posts (threads), by id. */
  threads: Map<string, DiscordThread>;
  archiveThread(id: string): void;
  deleteThread(id: string): void;
  /** The next `count` requests get a 429 with this retry_after (seconds). */
  forceRateLimit(count: number, retryAfterSec: number, global?: boolean): void;
  close(): Promise<void>;
}

const WEBHOOK_PATH = '/api/webhooks/112233445566778899/fake-webhook-token';

const tooLong = (max: number) => ({ _errors: [{ code: 'BASE_TYPE_MAX_LENGTH', message: `Must be ${max} or fewer in length.` }] });

/** The `errors` object of a 50035 answer, or undefined when the message is valid. */
function formErrors(body: Record<string, unknown>): Record<string, unknown> | undefined {
  const errors: Record<string, unknown> = {};
  if (typeof body.content === 'string' && body.content.length > 2000) errors.content = tooLong(2000);
  if (body.username !== undefined) {
    const name = String(body.username);
    if (name.length < 1 || name.length > 80) errors.username = { _errors: [{ code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 80 in length.' }] };
    else if (/discord|clyde/i.test(name)) errors.username = { _errors: [{ code: 'USERNAME_INVALID_CONTAINS', message: 'Username cannot contain "discord" or "clyde"' }] };
  }
  const embeds = (body.embeds ?? []) as DiscordEmbedJson[];
  if (embeds.length > 10) errors.embeds = tooLong(10);
  let total = 0;
  embeds.forEach((embed, i) => {
    const e: Record<string, unknown> = {};
    if ((embed.title?.length ?? 0) > 256) e.title = tooLong(256);
    if ((embed.description?.length ?? 0) > 4096) e.description = tooLong(4096);
    if ((embed.footer?.text?.length ?? 0) > 2048) e.footer = { text: tooLong(2048) };
    if ((embed.author?.name?.length ?? 0) > 256) e.author = { name: tooLong(256) };
    if ((embed.fields?.length ?? 0) > 25) e.fields = tooLong(25);
    total += (embed.title?.length ?? 0) + (embed.description?.length ?? 0) + (embed.footer?.text?.length ?? 0) +
      (embed.author?.name?.length ?? 0) + (embed.fields ?? []).reduce((n, f) => n + f.name.length + f.value.length, 0);
    if (Object.keys(e).length > 0) errors[`embeds.${i}`] = e;
  });
  if (total > 6000) errors.embeds = { _errors: [{ code: 'MAX_EMBED_SIZE_EXCEEDED', message: 'Embed size exceeds maximum size of 6000' }] };
  return Object.keys(errors).length > 0 ? errors : undefined;
}

/** Who `content` would ping under `allowed_mentions` (embeds never ping). */
function pingsOf(body: Record<string, unknown>): string[] {
  const content = typeof body.content === 'string' ? body.content : '';
  const allowed = body.allowed_mentions as { parse?: string[] } | undefined;
  const parse = new Set(allowed ? (allowed.parse ?? []) : ['everyone', 'users', 'roles']);
  const out: string[] = [];
  for (const m of content.matchAll(/@everyone|@here|<@!?\d+>|<@&\d+>/g)) {
    const kind = m[0].startsWith('<@&') ? 'roles' : m[0].startsWith('<@') ? 'users' : 'everyone';
    if (parse.has(kind)) out.push(m[0]);
  }
  return out;
}

export async function startDiscordFake(options: DiscordFakeOptions = {}): Promise<DiscordFake> {
  const limit = options.bucketLimit ?? 5;
  const windowMs = options.bucketWindowMs ?? 2000;
  const sendRetryAfter = options.retryAfterHeader ?? true;
  const threads = new Map<string, DiscordThread>();
  let threadCounter = 0;
  let windowStart = 0;
  let used = 0;
  let forced: { count: number; retryAfter: number; global: boolean } = { count: 0, retryAfter: 0, global: false };
  const fake = {
    messages: [] as DiscordMessage[],
    refused: [] as Array<{ status: number; body: Record<string, unknown> }>,
    rateLimited: 0,
    pings: [] as string[],
  };

  const server = createServer((req, res) => {
    const now = Date.now();
    readBody(req).then((raw) => {
      const path = (req.url ?? '').split('?')[0];
      const query = new URLSearchParams((req.url ?? '').split('?')[1] ?? '');
      const wait = query.get('wait') === 'true';
      const threadId = query.get('thread_id') ?? undefined;
      const json = (status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): void => {
        if (status >= 400 && status !== 429) fake.refused.push({ status, body });
        res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
      };
      if (req.method !== 'POST' || path !== WEBHOOK_PATH) return json(404, { message: 'Unknown Webhook', code: 10015 });
      if (now >= windowStart + windowMs) {
        windowStart = now;
        used = 0;
      }
      const resetAfter = (windowStart + windowMs - now) / 1000;
      const bucketHeaders = (remaining: number): Record<string, string> => ({
        'x-ratelimit-limit': String(limit),
        'x-ratelimit-remaining': String(remaining),
        'x-ratelimit-reset': ((windowStart + windowMs) / 1000).toFixed(3),
        'x-ratelimit-reset-after': resetAfter.toFixed(3),
        'x-ratelimit-bucket': 'fakebucket0001',
      });
      if (forced.count > 0 || used >= limit) {
        const retryAfter = forced.count > 0 ? forced.retryAfter : resetAfter;
        const global = forced.count > 0 && forced.global;
        if (forced.count > 0) forced.count -= 1;
        fake.rateLimited += 1;
        const headers: Record<string, string> = { ...bucketHeaders(0), 'x-ratelimit-scope': global ? 'global' : 'user' };
        if (global) headers['x-ratelimit-global'] = 'true';
        if (sendRetryAfter) headers['retry-after'] = String(Math.ceil(retryAfter));
        return json(429, { message: 'You are being rate limited.', retry_after: Number(retryAfter.toFixed(3)), global }, headers);
      }
      used += 1;
      const headers = bucketHeaders(limit - used);
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
        if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Error('not an object');
      } catch {
        return json(400, { message: 'The request body contains invalid JSON.', code: 50109 }, headers);
      }
      const embeds = (body.embeds ?? []) as DiscordEmbedJson[];
      if (!body.content && embeds.length === 0) return json(400, { message: 'Cannot send an empty message', code: 50006 }, headers);
      const errors = formErrors(body);
      if (typeof body.thread_name === 'string' && (body.thread_name.length < 1 || body.thread_name.length > 100)) {
        return json(400, { message: 'Invalid Form Body', code: 50035, errors: { thread_name: tooLong(100) } }, headers);
      }
      if (errors) return json(400, { message: 'Invalid Form Body', code: 50035, errors }, headers);
      let thread: DiscordThread | undefined;
      if (body.thread_name !== undefined) {
        if (!options.forum) return json(400, { message: 'Webhooks can only create threads in forum channels', code: 220003 }, headers);
        if (threadId) return json(400, { message: 'Invalid Form Body', code: 50035, errors: { thread_name: { _errors: [{ code: 'THREAD_NAME_AND_ID', message: 'thread_name and thread_id are exclusive' }] } } }, headers);
        threadCounter += 1;
        thread = { id: String(900000000000000000n + BigInt(threadCounter)), name: String(body.thread_name), archived: false, deleted: false };
        threads.set(thread.id, thread);
      } else if (threadId) {
        thread = threads.get(threadId);
        if (!thread || thread.deleted) return json(400, { message: 'Unknown Channel', code: 10003 }, headers);
        thread.archived = false;
      } else if (options.forum) {
        return json(400, { message: 'Webhooks posted to forum channels must have a thread_name or thread_id', code: 220001 }, headers);
      }
      fake.pings.push(...pingsOf(body));
      const message: DiscordMessage = {
        ...(thread ? { thread: thread.id } : {}),
        ...(typeof body.content === 'string' ? { content: body.content } : {}),
        ...(typeof body.username === 'string' ? { username: body.username } : {}),
        embeds,
        ...(body.allowed_mentions ? { allowed_mentions: body.allowed_mentions as { parse?: string[] } } : {}),
        receivedAt: now,
      };
      fake.messages.push(message);
      if (wait) return json(200, { id: String(fake.messages.length), channel_id: thread?.id ?? '112233445566778800', ...body }, headers);
      res.writeHead(204, headers).end();
    }, () => res.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(fake, {
    url,
    webhookUrl: `${url}${WEBHOOK_PATH}`,
    threads,
    archiveThread(id: string) {
      threads.get(id)!.archived = true;
    },
    deleteThread(id: string) {
      threads.get(id)!.deleted = true;
    },
    forceRateLimit(count: number, retryAfterSec: number, global = false) {
      forced = { count, retryAfter: retryAfterSec, global };
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  });
}
