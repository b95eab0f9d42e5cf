/**
 * Pure mapping of an event forwarded by the CAO plugin (integrations/cao-plugin: CAO's own
 * post_* hook dataclasses as JSON, CAO's field names) to a CaoEvent. Throws PluginEventError
 * with a message naming the bad field.
 */
import { type CaoEvent, type ValidCaoEvent, ORCHESTRATION_TYPES, type OrchestrationType, validateCaoEvent } from '../core/events.ts';
import { parseTimestamp } from '../core/time.ts';

export class PluginEventError extends Error {
  override name = 'PluginEventError';
}

const HOOKS = {
  post_create_session: 'session_created',
  post_kill_session: 'session_killed',
  post_create_terminal: 'terminal_created',
  post_kill_terminal: 'terminal_killed',
  post_send_message: 'message_sent',
} as const;

function text(raw: Record<string, unknown>, key: string): string | undefined {
  const value = raw[key];
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new PluginEventError(`${key} must be a string`);
  return value;
}

export function pluginEventToCaoEvent(raw: unknown): ValidCaoEvent {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new PluginEventError('a plugin event must be a JSON object');
  }
  const fields = raw as Record<string, unknown>;
  const hook = text(fields, 'event_type');
  if (!hook) throw new PluginEventError('event_type is required');
  const type = HOOKS[hook as keyof typeof HOOKS];
  if (!type) {
    throw new PluginEventError(`event_type ${JSON.stringify(hook)} is not one of ${Object.keys(HOOKS).join(', ')}`);
  }
  // CAO's timestamps carry microseconds: parsed as text, so no precision is lost to a Date.
  const timestamp = text(fields, 'timestamp');
  const time = timestamp === undefined ? undefined : parseTimestamp(timestamp);
  if (timestamp !== undefined && time === undefined) throw new PluginEventError('timestamp is not an ISO 8601 time');
  const sessionId = text(fields, 'session_id');
  const orchestration = text(fields, 'orchestration_type');
  if (orchestration && !(ORCHESTRATION_TYPES as readonly string[]).includes(orchestration)) {
    throw new PluginEventError(`orchestration_type must be one of ${ORCHESTRATION_TYPES.join(', ')}`);
  }
  const candidate: CaoEvent = {
    type,
    source: 'plugin',
    sessionId,
    sessionName: text(fields, 'session_name') ?? sessionId,
    ...(type === 'terminal_created' || type === 'terminal_killed'
      ? { terminalId: text(fields, 'terminal_id'), agentName: text(fields, 'agent_name'), provider: text(fields, 'provider') }
      : {}),
    ...(type === 'message_sent'
      ? { sender: text(fields, 'sender'), receiver: text(fields, 'receiver'), message: text(fields, 'message') }
      : {}),
    traceparent: text(fields, 'traceparent'),
    // One id per hook call (the plugin adds it): the same hook forwarded twice is one fact,
    // two hook calls with the same content are two occurrences.
    observationId: text(fields, 'event_id'),
    time,
  };
  if (type === 'message_sent') {
    // CAO fires post_send_message when a message is delivered to its receiver.
    candidate.orchestrationType = (orchestration ?? 'send_message') as OrchestrationType;
    candidate.phase = 'delivered';
  }
  try {
    return validateCaoEvent(candidate);
  } catch (err) {
    throw new PluginEventError((err as Error).message);
  }
}
