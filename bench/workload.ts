/**
 * The events the delivery benchmarks emit: a session with two terminals, then message_sent
 * events between them, each message distinct (the fact ledger collapses repeats of one message
 * within 30 s, so identical messages would not be delivered) and about as long as a short CAO
 * `send_message`.
 */
import type { CaoEvent } from '../src/core/events.ts';

export const SESSION = 'cao-bench';
export const SENDER = 'a1b2c3d4';
export const RECEIVER = 'e5f6a7b8';

export function setupEvents(session = SESSION): CaoEvent[] {
  return [
    { type: 'session_created', sessionName: session, source: 'api' },
    { type: 'terminal_created', sessionName: session, terminalId: SENDER, agentName: 'code_supervisor', provider: 'kiro_cli', source: 'api' },
    { type: 'terminal_created', sessionName: session, terminalId: RECEIVER, agentName: 'developer', provider: 'kiro_cli', source: 'api' },
  ];
}

const FILLER = 'Implement the CSV parser in src/csv.ts and report back with the test results.';

/** A message_sent event; `message` defaults to a distinct ~100-character text. */
export function messageEvent(i: number, message = `#${i} ${FILLER}`, session = SESSION): CaoEvent {
  return {
    type: 'message_sent',
    sessionName: session,
    sender: SENDER,
    receiver: RECEIVER,
    orchestrationType: 'send_message',
    phase: 'dispatched',
    message,
    source: 'api',
  };
}
