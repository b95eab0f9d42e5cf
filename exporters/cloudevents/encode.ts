/**
 * Pure encoding of CloudEvents into HTTP requests (CloudEvents HTTP protocol binding 1.0):
 * structured, binary and batched content modes. The `cloudevents` package is used to build and
 * validate events; it neither percent-encodes binary-mode headers nor has a batch serializer,
 * and its JSON form rounds `time` to milliseconds, so the wire form is written here.
 */
import type { CloudEventV1 } from 'cloudevents';

export const CONTENT_MODES = ['structured', 'binary', 'batch'] as const;
export type ContentMode = (typeof CONTENT_MODES)[number];

export const STRUCTURED_CONTENT_TYPE = 'application/cloudevents+json; charset=utf-8';
export const BATCH_CONTENT_TYPE = 'application/cloudevents-batch+json; charset=utf-8';

export interface EncodedRequest {
  headers: Record<string, string>;
  body: string;
}

/** The plain JSON object of an event, keeping every attribute as given (time unrounded). */
export function toPlainObject(event: CloudEventV1<unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(event)) {
    if (value === undefined) continue;
    if (key === 'data' && event.data_base64 !== undefined) continue;
    out[key] = value;
  }
  return out;
}

/**
 * Percent-encodes a header value as the HTTP binding requires (section 3.1.3.2): space,
 * double quote, percent sign and everything outside printable US-ASCII, as UTF-8 octets.
 */
export function percentEncodeHeaderValue(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    if (byte > 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x25) {
      out += String.fromCharCode(byte);
    } else {
      out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
    }
  }
  return out;
}

export function percentDecodeHeaderValue(value: string): string {
  return decodeURIComponent(value);
}

export function encodeStructured(event: CloudEventV1<unknown>): EncodedRequest {
  return {
    headers: { 'content-type': STRUCTURED_CONTENT_TYPE },
    body: JSON.stringify(toPlainObject(event)),
  };
}

export function encodeBinary(event: CloudEventV1<unknown>): EncodedRequest {
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(toPlainObject(event))) {
    if (key === 'data' || key === 'data_base64' || key === 'datacontenttype') continue;
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    headers[`ce-${key}`] = percentEncodeHeaderValue(text);
  }
  headers['content-type'] = event.datacontenttype ?? 'application/json';
  const data = event.data;
  const body =
    data === undefined ? '' : typeof data === 'string' ? data : JSON.stringify(data);
  return { headers, body };
}

export function encodeBatch(events: readonly CloudEventV1<unknown>[]): EncodedRequest {
  return {
    headers: { 'content-type': BATCH_CONTENT_TYPE },
    body: JSON.stringify(events.map(toPlainObject)),
  };
}

/** One request per event (structured, binary) or one for all (batch). */
export function encodeRequests(
  events: readonly CloudEventV1<unknown>[],
  mode: ContentMode,
): EncodedRequest[] {
  if (events.length === 0) return [];
  switch (mode) {
    case 'structured':
      return events.map(encodeStructured);
    case 'binary':
      return events.map(encodeBinary);
    case 'batch':
      return [encodeBatch(events)];
  }
}
