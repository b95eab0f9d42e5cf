/**
 * Pure retry decisions for webhook delivery: which outcomes are retried, whether a failure means
 * "the sink is unavailable" (network error, time-out, 429, 502/503/504) or "this request failed"
 * (408, 500, other 5xx), how long to wait (exponential back-off with full jitter, `Retry-After`
 * honoured), and the budgets: an event is given up when its time budget (`maxElapsedMs`, from
 * its first attempt) is spent, or after `maxAttempts` attempts that a reachable sink answered
 * with an error. Failures while the breaker is open and the sink unavailable spend no attempts,
 * so an outage of any length within the time budget loses nothing.
 */

export interface RetryPolicy {
  /** Attempts per request, the first included, that a reachable sink may fail. */
  maxAttempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
  /** Upper bound on a server-requested `Retry-After`. */
  maxRetryAfterMs: number;
  /** Time budget of one request, from its first attempt: past it, the events are given up. */
  maxElapsedMs: number;
  /** Failures in a row that open the breaker (then one probe at a time, no attempts spent while unavailable). */
  breakerThreshold: number;
}

export const DEFAULT_RETRY_BUDGET_MS = 3_600_000;

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 8,
  initialDelayMs: 250,
  maxDelayMs: 30_000,
  maxRetryAfterMs: 300_000,
  maxElapsedMs: DEFAULT_RETRY_BUDGET_MS,
  breakerThreshold: 3,
};

/** What to do after one attempt. */
export type Verdict =
  | { kind: 'delivered' }
  | { kind: 'retry'; reason: string; unavailable: boolean }
  | { kind: 'reject'; reason: string }
  | { kind: 'gone'; reason: string };

const UNAVAILABLE_STATUSES = new Set([429, 502, 503, 504]);

/** Classifies an HTTP status (or a network error, status undefined). */
export function verdictFor(status: number | undefined, error?: string): Verdict {
  if (status === undefined) return { kind: 'retry', reason: error ?? 'network error', unavailable: true };
  if (status >= 200 && status < 300) return { kind: 'delivered' };
  if (status === 410) return { kind: 'gone', reason: 'HTTP 410 Gone' };
  if (status === 408 || status === 429 || status >= 500) {
    return { kind: 'retry', reason: `HTTP ${status}`, unavailable: UNAVAILABLE_STATUSES.has(status) };
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
  const ceiling = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, attempt - 1));
  const jittered = ceiling / 2 + random() * (ceiling / 2);
  if (retryAfterMs === undefined) return Math.round(jittered);
  return Math.round(Math.min(policy.maxRetryAfterMs, Math.max(retryAfterMs, jittered)));
}

/**
 * After a failed attempt: does it spend one of the request's attempts? Not when the sink is
 * unavailable and the breaker was already open (the sink is down; the request is not at fault).
 */
export function spendsAttempt(verdict: Extract<Verdict, { kind: 'retry' }>, breakerWasOpen: boolean): boolean {
  return !(verdict.unavailable && breakerWasOpen);
}

/** Whether a request that failed again is given up: attempts or time budget spent. */
export function budgetSpent(policy: RetryPolicy, attempts: number, elapsedMs: number): 'attempts' | 'time' | undefined {
  if (attempts >= policy.maxAttempts) return 'attempts';
  if (elapsedMs >= policy.maxElapsedMs) return 'time';
  return undefined;
}
