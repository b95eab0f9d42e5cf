/**
 * The built-in `slack` sink: each CAO session reads as a conversation a person can follow.
 *
 * - Incoming webhook (`url`: a hooks.slack.com webhook): one post per agent message (lifecycle
 *   lines share a post), into the webhook's channel. A webhook cannot edit, so a message's later
 *   phases are hidden (`laterPhases: hide`) or posted (`post`).
 * - Web API (`slack.token`, a bot token), two layouts:
 *   - `thread`: one thread per session in the configured channel; the parent names the session
 *     and, once it ended, sums it up;
 *   - `channel`: one channel per session, named after the session within Slack's naming rules,
 *     its topic the session's summary, optional invitees, optionally archived when it ends.
 *   A message's later phases edit its post (default), add a reaction, reply quietly in its thread
 *   (channel layout), are posted, or hidden.
 *
 * The layers stay as everywhere: this renderer plans (conversation.ts → plan.ts) against the
 * session map (Slack's own state: places, posts, names), persisted next to the outbox so a
 * restart keeps posting into the same thread or channel; the Web API sender (web-api.ts) carries
 * plans out; the delivery queue orders, retries and keeps them. Slack's documented rules are in
 * slack/rules.ts.
 */
import { type ChatSinkParts, SessionStore } from './session-store.ts';
import { type ConversationOptions, type LaterPhases, planBatch } from './slack/conversation.ts';
import type { SlackPlan } from './slack/plan.ts';
import { METHOD_SCOPES, POST_INTERVAL_MS, SLACK_API_BASE, type SlackMethod, WEBHOOK_GONE, classifySlackError, slackErrorCode } from './slack/rules.ts';
import { type SlackSessionRecord, applyMarks, parseRecord } from './slack/session-record.ts';
import { SlackWebApiSender } from './slack/web-api.ts';
import { sessionOf } from './text.ts';
import type { CaoCloudEventLike, Renderer, RenderedRequest, ResponseVerdict, TransformResponse } from './types.ts';

export { SLACK_API_BASE, SLACK_LIMITS, slackChannelName, slackEscape } from './slack/rules.ts';

/** Kept for configurations written for the first Slack sink: a chat.postMessage URL is the API base. */
export const SLACK_WEB_API_URL = SLACK_API_BASE;

export const SLACK_LAYOUTS = ['thread', 'channel'] as const;
export type SlackWebLayout = (typeof SLACK_LAYOUTS)[number];

export interface SlackOptions {
  /** Bot token (xoxb-…): Web API mode. Without it: incoming-webhook mode. */
  token?: string;
  layout?: SlackWebLayout;
  /** Thread layout: the channel the session threads go to (an id such as C0123456789, or #name). */
  channel?: string;
  /** Channel layout: channel names are `<prefix><session name>`. */
  channelPrefix?: string;
  /** Channel layout: private channels. */
  private?: boolean;
  /** Channel layout: user ids invited into every new channel. */
  invite?: string[];
  /** Channel layout: set the channel topic (default true). */
  topic?: boolean;
  /** Channel layout: archive the channel when the session ends (default false). */
  archive?: boolean;
  /** How a message's later phases show (default: edit with the Web API, hide with a webhook). */
  laterPhases?: LaterPhases;
  /** Show orchestration types, phases, observers and exact times (default false). */
  details?: boolean;
  /** Where the session map is kept; undefined: memory only. */
  stateFile?: string;
  /** Sessions remembered at most (default 200; ended ones are forgotten first). */
  maxSessions?: number;
  /** For tests. */
  now?: () => number;
}

/** Web API mode: the sender carries plans out, around the sink's HTTP sender; a webhook's is the HTTP sender itself. */
export type SlackSinkParts = ChatSinkParts<SlackSessionRecord>;

export const SLACK_STATE_FORMAT = 'cao-events.slack-sessions';
/** Events in one plan at most. */
const PLAN_EVENTS = 20;

export function createSlackSink(options: SlackOptions = {}): SlackSinkParts {
  const webApi = options.token !== undefined;
  const layout: SlackWebLayout = options.layout ?? 'thread';
  if (webApi && layout === 'thread' && !options.channel) throw new Error('slack: the thread layout needs a channel');
  const laterPhases = options.laterPhases ?? (webApi ? 'edit' : 'hide');
  if (!webApi && !['post', 'hide'].includes(laterPhases)) throw new Error(`slack: an incoming webhook cannot ${laterPhases} (laterPhases: post or hide)`);
  if (webApi && layout === 'thread' && laterPhases === 'reply') throw new Error('slack: laterPhases: reply needs the channel layout (a reply in a thread has no thread of its own)');
  const now = options.now ?? Date.now;
  const sessions = new SessionStore<SlackSessionRecord>({
    path: options.stateFile,
    format: SLACK_STATE_FORMAT,
    parse: parseRecord,
    maxSessions: options.maxSessions,
  });
  const conversation: ConversationOptions = {
    layout: webApi ? layout : 'webhook',
    laterPhases,
    details: options.details === true,
    topic: options.topic !== false,
    archive: options.archive === true,
  };

  if (!webApi) {
    const renderer: Renderer = {
      name: 'slack (incoming webhook)',
      maxBatch: PLAN_EVENTS,
      minIntervalMs: POST_INTERVAL_MS,
      groupBy: sessionOf,
      encode(events) {
        const session = sessionOf(events[0]!);
        const planned = planBatch(session, events, sessions.get(session), conversation, now());
        const first = planned.steps.find((s) => s.op === 'post');
        if (!first || first.op !== 'post') {
          sessions.set(session, planned.record);
          sessions.save();
          return null;
        }
        // One post per request: the events up to the first post's last one travel with it.
        const firstIndex = planned.steps.indexOf(first);
        let consumed = 0;
        while (consumed < Math.min(events.length, planned.consumed) && planned.lastStepOf[consumed]! <= firstIndex) consumed += 1;
        return { body: { text: first.message.text, blocks: first.message.blocks, unfurl_links: false, unfurl_media: false }, consumed: Math.max(1, consumed) };
      },
      onResponse(response: TransformResponse, events): ResponseVerdict | undefined {
        const { status, body } = response;
        if (status >= 200 && status < 300) {
          // posted: what it showed is now shown (a restart will not show it again)
          const session = sessionOf(events[0]!);
          const planned = planBatch(session, events, sessions.get(session), conversation, now());
          for (const step of planned.steps) applyMarks(planned.record, step.marks);
          sessions.set(session, planned.record);
          sessions.save();
          return undefined;
        }
        if (status === 429 || status >= 500) return undefined;
        const code = slackErrorCode(body);
        const reason = `HTTP ${status}${code ? ` ${code}` : ''}`;
        return code && WEBHOOK_GONE.has(code) ? { outcome: 'gone', reason } : { reason };
      },
    };
    return { renderer, sessions, sender: (http, logger) => {
      sessions.reportTo(logger, 'slack');
      return http;
    } };
  }

  const renderer: Renderer = {
    name: `slack (Web API, ${layout} layout)`,
    maxBatch: PLAN_EVENTS,
    minIntervalMs: POST_INTERVAL_MS,
    groupBy: sessionOf,
    encode(events: readonly CaoCloudEventLike[]): RenderedRequest | null {
      const session = sessionOf(events[0]!);
      const planned = planBatch(session, events, sessions.get(session), conversation, now());
      sessions.set(session, planned.record);
      if (planned.steps.length === 0) {
        sessions.save();
        return null;
      }
      const plan: SlackPlan = { session, steps: planned.steps };
      return { body: plan, consumed: planned.consumed };
    },
    onResponse(response: TransformResponse): ResponseVerdict | undefined {
      const { status, body } = response;
      if (status === 429 || status >= 500) return undefined; // retried; Retry-After honoured
      if (status !== 200) return { reason: `HTTP ${status}` };
      let answer: { ok?: unknown; error?: unknown; method?: unknown };
      try {
        answer = JSON.parse(body) as typeof answer;
      } catch {
        return { outcome: 'retry', reason: 'Slack answered 200 without JSON' };
      }
      if (answer.ok === true) return { outcome: 'delivered' };
      const code = typeof answer.error === 'string' ? answer.error : 'unknown_error';
      const method = (typeof answer.method === 'string' ? answer.method : 'chat.postMessage') as SlackMethod;
      const scope = code === 'missing_scope' && METHOD_SCOPES[method] ? `; ${method} needs ${METHOD_SCOPES[method]}` : '';
      const reason = `Slack error ${code} (${method}${scope})`;
      switch (classifySlackError(method, code)) {
        case 'ignore':
          return { outcome: 'delivered' };
        case 'retry':
          return { outcome: 'retry', reason };
        case 'gone':
        case 'place':
          return { outcome: 'gone', reason };
        case 'reject':
          return { outcome: 'reject', reason };
      }
    },
  };
  return {
    renderer,
    sessions,
    sender: (http, logger) => {
      if (!sessions.path) {
        logger.info('slack: no outbox.dir or slack.stateFile: which thread or channel shows which session is kept in memory only (a restart of cao-events opens new ones)');
      }
      sessions.reportTo(logger, 'slack');
      return new SlackWebApiSender({
        token: options.token!,
        layout,
        ...(options.channel ? { channel: options.channel } : {}),
        ...(options.channelPrefix ? { channelPrefix: options.channelPrefix } : {}),
        private: options.private === true,
        invite: options.invite ?? [],
        sessions,
        http,
        logger,
        now,
      });
    },
  };
}

/** The renderer alone (tests, library users): `createSlackSink(options).renderer`. */
export function createSlackTransform(options: SlackOptions = {}): Renderer {
  return createSlackSink(options).renderer;
}
