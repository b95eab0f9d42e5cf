/**
 * The CaoEvent model: the one typed shape every source (gateway, poller, plugin ingest,
 * library emit) produces and the recorder consumes. Pure: no I/O here.
 */

export const EVENT_TYPES = [
  'session_created',
  'session_killed',
  'terminal_created',
  'terminal_killed',
  'message_sent',
] as const;
export type CaoEventType = (typeof EVENT_TYPES)[number];

export const ORCHESTRATION_TYPES = ['send_message', 'handoff', 'assign'] as const;
export type OrchestrationType = (typeof ORCHESTRATION_TYPES)[number];

export const PHASES = ['dispatched', 'delivered', 'completed', 'failed'] as const;
export type Phase = (typeof PHASES)[number];

export const EVENT_SOURCES = ['gateway', 'poller', 'plugin', 'api'] as const;
export type EventSource = (typeof EVENT_SOURCES)[number];

/** One fact about a CAO server, as observed by one source. */
export interface CaoEvent {
  type: CaoEventType;
  /** CAO session id (CAO uses the tmux session name as id). */
  sessionId?: string;
  /** CAO session name (`cao-…`); the CloudEvent subject and the trace's conversation id. */
  sessionName?: string;
  /** Terminal id (8 hex characters in CAO). */
  terminalId?: string;
  /** Agent profile of the terminal. */
  agentName?: string;
  provider?: string;
  /** Sender terminal id (message_sent). */
  sender?: string;
  /** Receiver terminal id (message_sent). */
  receiver?: string;
  /** Message content (message_sent). */
  message?: string;
  orchestrationType?: OrchestrationType;
  phase?: Phase;
  /** Who observed it; defaults to `api`. */
  source?: EventSource;
  /** When it happened; defaults to when it was emitted. */
  time?: Date;
  /** W3C trace context of the observer (CAO's own trace, from the plugin), when known. */
  traceparent?: string;
  tracestate?: string;
}

export class CaoEventError extends Error {
  override name = 'CaoEventError';
}

const STRING_FIELDS = [
  'sessionId',
  'sessionName',
  'terminalId',
  'agentName',
  'provider',
  'sender',
  'receiver',
  'message',
  'traceparent',
  'tracestate',
] as const;

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

function oneOf<T extends string>(
  value: unknown,
  allowed: readonly T[],
  field: string,
): T | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new CaoEventError(
      `${field} must be one of ${allowed.join(', ')} (got ${JSON.stringify(value)})`,
    );
  }
  return value as T;
}

/**
 * Validates an untrusted object and returns a clean CaoEvent (unknown keys dropped, empty
 * strings treated as absent). Throws CaoEventError naming the first problem; never returns a
 * half-valid event.
 */
export function validateCaoEvent(input: unknown): CaoEvent {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new CaoEventError('a CAO event must be an object');
  }
  const raw = input as Record<string, unknown>;
  const type = oneOf(raw.type, EVENT_TYPES, 'type');
  if (type === undefined) {
    throw new CaoEventError(`type is required (one of ${EVENT_TYPES.join(', ')})`);
  }
  const event: CaoEvent = { type };
  for (const field of STRING_FIELDS) {
    const value = raw[field];
    if (value === undefined || value === null || value === '') continue;
    if (typeof value !== 'string') {
      throw new CaoEventError(`${field} must be a string (got ${typeof value})`);
    }
    event[field] = value;
  }
  const orchestrationType = oneOf(raw.orchestrationType, ORCHESTRATION_TYPES, 'orchestrationType');
  if (orchestrationType) event.orchestrationType = orchestrationType;
  const phase = oneOf(raw.phase, PHASES, 'phase');
  if (phase) event.phase = phase;
  const source = oneOf(raw.source, EVENT_SOURCES, 'source');
  if (source) event.source = source;
  if (raw.time !== undefined && raw.time !== null) {
    const time = raw.time instanceof Date ? raw.time : new Date(raw.time as string | number);
    if (Number.isNaN(time.getTime())) throw new CaoEventError('time is not a valid date');
    event.time = time;
  }
  if (event.traceparent !== undefined && !TRACEPARENT.test(event.traceparent)) {
    throw new CaoEventError('traceparent is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)');
  }

  switch (type) {
    case 'session_created':
    case 'session_killed':
      if (!event.sessionName && !event.sessionId) {
        throw new CaoEventError(`${type} requires sessionName`);
      }
      break;
    case 'terminal_created':
    case 'terminal_killed':
      if (!event.terminalId) throw new CaoEventError(`${type} requires terminalId`);
      break;
    case 'message_sent':
      if (!event.orchestrationType) {
        throw new CaoEventError('message_sent requires orchestrationType');
      }
      if (!event.phase) throw new CaoEventError('message_sent requires phase');
      if (!event.sender && !event.receiver) {
        throw new CaoEventError('message_sent requires sender or receiver');
      }
      break;
  }
  if (event.sessionName === undefined && event.sessionId !== undefined) {
    event.sessionName = event.sessionId;
  }
  return event;
}
