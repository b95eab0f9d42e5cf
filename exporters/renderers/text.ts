/**
 * Text helpers shared by the chat renderers: who is speaking (each event names its agents:
 * `sender_agent` / `receiver_agent` on messages, `agent_name` on terminal events), what a
 * lifecycle event means in words, and cutting text to a service's limit with a visible marker.
 * Pure.
 */
import type { CaoEventData } from '../transform.ts';

/** The agent profiles a message event carries (`sender_agent`, `receiver_agent`), when it does. */
export function messageAgents(data: CaoEventData): { sender?: string; receiver?: string } {
  return {
    ...(typeof data.sender_agent === 'string' && data.sender_agent ? { sender: data.sender_agent } : {}),
    ...(typeof data.receiver_agent === 'string' && data.receiver_agent ? { receiver: data.receiver_agent } : {}),
  };
}

/**
 * The text a person reads of an agent message: CAO's routing notes taken off. CAO's MCP tools
 * append `[Message from terminal <id>. Use send_message MCP tool …]` to send_message and
 * `[Assigned by terminal <id>. When done, send results back …]` to assign tasks, and put
 * `[CAO Handoff] Supervisor terminal ID: <id>.` before a codex worker's handoff; they are
 * instructions to the receiving agent, not part of the conversation. The event keeps them.
 */
export function readableMessage(text: string): string {
  return text
    .replace(/^\[CAO Handoff\] Supervisor terminal ID: [0-9a-f]{8}\.[ \t]*\n*/, '')
    .replace(/\s*\[(?:Message from|Assigned by) terminal [0-9a-f]{8}\.[^\]\n]*\]\s*$/, '');
}

/** An agent as a reader knows it: its profile name, else its terminal id, else `someone`. */
export function agentLabel(agent: string | undefined, terminalId: string | undefined): string {
  return agent || terminalId || 'someone';
}

/** One short sentence for a lifecycle event, naming the agent (`developer joined (claude_code)`). */
export function lifecycleSentence(data: CaoEventData): string {
  const session = data.session_name ?? data.session_id ?? 'unknown session';
  const agent = agentLabel(data.agent_name, data.terminal_id);
  switch (data.event_type) {
    case 'session_created':
      return `session ${session} started`;
    case 'session_killed':
      return `session ${session} ended`;
    case 'terminal_created':
      return `${agent} joined${data.provider ? ` (${data.provider})` : ''}`;
    case 'terminal_killed':
      return `${agent} left`;
    default:
      return `${data.event_type} in ${session}`;
  }
}

/** A cut position at or below `at` that splits neither a surrogate pair nor an HTML entity (&amp; &lt; &gt;). */
function safeCut(text: string, at: number): number {
  let cut = Math.max(0, Math.min(at, text.length));
  const code = text.charCodeAt(cut - 1);
  if (cut > 0 && code >= 0xd800 && code <= 0xdbff) cut -= 1;
  const amp = text.lastIndexOf('&', cut - 1);
  if (amp >= 0 && cut - amp < 5) {
    const semi = text.indexOf(';', amp);
    if (semi >= cut && semi - amp <= 4) cut = amp;
  }
  return cut;
}

/**
 * `text` when it fits in `max` characters, else its beginning plus a marker saying how much was
 * left out, the whole at most `max` characters long.
 */
export function fitText(text: string, max: number, marker = (rest: number) => `… [${rest} more characters]`): string {
  if (text.length <= max) return text;
  // The marker for the longest possible rest is at least as long as the one finally used.
  const cut = safeCut(text, Math.max(0, max - marker(text.length).length));
  return `${text.slice(0, cut)}${marker(text.length - cut)}`.slice(0, max);
}

/** The first piece of at most `size` characters, preferring a line or word boundary, and the rest. */
export function takePiece(text: string, size: number): [string, string] {
  if (text.length <= size) return [text, ''];
  let cut = text.lastIndexOf('\n', size);
  if (cut < size / 2) cut = text.lastIndexOf(' ', size);
  if (cut < size / 2) cut = size;
  cut = safeCut(text, cut);
  if (cut === 0) cut = size;
  return [text.slice(0, cut), text.slice(cut).replace(/^[\n ]/, '')];
}

/** Splits text into pieces of at most `size` characters, preferring line and word boundaries. */
export function splitText(text: string, size: number): string[] {
  const out: string[] = [];
  let rest = text;
  do {
    const [piece, next] = takePiece(rest, size);
    out.push(piece);
    rest = next;
  } while (rest.length > 0);
  return out;
}

/** The event time as milliseconds, or undefined. */
export function eventTimeMs(time: unknown): number | undefined {
  if (typeof time !== 'string') return undefined;
  const ms = Date.parse(time);
  return Number.isNaN(ms) ? undefined : ms;
}

/** The session an event belongs to (its name; the CloudEvent subject is the same). */
export function sessionOf(event: { subject?: string; data?: unknown }): string {
  const data = (event.data ?? {}) as CaoEventData;
  return data.session_name ?? event.subject ?? data.session_id ?? '';
}

/** The event's data, never undefined. */
export function dataOf(event: { data?: unknown }): CaoEventData {
  return (event.data ?? { event_type: 'session_created' }) as CaoEventData;
}
