/** Pure, human-readable one-line rendering of a CAO CloudEvent (receiver output, demo timeline). */
import type { CloudEventV1 } from 'cloudevents';
import type { CaoEventData } from './core/fields.ts';

/** The first words of a message, on one line, at most `max` characters. */
export function firstWords(text: string, max = 60): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat.length <= max) return flat;
  const cut = flat.slice(0, max - 1);
  const space = cut.lastIndexOf(' ');
  return `${space > max / 2 ? cut.slice(0, space) : cut}…`;
}

/** `developer (e5f6a7b8)`, or whichever of the two is known. */
function who(terminal: string | undefined, agent: string | undefined): string {
  if (agent && terminal) return `${agent} (${terminal})`;
  return agent ?? terminal ?? '?';
}

export function formatEventLine(event: CloudEventV1<unknown>): string {
  const data = (event.data ?? {}) as Partial<CaoEventData>;
  const eventType = data.event_type ?? event.type.split('.').pop() ?? event.type;
  const time = typeof event.time === 'string' ? event.time.slice(11, 23) : '';
  const parts = [time, eventType.padEnd(16), event.subject ?? '-'];
  switch (eventType) {
    case 'message_sent': {
      const route = `${who(data.sender, data.sender_agent)} → ${who(data.receiver, data.receiver_agent)}`;
      parts.push(route, `[${data.orchestration_type ?? '?'}/${data.phase ?? '?'}]`);
      if (data.message) parts.push(JSON.stringify(firstWords(data.message)));
      break;
    }
    case 'terminal_created':
    case 'terminal_killed':
      parts.push(data.terminal_id ?? '?');
      if (data.agent_name) parts.push(`(${data.agent_name}${data.provider ? `, ${data.provider}` : ''})`);
      break;
  }
  if (data.observed_by) parts.push(`via ${data.observed_by}`);
  return parts.join('  ');
}
