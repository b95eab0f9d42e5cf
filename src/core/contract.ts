/**
 * The published contract, derived from the field registry (pure): the JSON Schema of each
 * event type's CloudEvent `data` (schemas/<type>.json), an AsyncAPI 3.0 document describing
 * the CloudEvents a callback URL receives (schemas/asyncapi.json), and the README's field table.
 * `node src/core/write-contract.ts` writes them; test/contract.test.ts proves the files agree.
 */
import {
  type CaoEventType,
  CONTRACT_VERSION,
  EVENT_DESCRIPTIONS,
  EVENT_RULES,
  EVENT_TYPES,
  type Field,
  FIELDS,
  field,
  fieldsOf,
} from './fields.ts';

type Json = Record<string, unknown>;

function fieldSchema(f: Field): Json {
  return 'values' in f ? { enum: [...f.values], description: f.description } : { type: 'string', description: f.description };
}

/** JSON Schema (2020-12) of the `data` of one event type. */
export function dataSchema(type: CaoEventType): Json {
  const fields = fieldsOf(type);
  const rule = EVENT_RULES[type];
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: `urn:cao-events:schemas:${type}`,
    title: `cao-events ${type} data`,
    description:
      `The \`data\` of a CloudEvent of type <prefix>.${type} (default prefix io.github.awslabs.cao): ${EVENT_DESCRIPTIONS[type]}. ` +
      "Flat snake_case, CAO's plugin-event field names; unknown facts are omitted.",
    type: 'object',
    properties: {
      event_type: { const: type },
      ...Object.fromEntries(fields.map((f) => [f.data, fieldSchema(f)])),
    },
    required: ['event_type', ...fields.filter((f) => 'required' in f && (f.required as readonly string[]).includes(type)).map((f) => f.data)],
    additionalProperties: false,
    ...(rule ? { anyOf: rule.anyOf.map((keys) => ({ required: keys.map((k) => field(k).data) })) } : {}),
  };
}

/** The CloudEvents envelope cao-events sends (attributes and extensions). */
function envelopeSchema(): Json {
  return {
    type: 'object',
    description: 'CloudEvents 1.0 envelope, structured mode; in binary mode the attributes travel as ce-* headers and `data` is the body',
    properties: {
      specversion: { const: '1.0' },
      id: { type: 'string', description: '<trace id>-<span id>-<event index>: the same on a retry or replay; de-duplicate on source + id' },
      source: { type: 'string', format: 'uri-reference', description: 'the observed CAO server, unique across machines and stable across restarts (default cao://<machine key>.<host name>:<CAO port>)' },
      type: { type: 'string', description: '<prefix>.<event type>, default prefix io.github.awslabs.cao' },
      subject: { type: 'string', description: 'the CAO session name' },
      time: { type: 'string', format: 'date-time', description: 'when the fact happened (RFC 3339, nanosecond digits; CAO\'s microseconds kept)' },
      datacontenttype: { const: 'application/json' },
      dataschema: { type: 'string', format: 'uri', description: 'present when dataschemaBase is configured: <base>/<event type>.json' },
      traceparent: { type: 'string', description: 'W3C trace context of the span that carries the event (distributed-tracing extension)' },
      tracestate: { type: 'string' },
      sequence: { type: 'string', pattern: '^[0-9]{20}$', description: 'per-session position, zero-padded: one increasing sequence per session' },
      data: { type: 'object' },
    },
    required: ['specversion', 'id', 'source', 'type', 'time', 'datacontenttype', 'traceparent', 'sequence', 'data'],
  };
}

/** AsyncAPI 3.0 document of what a callback URL (a sink) receives. */
export function asyncApiDocument(typePrefix: string): Json {
  const messages = Object.fromEntries(EVENT_TYPES.map((type) => [type, {
    name: type,
    title: `${typePrefix}.${type}`,
    summary: EVENT_DESCRIPTIONS[type],
    contentType: 'application/cloudevents+json',
    payload: {
      allOf: [
        { $ref: '#/components/schemas/CloudEvent' },
        {
          type: 'object',
          properties: { type: { const: `${typePrefix}.${type}` }, data: { $ref: `./${type}.json` } },
        },
      ],
    },
  }]));
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'cao-events CloudEvents',
      version: CONTRACT_VERSION,
      description:
        'CloudEvents that cao-events POSTs to each configured callback URL (sink) for a CLI Agent Orchestrator ' +
        'server: one per session and terminal lifecycle change and per phase of every agent-to-agent message. ' +
        'Generated from the field registry (src/core/fields.ts).',
    },
    defaultContentType: 'application/cloudevents+json',
    channels: {
      callback: {
        address: '{callbackUrl}',
        title: 'A sink\'s callback URL',
        description: 'CAO_EVENT_CALLBACK_URL, or the url of a configured sink. Structured mode by default; binary (ce-* headers) and batch (application/cloudevents-batch+json) on request.',
        parameters: { callbackUrl: { description: 'the configured URL' } },
        messages: Object.fromEntries(EVENT_TYPES.map((type) => [type, { $ref: `#/components/messages/${type}` }])),
      },
    },
    operations: {
      receiveCaoEvents: {
        action: 'receive',
        title: 'A sink receives CAO events',
        channel: { $ref: '#/channels/callback' },
        messages: EVENT_TYPES.map((type) => ({ $ref: `#/channels/callback/messages/${type}` })),
      },
    },
    components: { messages, schemas: { CloudEvent: envelopeSchema() } },
  };
}

/** The README's field table (between its `<!-- fields:begin -->` / `<!-- fields:end -->` markers). */
export function fieldTable(): string {
  const rows = [
    '| `data` key | span-event attribute | carried by | meaning |',
    '|---|---|---|---|',
    '| `event_type` | (span event name `cao.<event type>`) | all | the event type |',
  ];
  for (const f of FIELDS) {
    const on = f.on.length === EVENT_TYPES.length ? 'all' : f.on.join(', ');
    const attributes = [f.attribute, ...('aliases' in f ? f.aliases : [])].map((a) => `\`${a}\``).join(', ');
    const values = 'values' in f ? ` (${f.values.map((v) => `\`${v}\``).join(', ')})` : '';
    rows.push(`| \`${f.data}\` | ${attributes} | ${on} | ${f.description.replace(/\|/g, '\\|')}${values} |`);
  }
  rows.push('| (extension `sequence`) | `cao.event.sequence` | all | per-session position |');
  return rows.join('\n');
}
