/**
 * Event time with sub-millisecond precision. CAO's plugin events carry microseconds
 * (`2026-08-22T10:15:30.123456Z`); a JavaScript Date keeps milliseconds only, so times travel
 * as OTel HrTime `[seconds, nanoseconds]` from the source to the CloudEvent. Pure.
 */
import type { HrTime } from '@opentelemetry/api';

/** What a source or library user may give as `time`. */
export type EventTimeInput = Date | string | number | HrTime;

const RFC3339 = /^(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d)(?:\.(\d{1,9})\d*)?([Zz]|[+-]\d\d:?\d\d)?$/;

function fromMillis(ms: number): HrTime {
  const seconds = Math.floor(ms / 1000);
  return [seconds, Math.round((ms - seconds * 1000) * 1e6)];
}

/**
 * Parses an ISO 8601 / RFC 3339 timestamp keeping every fractional digit (up to nanoseconds).
 * A time without an offset is taken as UTC (CAO's plugin timestamps are UTC). Undefined when
 * the text is not such a timestamp.
 */
export function parseTimestamp(text: string): HrTime | undefined {
  const m = RFC3339.exec(text.trim());
  if (!m) return undefined;
  const [, date, clock, fraction = '', zone = 'Z'] = m;
  const offset = zone.toUpperCase() === 'Z' ? 'Z' : zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone;
  const ms = Date.parse(`${date}T${clock}${offset}`);
  if (Number.isNaN(ms)) return undefined;
  return [ms / 1000, Number(fraction.padEnd(9, '0'))];
}

function isHrTime(value: unknown): value is HrTime {
  return Array.isArray(value) && value.length === 2 && Number.isInteger(value[0]) && Number.isInteger(value[1]) &&
    (value[1] as number) >= 0 && (value[1] as number) < 1e9;
}

/** The HrTime of a time input, or undefined when it is not a valid time. */
export function toHrTime(value: EventTimeInput): HrTime | undefined {
  if (isHrTime(value)) return [value[0], value[1]];
  if (value instanceof Date) {
    const ms = value.getTime();
    return Number.isNaN(ms) ? undefined : fromMillis(ms);
  }
  if (typeof value === 'number') return Number.isFinite(value) ? fromMillis(value) : undefined;
  if (typeof value === 'string') return parseTimestamp(value);
  return undefined;
}

/** Now, with the sub-millisecond part of the performance clock. */
export function hrNow(): HrTime {
  return fromMillis(performance.timeOrigin + performance.now());
}

/** Negative when a is earlier than b. */
export function compareHrTime(a: HrTime, b: HrTime): number {
  return a[0] !== b[0] ? a[0] - b[0] : a[1] - b[1];
}

export function hrTimeToMillis(time: HrTime): number {
  return time[0] * 1000 + time[1] / 1e6;
}
