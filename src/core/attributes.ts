/**
 * The span-event vocabulary of the design's event catalog, derived from the field registry:
 * CaoEvent → span-event attributes, and span-event attributes → CloudEvent `data` (what the
 * exporter's pure transform uses). These names are a contract: do not rename them.
 */
import type { Attributes, AttributeValue } from '@opentelemetry/api';
import type { ValidCaoEvent } from './events.ts';
import {
  type CaoEventData,
  type CaoEventType,
  EVENT_TYPES,
  type Field,
  FIELDS,
  fieldsOf,
  SEQUENCE_ATTRIBUTE,
} from './fields.ts';

export const SPAN_EVENT_PREFIX = 'cao.';
export const SESSION_SPAN_NAME = 'cao.session';

type FieldAttributes = { readonly [R in Field as R['key']]: R['attribute'] };

/** Attribute key of every registry field (by CaoEvent key), the sequence, and the GenAI aliases. */
export const ATTR = {
  ...(Object.fromEntries(FIELDS.map((f) => [f.key, f.attribute])) as FieldAttributes),
  /** Per-session, increasing position of the event (the CloudEvents `sequence`). */
  sequence: SEQUENCE_ATTRIBUTE,
  genAiConversationId: 'gen_ai.conversation.id',
  genAiAgentId: 'gen_ai.agent.id',
  genAiAgentName: 'gen_ai.agent.name',
} as const;

export function spanEventName(type: CaoEventType): string {
  return SPAN_EVENT_PREFIX + type;
}

/** The event type named by a span event, or undefined when it is not one of ours. */
export function eventTypeOf(spanEventName: string): CaoEventType | undefined {
  if (!spanEventName.startsWith(SPAN_EVENT_PREFIX)) return undefined;
  const type = spanEventName.slice(SPAN_EVENT_PREFIX.length);
  return (EVENT_TYPES as readonly string[]).includes(type) ? (type as CaoEventType) : undefined;
}

/**
 * Span-event attributes for a validated, complete event (session resolved). Unknown values are
 * omitted, never written as "undefined".
 */
export function spanEventAttributes(event: ValidCaoEvent, sequence: number): Attributes {
  const a: Attributes = {};
  const values = event as unknown as Record<string, unknown>;
  for (const f of fieldsOf(event.type)) {
    const value = values[f.key];
    if (typeof value !== 'string' || value === '') continue;
    a[f.attribute] = value;
    for (const alias of 'aliases' in f ? f.aliases : []) a[alias] = value;
  }
  a[SEQUENCE_ATTRIBUTE] = sequence;
  return a;
}

function text(value: AttributeValue | undefined): string | undefined {
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' ? value : String(value);
}

/** The CloudEvent `data` of a span event of the given type: every registry field it carries. Pure. */
export function spanEventData(type: CaoEventType, attributes: Attributes): CaoEventData {
  const data: Record<string, string> = { event_type: type };
  for (const f of fieldsOf(type)) {
    const value = text(attributes[f.attribute]);
    if (value !== undefined) data[f.data] = value;
  }
  return data as CaoEventData;
}
