/**
 * Redaction of secrets from message content, applied in emit() before an event is recorded, so
 * spans (OTLP, Jaeger), every webhook and every outbox file see the redacted text only. Pure:
 * rules in, event out. The defaults catch the secrets agents most often paste into messages;
 * the config file can add rules, replace the defaults, or turn redaction off.
 */
import type { CaoEvent } from './core/events.ts';

/** One rule: every match of `pattern` is replaced (by `[REDACTED:<name>]` unless said otherwise). */
export interface RedactionRule {
  name: string;
  /** A global regular expression. */
  pattern: RegExp;
  /** String.replace replacement (`$1`, `$<name>` work); default `[REDACTED:<name>]`. */
  replacement?: string;
}

/** What the config file says; `compileRedaction` turns it into rules. */
export interface RedactionConfig {
  enabled: boolean;
  /** Keep the built-in rules (false: only `patterns`). */
  defaults: boolean;
  patterns: RedactionPatternSpec[];
}

export interface RedactionPatternSpec {
  name: string;
  pattern: string;
  /** Regular-expression flags besides `g` (i, m, s, u). */
  flags?: string;
  replacement?: string;
}

const marker = (name: string): string => `[REDACTED:${name}]`;

/**
 * The built-in rules. Assignments keep their key (`password=[REDACTED:password]`) so the text
 * stays readable. Order matters: whole blocks first, then specific token shapes, then the
 * generic assignments.
 */
export const DEFAULT_REDACTION_RULES: readonly RedactionRule[] = [
  {
    name: 'private-key',
    pattern: /-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|$)/g,
  },
  { name: 'aws-access-key-id', pattern: /\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b/g },
  {
    name: 'aws-secret-access-key',
    pattern: /(\baws_?secret_?access_?key["']?\s*[:=]\s*["']?)[A-Za-z0-9/+=]{16,}/gi,
    replacement: `$1${marker('aws-secret-access-key')}`,
  },
  {
    name: 'bearer-token',
    pattern: /(\bBearer\s+)[A-Za-z0-9\-._~+/]{8,}=*/gi,
    replacement: `$1${marker('bearer-token')}`,
  },
  { name: 'github-token', pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{22,255})\b/g },
  { name: 'slack-token', pattern: /\bxox[abprs]-[A-Za-z0-9-]{10,}/g },
  { name: 'slack-webhook-url', pattern: /https:\/\/hooks\.slack\.com\/services\/[A-Za-z0-9/_-]+/g },
  {
    name: 'password',
    pattern: /(\b(?:password|passwd|pwd)["']?\s*[:=]\s*["']?)[^\s"',;&]+/gi,
    replacement: `$1${marker('password')}`,
  },
  {
    name: 'api-key',
    pattern: /(\b(?:api[_-]?key|apikey|secret[_-]?key|client[_-]?secret|access[_-]?token|auth[_-]?token)["']?\s*[:=]\s*["']?)[^\s"',;&]+/gi,
    replacement: `$1${marker('api-key')}`,
  },
];

/** The rules a RedactionConfig stands for, or false when redaction is off. Throws on a bad pattern. */
export function compileRedaction(config: RedactionConfig): RedactionRule[] | false {
  if (!config.enabled) return false;
  const custom = config.patterns.map((spec) => ({
    name: spec.name,
    pattern: new RegExp(spec.pattern, `g${(spec.flags ?? '').replace(/g/g, '')}`),
    ...(spec.replacement !== undefined ? { replacement: spec.replacement } : {}),
  }));
  const rules = [...(config.defaults ? DEFAULT_REDACTION_RULES : []), ...custom];
  return rules.length > 0 ? rules : false;
}

/** The text with every rule applied, in order. */
export function redactText(text: string, rules: readonly RedactionRule[]): string {
  let out = text;
  for (const rule of rules) {
    rule.pattern.lastIndex = 0;
    out = out.replace(rule.pattern, rule.replacement ?? marker(rule.name));
  }
  return out;
}

/** The event with its message content redacted; the same object when nothing matched. */
export function redact<E extends Pick<CaoEvent, 'message'>>(event: E, rules: readonly RedactionRule[] | false): E {
  if (rules === false || rules.length === 0 || event.message === undefined) return event;
  const message = redactText(event.message, rules);
  return message === event.message ? event : { ...event, message };
}
