/**
 * Text helpers shared by the chat transforms: who is speaking, what a lifecycle event means in
 * words, and cutting text to a service's limit with a visible marker. Pure.
 */
import type { CaoEventData } from '../transform.ts';
import type { RenderContext } from './types.ts';

/**
 * `developer (e5f6a7b8)` when the agent is known (from the event itself, `sender_agent` /
 * `receiver_agent`, else from the sink's directory of terminals), else the terminal id, else
 * `unknown`.
 */
export function who(context: RenderContext, terminalId: string | undefined, agent?: string): string {
  if (!terminalId) return agent ?? 'unknown';
  const name = agent ?? context.agentName(terminalId);
  return name ? `${name} (${terminalId})` : terminalId;
}

/** The agent profiles a message event carries itself (`sender_agent`, `receiver_agent`), when it does. */
export function messageAgents(data: CaoEventData): { sender?: string; receiver?: string } {
  const d = data as CaoEventData & { sender_agent?: unknown; receiver_agent?: unknown };
  return {
    ...(typeof d.sender_agent === 'string' && d.sender_agent ? { sender: d.sender_agent } : {}),
    ...(typeof d.receiver_agent === 'string' && d.receiver_agent ? { receiver: d.receiver_agent } : {}),
  };
}

/** One sentence for a lifecycle event. */
export function lifecycleSentence(data: CaoEventData, context: RenderContext): string {
  const session = data.session_name ?? data.session_id ?? 'unknown session';
  const agent = data.agent_name ?? context.agentName(data.terminal_id);
  const detail = [agent, data.provider].filter(Boolean).join(', ');
  const terminal = `terminal ${data.terminal_id ?? 'unknown'}${detail ? ` (${detail})` : ''}`;
  switch (data.event_type) {
    case 'session_created':
      return `session ${session} started`;
    case 'session_killed':
      return `session ${session} ended`;
    case 'terminal_created':
      return `${terminal} joined`;
    case 'terminal_killed':
      return `${terminal} left`;
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
