/**
 * The built-in `slack` transform: CAO events as Block Kit messages (who → whom, orchestration
 * type and phase, the message, the session as context).
 *
 * - Incoming-webhook mode (the sink URL is a hooks.slack.com webhook): one message per request.
 * - Web API mode (`slack: {token, channel}`): `chat.postMessage` with a bot token; the first
 *   message of a CAO session starts a thread and every later event of that session is posted in
 *   it (`thread_ts` kept per session), so a whole session reads as one conversation.
 *
 * Slack's limits are respected: section text ≤ 3000 characters (long messages are split over
 * several sections, and beyond ~9000 characters cut with a marker), ≤ 50 blocks per message,
 * and about one message per second per webhook or channel: requests are spaced 1.1 s apart and
 * a burst in between is coalesced into the next message (never dropped); a 429's Retry-After is
 * honoured. Agent text is escaped (&, <, >), so it can never form a mention such as <!channel>.
 */
import type { CaoEventData } from '../transform.ts';
import { eventTimeMs, fitText, lifecycleSentence, messageAgents, splitText, takePiece, who } from './text.ts';
import type {
  CaoCloudEventLike,
  ResponseVerdict,
  Renderer,
  RenderContext,
  RenderedRequest,
  TransformResponse,
} from './types.ts';

export const SLACK_WEB_API_URL = 'https://slack.com/api/chat.postMessage';

export const SLACK_LIMITS = {
  sectionText: 3000,
  headerText: 150,
  blocks: 50,
  /**
   * Text carried by one message's blocks, in total. Slack documents none, but answers
   * `msg_blocks_too_long` somewhat above 13,000 characters; this stays below.
   */
  messageChars: 12_000,
  /** One agent message at most (then cut with a marker). */
  perEventChars: 9_000,
  fallbackText: 300,
  /** Slack: about one message per second per webhook / per channel. */
  minIntervalMs: 1_100,
} as const;

export interface SlackOptions {
  /** Bot token (xoxb-…): Web API mode. Without it: incoming-webhook mode. */
  token?: string;
  /** Channel id or name (Web API mode). */
  channel?: string;
  /** Sessions whose thread is remembered at most. */
  maxThreads?: number;
}

type TextObject = { type: 'mrkdwn' | 'plain_text'; text: string };
export type SlackBlock =
  | { type: 'section'; text: TextObject }
  | { type: 'context'; elements: TextObject[] }
  | { type: 'header'; text: TextObject };

/** Escapes the three characters Slack's mrkdwn requires escaped; this also defuses <!channel>, <@U…>. */
export function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const EMOJI: Record<string, string> = {
  session_created: ':large_green_circle:',
  session_killed: ':red_circle:',
  terminal_created: ':heavy_plus_sign:',
  terminal_killed: ':heavy_minus_sign:',
  assign: ':clipboard:',
  handoff: ':handshake:',
  send_message: ':speech_balloon:',
};

function dataOf(event: CaoCloudEventLike): CaoEventData {
  return (event.data ?? { event_type: 'session_created' }) as CaoEventData;
}

function sessionOf(event: CaoCloudEventLike): string {
  const data = dataOf(event);
  return data.session_name ?? event.subject ?? data.session_id ?? '';
}

function contextLine(event: CaoCloudEventLike): string {
  const data = dataOf(event);
  const parts = [`session *${slackEscape(sessionOf(event))}*`];
  if (data.observed_by) parts.push(`observed by ${slackEscape(data.observed_by)}`);
  const ms = eventTimeMs(event.time);
  if (ms !== undefined) {
    const iso = new Date(ms).toISOString();
    parts.push(`<!date^${Math.floor(ms / 1000)}^{date_short_pretty} {time_secs}|${iso}>`);
  }
  return parts.join('  ·  ');
}

interface Rendered {
  blocks: SlackBlock[];
  chars: number;
}

function mrkdwn(text: string): TextObject {
  return { type: 'mrkdwn', text };
}

/** The blocks of one event. */
export function renderSlackEvent(event: CaoCloudEventLike, context: RenderContext): Rendered {
  const data = dataOf(event);
  const blocks: SlackBlock[] = [];
  if (data.event_type === 'message_sent') {
    const orchestration = data.orchestration_type ?? 'message';
    const agents = messageAgents(data);
    const heading =
      `${EMOJI[orchestration] ?? EMOJI.send_message} *${slackEscape(who(context, data.sender, agents.sender))}* → ` +
      `*${slackEscape(who(context, data.receiver, agents.receiver))}*  ·  \`${slackEscape(orchestration)}\`` +
      (data.phase ? ` _${slackEscape(data.phase)}_` : '');
    if (data.message === undefined) {
      blocks.push({ type: 'section', text: mrkdwn(fitText(heading, SLACK_LIMITS.sectionText)) });
    } else {
      const body = fitText(slackEscape(data.message), SLACK_LIMITS.perEventChars, (rest) => `… _[${rest} more characters not shown]_`);
      const head = fitText(heading, 500);
      const [first, rest] = takePiece(body, SLACK_LIMITS.sectionText - head.length - 1);
      blocks.push({ type: 'section', text: mrkdwn(`${head}\n${first}`) });
      if (rest) {
        for (const piece of splitText(rest, SLACK_LIMITS.sectionText)) blocks.push({ type: 'section', text: mrkdwn(piece) });
      }
    }
    blocks.push({ type: 'context', elements: [mrkdwn(fitText(contextLine(event), SLACK_LIMITS.sectionText))] });
  } else {
    const line = `${EMOJI[data.event_type] ?? ''} ${slackEscape(lifecycleSentence(data, context))}  ·  ${contextLine(event)}`;
    blocks.push({ type: 'context', elements: [mrkdwn(fitText(line.trim(), SLACK_LIMITS.sectionText))] });
  }
  const chars = blocks.reduce(
    (n, b) => n + (b.type === 'context' ? b.elements.reduce((m, e) => m + e.text.length, 0) : b.text.text.length),
    0,
  );
  return { blocks, chars };
}

/** The notification text (shown in notifications and where blocks cannot be). */
function fallbackText(events: readonly CaoCloudEventLike[], context: RenderContext): string {
  const first = dataOf(events[0]!);
  let text: string;
  if (events.length === 1 && first.event_type === 'message_sent') {
    const agents = messageAgents(first);
    text = `${who(context, first.sender, agents.sender)} → ${who(context, first.receiver, agents.receiver)} (${first.orchestration_type ?? 'message'})` +
      (first.message !== undefined ? `: ${first.message}` : '');
  } else if (events.length === 1) {
    text = lifecycleSentence(first, context);
  } else {
    text = `${events.length} CAO events in ${sessionOf(events[0]!)}`;
  }
  return fitText(slackEscape(text), SLACK_LIMITS.fallbackText, () => '…');
}

/** Packs as many events as fit into one message (the first always). */
export function packSlackMessage(
  events: readonly CaoCloudEventLike[],
  context: RenderContext,
  header?: string,
): { blocks: SlackBlock[]; consumed: number } {
  const blocks: SlackBlock[] = [];
  let chars = 0;
  if (header) {
    const text = fitText(header, SLACK_LIMITS.headerText, () => '…');
    blocks.push({ type: 'header', text: { type: 'plain_text', text } });
    chars += text.length;
  }
  let consumed = 0;
  for (const event of events) {
    const rendered = renderSlackEvent(event, context);
    const tooMany = blocks.length + rendered.blocks.length > SLACK_LIMITS.blocks;
    const tooLong = chars + rendered.chars > SLACK_LIMITS.messageChars;
    if (consumed > 0 && (tooMany || tooLong)) break;
    blocks.push(...rendered.blocks);
    chars += rendered.chars;
    consumed += 1;
  }
  return { blocks, consumed };
}

/** A Slack error code from a response body (`invalid_blocks`), never anything else of the body. */
function slackCode(body: string): string | undefined {
  const trimmed = body.trim();
  if (/^[a-z_]{2,64}$/.test(trimmed)) return trimmed;
  try {
    const error = (JSON.parse(trimmed) as { error?: unknown }).error;
    return typeof error === 'string' && /^[a-z_]{2,64}$/.test(error) ? error : undefined;
  } catch {
    return undefined;
  }
}

/** Webhook answers after which posting again is pointless (the webhook or its channel is gone). */
const WEBHOOK_GONE = new Set(['no_service', 'no_service_id', 'no_team', 'team_disabled', 'invalid_token', 'channel_is_archived', 'channel_not_found', 'action_prohibited']);
/** Web API errors that no retry fixes and that affect every later message too. */
const API_GONE = new Set(['invalid_auth', 'not_authed', 'account_inactive', 'token_revoked', 'token_expired', 'no_permission', 'missing_scope', 'channel_not_found', 'not_in_channel', 'is_archived', 'team_access_not_granted']);
const API_RETRY = new Set(['ratelimited', 'rate_limited', 'internal_error', 'fatal_error', 'service_unavailable', 'request_timeout']);

interface Thread {
  ts: string;
  channel: string;
}

export function createSlackTransform(options: SlackOptions = {}): Renderer {
  const webApi = options.token !== undefined;
  if (webApi && !options.channel) throw new Error('slack: Web API mode needs a channel');
  const threads = new Map<string, Thread>();
  const maxThreads = options.maxThreads ?? 10_000;

  function remember(session: string, thread: Thread): void {
    threads.delete(session);
    threads.set(session, thread);
    if (threads.size > maxThreads) {
      const oldest = threads.keys().next();
      if (!oldest.done) threads.delete(oldest.value);
    }
  }

  return {
    name: webApi ? 'slack (Web API)' : 'slack (incoming webhook)',
    maxBatch: SLACK_LIMITS.blocks,
    minIntervalMs: SLACK_LIMITS.minIntervalMs,
    groupBy: sessionOf,

    encode(events, context): RenderedRequest {
      const session = sessionOf(events[0]!);
      if (!webApi) {
        const { blocks, consumed } = packSlackMessage(events, context);
        const used = events.slice(0, consumed);
        return {
          body: { text: fallbackText(used, context), blocks, unfurl_links: false, unfurl_media: false },
          consumed,
        };
      }
      // A session created again under a known name is a new session: a new thread.
      if (dataOf(events[0]!).event_type === 'session_created') threads.delete(session);
      const thread = threads.get(session);
      const header = thread ? undefined : `CAO session ${session}`;
      const { blocks, consumed } = packSlackMessage(events, context, header);
      const used = events.slice(0, consumed);
      return {
        headers: { authorization: `Bearer ${options.token}` },
        body: {
          channel: thread?.channel ?? options.channel,
          text: fallbackText(used, context),
          blocks,
          unfurl_links: false,
          unfurl_media: false,
          ...(thread ? { thread_ts: thread.ts } : {}),
        },
        consumed,
      };
    },

    onResponse(response: TransformResponse, events): ResponseVerdict | undefined {
      const { status, body } = response;
      if (status === 429 || status >= 500) return undefined; // retried; Retry-After honoured
      if (!webApi) {
        if (status >= 200 && status < 300) return undefined;
        const code = slackCode(body);
        const reason = `HTTP ${status}${code ? ` ${code}` : ''}`;
        return code && WEBHOOK_GONE.has(code) ? { outcome: 'gone', reason } : { reason };
      }
      if (status !== 200) return { reason: `HTTP ${status}${slackCode(body) ? ` ${slackCode(body)}` : ''}` };
      let answer: { ok?: unknown; error?: unknown; ts?: unknown; channel?: unknown };
      try {
        answer = JSON.parse(body) as typeof answer;
      } catch {
        return { outcome: 'retry', reason: 'Slack answered 200 without JSON' };
      }
      if (answer.ok === true) {
        const session = sessionOf(events[0]!);
        if (!threads.has(session) && typeof answer.ts === 'string') {
          remember(session, { ts: answer.ts, channel: typeof answer.channel === 'string' ? answer.channel : options.channel! });
        }
        return { outcome: 'delivered' };
      }
      const code = slackCode(JSON.stringify({ error: answer.error })) ?? 'unknown_error';
      const reason = `Slack error ${code}`;
      if (API_RETRY.has(code)) return { outcome: 'retry', reason };
      if (API_GONE.has(code)) return { outcome: 'gone', reason };
      return { outcome: 'reject', reason };
    },
  };
}
