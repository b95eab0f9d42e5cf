/**
 * Slack's documented rules, in one place (docs.slack.dev: the method pages of the methods used
 * here, "Rate limits", "Formatting text for app surfaces", Block Kit reference). Everything else
 * of the Slack sink reads them from here: the presentation (sizes), the planner (channel names),
 * the Web API sender (tiers, per-channel posting pace, which errors mean what), and the tests'
 * fake states that it follows the same documents, independently.
 *
 * Pure data and pure functions.
 */

/** Where the Web API lives; method URLs are `<base><method>`. */
export const SLACK_API_BASE = 'https://slack.com/api/';

export const SLACK_LIMITS = {
  /** Block Kit: a section's text. */
  sectionText: 3000,
  /** Block Kit: a header's plain text. */
  headerText: 150,
  /** Block Kit: elements of one context block. */
  contextElements: 10,
  /** Block Kit: blocks per message. */
  blocks: 50,
  /**
   * Text carried by one message's blocks in total. Slack documents none, but answers
   * `msg_blocks_too_long` somewhat above 13,000 characters; this stays below.
   */
  messageChars: 12_000,
  /** chat.postMessage `text`: "messages containing more than 40,000 characters are truncated". */
  messageText: 40_000,
  /**
   * One agent message is split over at most this many posts of `messageChars` each (about the
   * 40,000 characters Slack keeps of one message); beyond that it is cut with a marker.
   */
  partsPerMessage: 4,
  /** The notification text (chat.postMessage `text` beside blocks): kept short. */
  notificationText: 300,
  /** conversations.setTopic: `too_long` beyond 250 characters. */
  topic: 250,
  /** conversations.create: names are at most 80 characters. */
  channelName: 80,
  /** conversations.invite: up to 1000 users per call. */
  inviteUsers: 1000,
} as const;

/** The Web API methods the Slack sink calls. */
export type SlackMethod =
  | 'chat.postMessage'
  | 'chat.update'
  | 'reactions.add'
  | 'conversations.create'
  | 'conversations.join'
  | 'conversations.setTopic'
  | 'conversations.invite'
  | 'conversations.archive'
  | 'conversations.list'
  | 'conversations.history'
  | 'conversations.replies';

/**
 * Rate limits, per method per workspace per app: Tier 1 = 1+, Tier 2 = 20+, Tier 3 = 50+,
 * Tier 4 = 100+ requests per minute. chat.postMessage is a "special tier": about one message
 * per second per channel, short bursts tolerated without guarantee. The sender keeps to the
 * lower bound of each tier (a sliding minute) and to one post per channel per `postIntervalMs`.
 */
export const TIER_PER_MINUTE = { 1: 1, 2: 20, 3: 50, 4: 100 } as const;
export const METHOD_TIER: Record<SlackMethod, keyof typeof TIER_PER_MINUTE | 'post'> = {
  'chat.postMessage': 'post',
  'chat.update': 3,
  'reactions.add': 3,
  'conversations.create': 2,
  'conversations.join': 3,
  'conversations.setTopic': 2,
  'conversations.invite': 3,
  'conversations.archive': 2,
  'conversations.list': 2,
  'conversations.history': 3,
  'conversations.replies': 3,
};
/** chat.postMessage: one message per second per channel (with a margin). */
export const POST_INTERVAL_MS = 1_100;

/** Read methods take form-encoded arguments (JSON bodies are accepted by write methods only). */
export const FORM_METHODS: ReadonlySet<SlackMethod> = new Set(['conversations.list', 'conversations.history', 'conversations.replies']);

/** The bot-token scopes each method needs (public channels; private ones need the groups:* twin). */
export const METHOD_SCOPES: Record<SlackMethod, string> = {
  'chat.postMessage': 'chat:write',
  'chat.update': 'chat:write',
  'reactions.add': 'reactions:write',
  'conversations.create': 'channels:manage',
  'conversations.join': 'channels:join',
  'conversations.setTopic': 'channels:manage',
  'conversations.invite': 'channels:manage',
  'conversations.archive': 'channels:manage',
  'conversations.list': 'channels:read',
  'conversations.history': 'channels:history',
  'conversations.replies': 'channels:history',
};

/**
 * Channel names: "may only contain lowercase letters, numbers, hyphens, and underscores, and
 * must be 80 characters or less" (conversations.create; `invalid_name_specials`,
 * `invalid_name_maxlength`, `invalid_name_punctuation` otherwise). A session name is folded to
 * that: accents dropped, lower case, every run of other characters one hyphen, no hyphen or
 * underscore at either end, cut to leave room for a `-2`-style suffix.
 */
export function slackChannelName(sessionName: string, prefix = '', suffix = 0): string {
  const fold = (s: string): string =>
    s
      .normalize('NFKD')
      .replace(/[\u0300-\u036f]/g, '')
      .toLowerCase()
      .replace(/[^a-z0-9_-]+/g, '-')
      .replace(/-{2,}/g, '-');
  const tail = suffix > 1 ? `-${suffix}` : '';
  const head = fold(prefix);
  let body = fold(sessionName).replace(/^[-_]+|[-_]+$/g, '');
  if (!/[a-z0-9]/.test(body)) body = 'session';
  const room = SLACK_LIMITS.channelName - head.length - tail.length;
  body = body.slice(0, Math.max(1, room)).replace(/[-_]+$/g, '');
  return `${head}${body}${tail}`.slice(0, SLACK_LIMITS.channelName);
}

/** Whether a name passes conversations.create's documented validation. */
export function isValidChannelName(name: string): boolean {
  return name.length >= 1 && name.length <= SLACK_LIMITS.channelName && /^[a-z0-9_-]+$/.test(name) && /[a-z0-9]/.test(name);
}

/** Escapes the three characters Slack's mrkdwn requires escaped; this also defuses <!channel>, <@U…>. */
export function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * What an error answer (`{ok: false, error}`) means for the sink:
 * - `retry`: transient; the same calls again later (rate limit, Slack's own trouble);
 * - `gone`: no retry fixes it and every later call fails too (token, scopes of a required
 *   method, the configured channel): the sink stops, with the reason in the log;
 * - `place`: the session's channel is archived, deleted or not joined: find it a place again;
 * - `reject`: this request is wrong (a bug, or content Slack refuses): given up, dead-lettered;
 * - `ignore`: the call's purpose is already met (already_in_channel, already_reacted…).
 */
export type SlackErrorClass = 'retry' | 'gone' | 'place' | 'reject' | 'ignore';

const RETRY = new Set(['ratelimited', 'rate_limited', 'internal_error', 'fatal_error', 'service_unavailable', 'request_timeout', 'team_added_to_org']);
const GONE = new Set([
  'invalid_auth', 'not_authed', 'account_inactive', 'token_revoked', 'token_expired', 'no_permission', 'missing_scope',
  'team_access_not_granted', 'not_allowed_token_type', 'ekm_access_denied', 'access_denied', 'restricted_action',
]);
const PLACE = new Set(['channel_not_found', 'is_archived', 'not_in_channel', 'thread_not_found']);
const IGNORE: Partial<Record<SlackMethod, ReadonlySet<string>>> = {
  'conversations.invite': new Set(['already_in_channel', 'cant_invite_self']),
  'conversations.archive': new Set(['already_archived']),
  'reactions.add': new Set(['already_reacted']),
  'conversations.join': new Set(['already_in_channel']),
};

export function classifySlackError(method: SlackMethod, error: string): SlackErrorClass {
  if (IGNORE[method]?.has(error)) return 'ignore';
  if (RETRY.has(error)) return 'retry';
  if (PLACE.has(error)) return 'place';
  if (GONE.has(error)) return 'gone';
  return 'reject';
}

/**
 * Answers after which Slack may have done the work without telling us (no answer at all, a time-out,
 * HTTP 5xx, `internal_error`/`fatal_error`: "it's possible some aspect of the operation
 * succeeded"): a post sent again could appear twice, so the sender looks for it first.
 */
export function mayHaveSucceeded(status: number | undefined, error: string | undefined): boolean {
  if (status === undefined || status >= 500) return true;
  return error === 'internal_error' || error === 'fatal_error';
}

/** Incoming-webhook answers after which posting again is pointless (the webhook or its channel is gone). */
export const WEBHOOK_GONE: ReadonlySet<string> = new Set([
  'no_service', 'no_service_id', 'no_team', 'team_disabled', 'invalid_token', 'channel_is_archived', 'channel_not_found', 'action_prohibited',
]);

/** A Slack error code from a response body (`invalid_blocks`), never anything else of the body. */
export function slackErrorCode(body: string): string | undefined {
  const trimmed = body.trim();
  if (/^[a-z_]{2,64}$/.test(trimmed)) return trimmed;
  try {
    const error = (JSON.parse(trimmed) as { error?: unknown }).error;
    return typeof error === 'string' && /^[a-z_]{2,64}$/.test(error) ? error : undefined;
  } catch {
    return undefined;
  }
}
