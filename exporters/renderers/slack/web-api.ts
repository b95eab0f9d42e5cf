/**
 * The Slack Web API sender: carries out a plan (plan.ts) step by step, with the bot token, and
 * keeps the session map up to date after every step, so a plan that comes again (a retry after
 * a rate limit or an outage, a replay, the same events after a restart) resumes where it
 * stopped and never posts a step twice.
 *
 * Rules it follows (all from rules.ts): each method within its rate-limit tier (a sliding
 * minute), chat.postMessage at most one per channel per 1.1 s, read methods form-encoded,
 * write methods as JSON. A 429 (or `ratelimited`) goes back to the delivery queue with its
 * Retry-After; no answer, a 5xx or Slack's `internal_error` also go back (retried later).
 *
 * Lost answers: a post whose answer never came may exist in Slack. Every post carries message
 * metadata naming its step key; before posting a step again that was sent without an answer, the
 * sender reads the channel (conversations.history) or the thread (conversations.replies) since
 * that attempt and takes the post it finds. Without `channels:history` that look-up is refused:
 * then the step is posted again (it may show twice) and a WARN says which scope prevents it.
 *
 * Places: a session's channel (channel layout) that was archived or deleted is replaced by a new
 * one (`<name>-2`) and the post is made there, reported once per session; a thread parent that
 * is gone starts a new thread; `not_in_channel` joins the channel once. The configured channel
 * of the thread layout being archived or deleted stops the sink (every session posts there).
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { OutgoingRequest, SendResult, Sender } from '../../delivery/sender.ts';
import type { SessionStore } from '../session-store.ts';
import type { SlackPlan, SlackStep } from './plan.ts';
import type { SlackMessage } from './present.ts';
import { FORM_METHODS, METHOD_SCOPES, METHOD_TIER, POST_INTERVAL_MS, type SlackMethod, TIER_PER_MINUTE, classifySlackError, mayHaveSucceeded, slackChannelName } from './rules.ts';
import { type SlackSessionRecord, applyMarks, freshRecord, isDone, markDone } from './session-record.ts';

export interface SlackWebApiOptions {
  token: string;
  layout: 'thread' | 'channel';
  /** Thread layout: the channel all session threads go to (an id such as C0123456789, or #name). */
  channel?: string;
  /** Channel layout: names are `<prefix><session name>`, folded to Slack's rules. */
  channelPrefix?: string;
  /** Channel layout: create private channels. */
  private?: boolean;
  /** Channel layout: user ids invited into each new channel. */
  invite?: readonly string[];
  sessions: SessionStore<SlackSessionRecord>;
  /** The HTTP transport (time-outs, connection pool). */
  http: Sender;
  logger: Logger;
  now?: () => number;
}

/** The metadata event type every post carries (how a lost answer's post is found again). */
export const POST_METADATA_TYPE = 'cao_events_post';

type Answer =
  | { kind: 'ok'; body: Record<string, unknown> }
  | { kind: 'error'; error: string; needed?: string }
  | { kind: 'stop'; result: SendResult };

interface Place {
  channel: string;
  thread?: string;
}

const OK: SendResult = { status: 200, headers: {}, body: '{"ok":true}' };

function errorResult(method: SlackMethod, error: string): SendResult {
  return { status: 200, headers: {}, body: JSON.stringify({ ok: false, error, method }) };
}

export class SlackWebApiSender implements Sender {
  readonly #o: SlackWebApiOptions;
  readonly #now: () => number;
  readonly #calls = new Map<SlackMethod, number[]>();
  readonly #nextPost = new Map<string, number>();
  readonly #warned = new Set<string>();
  /** Thread layout: the configured channel's id, once Slack named it. */
  #channelId: string | undefined;

  constructor(options: SlackWebApiOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  async close(): Promise<void> {
    await this.#o.http.close();
  }

  async send(request: OutgoingRequest, signal: AbortSignal): Promise<SendResult> {
    let plan: SlackPlan;
    try {
      plan = JSON.parse(request.body) as SlackPlan;
      if (typeof plan.session !== 'string' || !Array.isArray(plan.steps)) throw new Error('no plan');
    } catch {
      return { status: 400, headers: {}, body: '', error: 'not a Slack plan' };
    }
    const base = request.url.endsWith('/') ? request.url : `${request.url}/`;
    const { sessions } = this.#o;
    let record = sessions.get(plan.session);
    if (!record) {
      record = freshRecord(this.#o.layout, this.#now());
      sessions.set(plan.session, record);
    }
    try {
      for (const step of plan.steps) {
        const first = step.op === 'place' || !isDone(record, step.key);
        const stop = await this.#step(base, plan.session, record, step, signal);
        // what the step changes in the map, once Slack did it (and only the first time)
        if (!stop && first) applyMarks(record, step.marks);
        record.updatedAt = this.#now();
        this.#save();
        if (stop) return stop;
      }
    } catch (err) {
      this.#save();
      if (signal.aborted) return { headers: {}, body: '', error: 'aborted' };
      throw err;
    }
    return OK;
  }

  /** Writes the session map; a failure is logged by the store (the sink reported it to our logger). */
  #save(): void {
    this.#o.sessions.save();
  }

  #warnOnce(key: string, fields: Record<string, unknown>, message: string): void {
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    this.#o.logger.warn(fields, message);
  }

  /** Waits as Slack's documented limits ask: the method's tier, and one post per channel per second. */
  async #pace(method: SlackMethod, channel: string | undefined, signal: AbortSignal): Promise<void> {
    const tier = METHOD_TIER[method];
    if (tier === 'post') {
      const key = channel ?? '';
      const wait = (this.#nextPost.get(key) ?? 0) - this.#now();
      if (wait > 0) await delay(wait, undefined, { signal });
      this.#nextPost.set(key, this.#now() + POST_INTERVAL_MS);
      return;
    }
    const perMinute = TIER_PER_MINUTE[tier];
    const calls = (this.#calls.get(method) ?? []).filter((t) => t > this.#now() - 60_000);
    if (calls.length >= perMinute) {
      const wait = calls[0]! + 60_000 - this.#now();
      if (wait > 0) await delay(wait, undefined, { signal });
    }
    calls.push(this.#now());
    this.#calls.set(method, calls.filter((t) => t > this.#now() - 60_000));
  }

  async #call(base: string, method: SlackMethod, args: Record<string, unknown>, signal: AbortSignal): Promise<Answer> {
    await this.#pace(method, method === 'chat.postMessage' ? String(args.channel) : undefined, signal);
    const form = FORM_METHODS.has(method);
    const body = form
      ? new URLSearchParams(Object.entries(args).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)])).toString()
      : JSON.stringify(args);
    const result = await this.#o.http.send(
      {
        url: `${base}${method}`,
        headers: {
          authorization: `Bearer ${this.#o.token}`,
          'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json; charset=utf-8',
        },
        body,
        webhookId: '',
        readBody: true,
      },
      signal,
    );
    if (result.status === undefined || result.status >= 500) return { kind: 'stop', result };
    if (result.status === 429) {
      return { kind: 'stop', result: { status: 429, headers: { 'retry-after': result.headers['retry-after'] ?? '1' }, body: JSON.stringify({ ok: false, error: 'ratelimited', method }) } };
    }
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(result.body) as Record<string, unknown>;
    } catch {
      return { kind: 'stop', result: { status: result.status === 200 ? 502 : result.status, headers: {}, body: '', error: `Slack answered HTTP ${result.status} without JSON` } };
    }
    if (parsed.ok === true) return { kind: 'ok', body: parsed };
    const error = typeof parsed.error === 'string' && /^[a-z_]{2,64}$/.test(parsed.error) ? parsed.error : 'unknown_error';
    return { kind: 'error', error, ...(typeof parsed.needed === 'string' ? { needed: parsed.needed } : {}) };
  }

  /** Runs one step. Returns what to tell the queue when the plan cannot go on, else undefined. */
  async #step(base: string, session: string, record: SlackSessionRecord, step: SlackStep, signal: AbortSignal): Promise<SendResult | undefined> {
    switch (step.op) {
      case 'place':
        return this.#ensurePlace(base, session, record, step, signal);
      case 'post':
        if (isDone(record, step.key)) return undefined;
        return this.#post(base, session, record, step.key, step.covers, step.message, step.under, signal);
      case 'update':
        return this.#update(base, session, record, step, signal);
      case 'react':
        return this.#react(base, session, record, step, signal);
      case 'topic': {
        if (isDone(record, step.key) || !record.channel) return undefined;
        const answer = await this.#call(base, 'conversations.setTopic', { channel: record.channel, topic: step.topic }, signal);
        if (answer.kind === 'stop') return answer.result;
        if (answer.kind === 'error') this.#optionalFailed('conversations.setTopic', answer);
        markDone(record, [step.key]);
        return undefined;
      }
      case 'archive': {
        if (isDone(record, step.key) || !record.channel) return undefined;
        const answer = await this.#call(base, 'conversations.archive', { channel: record.channel }, signal);
        if (answer.kind === 'stop') return answer.result;
        if (answer.kind === 'ok' || answer.error === 'already_archived') record.archived = true;
        else this.#optionalFailed('conversations.archive', answer);
        markDone(record, [step.key]);
        return undefined;
      }
    }
  }

  /** A failed call the sink can do without (topic, invite, archive, a reaction): one WARN per kind of failure. */
  #optionalFailed(method: SlackMethod, answer: { error: string; needed?: string }): void {
    if (classifySlackError(method, answer.error) === 'ignore') return;
    const scope = answer.error === 'missing_scope' ? ` (the app needs the scope ${answer.needed ?? METHOD_SCOPES[method]})` : '';
    this.#warnOnce(`${method}:${answer.error}`, { method, error: answer.error, ...(answer.needed ? { needed: answer.needed } : {}) }, `slack: ${method} failed: ${answer.error}${scope}; posting goes on without it`);
  }

  #placeOf(record: SlackSessionRecord, under?: string): Place | undefined {
    if (!record.channel) return undefined;
    if (this.#o.layout === 'thread') return record.thread ? { channel: record.channel, thread: record.thread } : undefined;
    const thread = under ? record.posts[under] : undefined;
    return { channel: record.channel, ...(thread ? { thread } : {}) };
  }

  async #ensurePlace(base: string, session: string, record: SlackSessionRecord, step: Extract<SlackStep, { op: 'place' }>, signal: AbortSignal): Promise<SendResult | undefined> {
    if (this.#o.layout === 'thread') {
      if (record.thread && record.channel) return undefined;
      const parent = step.parent ?? { text: session, blocks: [] };
      record.channel ??= this.#channelId ?? this.#o.channel;
      return this.#post(base, session, record, 'root', [], parent, undefined, signal);
    }
    if (record.channel && !(record.lost ?? []).includes(record.channel)) return undefined;
    return this.#createChannel(base, session, record, step.topic, signal);
  }

  async #createChannel(base: string, session: string, record: SlackSessionRecord, topic: string | undefined, signal: AbortSignal): Promise<SendResult | undefined> {
    let generation = record.generation ?? 1;
    for (let tries = 0; tries < 20; tries++, generation++) {
      const name = slackChannelName(session, this.#o.channelPrefix ?? '', generation);
      const answer = await this.#call(base, 'conversations.create', { name, is_private: this.#o.private === true }, signal);
      if (answer.kind === 'stop') return answer.result;
      if (answer.kind === 'ok') {
        const channel = answer.body.channel as { id?: unknown } | undefined;
        if (typeof channel?.id !== 'string') return errorResult('conversations.create', 'invalid_response');
        this.#adoptChannel(record, channel.id, name, generation);
        break;
      }
      if (answer.error !== 'name_taken') return errorResult('conversations.create', answer.error);
      // Ours from before (a create whose answer was lost, a map that was lost)? Only a channel
      // the app is already a member of is taken over; anyone else's gets a neighbour: `<name>-2`.
      const found = await this.#findOwnChannel(base, name, signal);
      if (found && typeof found === 'object') return found;
      if (found) {
        this.#adoptChannel(record, found, name, generation);
        return this.#setUpChannel(base, record, topic, signal);
      }
    }
    if (!record.channel || (record.lost ?? []).includes(record.channel)) return errorResult('conversations.create', 'name_taken');
    return this.#setUpChannel(base, record, topic, signal);
  }

  /** The session's channel from now on, saved at once (a crash after this must not create a second one). */
  #adoptChannel(record: SlackSessionRecord, id: string, name: string, generation: number): void {
    record.channel = id;
    record.channelName = name;
    record.generation = generation;
    this.#save();
  }

  async #setUpChannel(base: string, record: SlackSessionRecord, topic: string | undefined, signal: AbortSignal): Promise<SendResult | undefined> {
    const channel = record.channel!;
    if (topic) {
      const answer = await this.#call(base, 'conversations.setTopic', { channel, topic }, signal);
      if (answer.kind === 'stop') return answer.result;
      if (answer.kind === 'error') this.#optionalFailed('conversations.setTopic', answer);
    }
    const users = this.#o.invite ?? [];
    if (users.length > 0) {
      const answer = await this.#call(base, 'conversations.invite', { channel, users: users.join(','), force: true }, signal);
      if (answer.kind === 'stop') return answer.result;
      if (answer.kind === 'error') this.#optionalFailed('conversations.invite', answer);
      else {
        // with force, Slack invites whom it can and lists the others
        const errors = (answer.body.errors ?? []) as Array<{ error?: unknown }>;
        for (const e of errors) if (typeof e.error === 'string') this.#optionalFailed('conversations.invite', { error: e.error });
      }
    }
    return undefined;
  }

  /** A channel of that name the app is a member of: its id; `undefined` when there is none (or no `channels:read`). */
  async #findOwnChannel(base: string, name: string, signal: AbortSignal): Promise<string | SendResult | undefined> {
    let cursor: string | undefined;
    for (let page = 0; page < 20; page++) {
      const answer = await this.#call(
        base,
        'conversations.list',
        { exclude_archived: 'true', types: this.#o.private ? 'private_channel' : 'public_channel', limit: '1000', ...(cursor ? { cursor } : {}) },
        signal,
      );
      if (answer.kind === 'stop') return answer.result;
      if (answer.kind === 'error') {
        this.#optionalFailed('conversations.list', answer);
        return undefined;
      }
      const channels = (answer.body.channels ?? []) as Array<{ id?: unknown; name?: unknown; is_member?: unknown }>;
      const hit = channels.find((c) => c.name === name && c.is_member === true && typeof c.id === 'string');
      if (hit) return hit.id as string;
      cursor = ((answer.body.response_metadata as { next_cursor?: unknown } | undefined)?.next_cursor as string | undefined) || undefined;
      if (!cursor) return undefined;
    }
    return undefined;
  }

  /** The session's place was archived, deleted or lost its thread: find it a new one, once per call. */
  async #recoverPlace(base: string, session: string, record: SlackSessionRecord, error: string, signal: AbortSignal): Promise<SendResult | undefined> {
    const channel = record.channel;
    if (error === 'not_in_channel' && channel) {
      const join = await this.#call(base, 'conversations.join', { channel }, signal);
      if (join.kind === 'stop') return join.result;
      if (join.kind === 'ok' || join.error === 'already_in_channel') return undefined;
      this.#o.logger.error({ method: 'conversations.join', error: join.error }, `slack: the app is not in the channel and cannot join it (${join.error}); invite it with /invite @<app name>`);
      return errorResult('chat.postMessage', 'not_in_channel');
    }
    if (this.#o.layout === 'thread') {
      if (error === 'thread_not_found') {
        this.#warnOnce(`thread:${session}`, { session }, `slack: the thread of session ${session} is gone; it continues in a new thread`);
        delete record.thread;
        delete record.posts.root;
        return this.#post(base, session, record, 'root', [], { text: `CAO session ${session} (continued)`, blocks: [{ type: 'header', text: { type: 'plain_text', text: session.slice(0, 150) } }, { type: 'context', elements: [{ type: 'mrkdwn', text: 'CAO session  ·  continued: its first thread is gone' }] }] }, undefined, signal);
      }
      return errorResult('chat.postMessage', error); // the configured channel itself: nothing to recover
    }
    // channel layout: a new channel for the session
    if (channel) record.lost = [...new Set([...(record.lost ?? []), channel])];
    const old = record.channelName;
    delete record.channel;
    record.generation = (record.generation ?? 1) + 1;
    const stop = await this.#createChannel(base, session, record, undefined, signal);
    if (stop) return stop;
    this.#o.logger.warn({ session, error, channel: record.channelName }, `slack: the channel of session ${session}${old ? ` (#${old})` : ''} is ${error === 'is_archived' ? 'archived' : 'gone'}; it continues in #${record.channelName}`);
    return undefined;
  }

  async #post(
    base: string,
    session: string,
    record: SlackSessionRecord,
    key: string,
    covers: readonly string[],
    message: SlackMessage,
    under: string | undefined,
    signal: AbortSignal,
    recovered = false,
  ): Promise<SendResult | undefined> {
    const isRoot = key === 'root';
    const place: Place | undefined = isRoot ? (record.channel ? { channel: record.channel } : undefined) : this.#placeOf(record, under);
    if (!place) return errorResult('chat.postMessage', 'channel_not_found');
    const attempted = record.attempts[key];
    if (attempted !== undefined) {
      const found = await this.#findPosted(base, place, attempted, key, signal);
      if (found && typeof found === 'object') return found;
      if (typeof found === 'string') {
        this.#posted(record, key, covers, found, isRoot);
        return undefined;
      }
    }
    record.attempts[key] = this.#now();
    this.#save();
    const answer = await this.#call(
      base,
      'chat.postMessage',
      {
        channel: place.channel,
        text: message.text,
        blocks: message.blocks,
        unfurl_links: false,
        unfurl_media: false,
        ...(place.thread ? { thread_ts: place.thread } : {}),
        metadata: { event_type: POST_METADATA_TYPE, event_payload: { key, session } },
      },
      signal,
    );
    if (answer.kind === 'stop') {
      if (!mayHaveSucceeded(answer.result.status, undefined)) delete record.attempts[key];
      return answer.result;
    }
    if (answer.kind === 'ok') {
      const ts = answer.body.ts;
      if (typeof ts !== 'string') return errorResult('chat.postMessage', 'invalid_response');
      if (isRoot && typeof answer.body.channel === 'string') {
        record.channel = answer.body.channel;
        if (this.#o.layout === 'thread') this.#channelId = answer.body.channel;
      }
      this.#posted(record, key, covers, ts, isRoot);
      return undefined;
    }
    if (!mayHaveSucceeded(200, answer.error)) delete record.attempts[key];
    if (classifySlackError('chat.postMessage', answer.error) === 'place' && !recovered) {
      const stop = await this.#recoverPlace(base, session, record, answer.error, signal);
      if (stop) return stop;
      if (isRoot && record.thread) return undefined; // recovering made the new parent
      return this.#post(base, session, record, key, covers, message, under, signal, true);
    }
    return errorResult('chat.postMessage', answer.error);
  }

  #posted(record: SlackSessionRecord, key: string, covers: readonly string[], ts: string, isRoot: boolean): void {
    record.posts[key] = ts;
    if (isRoot) record.thread = ts;
    delete record.attempts[key];
    markDone(record, [key, ...covers]);
  }

  /** The ts of the post carrying `key` sent since `sinceMs`; undefined when it is not there (or cannot be looked for). */
  async #findPosted(base: string, place: Place, sinceMs: number, key: string, signal: AbortSignal): Promise<string | SendResult | undefined> {
    const method: SlackMethod = place.thread ? 'conversations.replies' : 'conversations.history';
    const oldest = ((sinceMs - 10_000) / 1000).toFixed(6);
    const answer = await this.#call(
      base,
      method,
      { channel: place.channel, ...(place.thread ? { ts: place.thread } : {}), oldest, inclusive: 'true', include_all_metadata: 'true', limit: '200' },
      signal,
    );
    if (answer.kind === 'stop') return answer.result;
    if (answer.kind === 'error') {
      this.#warnOnce(
        `lookup:${answer.error}`,
        { method, error: answer.error },
        `slack: cannot check whether a post whose answer was lost exists (${method}: ${answer.error}${answer.error === 'missing_scope' ? `; grant ${answer.needed ?? METHOD_SCOPES[method]}` : ''}); it is posted again and may show twice`,
      );
      return undefined;
    }
    const messages = (answer.body.messages ?? []) as Array<{ ts?: unknown; metadata?: { event_type?: unknown; event_payload?: { key?: unknown } } }>;
    const hit = messages.find((m) => m.metadata?.event_type === POST_METADATA_TYPE && m.metadata.event_payload?.key === key && typeof m.ts === 'string');
    return hit ? (hit.ts as string) : undefined;
  }

  async #update(base: string, session: string, record: SlackSessionRecord, step: Extract<SlackStep, { op: 'update' }>, signal: AbortSignal): Promise<SendResult | undefined> {
    if (isDone(record, step.key)) return undefined;
    const ts = record.posts[step.target];
    const channel = record.channel;
    if (!ts || !channel) {
      if (step.target === 'root') {
        markDone(record, [step.key]);
        return undefined;
      }
      return this.#post(base, session, record, step.key, [], step.message, undefined, signal);
    }
    const answer = await this.#call(base, 'chat.update', { channel, ts, text: step.message.text, blocks: step.message.blocks }, signal);
    if (answer.kind === 'stop') return answer.result;
    if (answer.kind === 'ok') {
      markDone(record, [step.key]);
      return undefined;
    }
    if (answer.error === 'message_not_found' && step.target !== 'root') {
      return this.#post(base, session, record, step.key, [], step.message, undefined, signal);
    }
    const kind = classifySlackError('chat.update', answer.error);
    if (kind === 'retry' || kind === 'gone') return errorResult('chat.update', answer.error);
    // cant_update_message, edit_window_closed, a place that is gone: the edit is given up, not the session
    this.#optionalFailed('chat.update', answer);
    markDone(record, [step.key]);
    return undefined;
  }

  async #react(base: string, session: string, record: SlackSessionRecord, step: Extract<SlackStep, { op: 'react' }>, signal: AbortSignal): Promise<SendResult | undefined> {
    if (isDone(record, step.key)) return undefined;
    const ts = record.posts[step.target];
    const channel = record.channel;
    if (!ts || !channel) return this.#post(base, session, record, step.key, [], step.fallback, undefined, signal);
    const answer = await this.#call(base, 'reactions.add', { channel, timestamp: ts, name: step.name }, signal);
    if (answer.kind === 'stop') return answer.result;
    if (answer.kind === 'ok' || answer.error === 'already_reacted') {
      markDone(record, [step.key]);
      return undefined;
    }
    if (answer.error === 'missing_scope') {
      // without reactions:write the status goes into the post itself
      this.#optionalFailed('reactions.add', answer);
      return this.#update(base, session, record, { op: 'update', key: step.key, target: step.target, message: step.fallback }, signal);
    }
    if (answer.error === 'message_not_found') return this.#post(base, session, record, step.key, [], step.fallback, undefined, signal);
    const kind = classifySlackError('reactions.add', answer.error);
    if (kind === 'retry' || kind === 'gone') return errorResult('reactions.add', answer.error);
    this.#optionalFailed('reactions.add', answer);
    markDone(record, [step.key]);
    return undefined;
  }
}
