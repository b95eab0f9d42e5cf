/**
 * The built-in `discord` transform: CAO events as Discord webhook messages. Each message is
 * posted under the name of the agent that speaks (`username` = the sending agent's profile, or
 * its terminal id), one embed per event: the receiver and orchestration type as title, the
 * message as description, the session in the footer, the event time as timestamp.
 *
 * Discord's limits are respected: ≤ 10 embeds per message, title ≤ 256, description ≤ 4096,
 * footer ≤ 2048, all embeds together ≤ 6000 characters (events that would not fit wait for the
 * next message; one longer than that is cut with a marker), username 1–80 characters without
 * the words Discord forbids in webhook names. `allowed_mentions: {parse: []}` means nothing an
 * agent writes (@everyone, @here, <@id>) ever pings anyone. Rate limits: an empty bucket
 * (X-RateLimit-Remaining: 0) pauses the sink for X-RateLimit-Reset-After; a 429's JSON
 * `retry_after` (seconds) is honoured.
 */
import type { CaoEventData } from '../transform.ts';
import { eventTimeMs, fitText, lifecycleSentence, messageAgents, who } from './text.ts';
import type {
  CaoCloudEventLike,
  ResponseVerdict,
  Renderer,
  RenderContext,
  RenderedRequest,
  TransformResponse,
} from './types.ts';

export const DISCORD_LIMITS = {
  content: 2000,
  embeds: 10,
  title: 256,
  description: 4096,
  footer: 2048,
  embedTotal: 6000,
  username: 80,
} as const;

export interface DiscordEmbed {
  title: string;
  description?: string;
  footer: { text: string };
  timestamp?: string;
  color: number;
}

const COLORS: Record<string, number> = {
  session_created: 0x2ecc71,
  session_killed: 0xe74c3c,
  terminal_created: 0x95a5a6,
  terminal_killed: 0x7f8c8d,
  assign: 0x3498db,
  handoff: 0x9b59b6,
  send_message: 0x1abc9c,
};

function dataOf(event: CaoCloudEventLike): CaoEventData {
  return (event.data ?? { event_type: 'session_created' }) as CaoEventData;
}

function sessionOf(event: CaoCloudEventLike): string {
  const data = dataOf(event);
  return data.session_name ?? event.subject ?? data.session_id ?? '';
}

/** The terminal that speaks for an event: the sender of a message, the terminal of a terminal event. */
function speakerOf(event: CaoCloudEventLike): string | undefined {
  const data = dataOf(event);
  if (data.event_type === 'message_sent') return data.sender;
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

function usernameFor(event: CaoCloudEventLike, context: RenderContext): string {
  const speaker = speakerOf(event);
  if (!speaker) return discordUsername('cao-events');
  const data = dataOf(event);
  const own = data.event_type === 'message_sent' ? messageAgents(data).sender : undefined;
  return discordUsername(own ?? context.agentName(speaker) ?? data.agent_name ?? speaker);
}

function embedChars(embed: DiscordEmbed): number {
  return embed.title.length + (embed.description?.length ?? 0) + embed.footer.text.length;
}

/** One embed for an event, its description cut to `descriptionRoom` characters at most. */
export function renderDiscordEmbed(
  event: CaoCloudEventLike,
  context: RenderContext,
  descriptionRoom: number = DISCORD_LIMITS.description,
): DiscordEmbed {
  const data = dataOf(event);
  const footer = [`session ${sessionOf(event)}`, data.observed_by && `observed by ${data.observed_by}`]
    .filter(Boolean)
    .join(' · ');
  const ms = eventTimeMs(event.time);
  const base = {
    footer: { text: fitText(footer, DISCORD_LIMITS.footer, () => '…') },
    ...(ms !== undefined ? { timestamp: new Date(ms).toISOString() } : {}),
  };
  if (data.event_type !== 'message_sent') {
    return { title: fitText(lifecycleSentence(data, context), DISCORD_LIMITS.title, () => '…'), color: COLORS[data.event_type] ?? 0, ...base };
  }
  const orchestration = data.orchestration_type ?? 'message';
  const title = fitText(
    `→ ${who(context, data.receiver, messageAgents(data).receiver)} · ${orchestration}${data.phase ? ` (${data.phase})` : ''}`,
    DISCORD_LIMITS.title,
    () => '…',
  );
  const room = Math.max(0, Math.min(DISCORD_LIMITS.description, descriptionRoom));
  const description = data.message === undefined || room === 0 ? undefined : fitText(data.message, room);
  return { title, ...(description ? { description } : {}), color: COLORS[orchestration] ?? 0, ...base };
}

/** As many events as fit in one message (the first always, cut to fit). */
export function packDiscordMessage(
  events: readonly CaoCloudEventLike[],
  context: RenderContext,
): { embeds: DiscordEmbed[]; consumed: number } {
  const embeds: DiscordEmbed[] = [];
  let total = 0;
  for (const event of events) {
    if (embeds.length === DISCORD_LIMITS.embeds) break;
    let embed = renderDiscordEmbed(event, context);
    if (total + embedChars(embed) > DISCORD_LIMITS.embedTotal) {
      if (embeds.length > 0) break;
      const fixed = embedChars(embed) - (embed.description?.length ?? 0);
      embed = renderDiscordEmbed(event, context, DISCORD_LIMITS.embedTotal - fixed);
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

export function createDiscordTransform(): Renderer {
  return {
    name: 'discord',
    maxBatch: DISCORD_LIMITS.embeds,
    // One message has one username: only consecutive events of one speaker in one session
    // travel together (a channel shows them in the order they happened).
    groupBy: (event) => `${sessionOf(event)}\u0000${speakerOf(event) ?? ''}`,
    grouping: 'run',

    encode(events, context): RenderedRequest {
      const { embeds, consumed } = packDiscordMessage(events, context);
      return {
        body: { username: usernameFor(events[0]!, context), embeds, allowed_mentions: { parse: [] } },
        consumed,
      };
    },

    onResponse(response: TransformResponse): ResponseVerdict | undefined {
      const { status, headers, body } = response;
      if (status >= 200 && status < 300) {
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
      return { reason };
    },
  };
}
