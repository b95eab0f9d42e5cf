/** The JSON Schemas shipped in schemas/ describe the `data` every event type really carries. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { CaoEventData } from '../src/core/fields.ts';
import { createCaoTelemetry } from '../src/index.ts';
import { startReceiver } from '../src/receiver.ts';

const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false });
const validators = Object.fromEntries(
  ['session_created', 'session_killed', 'terminal_created', 'terminal_killed', 'message_sent'].map((type) => [
    type,
    ajv.compile(JSON.parse(readFileSync(new URL(`../schemas/${type}.json`, import.meta.url), 'utf8')) as object),
  ]),
);

describe('data schemas', () => {
  it('every delivered event validates against its schema, and dataschema points at it', async () => {
    const receiver = await startReceiver();
    const telemetry = createCaoTelemetry({ callbackUrl: receiver.url, otlp: false, dataschemaBase: 'https://example.com/cao-events/schemas/' });
    const s = 'cao-schema';
    telemetry.emit({ type: 'session_created', sessionName: s, source: 'gateway' });
    telemetry.emit({ type: 'terminal_created', sessionName: s, terminalId: 'a1b2c3d4', agentName: 'supervisor', provider: 'kiro_cli' });
    telemetry.emit({ type: 'message_sent', sessionName: s, sender: 'a1b2c3d4', orchestrationType: 'handoff', phase: 'dispatched', message: 'review', receiverAgent: 'reviewer' });
    telemetry.emit({ type: 'terminal_killed', terminalId: 'a1b2c3d4', source: 'poller' });
    telemetry.emit({ type: 'session_killed', sessionName: s, source: 'plugin' });
    await telemetry.shutdown();
    assert.equal(receiver.received.length, 5);
    const handoff = receiver.received[2]!.event.data as CaoEventData;
    assert.equal(handoff.sender_agent, 'supervisor', 'the core names the sender\'s agent');
    assert.equal(handoff.receiver_agent, 'reviewer');
    for (const { event } of receiver.received) {
      const data = event.data as CaoEventData;
      const validate = validators[data.event_type]!;
      assert.ok(validate(data), `${data.event_type}: ${JSON.stringify(validate.errors)}`);
      assert.equal(event.dataschema, `https://example.com/cao-events/schemas/${data.event_type}.json`);
    }
    await receiver.close();
  });

  it('the schemas reject what the contract forbids', () => {
    assert.equal(validators.message_sent!({ event_type: 'message_sent', session_name: 's', orchestration_type: 'assign', phase: 'dispatched' }), false, 'neither sender nor receiver');
    assert.equal(validators.terminal_created!({ event_type: 'terminal_created', session_name: 's' }), false, 'no terminal id');
    assert.equal(validators.session_created!({ event_type: 'session_created', session_name: 's', observed_by: 'api', extra: 1 }), false, 'unknown field');
    assert.equal(validators.message_sent!({ event_type: 'message_sent', session_name: 's', observed_by: 'api', sender: 'a', orchestration_type: 'assign', phase: 'dispatched', agent_name: 'x' }), false, 'agent_name is not a message field');
    assert.equal(validators.message_sent!({ event_type: 'message_sent', session_name: 's', sender: 'a', orchestration_type: 'broadcast', phase: 'dispatched' }), false);
  });
});
