/**
 * The `sinks:` section of the config file: validated into SinkConfig values, every problem a
 * ConfigError naming the exact path (`sinks[1].filter.types[0]`). Pure: nothing is loaded or
 * connected here (transform modules are loaded at start-up, by src/sinks.ts).
 */
import { isAbsolute, resolve } from 'node:path';
import { type ContentPolicy, FULL_CONTENT, parseContentPolicy } from '../exporters/content-policy.ts';
import { CONTENT_MODES, type ContentMode } from '../exporters/cloudevents/encode.ts';
import type { RetryPolicy } from '../exporters/delivery/retry-policy.ts';
import { SigningSecretError, secretKey } from '../exporters/delivery/signing.ts';
import type { SinkFilterSpec } from '../exporters/sink-filter.ts';
import { LATER_PHASES, type LaterPhases } from '../exporters/renderers/slack/conversation.ts';
import { SLACK_API_BASE } from '../exporters/renderers/slack/rules.ts';
import { DISCORD_LAYOUTS, type DiscordLayout, type DiscordOptions } from '../exporters/renderers/discord.ts';
import type { SlackOptions } from '../exporters/renderers/slack.ts';
import { defaultSinkName, withoutCredentials } from '../exporters/delivery/sink-url.ts';
import { type ParseContext, expandEnv, fail, isMapping } from './config-error.ts';
import { EVENT_TYPES, ORCHESTRATION_TYPES, PHASES } from './core/events.ts';

export const BUILTIN_TRANSFORMS = ['slack', 'discord'] as const;
export type BuiltinTransform = (typeof BUILTIN_TRANSFORMS)[number];

export type TransformRef =
  | { kind: 'builtin'; name: BuiltinTransform }
  /** `spec` as written in the file; `path` resolved against the config file's directory. */
  | { kind: 'module'; spec: string; path: string };

export interface SinkConfig {
  /** The operator's `name:`, else host, port and a hash of the URL (never its path or query). */
  name: string;
  url: string;
  /** CloudEvents content mode (sinks without a transform). */
  mode: ContentMode;
  transform?: TransformRef;
  /** Free-form options handed to the transform. */
  options: Record<string, unknown>;
  filter?: SinkFilterSpec;
  headers: Record<string, string>;
  timeoutMs?: number;
  maxQueue?: number;
  retry?: Partial<RetryPolicy>;
  signing?: { secrets: string[] };
  content: ContentPolicy;
  /** Slack settings (with `transform: slack`); a token means Web API mode. */
  slack?: SlackConfig;
  /** Discord settings (with `transform: discord`). */
  discord?: DiscordConfig;
  /** The name was made from the URL (no `name:`). */
  generatedName?: boolean;
}

/** The `slack:` mapping of a sink: the renderer's options as a config file gives them (`stateFile` resolved against the file's directory). */
export type SlackConfig = Omit<SlackOptions, 'maxSessions'>;

/** The `discord:` mapping of a sink, likewise. */
export type DiscordConfig = Omit<DiscordOptions, 'maxSessions'>;

/** What a sink name may be: it is a metric label, a log field and a directory name. */
export const SINK_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const SINK_KEYS = [
  'name', 'url', 'mode', 'transform', 'options', 'filter', 'headers', 'timeoutMs', 'maxQueue',
  'retry', 'signing', 'content', 'slack', 'discord',
] as const;
const FILTER_KEYS = ['types', 'sessions', 'orchestration', 'phases'] as const;
const RETRY_KEYS = ['maxAttempts', 'initialDelayMs', 'maxDelayMs', 'maxRetryAfterMs', 'maxElapsedMs'] as const;
const RESERVED_HEADERS = new Set([
  'host', 'content-length', 'transfer-encoding', 'connection', 'webhook-id', 'webhook-timestamp', 'webhook-signature',
]);

/** The longest retry budget accepted: a week. */
export const MAX_RETRY_BUDGET_MS = 7 * 24 * 3_600_000;

function knownKeys(value: Record<string, unknown>, known: readonly string[], path: string, ctx: ParseContext): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) fail(`${path}.${key}`, ctx, `unknown key; known keys: ${known.join(', ')}`);
  }
}

function str(value: unknown, path: string, ctx: ParseContext): string {
  if (typeof value !== 'string' || value.trim() === '') fail(path, ctx, 'must be a non-empty string');
  return value;
}

function int(value: unknown, path: string, ctx: ParseContext, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(path, ctx, `must be an integer from ${min} to ${max} (got ${JSON.stringify(value)})`);
  }
  return value;
}

function httpUrl(value: unknown, path: string, ctx: ParseContext): string {
  const text = expandEnv(str(value, path, ctx), path, ctx);
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    // The URL itself is not echoed: webhook URLs are secrets (Slack, Discord).
    return fail(path, ctx, 'not a valid URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') fail(path, ctx, 'must be an http:// or https:// URL');
  return text;
}

function list(value: unknown, path: string, ctx: ParseContext, allowed?: readonly string[]): string[] {
  const items = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(items) || items.length === 0) fail(path, ctx, 'must be a non-empty list of strings');
  return items.map((item, i) => {
    const where = `${path}[${i}]`;
    const text = str(item, where, ctx);
    if (allowed && !allowed.includes(text)) {
      fail(where, ctx, `must be one of ${allowed.join(', ')} (got ${JSON.stringify(item)})`);
    }
    return text;
  });
}

function parseTransform(value: unknown, path: string, ctx: ParseContext): TransformRef {
  const text = str(value, path, ctx).trim();
  if ((BUILTIN_TRANSFORMS as readonly string[]).includes(text)) return { kind: 'builtin', name: text as BuiltinTransform };
  const looksLikePath = /^(\.{1,2}\/|\/|file:)/.test(text) || /\.(mjs|js|cjs|ts|mts)$/.test(text);
  if (!looksLikePath) {
    fail(path, ctx, `must be ${BUILTIN_TRANSFORMS.join(' or ')}, or a module path such as ./my-transform.mjs (got ${JSON.stringify(text)})`);
  }
  const file = text.startsWith('file:') ? new URL(text).pathname : text;
  return { kind: 'module', spec: text, path: isAbsolute(file) ? file : resolve(ctx.baseDir, file) };
}

function parseFilter(value: unknown, path: string, ctx: ParseContext): SinkFilterSpec {
  if (!isMapping(value)) fail(path, ctx, 'must be a mapping (types, sessions, orchestration, phases)');
  knownKeys(value, FILTER_KEYS, path, ctx);
  const filter: SinkFilterSpec = {};
  if (value.types !== undefined) filter.types = list(value.types, `${path}.types`, ctx, EVENT_TYPES);
  if (value.sessions !== undefined) filter.sessions = list(value.sessions, `${path}.sessions`, ctx);
  if (value.orchestration !== undefined) {
    filter.orchestration = list(value.orchestration, `${path}.orchestration`, ctx, ORCHESTRATION_TYPES);
  }
  if (value.phases !== undefined) filter.phases = list(value.phases, `${path}.phases`, ctx, PHASES);
  return filter;
}

function parseHeaders(value: unknown, path: string, ctx: ParseContext): Record<string, string> {
  if (!isMapping(value)) fail(path, ctx, 'must be a mapping of header names to values');
  const out: Record<string, string> = {};
  for (const [name, raw] of Object.entries(value)) {
    const where = `${path}.${name}`;
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) fail(where, ctx, 'not a valid HTTP header name');
    if (RESERVED_HEADERS.has(name.toLowerCase())) fail(where, ctx, 'is set by cao-events and cannot be configured');
    if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') {
      fail(where, ctx, 'must be a string');
    }
    const text = expandEnv(String(raw), where, ctx);
    if (/[\r\n\0]/.test(text)) fail(where, ctx, 'must not contain line breaks');
    out[name.toLowerCase()] = text;
  }
  return out;
}

function parseRetry(value: unknown, path: string, ctx: ParseContext): Partial<RetryPolicy> {
  if (!isMapping(value)) fail(path, ctx, `must be a mapping (${RETRY_KEYS.join(', ')})`);
  knownKeys(value, RETRY_KEYS, path, ctx);
  const retry: Partial<RetryPolicy> = {};
  if (value.maxAttempts !== undefined) retry.maxAttempts = int(value.maxAttempts, `${path}.maxAttempts`, ctx, 1, 100);
  if (value.initialDelayMs !== undefined) retry.initialDelayMs = int(value.initialDelayMs, `${path}.initialDelayMs`, ctx, 1, 3_600_000);
  if (value.maxDelayMs !== undefined) retry.maxDelayMs = int(value.maxDelayMs, `${path}.maxDelayMs`, ctx, 1, 3_600_000);
  if (value.maxRetryAfterMs !== undefined) retry.maxRetryAfterMs = int(value.maxRetryAfterMs, `${path}.maxRetryAfterMs`, ctx, 0, 86_400_000);
  if (value.maxElapsedMs !== undefined) retry.maxElapsedMs = int(value.maxElapsedMs, `${path}.maxElapsedMs`, ctx, 1_000, MAX_RETRY_BUDGET_MS);
  if (retry.initialDelayMs !== undefined && retry.maxDelayMs !== undefined && retry.initialDelayMs > retry.maxDelayMs) {
    fail(`${path}.initialDelayMs`, ctx, 'must not be larger than maxDelayMs');
  }
  return retry;
}

function parseSigning(value: unknown, path: string, ctx: ParseContext): { secrets: string[] } {
  if (!isMapping(value)) fail(path, ctx, 'must be a mapping with secrets: [whsec_…]');
  knownKeys(value, ['secrets'], path, ctx);
  const secrets = list(value.secrets, `${path}.secrets`, ctx).map((secret, i) => {
    const where = `${path}.secrets[${i}]`;
    const expanded = expandEnv(secret.trim(), where, ctx);
    try {
      secretKey(expanded);
    } catch (err) {
      // Never echo a secret, not even a malformed one.
      if (err instanceof SigningSecretError) fail(where, ctx, err.message);
      throw err;
    }
    return expanded;
  });
  return { secrets };
}

const SLACK_KEYS = [
  'token', 'layout', 'channel', 'channelPrefix', 'private', 'invite', 'topic', 'archive', 'laterPhases', 'details', 'stateFile',
] as const;
/** Keys that only the Web API (a bot token) can honour. */
const SLACK_WEB_API_KEYS = ['layout', 'channel', 'channelPrefix', 'private', 'invite', 'topic', 'archive'] as const;

function bool(value: unknown, path: string, ctx: ParseContext): boolean {
  if (typeof value !== 'boolean') fail(path, ctx, `must be true or false (got ${JSON.stringify(value)})`);
  return value;
}

function statePath(value: unknown, path: string, ctx: ParseContext): string {
  const text = expandEnv(str(value, path, ctx).trim(), path, ctx);
  return isAbsolute(text) ? text : resolve(ctx.baseDir, text);
}

function parseSlack(value: unknown, path: string, ctx: ParseContext): SlackConfig {
  if (!isMapping(value)) fail(path, ctx, 'must be a mapping (token, layout, channel, …; see README, Slack)');
  knownKeys(value, SLACK_KEYS, path, ctx);
  const out: SlackConfig = {};
  if (value.token !== undefined) {
    const token = expandEnv(str(value.token, `${path}.token`, ctx).trim(), `${path}.token`, ctx);
    if (!/^xox[a-z]-\S+$/.test(token)) fail(`${path}.token`, ctx, 'must be a Slack bot token (xoxb-…)');
    out.token = token;
  } else {
    for (const key of SLACK_WEB_API_KEYS) {
      if (value[key] !== undefined) fail(`${path}.${key}`, ctx, 'needs slack.token (a bot token, Web API mode); an incoming webhook posts where it was created');
    }
  }
  if (value.layout !== undefined) {
    if (value.layout !== 'thread' && value.layout !== 'channel') fail(`${path}.layout`, ctx, `must be thread or channel (got ${JSON.stringify(value.layout)})`);
    out.layout = value.layout;
  }
  const layout = out.token ? (out.layout ?? 'thread') : undefined;
  if (value.channel !== undefined) {
    if (layout === 'channel') fail(`${path}.channel`, ctx, 'is for the thread layout; the channel layout creates one channel per session (see channelPrefix)');
    out.channel = expandEnv(str(value.channel, `${path}.channel`, ctx).trim(), `${path}.channel`, ctx);
  } else if (layout === 'thread') {
    fail(`${path}.channel`, ctx, 'is required for the thread layout (a channel id such as C0123456789, or #name)');
  }
  if (value.channelPrefix !== undefined) {
    if (layout !== 'channel') fail(`${path}.channelPrefix`, ctx, 'is for the channel layout (layout: channel)');
    const prefix = str(value.channelPrefix, `${path}.channelPrefix`, ctx);
    if (!/^[a-z0-9_-]{1,40}$/.test(prefix)) fail(`${path}.channelPrefix`, ctx, 'must be 1-40 lowercase letters, digits, hyphens or underscores (Slack channel names allow nothing else)');
    out.channelPrefix = prefix;
  }
  for (const key of ['private', 'topic', 'archive'] as const) {
    if (value[key] === undefined) continue;
    if (layout !== 'channel') fail(`${path}.${key}`, ctx, 'is for the channel layout (layout: channel)');
    out[key] = bool(value[key], `${path}.${key}`, ctx);
  }
  if (value.invite !== undefined) {
    if (layout !== 'channel') fail(`${path}.invite`, ctx, 'is for the channel layout (layout: channel)');
    out.invite = list(value.invite, `${path}.invite`, ctx).map((id, i) => {
      const user = expandEnv(id.trim(), `${path}.invite[${i}]`, ctx);
      if (!/^[UW][A-Z0-9]{2,}$/.test(user)) fail(`${path}.invite[${i}]`, ctx, 'must be a Slack user id such as U0123ABCD (profile → ⋮ → Copy member ID)');
      return user;
    });
  }
  if (value.laterPhases !== undefined) {
    const mode = value.laterPhases;
    if (typeof mode !== 'string' || !(LATER_PHASES as readonly string[]).includes(mode)) {
      fail(`${path}.laterPhases`, ctx, `must be one of ${LATER_PHASES.join(', ')} (got ${JSON.stringify(mode)})`);
    }
    if (!out.token && mode !== 'post' && mode !== 'hide') fail(`${path}.laterPhases`, ctx, 'an incoming webhook cannot edit or react: post or hide (or set slack.token)');
    if (layout === 'thread' && mode === 'reply') fail(`${path}.laterPhases`, ctx, 'reply needs layout: channel (a reply in a thread cannot have replies)');
    out.laterPhases = mode as LaterPhases;
  }
  if (value.details !== undefined) out.details = bool(value.details, `${path}.details`, ctx);
  if (value.stateFile !== undefined) out.stateFile = statePath(value.stateFile, `${path}.stateFile`, ctx);
  return out;
}

function parseDiscord(value: unknown, path: string, ctx: ParseContext): DiscordConfig {
  if (!isMapping(value)) fail(path, ctx, 'must be a mapping (layout, laterPhases, details, stateFile)');
  knownKeys(value, ['layout', 'laterPhases', 'details', 'stateFile'], path, ctx);
  const out: DiscordConfig = {};
  if (value.layout !== undefined) {
    if (typeof value.layout !== 'string' || !(DISCORD_LAYOUTS as readonly string[]).includes(value.layout)) {
      fail(`${path}.layout`, ctx, `must be one of ${DISCORD_LAYOUTS.join(', ')} (got ${JSON.stringify(value.layout)})`);
    }
    out.layout = value.layout as DiscordLayout;
  }
  if (value.laterPhases !== undefined) {
    if (value.laterPhases !== 'post' && value.laterPhases !== 'hide') fail(`${path}.laterPhases`, ctx, `must be post or hide (got ${JSON.stringify(value.laterPhases)})`);
    out.laterPhases = value.laterPhases;
  }
  if (value.details !== undefined) out.details = bool(value.details, `${path}.details`, ctx);
  if (value.stateFile !== undefined) out.stateFile = statePath(value.stateFile, `${path}.stateFile`, ctx);
  return out;
}

function parseSink(value: unknown, i: number, ctx: ParseContext): SinkConfig {
  const path = `${ctx.key}[${i}]`;
  if (!isMapping(value)) fail(path, ctx, 'must be a mapping (name, url, transform, filter, …)');
  knownKeys(value, SINK_KEYS, path, ctx);
  const named = value.name !== undefined;
  const givenName = named ? str(value.name, `${path}.name`, ctx).trim() : '';
  if (named && !SINK_NAME.test(givenName)) {
    fail(`${path}.name`, ctx, 'must be 1-64 letters, digits, dots, dashes or underscores');
  }
  const transform = value.transform === undefined ? undefined : parseTransform(value.transform, `${path}.transform`, ctx);
  if (value.mode !== undefined && transform) fail(`${path}.mode`, ctx, 'is a CloudEvents content mode; a sink with a transform has none');
  const mode = value.mode === undefined ? 'structured' : value.mode;
  if (typeof mode !== 'string' || !(CONTENT_MODES as readonly string[]).includes(mode)) {
    fail(`${path}.mode`, ctx, `must be one of ${CONTENT_MODES.join(', ')} (got ${JSON.stringify(value.mode)})`);
  }
  let slack: SinkConfig['slack'];
  if (value.slack !== undefined) {
    if (transform?.kind !== 'builtin' || transform.name !== 'slack') fail(`${path}.slack`, ctx, 'only goes with transform: slack');
    slack = parseSlack(value.slack, `${path}.slack`, ctx);
  }
  let discord: SinkConfig['discord'];
  if (value.discord !== undefined) {
    if (transform?.kind !== 'builtin' || transform.name !== 'discord') fail(`${path}.discord`, ctx, 'only goes with transform: discord');
    discord = parseDiscord(value.discord, `${path}.discord`, ctx);
  }
  let url: string;
  if (value.url !== undefined) url = httpUrl(value.url, `${path}.url`, ctx);
  else if (slack?.token) url = SLACK_API_BASE;
  else return fail(`${path}.url`, ctx, slack ? 'is required (an incoming webhook URL; or set slack.token for the Web API)' : 'is required');
  // The Web API base: a URL written for the first Slack sink (…/api/chat.postMessage) still works.
  if (slack?.token) url = url.replace(/\/chat\.postMessage\/?$/, '/').replace(/([^/])$/, '$1/');
  const headers = value.headers === undefined ? {} : parseHeaders(value.headers, `${path}.headers`, ctx);
  // user:pass@ in the URL becomes HTTP Basic auth; the URL that is kept (and hashed into the
  // default name) has no credentials.
  const plain = withoutCredentials(url);
  if (plain.authorization) {
    if (headers.authorization !== undefined) fail(`${path}.url`, ctx, 'has user:pass@ credentials and headers has Authorization too; keep one');
    headers.authorization = plain.authorization;
    url = plain.url;
  }
  const name = named ? givenName : defaultSinkName(url);
  const content = value.content === undefined ? FULL_CONTENT : parseContentPolicy(value.content);
  if (typeof content === 'string') fail(`${path}.content`, ctx, content);
  if (value.options !== undefined && !isMapping(value.options)) fail(`${path}.options`, ctx, 'must be a mapping');
  const sink: SinkConfig = {
    name,
    url,
    mode: mode as ContentMode,
    options: (value.options as Record<string, unknown> | undefined) ?? {},
    headers,
    content,
  };
  if (!named) sink.generatedName = true;
  if (transform) sink.transform = transform;
  if (value.filter !== undefined) sink.filter = parseFilter(value.filter, `${path}.filter`, ctx);
  if (value.timeoutMs !== undefined) sink.timeoutMs = int(value.timeoutMs, `${path}.timeoutMs`, ctx, 1, 600_000);
  if (value.maxQueue !== undefined) sink.maxQueue = int(value.maxQueue, `${path}.maxQueue`, ctx, 1, 10_000_000);
  if (value.retry !== undefined) sink.retry = parseRetry(value.retry, `${path}.retry`, ctx);
  if (value.signing !== undefined) sink.signing = parseSigning(value.signing, `${path}.signing`, ctx);
  if (slack) sink.slack = slack;
  if (discord) sink.discord = discord;
  return sink;
}

/** Validates the `sinks` list of a config file. */
export function parseSinks(value: unknown, ctx: ParseContext): SinkConfig[] {
  if (!Array.isArray(value)) fail(ctx.key, ctx, 'must be a list of sinks (each a mapping with url, transform, filter, …)');
  const sinks = value.map((v, i) => parseSink(v, i, ctx));
  const seen = new Set<string>();
  sinks.forEach((sink, i) => {
    if (sink.generatedName) return;
    if (seen.has(sink.name)) fail(`${ctx.key}[${i}].name`, ctx, `duplicate sink name ${JSON.stringify(sink.name)}`);
    seen.add(sink.name);
  });
  // Two unnamed sinks with the same URL: the second gets a suffix.
  for (const sink of sinks) {
    if (!sink.generatedName) continue;
    let name = sink.name;
    for (let n = 2; seen.has(name); n++) name = `${sink.name}-${n}`;
    sink.name = name;
    seen.add(name);
  }
  return sinks;
}
