/** The one-line rendering the receiver and the demo print: agents named by the event itself. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CloudEventV1 } from 'cloudevents';
import { formatEventLine } from '../src/format-event.ts';

const event = (data: Record<string, string>): CloudEventV1<unknown> => ({
  specversion: '1.0', id: 'x', source: 'cao://test', type: `io.github.awslabs.cao.${data.event_type}`,
  subject: 'cao-demo', time: '2026-12-02T06:37:48.546667000Z', data,
});

describe('formatEventLine', () => {
  it('names both agents of a message, and the receiver\'s agent of a handoff before its worker exists', () => {
    const line = formatEventLine(event({
      event_type: 'message_sent', sender: 'a1b2c3d4', sender_agent: 'code_supervisor', receiver: 'e5f6a7b8', receiver_agent: 'developer',
      orchestration_type: 'assign', phase: 'dispatched', message: 'Write the tests', observed_by: 'gateway',
    }));
    assert.equal(line, '06:37:48.546  message_sent      cao-demo  code_supervisor (a1b2c3d4) → developer (e5f6a7b8)  [assign/dispatched]  "Write the tests"  via gateway');
    assert.match(formatEventLine(event({
      event_type: 'message_sent', sender: 'a1b2c3d4', sender_agent: 'code_supervisor', receiver_agent: 'reviewer', orchestration_type: 'handoff', phase: 'dispatched',
    })), /code_supervisor \(a1b2c3d4\) → reviewer {2}\[handoff\/dispatched\]/);
    assert.match(formatEventLine(event({ event_type: 'message_sent', receiver: 'e5f6a7b8', orchestration_type: 'assign', phase: 'delivered' })), / \? → e5f6a7b8 /);
  });
  it('names a terminal\'s agent and provider', () => {
    assert.match(formatEventLine(event({ event_type: 'terminal_killed', terminal_id: 'e5f6a7b8', agent_name: 'developer', provider: 'claude_code', observed_by: 'plugin' })),
      /terminal_killed {3}cao-demo {2}e5f6a7b8 {2}\(developer, claude_code\) {2}via plugin$/);
  });
});
