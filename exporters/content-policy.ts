/**
 * Per-sink message-content policy, applied to each CloudEvent before it is queued for that
 * sink (and so before a transform, a signature or an outbox file sees it): `full` (the
 * default) keeps `data.message`, `none` removes it, `truncate:N` keeps its first N characters
 * and appends `…`. Pure: the shared event is never modified; a changed copy is returned.
 */
import type { CloudEventV1 } from 'cloudevents';

export type ContentPolicy = { kind: 'full' } | { kind: 'none' } | { kind: 'truncate'; max: number };

export const FULL_CONTENT: ContentPolicy = { kind: 'full' };
export const TRUNCATION_MARK = '…';
const MAX_TRUNCATE = 1_000_000;

/** Parses `full`, `none` or `truncate:N`; returns an error text instead when it is none of them. */
export function parseContentPolicy(value: unknown): ContentPolicy | string {
  if (value === 'full') return FULL_CONTENT;
  if (value === 'none') return { kind: 'none' };
  const match = typeof value === 'string' ? /^truncate:(\d+)$/.exec(value.trim()) : null;
  if (match) {
    const max = Number(match[1]);
    if (max >= 1 && max <= MAX_TRUNCATE) return { kind: 'truncate', max };
  }
  return `must be full, none or truncate:N with N from 1 to ${MAX_TRUNCATE} (got ${JSON.stringify(value)})`;
}

/** The first `max` characters (code points, so no surrogate pair is cut) plus `…` when longer. */
export function truncateText(text: string, max: number, mark = TRUNCATION_MARK): string {
  if (text.length <= max) return text;
  const points = Array.from(text);
  if (points.length <= max) return text;
  return points.slice(0, max).join('') + mark;
}

export function applyContentPolicy<E extends CloudEventV1<unknown>>(event: E, policy: ContentPolicy): E {
  if (policy.kind === 'full') return event;
  const data = event.data as Record<string, unknown> | undefined;
  if (data === null || typeof data !== 'object' || typeof data.message !== 'string') return event;
  let next: Record<string, unknown>;
  if (policy.kind === 'none') {
    const { message: _dropped, ...rest } = data;
    next = rest;
  } else {
    const message = truncateText(data.message, policy.max);
    if (message === data.message) return event;
    next = { ...data, message };
  }
  return { ...event, data: next };
}
