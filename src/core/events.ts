/**
 * The CaoEvent model: the one typed shape every source (gateway, poller, plugin ingest,
 * library emit) reports and the core consumes. Its fields come from the registry (fields.ts);
 * validation is derived from it too. Pure: no I/O here.
 */
import type { HrTime } from '@opentelemetry/api';
import {
  type CaoEventType,
  type EventFields,
  EVENT_RULES,
  EVENT_TYPES,
  FIELDS,
  type FieldKey,
} from './fields.ts';
import { type EventTimeInput, hrNow, toHrTime } from './time.ts';

export {
  EVENT_TYPES,
  ORCHESTRATION_TYPES,
  PHASES,
  EVENT_SOURCES,
} from './fields.ts';
export type { CaoEventType, OrchestrationType, Phase, EventSource } from './fields.ts';

/** One fact about a CAO server, as observed by one source. */
export interface CaoEvent extends EventFields {
  type: CaoEventType;
  /** When it happened (sub-millisecond precision kept); defaults to when it was emitted. */
  time?: EventTimeInput;
  /** W3C trace context of the observer (CAO's own trace, from the plugin), when known. */
  traceparent?: string;
  tracestate?: string;
  /**
   * Identifies this observation within its source (the plugin's per-hook event id, CAO's inbox
   * message id for the poller). A source reporting the same observation twice is one fact; two
   * observations with different ids are two occurrences. Not exported.
   */
  observationId?: string;
}

/** A validated event: clean values, time resolved. */
export interface ValidCaoEvent extends Omit<CaoEvent, 'time'> {
  time: HrTime;
}

export class CaoEventError extends Error {
  override name = 'CaoEventError';
}

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const EXTRA_STRINGS = ['traceparent', 'tracestate', 'observationId'] as const;

function present(value: unknown): boolean {
  return value !== undefined && value !== null && value !== '';
}

/**
 * Validates an untrusted object and returns a clean event (unknown keys dropped, empty strings
 * treated as absent, time resolved). Throws CaoEventError naming the first problem; never
 * returns a half-valid event. A field the event type does not carry (e.g. `agentName` on
 * `message_sent`: use senderAgent/receiverAgent) is an error, not silently dropped.
 */
export function validateCaoEvent(input: unknown): ValidCaoEvent {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new CaoEventError('a CAO event must be an object');
  }
  const raw = input as Record<string, unknown>;
  if (!present(raw.type)) throw new CaoEventError(`type is required (one of ${EVENT_TYPES.join(', ')})`);
  if (typeof raw.type !== 'string' || !(EVENT_TYPES as readonly string[]).includes(raw.type)) {
    throw new CaoEventError(`type must be one of ${EVENT_TYPES.join(', ')} (got ${JSON.stringify(raw.type)})`);
  }
  const type = raw.type as CaoEventType;
  const event: Record<string, unknown> = { type };
  for (const f of FIELDS) {
    const value = raw[f.key];
    if (!present(value)) continue;
    if (!(f.on as readonly string[]).includes(type)) {
      throw new CaoEventError(`${f.key} is not a field of ${type} (it belongs to ${f.on.join(', ')})`);
    }
    if (typeof value !== 'string') throw new CaoEventError(`${f.key} must be a string (got ${typeof value})`);
    if ('values' in f && !(f.values as readonly string[]).includes(value)) {
      throw new CaoEventError(`${f.key} must be one of ${f.values.join(', ')} (got ${JSON.stringify(value)})`);
    }
    event[f.key] = value;
  }
  for (const key of EXTRA_STRINGS) {
    const value = raw[key];
    if (!present(value)) continue;
    if (typeof value !== 'string') throw new CaoEventError(`${key} must be a string (got ${typeof value})`);
    event[key] = value;
  }
  if (event.traceparent !== undefined && !TRACEPARENT.test(event.traceparent as string)) {
    throw new CaoEventError('traceparent is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)');
  }
  let time = hrNow();
  if (raw.time !== undefined && raw.time !== null) {
    const parsed = toHrTime(raw.time as EventTimeInput);
    if (!parsed) throw new CaoEventError('time is not a valid date (a Date, epoch milliseconds, an RFC 3339 string or an HrTime)');
    time = parsed;
  }

  // What each type needs before the core can place it (sessionName the core may resolve).
  const has = (key: FieldKey): boolean => event[key] !== undefined;
  switch (type) {
    case 'session_created':
    case 'session_killed':
      if (!has('sessionName') && !has('sessionId')) throw new CaoEventError(`${type} requires sessionName`);
      break;
    default:
      for (const f of FIELDS) {
        const required = 'required' in f && (f.required as readonly string[]).includes(type);
        if (required && f.key !== 'sessionName' && f.key !== 'source' && !has(f.key)) {
          throw new CaoEventError(`${type} requires ${f.key}`);
        }
      }
  }
  const rule = EVENT_RULES[type];
  if (rule && !rule.anyOf.some((keys) => keys.every(has))) {
    throw new CaoEventError(`${type} requires ${rule.anyOf.map((keys) => keys.join(' and ')).join(' or ')} (${rule.why})`);
  }
  if (event.sessionName === undefined && event.sessionId !== undefined) event.sessionName = event.sessionId;
  event.source ??= 'api';
  return { ...(event as unknown as Omit<ValidCaoEvent, 'time'>), time };
}
