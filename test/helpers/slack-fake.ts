/**
 * A stand-in for Slack, on 127.0.0.1, because the real service is unreachable from here (and
 * tests never leave loopback). It implements the documented request/response behaviour the
 * `slack` transform relies on, independently of the transform's code:
 *
 * Incoming webhooks (POST /services/T…/B…/<secret>): a JSON body with `text` and/or `blocks`;
 * answers 200 `ok`; 400 `invalid_payload` (not JSON), `no_text`, `too_many_blocks` (> 50),
 * `invalid_blocks` (an unknown block type, a section text over 3000 characters, a header over
 * 150, a context with more than 10 elements), `msg_too_long` (text over 40,000); 404
 * `no_service` (unknown webhook); and at most one message per second per webhook: beyond it
 * 429 with `Retry-After: 1`.
 *
 * Web API chat.postMessage (POST /api/chat.postMessage): `Authorization: Bearer <token>`;
 * always HTTP 200 with `{ok:false, error}` on failure (`not_authed`, `invalid_auth`,
 * `channel_not_found`, `no_text`, `invalid_blocks`, and `thread_not_found` — the fake's name —
 * for a thread_ts that is not a parent message of the channel), `{ok:true, channel, ts,
 * message}` on success; one message per second per channel, beyond it HTTP 429 with
 * `Retry-After: 1` and `{ok:false, error:"ratelimited"}`.
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

export interface SlackFakeOptions {
  /** The bot token chat.postMessage accepts. */
  token?: string;
  /** Channels: id → name. */
  channels?: Record<string, string>;
  /** Minimum spacing of accepted messages per webhook / per channel (Slack: about 1 s). */
  minIntervalMs?: number;
}

export interface SlackFake {
  url: string;
  webhookUrl: string;
  apiUrl: string;
  /** Accepted incoming-webhook messages, in order. */
  messages: SlackWebhookMessage[];
  /** Accepted chat.postMessage calls, in order. */
  posts: SlackPost[];
  /** Requests refused with 4xx or ok:false: status and Slack error code. */
  refused: Array<{ status: number; error: string }>;
  /** 429s answered. */
  rateLimited: number;
  /** The next `count` requests are answered 429 whatever the rate. */
  forceRateLimit(count: number): void;
  close(): Promise<void>;
}

const WEBHOOK_PATH = '/services/T0CAOEVTS/B0FAKEHOOK/fakeWebhookSecret0123';

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

export async function startSlackFake(options: SlackFakeOptions = {}): Promise<SlackFake> {
  const token = options.token ?? 'xoxb-fake-bot-token';
  const channels = options.channels ?? { C0CAOEVENTS: 'cao-events' };
  const minInterval = options.minIntervalMs ?? 1000;
  const lastAccepted = new Map<string, number>();
  const parents = new Map<string, Set<string>>(); // channel → parent message ts
  let tsCounter = 0;
  let forced = 0;
  const fake = {
    messages: [] as SlackWebhookMessage[],
    posts: [] as SlackPost[],
    refused: [] as Array<{ status: number; error: string }>,
    rateLimited: 0,
  };

  function rateLimited(key: string, now: number): boolean {
    if (forced > 0) {
      forced -= 1;
      return true;
    }
    const last = lastAccepted.get(key);
    return last !== undefined && now - last < minInterval;
  }

  function webhook(req: IncomingMessage, res: ServerResponse, raw: string, now: number): void {
    const answer = (status: number, text: string): void => {
      if (status >= 400 && status !== 429) fake.refused.push({ status, error: text });
      res.writeHead(status, { 'content-type': 'text/html' }).end(text);
    };
    if (req.url !== WEBHOOK_PATH) return answer(404, 'no_service');
    if (rateLimited(WEBHOOK_PATH, now)) {
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

  function postMessage(req: IncomingMessage, res: ServerResponse, raw: string, now: number): void {
    const reply = (status: number, payload: Record<string, unknown>, headers: Record<string, string> = {}): void => {
      if (payload.ok === false && status !== 429) fake.refused.push({ status, error: String(payload.error) });
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers }).end(JSON.stringify(payload));
    };
    const auth = req.headers.authorization;
    if (!auth) return reply(200, { ok: false, error: 'not_authed' });
    if (auth !== `Bearer ${token}`) return reply(200, { ok: false, error: 'invalid_auth' });
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return reply(200, { ok: false, error: 'invalid_json' });
    }
    const named = typeof body.channel === 'string' ? body.channel.replace(/^#/, '') : '';
    const channel = Object.keys(channels).find((id) => id === named || channels[id] === named);
    if (!channel) return reply(200, { ok: false, error: 'channel_not_found' });
    if (rateLimited(channel, now)) {
      fake.rateLimited += 1;
      return reply(429, { ok: false, error: 'ratelimited' }, { 'retry-after': '1' });
    }
    if (body.text === undefined && body.blocks === undefined) return reply(200, { ok: false, error: 'no_text' });
    if (typeof body.text === 'string' && body.text.length > 40_000) return reply(200, { ok: false, error: 'msg_too_long' });
    const blockError = blocksError(body.blocks);
    if (blockError) return reply(200, { ok: false, error: blockError });
    const threadTs = typeof body.thread_ts === 'string' ? body.thread_ts : undefined;
    const channelParents = parents.get(channel) ?? new Set<string>();
    parents.set(channel, channelParents);
    if (threadTs !== undefined && !channelParents.has(threadTs)) return reply(200, { ok: false, error: 'thread_not_found' });
    tsCounter += 1;
    const ts = `${Math.floor(now / 1000)}.${String(tsCounter).padStart(6, '0')}`;
    if (threadTs === undefined) channelParents.add(ts);
    lastAccepted.set(channel, now);
    fake.posts.push({
      channel, ts, ...(threadTs ? { thread_ts: threadTs } : {}), text: body.text as string | undefined,
      blocks: body.blocks as SlackBlockJson[] | undefined, receivedAt: now, body, headers: req.headers,
    });
    reply(200, { ok: true, channel, ts, message: { text: body.text, ts, ...(threadTs ? { thread_ts: threadTs } : {}) } });
  }

  const server = createServer((req, res) => {
    const now = Date.now();
    readBody(req).then((raw) => {
      if (req.method !== 'POST') {
        res.writeHead(405).end();
      } else if (req.url === '/api/chat.postMessage') {
        postMessage(req, res, raw, now);
      } else {
        webhook(req, res, raw, now);
      }
    }, () => res.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(fake, {
    url,
    webhookUrl: `${url}${WEBHOOK_PATH}`,
    apiUrl: `${url}/api/chat.postMessage`,
    forceRateLimit(count: number) {
      forced += count;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  });
}

/** All text of a message's blocks, joined (for assertions). */
export function blockText(message: { blocks?: SlackBlockJson[] }): string {
  return (message.blocks ?? [])
    .map((b) => (b.text ? b.text.text : (b.elements ?? []).map((e) => e.text).join(' ')))
    .join('\n');
}
