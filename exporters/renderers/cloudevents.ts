/**
 * The CloudEvents content modes as renderers (HTTP protocol binding 1.0): structured (one event
 * per request, `application/cloudevents+json`), binary (`ce-*` headers, `data` as the body) and
 * batch (`application/cloudevents-batch+json`, up to `maxBatch` events per request). Pure.
 */
import { type ContentMode, encodeBatch, encodeBinary, encodeStructured } from '../cloudevents/encode.ts';
import type { Renderer } from './types.ts';

export const DEFAULT_BATCH_SIZE = 100;

export function cloudEventsRenderer(mode: ContentMode, maxBatch = DEFAULT_BATCH_SIZE): Renderer {
  switch (mode) {
    case 'structured':
      return { name: 'cloudevents (structured)', maxBatch: 1, encode: ([event]) => encodeStructured(event!) };
    case 'binary':
      return { name: 'cloudevents (binary)', maxBatch: 1, encode: ([event]) => encodeBinary(event!) };
    case 'batch':
      return { name: 'cloudevents (batch)', maxBatch, encode: (events) => encodeBatch(events) };
  }
}
