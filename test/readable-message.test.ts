/**
 * What a chat reader sees of an agent message: CAO's routing notes (the exact texts CAO's MCP
 * tools append, as recorded from real cao-mcp-server 2.4.1 / 2.5.4 in test/fixtures/real-cao)
 * are taken off; anything else, including brackets the agents wrote themselves, stays.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readableMessage } from '../exporters/renderers/text.ts';

describe('readableMessage', () => {
  it('takes off the send_message note CAO appends', () => {
    assert.equal(
      readableMessage('Parser done, 38 tests green.\n\n[Message from terminal 3a51ffbe. Use send_message MCP tool for any follow-up work.]'),
      'Parser done, 38 tests green.',
    );
  });

  it('takes off the assign note CAO appends', () => {
    assert.equal(
      readableMessage('Implement the CSV parser.\n\n[Assigned by terminal 74c04c64. When done, send results back to terminal 74c04c64 using send_message]'),
      'Implement the CSV parser.',
    );
  });

  it('takes off the codex handoff banner', () => {
    assert.equal(readableMessage('[CAO Handoff] Supervisor terminal ID: 74c04c64.\n\nReview the parser.'), 'Review the parser.');
  });

  it('leaves the agents\' own words alone: a note in the middle, other brackets, plain text', () => {
    const middle = 'see [Message from terminal 74c04c64. quoted] above\nand more';
    assert.equal(readableMessage(middle), middle);
    assert.equal(readableMessage('[x] done'), '[x] done');
    assert.equal(readableMessage('plain'), 'plain');
    assert.equal(readableMessage('[Message from terminal nothex1. Use send_message]'), '[Message from terminal nothex1. Use send_message]');
  });
});
