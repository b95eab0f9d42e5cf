/**
 * Pure conversion of a `cao.*` span event into a CloudEvent, exactly as the design's CloudEvents
 * contract says. The core takes (span context, span event, index) and nothing else, so that a
 * future log-record-based event (OTEP 4430) can feed the same function.
 */
import type { Attributes, HrTime, SpanContext } from '@opentelemetry/api';
import { CloudEvent } from 'cloudevents';
import { ATTR, eventTypeOf, spanEventData } from '../src/core/attributes.ts';
import type { CaoEventData } from '../src/core/fields.ts';

export const DEFAULT_TYPE_PREFIX = 'io.github.awslabs.cao';
export const DEFAULT_SOURCE = 'http://127.0.0.1:9889';

/** The flat snake_case `data` of every CAO CloudEvent, derived from the field registry (src/core/fields.ts). */
export type { CaoEventData };

export type CaoCloudEvent = CloudEvent<CaoEventData>;

export interface TransformOptions {
  /** `type` = `<typePrefix>.<event>`. */
  typePrefix?: string;
  /** The observed CAO server's base URL. */
  source?: string;
  /** When set, `dataschema` = `<dataschemaBase>/<event>.json`. */
  dataschemaBase?: string;
}

/** The span event as the SDK hands it over (`TimedEvent`). */
export interface SpanEventLike {
  name: string;
  attributes?: Attributes;
  time: HrTime;
}

/** A span as far as the transform needs it (`ReadableSpan` satisfies this). */
export interface SpanLike {
  spanContext(): SpanContext;
  events: readonly SpanEventLike[];
}

/** RFC 3339 with all nine fractional digits of the HrTime (sub-millisecond precision kept). */
export function hrTimeToRfc3339(time: HrTime): string {
  const [seconds, nanos] = time;
  const iso = new Date(seconds * 1000).toISOString(); // …T12:34:56.000Z
  return `${iso.slice(0, 19)}.${String(nanos).padStart(9, '0')}Z`;
}

/** Deterministic id: a retry or re-export of the same span event carries the same id. */
export function cloudEventId(context: SpanContext, eventIndex: number): string {
  return `${context.traceId}-${context.spanId}-${eventIndex}`;
}

export function traceparentOf(context: SpanContext): string {
  const flags = (context.traceFlags & 0xff).toString(16).padStart(2, '0');
  return `00-${context.traceId}-${context.spanId}-${flags}`;
}

/** Lexicographically orderable form of the per-session sequence number (CloudEvents sequence extension). */
export function formatSequence(sequence: number): string {
  return String(sequence).padStart(20, '0');
}

/**
 * One span event → one CloudEvent, validated by the `cloudevents` package. Returns undefined
 * for span events that are not in the CAO event catalog.
 */
export function spanEventToCloudEvent(
  context: SpanContext,
  spanEvent: SpanEventLike,
  eventIndex: number,
  options: TransformOptions = {},
): CaoCloudEvent | undefined {
  const eventType = eventTypeOf(spanEvent.name);
  if (eventType === undefined) return undefined;
  const attributes = spanEvent.attributes ?? {};
  const data = spanEventData(eventType, attributes);
  const sequence = attributes[ATTR.sequence];
  const traceState = context.traceState?.serialize();
  const subject = data.session_name;
  return new CloudEvent<CaoEventData>({
    specversion: '1.0',
    id: cloudEventId(context, eventIndex),
    type: `${options.typePrefix ?? DEFAULT_TYPE_PREFIX}.${eventType}`,
    source: options.source ?? DEFAULT_SOURCE,
    time: hrTimeToRfc3339(spanEvent.time),
    datacontenttype: 'application/json',
    data,
    traceparent: traceparentOf(context),
    ...(subject ? { subject } : {}),
    ...(traceState ? { tracestate: traceState } : {}),
    ...(typeof sequence === 'number' ? { sequence: formatSequence(sequence) } : {}),
    ...(options.dataschemaBase
      ? { dataschema: `${options.dataschemaBase.replace(/\/$/, '')}/${eventType}.json` }
      : {}),
  });
}

/** All CAO span events of one span, in order. */
export function spanToCloudEvents(span: SpanLike, options: TransformOptions = {}): CaoCloudEvent[] {
  const context = span.spanContext();
  const out: CaoCloudEvent[] = [];
  span.events.forEach((spanEvent, index) => {
    const event = spanEventToCloudEvent(context, spanEvent, index, options);
    if (event) out.push(event);
  });
  return out;
}
