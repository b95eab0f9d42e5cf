/**
 * What a Slack reader sees: Block Kit messages for an agent message (`sender → receiver`, by
 * name, then the text), for lifecycle lines (short context lines), for a session's thread parent
 * and for a channel topic. Slack's size rules come from rules.ts; agent text is escaped, so it
 * never forms a mention. No internal vocabulary (sources, phases) unless `details` is asked for.
 * Pure.
 */
import { fitText, splitText, takePiece } from '../text.ts';
import { SLACK_LIMITS, slackEscape } from './rules.ts';

type TextObject = { type: 'mrkdwn' | 'plain_text'; text: string };
export type SlackBlock =
  | { type: 'section'; text: TextObject }
  | { type: 'context'; elements: TextObject[] }
  | { type: 'header'; text: TextObject };

/** One Slack message: blocks plus the notification text. */
export interface SlackMessage {
  text: string;
  blocks: SlackBlock[];
}

/** How a reader names what kind of message it is (empty for a plain message). */
export type MessageKind = 'message' | 'task' | 'handoff' | 'result';
export type MessageStatus = 'received' | 'failed';

export interface MessageView {
  kind: MessageKind;
  sender: string;
  receiver: string;
  text?: string;
  status?: MessageStatus;
  /** A context line under the message (details asked for, or when it happened, if long ago). */
  note?: string;
}

const KIND_LABEL: Record<MessageKind, string> = { message: '', task: 'task', handoff: 'handoff', result: 'handoff result' };
const STATUS_LABEL: Record<MessageStatus, string> = { received: '✓ received', failed: '✗ failed' };

function mrkdwn(text: string): TextObject {
  return { type: 'mrkdwn', text };
}

function chars(blocks: readonly SlackBlock[]): number {
  return blocks.reduce((n, b) => n + (b.type === 'context' ? b.elements.reduce((m, e) => m + e.text.length, 0) : b.text.text.length), 0);
}

/** `*code_supervisor* → *developer*  ·  _task_  ·  ✓ received` */
export function messageHeading(view: Pick<MessageView, 'kind' | 'sender' | 'receiver' | 'status'>): string {
  const parts = [`*${slackEscape(view.sender)}* → *${slackEscape(view.receiver)}*`];
  if (KIND_LABEL[view.kind]) parts.push(`_${KIND_LABEL[view.kind]}_`);
  if (view.status) parts.push(STATUS_LABEL[view.status]);
  return fitText(parts.join('  ·  '), 600, () => '…');
}

/** The notification text of a message (what a phone shows): `code_supervisor → developer: Implement…`. */
export function messageNotification(view: MessageView): string {
  const head = `${view.sender} → ${view.receiver}`;
  return fitText(slackEscape(view.text ? `${head}: ${view.text}` : head), SLACK_LIMITS.notificationText, () => '…');
}

/**
 * An agent message as one post, or as several when it is longer than one post may carry
 * (`messageChars`): the first with the heading, the others marked `continued 2/3`; beyond
 * `partsPerMessage` posts the text is cut with a marker saying how much is not shown.
 */
export function renderMessage(view: MessageView, maxParts: number = SLACK_LIMITS.partsPerMessage): SlackMessage[] {
  const heading = messageHeading(view);
  const note = view.note ? [{ type: 'context', elements: [mrkdwn(fitText(view.note, SLACK_LIMITS.sectionText))] } as SlackBlock] : [];
  const notification = messageNotification(view);
  if (view.text === undefined || view.text === '') {
    return [{ text: notification, blocks: [{ type: 'section', text: mrkdwn(heading) }, ...note] }];
  }
  const per = SLACK_LIMITS.messageChars - 200; // room for the heading, markers and the note
  const max = per * Math.max(1, maxParts);
  const body = fitText(slackEscape(view.text), max, (rest) => `… _[${rest} more characters not shown]_`);
  const chunks: string[] = [];
  let rest = body;
  while (rest.length > 0) {
    const [piece, next] = takePiece(rest, per);
    chunks.push(piece);
    rest = next;
  }
  return chunks.map((chunk, i) => {
    const blocks: SlackBlock[] = [];
    let sections = splitText(chunk, SLACK_LIMITS.sectionText);
    if (i === 0) {
      const [first, more] = takePiece(chunk, SLACK_LIMITS.sectionText - heading.length - 1);
      blocks.push({ type: 'section', text: mrkdwn(`${heading}\n${first}`) });
      sections = more ? splitText(more, SLACK_LIMITS.sectionText) : [];
    } else {
      blocks.push({ type: 'context', elements: [mrkdwn(`_${slackEscape(view.sender)} → ${slackEscape(view.receiver)}, continued ${i + 1}/${chunks.length}_`)] });
    }
    for (const s of sections) blocks.push({ type: 'section', text: mrkdwn(s) });
    if (i === chunks.length - 1) blocks.push(...note);
    return { text: i === 0 ? notification : fitText(`${notification} (${i + 1}/${chunks.length})`, SLACK_LIMITS.notificationText, () => '…'), blocks };
  });
}

/** A short reply under a message's post (`laterPhases: reply`): `✓ received by developer`. */
export function renderStatusReply(status: MessageStatus, receiver: string, note?: string): SlackMessage {
  const line = status === 'received' ? `✓ received by ${receiver}` : `✗ failed`;
  const text = note ? `${line}  ·  ${note}` : line;
  return { text: fitText(slackEscape(line), SLACK_LIMITS.notificationText, () => '…'), blocks: [{ type: 'context', elements: [mrkdwn(slackEscape(text))] }] };
}

/** Short lifecycle lines (already escaped mrkdwn) as one post of context lines. */
export function renderLines(lines: readonly string[], plain: readonly string[]): SlackMessage {
  const blocks: SlackBlock[] = lines.slice(0, SLACK_LIMITS.blocks).map((line) => ({ type: 'context', elements: [mrkdwn(fitText(line, SLACK_LIMITS.sectionText))] }));
  return { text: fitText(slackEscape(plain.join(' · ')), SLACK_LIMITS.notificationText, () => '…'), blocks };
}

/** The parent of a session's thread (`layout: thread`), and its summary once the session ended. */
export function renderThreadParent(session: string, line: string, plain: string): SlackMessage {
  return {
    text: fitText(slackEscape(`CAO session ${session}: ${plain}`), SLACK_LIMITS.notificationText, () => '…'),
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: fitText(session, SLACK_LIMITS.headerText, () => '…') } },
      { type: 'context', elements: [mrkdwn(fitText(line, SLACK_LIMITS.sectionText))] },
    ],
  };
}

/** A channel topic (plain text, no formatting, at most 250 characters). */
export function renderTopic(text: string): string {
  return fitText(text.replace(/\s+/g, ' ').trim(), SLACK_LIMITS.topic, () => '…');
}

/** Slack's date token: every reader sees the time in their own time zone. */
export function slackDate(ms: number, format = '{date_short_pretty} {time_secs}'): string {
  return `<!date^${Math.floor(ms / 1000)}^${format}|${new Date(ms).toISOString()}>`;
}

/** `2026-12-02 10:02 UTC` (topics take no formatting). */
export function plainDate(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** Every block's text, for size checks. */
export function messageChars(message: SlackMessage): number {
  return chars(message.blocks);
}
