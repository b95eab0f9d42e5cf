/**
 * Pure decoding of an HTTP request into CloudEvents (all three content modes of the HTTP
 * binding), each validated by the `cloudevents` package. The inverse of encode.ts; used by the
 * built-in receiver and by tests.
 */
import { CloudEvent, type CloudEventV1 } from 'cloudevents';
import { percentDecodeHeaderValue } from './encode.ts';
import type { ContentMode } from './encode.ts';

export class CloudEventDecodeError extends Error {
  override name = 'CloudEventDecodeError';
}

export interface DecodedRequest {
  mode: ContentMode;
  events: CloudEventV1<unknown>[];
}

type Headers = Record<string, string | string[] | undefined>;

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function parseJson(body: string, what: string): unknown {
  try {
    return JSON.parse(body);
  } catch (err) {
    throw new CloudEventDecodeError(`${what}: body is not valid JSON (${(err as Error).message})`);
  }
}

function validated(input: unknown, where: string): CloudEventV1<unknown> {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new CloudEventDecodeError(`${where}: a CloudEvent must be a JSON object`);
  }
  try {
    return new CloudEvent(input as CloudEventV1<unknown>, true);
  } catch (err) {
    const detail = (err as { errors?: unknown }).errors;
    throw new CloudEventDecodeError(
      `${where}: invalid CloudEvent: ${(err as Error).message}${detail ? ` ${JSON.stringify(detail)}` : ''}`,
    );
  }
}

export function decodeRequest(headers: Headers, body: string): DecodedRequest {
  const contentType = (header(headers, 'content-type') ?? '').split(';')[0]?.trim().toLowerCase();
  if (contentType === 'application/cloudevents-batch+json') {
    const parsed = parseJson(body, 'batch');
    if (!Array.isArray(parsed)) throw new CloudEventDecodeError('batch: body must be a JSON array');
    return { mode: 'batch', events: parsed.map((e, i) => validated(e, `batch[${i}]`)) };
  }
  if (contentType === 'application/cloudevents+json') {
    return { mode: 'structured', events: [validated(parseJson(body, 'structured'), 'structured')] };
  }
  if (header(headers, 'ce-specversion') !== undefined) {
    const attributes: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(headers)) {
      if (!name.startsWith('ce-') || value === undefined) continue;
      const text = Array.isArray(value) ? value.join(',') : value;
      try {
        attributes[name.slice(3)] = percentDecodeHeaderValue(text);
      } catch {
        throw new CloudEventDecodeError(`binary: header ${name} is not valid percent-encoding`);
      }
    }
    if (contentType) attributes.datacontenttype = header(headers, 'content-type');
    if (body.length > 0) {
      attributes.data = contentType === 'application/json' || contentType?.endsWith('+json')
        ? parseJson(body, 'binary')
        : body;
    }
    return { mode: 'binary', events: [validated(attributes, 'binary')] };
  }
  throw new CloudEventDecodeError(
    `not a CloudEvents request: content-type ${JSON.stringify(contentType ?? '')} and no ce-specversion header`,
  );
}
