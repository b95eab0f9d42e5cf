/**
 * The conversation model of the Slack sink: which of a session's events become posts, which
 * become edits, reactions or quiet replies of an earlier post, and which are not shown again.
 * Pure: it reads and returns a session record (never touching the one it was given) and the
 * steps of a plan.
 *
 * - Every agent message is one post (several for a very long one), at its first phase: usually
 *   `dispatched`. A later phase of the same message (`delivered`; `failed`) is shown on that post
 *   as configured (`laterPhases`: edit, reaction, reply, post, hide). A later phase whose first
 *   post the sink never made is posted as the message. A handoff's result (`completed`) is a new
 *   message from the worker back to its caller.
 * - Lifecycle events are short lines; consecutive ones share a post.
 * - Re-sightings are not shown again: after a restart of cao-events the core reports a running
 *   session and its terminals anew; a session already started, a terminal already shown (and not
 *   left) are skipped. A `session_created` after the session ended is a new run: a new thread
 *   (thread layout), a line in the same channel or a new channel if it was archived (channel layout).
 * - Events whose step is done (posted before a crash, replayed) are skipped.
 */
import { createHash } from 'node:crypto';
import type { CaoEventData } from '../../transform.ts';
import { agentLabel, dataOf, eventTimeMs } from '../text.ts';
import type { CaoCloudEventLike } from '../types.ts';
import { type SlackStep, partKey } from './plan.ts';
import {
  type MessageKind,
  type MessageStatus,
  type MessageView,
  plainDate,
  renderLines,
  renderMessage,
  renderStatusReply,
  renderThreadParent,
  renderTopic,
  slackDate,
} from './present.ts';
import { slackEscape } from './rules.ts';
import { type OpenMessage, type SlackLayout, type SlackSessionRecord, boundRecord, cloneRecord, freshRecord, isDone } from './session-record.ts';

export const LATER_PHASES = ['edit', 'reaction', 'reply', 'post', 'hide'] as const;
export type LaterPhases = (typeof LATER_PHASES)[number];

export interface ConversationOptions {
  layout: SlackLayout;
  laterPhases: LaterPhases;
  /** Show the internal vocabulary (orchestration type, phase, observer, exact time). */
  details: boolean;
  /** Channel layout: set the topic (at creation, and a summary at the end). */
  topic: boolean;
  /** Channel layout: archive the channel when the session ends. */
  archive: boolean;
}

/** The reaction a received message gets (`laterPhases: reaction`). */
export const RECEIVED_REACTION = 'inbox_tray';
/** Events older than this when posted show when they happened. */
const LATE_MS = 60_000;

export interface PlannedBatch {
  record: SlackSessionRecord;
  steps: SlackStep[];
  /** Per event of the batch, the index of the last step that shows it (-1: shown by none). */
  lastStepOf: number[];
}

function digestOf(text: string | undefined): string {
  return createHash('sha256').update(text ?? '').digest('hex').slice(0, 16);
}

const KIND: Record<string, MessageKind> = { send_message: 'message', assign: 'task', handoff: 'handoff' };

export function planBatch(
  session: string,
  events: readonly CaoCloudEventLike[],
  stored: SlackSessionRecord | undefined,
  options: ConversationOptions,
  now: number,
): PlannedBatch {
  let record = stored ? cloneRecord(stored) : freshRecord(options.layout, now);
  if (record.layout !== options.layout) record = freshRecord(options.layout, now);
  const steps: SlackStep[] = [];
  const lastStepOf: number[] = events.map(() => -1);
  let lines: { text: string[]; plain: string[]; ids: string[]; at: number[] } = { text: [], plain: [], ids: [], at: [] };
  let endSteps: SlackStep[] = [];

  const push = (step: SlackStep, eventIndexes: number[]): void => {
    steps.push(step);
    for (const i of eventIndexes) lastStepOf[i] = steps.length - 1;
  };
  const flush = (): void => {
    if (lines.ids.length === 0) return;
    const indexes = lines.at;
    push({ op: 'post', key: lines.ids[0]!, covers: lines.ids, message: renderLines(lines.text, lines.plain) }, indexes);
    lines = { text: [], plain: [], ids: [], at: [] };
  };
  const line = (index: number, id: string, text: string, plain: string): void => {
    lines.text.push(text);
    lines.plain.push(plain);
    lines.ids.push(id);
    lines.at.push(index);
  };

  /** The name shown for a terminal: its agent profile, numbered when another terminal already shows that name. */
  const nameOf = (terminalId: string | undefined, agent: string | undefined): string => {
    if (!terminalId) return agentLabel(agent, undefined);
    const known = record.names[terminalId];
    if (known) return known;
    const base = agentLabel(agent, terminalId);
    const taken = new Set(Object.values(record.names));
    let name = base;
    for (let n = 2; taken.has(name); n++) name = `${base} ${n}`;
    record.names[terminalId] = name;
    return name;
  };

  const noteFor = (event: CaoCloudEventLike, data: CaoEventData): string | undefined => {
    const ms = eventTimeMs(event.time);
    const parts: string[] = [];
    if (options.details) {
      parts.push(...[data.orchestration_type, data.phase, data.observed_by && `observed by ${data.observed_by}`].filter((x): x is string => Boolean(x)).map(slackEscape));
      if (ms !== undefined) parts.push(slackDate(ms));
    } else if (ms !== undefined && now - ms > LATE_MS) {
      parts.push(slackDate(ms));
    }
    return parts.length > 0 ? parts.join('  ·  ') : undefined;
  };

  const lineNote = (event: CaoCloudEventLike, data: CaoEventData): string => {
    const note = noteFor(event, data);
    return note ? `  ·  ${note}` : '';
  };

  events.forEach((event, index) => {
    const data = dataOf(event);
    const id = event.id;
    if (isDone(record, id)) return;
    if (record.archived && data.event_type !== 'session_created') return; // the channel was closed at the session's end
    const ms = eventTimeMs(event.time) ?? now;
    record.since ??= ms;
    switch (data.event_type) {
      case 'session_created': {
        if (record.started && !record.ended) return; // seen again (a restart of cao-events)
        if (record.ended) {
          flush();
          const previous = record;
          record = freshRecord(options.layout, now);
          if (options.layout === 'channel') {
            record.generation = previous.generation;
            if (!previous.archived && previous.channel) {
              record.channel = previous.channel;
              record.channelName = previous.channelName;
            }
            record.lost = previous.lost;
          }
          record.since = ms;
        }
        record.started = true;
        if (options.layout === 'thread' && !record.thread) {
          // the thread's parent says it; nothing more to post
          const parentIndex = index;
          lastStepOf[parentIndex] = -2; // shown by the place step
          return;
        }
        line(index, id, `:large_green_circle: Session *${slackEscape(session)}* started${lineNote(event, data)}`, `session ${session} started`);
        return;
      }
      case 'terminal_created': {
        const tid = data.terminal_id;
        if (tid && record.names[tid] && !record.left.includes(tid)) return;
        if (tid) record.left = record.left.filter((t) => t !== tid);
        const name = nameOf(tid, data.agent_name);
        const provider = data.provider ? ` (${slackEscape(data.provider)})` : '';
        line(index, id, `:heavy_plus_sign: *${slackEscape(name)}* joined${provider}${lineNote(event, data)}`, `${name} joined`);
        return;
      }
      case 'terminal_killed': {
        const tid = data.terminal_id;
        if (tid && record.left.includes(tid)) return;
        if (tid) record.left.push(tid);
        const name = nameOf(tid, data.agent_name);
        line(index, id, `:heavy_minus_sign: *${slackEscape(name)}* left${lineNote(event, data)}`, `${name} left`);
        return;
      }
      case 'session_killed': {
        if (record.ended) return;
        record.ended = true;
        line(index, id, `:red_circle: Session ended${lineNote(event, data)}`, 'session ended');
        flush();
        endSteps = endOfSession(id, ms);
        for (const step of endSteps) push(step, [index]);
        endSteps = [];
        return;
      }
      case 'message_sent':
        flush();
        message(index, event, data);
        return;
    }
  });
  flush();

  function view(event: CaoCloudEventLike, data: CaoEventData, kind: MessageKind, status?: MessageStatus): MessageView {
    const note = noteFor(event, data);
    return {
      kind,
      sender: nameOf(data.sender, data.sender_agent),
      receiver: nameOf(data.receiver, data.receiver_agent),
      ...(data.message !== undefined ? { text: data.message } : {}),
      ...(status ? { status } : {}),
      ...(note ? { note } : {}),
    };
  }

  function postMessage(index: number, id: string, v: MessageView, open?: Omit<OpenMessage, 'post'>): void {
    const parts = renderMessage(v, options.layout === 'webhook' ? 1 : undefined);
    parts.forEach((part, i) => push({ op: 'post', key: partKey(id, i + 1), covers: i === parts.length - 1 ? [id] : [], message: part }, [index]));
    record.messages += 1;
    if (open) record.open.push({ ...open, post: partKey(id, 1) });
  }

  function findOpen(match: (o: OpenMessage) => boolean): OpenMessage | undefined {
    const at = record.open.findIndex(match);
    if (at < 0) return undefined;
    return record.open.splice(at, 1)[0];
  }

  function message(index: number, event: CaoCloudEventLike, data: CaoEventData): void {
    const id = event.id;
    const orchestration = data.orchestration_type ?? 'send_message';
    const kind = KIND[orchestration] ?? 'message';
    const digest = digestOf(data.message);
    const opening: Omit<OpenMessage, 'post'> = {
      orchestration,
      ...(data.sender ? { sender: data.sender } : {}),
      ...(data.receiver ? { receiver: data.receiver } : {}),
      ...(data.receiver_agent ? { receiverAgent: data.receiver_agent } : {}),
      digest,
    };
    switch (data.phase) {
      case 'completed': {
        // the worker's answer: a message of its own, back to the caller
        findOpen((o) => o.orchestration === orchestration && o.sender === data.receiver && (o.receiverAgent === undefined || o.receiverAgent === data.sender_agent));
        postMessage(index, id, view(event, data, 'result'));
        return;
      }
      case 'delivered':
      case 'failed': {
        const status: MessageStatus = data.phase === 'delivered' ? 'received' : 'failed';
        const open = findOpen(
          (o) =>
            o.orchestration === orchestration &&
            o.digest === digest &&
            o.sender === data.sender &&
            (o.receiver === undefined || data.receiver === undefined ? o.receiverAgent === data.receiver_agent : o.receiver === data.receiver),
        );
        const full = view(event, data, kind, status);
        const closedKey = `${orchestration}|${data.sender ?? ''}|${digest}|${data.phase}`;
        if (open) record.closed.push(closedKey);
        else {
          const again = record.closed.indexOf(closedKey);
          if (again >= 0) {
            // the same later phase reported again (a source that restarted): shown already
            record.closed.splice(again, 1);
            return;
          }
        }
        if (!open) {
          // its first phase was never shown here (not observed, filtered, or before a restart without state): this is the message
          postMessage(index, id, full);
          return;
        }
        const first = renderMessage(full)[0]!;
        const mode: LaterPhases = status === 'failed' && options.layout !== 'webhook' ? 'edit' : options.laterPhases;
        switch (mode) {
          case 'edit':
            push({ op: 'update', key: `${id}:edit`, target: open.post, message: first }, [index]);
            break;
          case 'reaction':
            push({ op: 'react', key: `${id}:react`, target: open.post, name: RECEIVED_REACTION, fallback: first }, [index]);
            break;
          case 'reply':
            push({ op: 'post', key: id, covers: [id], under: open.post, message: renderStatusReply(status, full.receiver, full.note) }, [index]);
            break;
          case 'post':
            postMessage(index, id, full);
            break;
          case 'hide':
            break;
        }
        if (status === 'failed') {
          line(index, id, `:warning: The ${kind === 'message' ? 'message' : kind} from *${slackEscape(full.sender)}* to *${slackEscape(full.receiver)}* failed`, `${full.sender} → ${full.receiver} failed`);
          flush();
        }
        return;
      }
      default: {
        postMessage(index, id, view(event, data, kind), opening);
        return;
      }
    }
  }

  function summary(): { agents: string[]; line: string; plain: string } {
    const agents = [...new Set(Object.values(record.names))];
    const count = `${record.messages} message${record.messages === 1 ? '' : 's'}`;
    return {
      agents,
      line: `${count}${agents.length > 0 ? ` between ${agents.map((a) => `*${slackEscape(a)}*`).join(', ')}` : ''}`,
      plain: `${count}${agents.length > 0 ? ` between ${agents.join(', ')}` : ''}`,
    };
  }

  function endOfSession(id: string, ms: number): SlackStep[] {
    const out: SlackStep[] = [];
    const s = summary();
    if (options.layout === 'thread') {
      const since = record.since ?? ms;
      out.push({
        op: 'update',
        key: `${id}:summary`,
        target: 'root',
        message: renderThreadParent(session, `CAO session  ·  ${slackDate(since, '{date_short_pretty} {time}')} – ${slackDate(ms, '{time}')}  ·  ${s.line}`, `ended, ${s.plain}`),
      });
    } else if (options.layout === 'channel') {
      if (options.topic) out.push({ op: 'topic', key: `${id}:topic`, topic: renderTopic(`CAO session ${session} · ended ${plainDate(ms)} · ${s.plain}`) });
      if (options.archive) out.push({ op: 'archive', key: `${id}:archive` });
    }
    return out;
  }

  // The place comes first: the thread (its parent says when the session started) or the channel.
  if (options.layout !== 'webhook' && steps.length + lastStepOf.filter((x) => x === -2).length > 0) {
    const since = record.since ?? now;
    const started = record.started
      ? `CAO session  ·  started ${slackDate(since, '{date_short_pretty} {time}')}`
      : `CAO session  ·  followed since ${slackDate(since, '{date_short_pretty} {time}')}`;
    const place: SlackStep =
      options.layout === 'thread'
        ? { op: 'place', parent: renderThreadParent(session, started, record.started ? 'started' : 'followed') }
        : { op: 'place', ...(options.topic ? { topic: renderTopic(`CAO session ${session} · started ${plainDate(since)} · the agents' messages, one post each`) } : {}) };
    steps.unshift(place);
    for (let i = 0; i < lastStepOf.length; i++) lastStepOf[i] = lastStepOf[i] === -2 ? 0 : lastStepOf[i]! >= 0 ? lastStepOf[i]! + 1 : -1;
  }
  record.updatedAt = now;
  boundRecord(record);
  return { record, steps, lastStepOf };
}
