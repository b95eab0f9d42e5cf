/**
 * Pure retry decisions for webhook delivery: which outcomes are retried, how long to wait
 * (exponential back-off with full jitter, `Retry-After` honoured), and when a sink is gone.
 */

export interface RetryPolicy {
  /** Attempts per request, the first included. */
  maxAttempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
  /** Upper bound on a server-requested `Retry-After`. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 8,
  initialDelayMs: 250,
  maxDelayMs: 30_000,
  maxRetryAfterMs: 300_000,
};

/** What to do after one attempt. */
export type Verdict =
  | { kind: 'delivered' }
  | { kind: 'retry'; reason: string }
  | { kind: 'reject'; reason: string }
  | { kind: 'gone'; reason: string };

/** Classifies an HTTP status (or a network error, status undefined). */
export function verdictFor(status: number | undefined, error?: string): Verdict {
  if (status === undefined) return { kind: 'retry', reason: error ?? 'network error' };
  if (status >= 200 && status < 300) return { kind: 'delivered' };
  if (status === 410) return { kind: 'gone', reason: 'HTTP 410 Gone' };
  if (status === 408 || status === 429 || status >= 500) {
    return { kind: 'retry', reason: `HTTP ${status}` };
  }
  return { kind: 'reject', reason: `HTTP ${status}` };
}

/** `Retry-After` as delay-seconds or an HTTP-date; undefined when absent or unparsable. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/**
 * Delay before attempt `attempt + 1` (attempt counts from 1): full-jitter exponential
 * back-off, but never shorter than a server's `Retry-After`.
 */
export function backoffDelay(
  policy: RetryPolicy,
  attempt: number,
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (attempt - 1));
  const jittered = ceiling / 2 + random() * (ceiling / 2);
  if (retryAfterMs === undefined) return Math.round(jittered);
  return Math.round(Math.min(policy.maxRetryAfterMs, Math.max(retryAfterMs, jittered)));
}
