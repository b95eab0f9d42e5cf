/**
 * Configuration: defaults < config file (YAML or JSON) < environment < command-line flags.
 * Everything is validated once at start-up; a bad value is one ConfigError naming the key and
 * where it came from. Pure except for reading the file.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { CONTENT_MODES, type ContentMode } from '../exporters/cloudevents/encode.ts';
import { DEFAULT_RETRY_BUDGET_MS } from '../exporters/delivery/retry-policy.ts';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from './log-level.ts';
import { OTLP_PROTOCOLS, type OtlpProtocol } from './otlp.ts';
import { ConfigError, type ParseContext } from './config-error.ts';
import type { RedactionConfig } from './redact.ts';
import { parseRedactionPatterns } from './redaction-config.ts';
import { MAX_RETRY_BUDGET_MS, type SinkConfig, parseSinks } from './sink-config.ts';

export { ConfigError };

export interface Config {
  callbackUrl?: string;
  mode: ContentMode;
  timeoutMs: number;
  maxQueue: number;
  source?: string;
  /** CloudEvents type prefix; unset: the exporter's default (io.github.awslabs.cao), so reading the configuration loads no CloudEvents code. */
  typePrefix?: string;
  dataschemaBase?: string;
  logLevel: LogLevel;
  /** `auto`: human-readable on a terminal, JSON lines otherwise. */
  logFormat: LogFormat;
  otlp: { endpoint?: string; protocol?: OtlpProtocol };
  /** headersTimeoutMs: how long a client may take to send its request headers (bodies and responses are unbounded). */
  gateway: { host: string; port: number; upstream: string; headersTimeoutMs: number };
  poller: { enabled: boolean; intervalMs: number; confirmations: number; token?: string };
  /**
   * allowedHosts: Host names (besides loopback and the bound address) the ingest port answers to;
   * allowedOrigins: browser origins allowed to post (none by default).
   */
  ingest: { host: string; port: number; token?: string; maxBodyBytes: number; allowedHosts: string[]; allowedOrigins: string[] };
  /**
   * Durable outbox: on when `dir` is set. `onStartError`: a directory that cannot be written at
   * start-up stops start-up (`exit`, code 2) or starts with memory-only delivery (`degrade`).
   */
  outbox: { dir?: string; maxBytes: number; onStartError: OutboxStartPolicy };
  /** Retry budget of an event while its sink is failing (see exporters/delivery/retry-policy.ts). */
  retry: { maxElapsedMs: number };
  /** How long a stopping sidecar keeps delivering before it counts what is left. */
  shutdownTimeoutMs: number;
  /** Sinks from the config file (besides the callback URL's), see src/sink-config.ts. */
  sinks: SinkConfig[];
  /** Secrets redacted from message content before anything leaves the process. */
  redaction: RedactionConfig;
}

export const OUTBOX_START_POLICIES = ['exit', 'degrade'] as const;
export type OutboxStartPolicy = (typeof OUTBOX_START_POLICIES)[number];

export const DEFAULT_CONFIG: Config = {
  mode: 'structured',
  timeoutMs: 5_000,
  maxQueue: 10_000,
  logLevel: 'info',
  logFormat: 'auto',
  otlp: {},
  gateway: { host: '127.0.0.1', port: 9889, upstream: 'http://127.0.0.1:9890', headersTimeoutMs: 60_000 },
  poller: { enabled: true, intervalMs: 3_000, confirmations: 2 },
  ingest: { host: '127.0.0.1', port: 4319, maxBodyBytes: 1024 * 1024, allowedHosts: [], allowedOrigins: [] },
  outbox: { maxBytes: 1024 * 1024 * 1024, onStartError: 'exit' },
  retry: { maxElapsedMs: DEFAULT_RETRY_BUDGET_MS },
  shutdownTimeoutMs: 5_000,
  sinks: [],
  redaction: { enabled: true, defaults: true, patterns: [] },
};

type Kind =
  | { t: 'url' }
  | { t: 'string' }
  | { t: 'int'; min: number; max: number }
  | { t: 'bool' }
  | { t: 'enum'; values: readonly string[]; ignoreCase?: boolean }
  /** A list: a YAML/JSON list in the file, comma-separated in the environment and on the command line. */
  | { t: 'list' }
  /** A structured value (a list of mappings), validated by its own parser; config file only. */
  | { t: 'custom'; parse: (value: unknown, ctx: ParseContext) => unknown };

const url: Kind = { t: 'url' };
const str: Kind = { t: 'string' };
const bool: Kind = { t: 'bool' };
const int = (min: number, max: number): Kind => ({ t: 'int', min, max });
const oneOf = (values: readonly string[], ignoreCase = false): Kind => ({ t: 'enum', values, ignoreCase });
const list: Kind = { t: 'list' };
const port = int(0, 65_535);

/**
 * Every configurable key (dotted path), its kind, its environment variable(s) (the first one set
 * wins) and its flag.
 */
export const KEYS: Record<string, { kind: Kind; env?: string | readonly string[]; flag?: string; help: string }> = {
  callbackUrl: { kind: url, env: 'CAO_EVENT_CALLBACK_URL', flag: 'callback-url', help: 'CloudEvents callback URL (no URL: the CloudEvents path is off)' },
  mode: { kind: oneOf(CONTENT_MODES), env: 'CAO_EVENTS_MODE', flag: 'mode', help: 'HTTP content mode: structured, binary or batch' },
  timeoutMs: { kind: int(1, 600_000), env: 'CAO_EVENTS_TIMEOUT_MS', flag: 'timeout-ms', help: 'time-out of each callback request, ms' },
  maxQueue: { kind: int(1, 10_000_000), env: 'CAO_EVENTS_MAX_QUEUE', flag: 'max-queue', help: 'events held in memory per sink at most (with an outbox, the rest waits on disk)' },
  source: { kind: str, env: 'CAO_EVENTS_SOURCE', flag: 'source', help: 'CloudEvents source naming the observed CAO server (default cao://<machine key>.<host name>:<CAO port>, unique and stable)' },
  typePrefix: { kind: str, env: 'CAO_EVENTS_TYPE_PREFIX', flag: 'type-prefix', help: 'CloudEvents type prefix (default io.github.awslabs.cao)' },
  dataschemaBase: { kind: url, flag: 'dataschema-base', help: 'base URL of the data JSON Schemas (sets dataschema)' },
  logLevel: { kind: oneOf(LOG_LEVELS, true), env: ['CAO_EVENTS_LOG_LEVEL', 'LOG_LEVEL'], flag: 'log-level', help: `log level: ${LOG_LEVELS.join(', ')}` },
  logFormat: { kind: oneOf(LOG_FORMATS), env: 'CAO_EVENTS_LOG_FORMAT', flag: 'log-format', help: 'log format: auto (readable on a terminal, else JSON lines), json or pretty' },
  'otlp.endpoint': { kind: url, flag: 'otlp-endpoint', help: 'OTLP base endpoint (else OTEL_EXPORTER_OTLP_ENDPOINT)' },
  'otlp.protocol': { kind: oneOf(OTLP_PROTOCOLS), flag: 'otlp-protocol', help: 'OTLP protocol (else OTEL_EXPORTER_OTLP_PROTOCOL)' },
  'gateway.host': { kind: str, env: 'CAO_EVENTS_GATEWAY_HOST', flag: 'host', help: 'gateway listen address' },
  'gateway.port': { kind: port, env: 'CAO_EVENTS_GATEWAY_PORT', flag: 'port', help: 'gateway listen port' },
  'gateway.upstream': { kind: url, env: 'CAO_EVENTS_UPSTREAM', flag: 'upstream', help: 'cao-server URL behind the gateway' },
  'gateway.headersTimeoutMs': { kind: int(1_000, 600_000), env: 'CAO_EVENTS_GATEWAY_HEADERS_TIMEOUT_MS', flag: 'headers-timeout-ms', help: 'time a client may take to send its request headers, ms (bodies and responses are never timed out)' },
  'poller.enabled': { kind: bool, env: 'CAO_EVENTS_POLL', flag: 'poll', help: 'reconcile state by polling CAO' },
  'poller.intervalMs': { kind: int(100, 3_600_000), env: 'CAO_EVENTS_POLL_INTERVAL_MS', flag: 'poll-interval-ms', help: 'polling interval, ms' },
  'poller.confirmations': { kind: int(1, 100), flag: 'poll-confirmations', help: 'listings in a row that must miss a session/terminal before it counts as gone' },
  'poller.token': { kind: str, env: 'CAO_EVENTS_CAO_TOKEN', flag: 'cao-token', help: 'bearer token for CAO (cao:read)' },
  'ingest.host': { kind: str, env: 'CAO_EVENTS_INGEST_HOST', flag: 'ingest-host', help: 'plugin ingest listen address' },
  'ingest.port': { kind: port, env: 'CAO_EVENTS_INGEST_PORT', flag: 'ingest-port', help: 'plugin ingest listen port' },
  'ingest.token': { kind: str, env: 'CAO_EVENTS_INGEST_TOKEN', flag: 'ingest-token', help: 'shared secret the plugin sends as a bearer token' },
  'ingest.maxBodyBytes': { kind: int(1024, 64 * 1024 * 1024), flag: 'ingest-max-body', help: 'largest accepted plugin event, bytes' },
  'ingest.allowedHosts': { kind: list, env: 'CAO_EVENTS_INGEST_ALLOWED_HOSTS', flag: 'ingest-allowed-hosts', help: 'Host names the ingest port answers to besides loopback and its bound address (comma-separated; guards against DNS rebinding)' },
  'ingest.allowedOrigins': { kind: list, env: 'CAO_EVENTS_INGEST_ALLOWED_ORIGINS', flag: 'ingest-allowed-origins', help: 'browser origins allowed to post events (comma-separated; default none: cross-site requests are refused)' },
  sinks: { kind: { t: 'custom', parse: parseSinks }, help: 'webhook sinks with filters, transforms, signing and content policy' },
  'outbox.dir': { kind: str, env: 'CAO_EVENTS_OUTBOX_DIR', flag: 'outbox-dir', help: 'durable outbox directory: events survive a restart, failures go to a dead-letter file (unset: no outbox)' },
  'outbox.maxBytes': { kind: int(1024, 64 * 1024 * 1024 * 1024), flag: 'outbox-max-bytes', help: 'bytes of outbox kept on disk per sink at most (beyond: events wait in memory, up to maxQueue)' },
  'outbox.onStartError': { kind: oneOf(OUTBOX_START_POLICIES), env: 'CAO_EVENTS_OUTBOX_ON_START_ERROR', flag: 'outbox-on-start-error', help: 'an outbox directory that cannot be written at start-up: exit (code 2) or degrade (start, delivering from memory)' },
  'retry.maxElapsedMs': { kind: int(1_000, MAX_RETRY_BUDGET_MS), env: 'CAO_EVENTS_RETRY_BUDGET_MS', flag: 'retry-budget-ms', help: 'how long an event is retried while its sink fails, ms (an outage within it loses nothing)' },
  shutdownTimeoutMs: { kind: int(0, 600_000), env: 'CAO_EVENTS_SHUTDOWN_TIMEOUT_MS', flag: 'shutdown-timeout-ms', help: 'on SIGTERM/SIGINT, how long to keep delivering before counting what is left, ms' },
  'redaction.enabled': { kind: bool, env: 'CAO_EVENTS_REDACT', flag: 'redact', help: 'redact secrets (AWS keys, bearer tokens, …) from message content before export' },
  'redaction.defaults': { kind: bool, help: 'keep the built-in redaction patterns (false: only redaction.patterns)' },
  'redaction.patterns': { kind: { t: 'custom', parse: parseRedactionPatterns }, help: 'extra redaction patterns' },
};

function coerce(
  key: string,
  kind: Kind,
  value: unknown,
  origin: string,
  env: Record<string, string | undefined> = {},
): unknown {
  const where = `${key} (${origin})`;
  switch (kind.t) {
    case 'custom':
      return kind.parse(value, { key, origin, env, baseDir: dirname(resolve(origin)) });
    case 'url': {
      if (typeof value !== 'string' || value === '') throw new ConfigError(`${where}: must be a URL string`);
      let parsed: URL;
      try {
        parsed = new URL(value);
      } catch {
        throw new ConfigError(`${where}: not a valid URL: ${JSON.stringify(value)}`);
      }
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
        throw new ConfigError(`${where}: must be an http:// or https:// URL`);
      }
      return value;
    }
    case 'string':
      if (typeof value !== 'string' || value === '') throw new ConfigError(`${where}: must be a non-empty string`);
      return value;
    case 'int': {
      const n = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < kind.min || n > kind.max) {
        throw new ConfigError(`${where}: must be an integer from ${kind.min} to ${kind.max} (got ${JSON.stringify(value)})`);
      }
      return n;
    }
    case 'bool': {
      if (typeof value === 'boolean') return value;
      if (typeof value === 'string' && /^(true|false|1|0|yes|no)$/i.test(value)) return /^(true|1|yes)$/i.test(value);
      throw new ConfigError(`${where}: must be true or false (got ${JSON.stringify(value)})`);
    }
    case 'enum': {
      const given = typeof value === 'string' && kind.ignoreCase ? value.toLowerCase() : value;
      if (typeof given !== 'string' || !kind.values.includes(given)) {
        throw new ConfigError(`${where}: must be one of ${kind.values.join(', ')} (got ${JSON.stringify(value)})`);
      }
      return given;
    }
    case 'list': {
      const items = typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter(Boolean) : value;
      if (!Array.isArray(items) || !items.every((item) => typeof item === 'string' && item.trim() !== '')) {
        throw new ConfigError(`${where}: must be a list of non-empty strings (comma-separated outside the config file)`);
      }
      return items.map((item: string) => item.trim());
    }
  }
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    node[part] ??= {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]!] = value;
}

/** Flattens a parsed config file into dotted keys, refusing unknown ones. */
function flattenFile(value: unknown, file: string, prefix = ''): Array<[string, unknown]> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`${prefix || 'config file'} (${file}): must be a mapping`);
  }
  const out: Array<[string, unknown]> = [];
  for (const [k, v] of Object.entries(value)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (KEYS[key]) out.push([key, v]);
    else if (Object.keys(KEYS).some((known) => known.startsWith(`${key}.`))) out.push(...flattenFile(v, file, key));
    else throw new ConfigError(`${key} (${file}): unknown key; known keys: ${Object.keys(KEYS).join(', ')}`);
  }
  return out;
}

const load = createRequire(import.meta.url);

export function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`config file ${path}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    // yaml is loaded only when a YAML file is read.
    return path.endsWith('.json') ? JSON.parse(text) : (load('yaml') as typeof import('yaml')).parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${path}: not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`);
  }
}

/** The environment variables of a key, in precedence order. */
export function envNames(env: string | readonly string[] | undefined): readonly string[] {
  return env === undefined ? [] : typeof env === 'string' ? [env] : env;
}

export interface ConfigSources {
  /** Flag values by flag name (without --), as parsed from the command line. */
  flags?: Record<string, string | boolean | undefined>;
  env?: Record<string, string | undefined>;
  /** Explicit config file path (from --config); else CAO_EVENTS_CONFIG. */
  configPath?: string;
}

/** Builds the effective configuration. Throws ConfigError naming the first bad key. */
export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? {};
  const flags = sources.flags ?? {};
  const config = structuredClone(DEFAULT_CONFIG) as unknown as Record<string, unknown>;
  const path = sources.configPath ?? (env.CAO_EVENTS_CONFIG?.trim() || undefined);
  if (path) {
    const file = readConfigFile(path);
    if (file !== null && file !== undefined) {
      for (const [key, value] of flattenFile(file, path)) {
        setPath(config, key, coerce(key, KEYS[key]!.kind, value, path, env));
      }
    }
  }
  for (const [key, spec] of Object.entries(KEYS)) {
    const name = envNames(spec.env).find((n) => env[n] !== undefined && env[n]!.trim() !== '');
    if (name) setPath(config, key, coerce(key, spec.kind, env[name]!.trim(), `env ${name}`));
  }
  for (const [key, spec] of Object.entries(KEYS)) {
    const raw = spec.flag ? flags[spec.flag] : undefined;
    if (raw !== undefined) setPath(config, key, coerce(key, spec.kind, raw, `flag --${spec.flag}`));
  }
  return config as unknown as Config;
}

/**
 * Only the log settings (level, format) from flags and environment, for the commands that take
 * no configuration file (receive, demo): a bad value is the same ConfigError naming the key.
 */
export function loadLogSettings(
  sources: Omit<ConfigSources, 'configPath'> = {},
  defaults: Partial<Pick<Config, 'logLevel' | 'logFormat'>> = {},
): Pick<Config, 'logLevel' | 'logFormat'> {
  const out: Record<string, unknown> = { logLevel: DEFAULT_CONFIG.logLevel, logFormat: DEFAULT_CONFIG.logFormat, ...defaults };
  for (const key of ['logLevel', 'logFormat'] as const) {
    const spec = KEYS[key]!;
    const env = sources.env ?? {};
    const name = envNames(spec.env).find((n) => env[n] !== undefined && env[n]!.trim() !== '');
    if (name) out[key] = coerce(key, spec.kind, env[name]!.trim(), `env ${name}`);
    const flag = spec.flag ? sources.flags?.[spec.flag] : undefined;
    if (flag !== undefined) out[key] = coerce(key, spec.kind, flag, `flag --${spec.flag}`);
  }
  return out as Pick<Config, 'logLevel' | 'logFormat'>;
}
