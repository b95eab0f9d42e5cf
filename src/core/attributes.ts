/**
 * The span-event vocabulary of the design's event catalog, and the pure mapping from a CaoEvent
 * to span-event attributes. These names are a contract: do not rename them.
 */
import type { Attributes } from '@opentelemetry/api';
import type { CaoEvent, CaoEventType } from './events.ts';

export const SPAN_EVENT_PREFIX = 'cao.';
export const SESSION_SPAN_NAME = 'cao.session';

export const ATTR = {
  sessionId: 'cao.session.id',
  sessionName: 'cao.session.name',
  terminalId: 'cao.terminal.id',
  agentName: 'cao.agent.name',
  provider: 'cao.provider',
  sender: 'cao.message.sender',
  receiver: 'cao.message.receiver',
  message: 'cao.message.content',
  orchestrationType: 'cao.orchestration.type',
  phase: 'cao.orchestration.phase',
  source: 'cao.event.source',
  /** Per-session, increasing position of the event (the CloudEvents `sequence`). */
  sequence: 'cao.event.sequence',
  genAiConversationId: 'gen_ai.conversation.id',
  genAiAgentId: 'gen_ai.agent.id',
  genAiAgentName: 'gen_ai.agent.name',
} as const;

export function spanEventName(type: CaoEventType): string {
  return SPAN_EVENT_PREFIX + type;
}

/** The event type named by a span event, or undefined when it is not one of ours. */
export function eventTypeOf(spanEventName: string): CaoEventType | undefined {
  if (!spanEventName.startsWith(SPAN_EVENT_PREFIX)) return undefined;
  const type = spanEventName.slice(SPAN_EVENT_PREFIX.length);
  switch (type) {
    case 'session_created':
    case 'session_killed':
    case 'terminal_created':
    case 'terminal_killed':
    case 'message_sent':
      return type;
    default:
      return undefined;
  }
}

function put(attributes: Attributes, key: string, value: string | number | undefined): void {
  if (value !== undefined && value !== '') attributes[key] = value;
}

/**
 * Span-event attributes for a validated CaoEvent whose session is resolved. Unknown values are
 * omitted, never written as "undefined".
 */
export function spanEventAttributes(event: CaoEvent, sequence: number): Attributes {
  const a: Attributes = {};
  put(a, ATTR.sessionId, event.sessionId ?? event.sessionName);
  put(a, ATTR.sessionName, event.sessionName);
  put(a, ATTR.terminalId, event.terminalId);
  put(a, ATTR.agentName, event.agentName);
  put(a, ATTR.provider, event.provider);
  put(a, ATTR.sender, event.sender);
  put(a, ATTR.receiver, event.receiver);
  put(a, ATTR.message, event.message);
  put(a, ATTR.orchestrationType, event.orchestrationType);
  put(a, ATTR.phase, event.phase);
  put(a, ATTR.source, event.source ?? 'api');
  put(a, ATTR.sequence, sequence);
  put(a, ATTR.genAiConversationId, event.sessionName);
  put(a, ATTR.genAiAgentId, event.terminalId);
  put(a, ATTR.genAiAgentName, event.agentName);
  return a;
}
