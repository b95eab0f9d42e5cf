/**
 * One field registry (src/core/fields.ts): the published files agree with it, and an event with
 * every field of its type set comes out of the whole pipeline (validation → span event →
 * CloudEvent) carrying every field, under the registry's names, valid against its schema.
 */
import { CollectSink, CollectSpans } from './helpers/collect-sink.ts';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { asyncApiDocument, dataSchema } from '../src/core/contract.ts';
import { type CaoEvent, CaoEventError } from '../src/core/events.ts';
import { type CaoEventData, type CaoEventType, EVENT_TYPES, FIELDS, fieldsOf } from '../src/core/fields.ts';
import { createCaoTelemetry } from '../src/core/telemetry.ts';
import { contractFiles, ROOT } from '../src/core/write-contract.ts';


/** A value for every registry field an event type carries. */
function everyField(type: CaoEventType, session: string): CaoEvent {
  const event: Record<string, unknown> = { type, sessionName: session };
  for (const f of fieldsOf(type)) {
    if (f.key === 'sessionName') continue;
    event[f.key] = 'values' in f ? f.values[0] : `${f.data}-value`;
  }
  return event as unknown as CaoEvent;
}

describe('the field registry', () => {
  it('schemas/*.json, schemas/asyncapi.json and the README field table are what the registry generates', () => {
    const readme = readFileSync(new URL('README.md', ROOT), 'utf8');
    for (const [path, expected] of Object.entries(contractFiles(readme))) {
      assert.equal(readFileSync(new URL(path, ROOT), 'utf8'), expected,
        `${path} disagrees with src/core/fields.ts: run ./node_modules/.bin/node src/core/write-contract.ts`);
    }
  });

  it('an event with every field of its type set carries all of them, as attributes and as data, valid against its schema', async () => {
    const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false });
    const sink = new CollectSink();
    const spans = new CollectSpans();
    const telemetry = createCaoTelemetry({ sinks: [sink], spanExporters: [spans], otlp: false, redaction: false });
    // A message's terminals are not sessions' terminals here: give each type its own session.
    for (const type of EVENT_TYPES) assert.ok(telemetry.emit(everyField(type, `cao-${type}`)), type);
    await telemetry.shutdown();
    assert.equal(sink.events.length, EVENT_TYPES.length);
    for (const event of sink.events) {
      const data = event.data as CaoEventData;
      const type = data.event_type;
      const expected = ['event_type', ...fieldsOf(type).map((f) => f.data)].sort();
      assert.deepEqual(Object.keys(data).sort(), expected, `${type}: every registry field reaches the CloudEvent data`);
      const validate = ajv.compile(dataSchema(type));
      assert.ok(validate(data), `${type}: ${JSON.stringify(validate.errors)}`);
      const span = spans.spans.find((s) => s.events.some((e) => e.name === `cao.${type}`))!;
      const attributes = span.events.find((e) => e.name === `cao.${type}`)!.attributes ?? {};
      for (const f of fieldsOf(type)) {
        assert.equal(attributes[f.attribute], (data as Record<string, string>)[f.data], `${type}: ${f.attribute} = data.${f.data}`);
        for (const alias of 'aliases' in f ? f.aliases : []) assert.equal(attributes[alias], attributes[f.attribute], `${type}: ${alias}`);
      }
    }
  });

  it('a field on an event type that does not carry it is refused, naming it', () => {
    const telemetry = createCaoTelemetry({ otlp: false });
    for (const f of FIELDS) {
      for (const type of EVENT_TYPES.filter((t) => !(f.on as readonly string[]).includes(t))) {
        const event = { ...everyField(type, 'cao-x'), [f.key]: 'values' in f ? f.values[0] : 'x' } as CaoEvent;
        assert.throws(() => telemetry.emit(event), (err: Error) => err instanceof CaoEventError && err.message.includes(f.key), `${f.key} on ${type}`);
      }
    }
  });

  it('the AsyncAPI document names one message per event type, each with its data schema', () => {
    const doc = asyncApiDocument('io.github.awslabs.cao') as {
      asyncapi: string;
      channels: { callback: { messages: Record<string, { $ref: string }> } };
      operations: { receiveCaoEvents: { messages: Array<{ $ref: string }> } };
      components: { messages: Record<string, { payload: { allOf: Array<{ properties?: { type: { const: string }; data: { $ref: string } } }> } }> };
    };
    assert.equal(doc.asyncapi, '3.0.0');
    assert.deepEqual(Object.keys(doc.channels.callback.messages), [...EVENT_TYPES]);
    assert.equal(doc.operations.receiveCaoEvents.messages.length, EVENT_TYPES.length);
    for (const type of EVENT_TYPES) {
      const payload = doc.components.messages[type]!.payload.allOf[1]!.properties!;
      assert.equal(payload.type.const, `io.github.awslabs.cao.${type}`);
      assert.equal(payload.data.$ref, `./${type}.json`);
      readFileSync(new URL(`schemas/${type}.json`, ROOT)); // the referenced file ships
    }
  });
});
