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
 * - The record given is never changed; what the plan changes in it (started, joined, open
 *   messages…) travels as `marks` on the steps and is applied by whoever carries a step out, once
 *   Slack did it. A plan that never ran (a crash, a give-up) changed nothing: the same events
 *   planned again are shown as if for the first time; a step already done is skipped by its key.
 */
import { createHash } from 'node:crypto';
import type { CaoEventData } from '../../transform.ts';
import { agentLabel, dataOf, eventTimeMs, readableMessage } from '../text.ts';
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
import { type OpenMessage, type SlackLayout, type SlackSessionRecord, type StepMarks, applyMarks, boundRecord, cloneRecord, freshRecord } from './session-record.ts';

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
  /** The record to keep now: the names shown for agents, when the session was first seen, a new run's fresh record. */
  record: SlackSessionRecord;
  steps: SlackStep[];
  /** Per event of the batch, the index of the last step that shows it (-1: shown by none). */
  lastStepOf: number[];
  /** Events planned, a prefix of the batch: a new run of the session starts a plan of its own. */
  consumed: number;
}

function digestOf(text: string | undefined): string {
  return createHash('sha256').update(text ?? '').digest('hex').slice(0, 16);
}

const KIND: Record<string, MessageKind> = { send_message: 'message', assign: 'task', handoff: 'handoff' };

function mergeMarks(a: StepMarks, b: StepMarks): StepMarks {
  return {
    ...(a.started || b.started ? { started: true } : {}),
    ...(a.ended || b.ended ? { ended: true } : {}),
    ...(a.joined || b.joined ? { joined: [...(a.joined ?? []), ...(b.joined ?? [])] } : {}),
    ...(a.left || b.left ? { left: [...(a.left ?? []), ...(b.left ?? [])] } : {}),
    ...(a.messages || b.messages ? { messages: (a.messages ?? 0) + (b.messages ?? 0) } : {}),
    ...(a.open || b.open ? { open: [...(a.open ?? []), ...(b.open ?? [])] } : {}),
    ...(a.close || b.close ? { close: [...(a.close ?? []), ...(b.close ?? [])] } : {}),
  };
}

export function planBatch(
  session: string,
  events: readonly CaoCloudEventLike[],
  stored: SlackSessionRecord | undefined,
  options: ConversationOptions,
  now: number,
): PlannedBatch {
  /** What is kept now (never the effects of steps: those come with their marks). */
  let base = stored && stored.layout === options.layout ? cloneRecord(stored) : freshRecord(options.layout, now);
  /** The session as this plan will have left it, for the decisions within the batch. */
  let state = cloneRecord(base);
  const steps: SlackStep[] = [];
  const lastStepOf: number[] = events.map(() => -1);
  let consumed = events.length;
  let placeMarks: StepMarks = {};
  let lines: { text: string[]; plain: string[]; ids: string[]; at: number[]; marks: StepMarks } = { text: [], plain: [], ids: [], at: [], marks: {} };

  const push = (step: SlackStep, eventIndexes: number[]): void => {
    if (step.marks) applyMarks(state, step.marks);
    steps.push(step);
    for (const i of eventIndexes) lastStepOf[i] = steps.length - 1;
  };
  const flush = (): void => {
    if (lines.ids.length === 0) return;
    const { marks, at } = lines;
    push({ op: 'post', key: lines.ids[0]!, covers: lines.ids, message: renderLines(lines.text, lines.plain), marks }, at);
    lines = { text: [], plain: [], ids: [], at: [], marks: {} };
  };
  const line = (index: number, id: string, text: string, plain: string, marks: StepMarks = {}): void => {
    lines.text.push(text);
    lines.plain.push(plain);
    lines.ids.push(id);
    lines.at.push(index);
    lines.marks = mergeMarks(lines.marks, marks);
    applyMarks(state, marks);
  };

  /** The name shown for a terminal: its agent profile, numbered when another terminal already shows that name. */
  const nameOf = (terminalId: string | undefined, agent: string | undefined): string => {
    if (!terminalId) return agentLabel(agent, undefined);
    const known = state.names.find(([id]) => id === terminalId);
    if (known) return known[1];
    const label = agentLabel(agent, terminalId);
    const taken = new Set(state.names.map(([, shown]) => shown));
    let name = label;
    for (let n = 2; taken.has(name); n++) name = `${label} ${n}`;
    state.names.push([terminalId, name]);
    base.names.push([terminalId, name]);
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

  for (let index = 0; index < events.length; index++) {
    const event = events[index]!;
    const data = dataOf(event);
    const id = event.id;
    if (state.archived && data.event_type !== 'session_created') continue; // the channel was closed at the session's end
    const ms = eventTimeMs(event.time) ?? now;
    if (state.since === undefined) {
      state.since = ms;
      base.since = ms;
    }
    switch (data.event_type) {
      case 'session_created': {
        if (state.started && !state.ended) continue; // seen again (a restart of cao-events)
        if (state.ended) {
          // a new run of the session under the same name: a plan of its own
          flush();
          if (steps.length > 0) {
            consumed = index;
            break;
          }
          const previous = base;
          base = freshRecord(options.layout, now);
          if (options.layout === 'channel') {
            if (previous.generation !== undefined) base.generation = previous.generation;
            if (!previous.archived && previous.channel) {
              base.channel = previous.channel;
              if (previous.channelName) base.channelName = previous.channelName;
            }
            if (previous.lost) base.lost = previous.lost;
          }
          base.since = ms;
          state = cloneRecord(base);
        }
        if (options.layout === 'thread' && !state.thread) {
          // the thread's parent says it started; nothing more to post
          placeMarks = { started: true };
          applyMarks(state, placeMarks);
          lastStepOf[index] = -2;
          continue;
        }
        line(index, id, `:large_green_circle: Session *${slackEscape(session)}* started${lineNote(event, data)}`, `session ${session} started`, { started: true });
        continue;
      }
      case 'terminal_created': {
        const tid = data.terminal_id;
        if (tid && state.joined.includes(tid)) continue; // seen again
        const name = nameOf(tid, data.agent_name);
        const provider = data.provider ? ` (${slackEscape(data.provider)})` : '';
        line(index, id, `:heavy_plus_sign: *${slackEscape(name)}* joined${provider}${lineNote(event, data)}`, `${name} joined`, tid ? { joined: [tid] } : {});
        continue;
      }
      case 'terminal_killed': {
        const tid = data.terminal_id;
        if (tid && state.left.includes(tid)) continue;
        const name = nameOf(tid, data.agent_name);
        line(index, id, `:heavy_minus_sign: *${slackEscape(name)}* left${lineNote(event, data)}`, `${name} left`, tid ? { left: [tid] } : {});
        continue;
      }
      case 'session_killed': {
        if (state.ended) continue;
        line(index, id, `:red_circle: Session ended${lineNote(event, data)}`, 'session ended', { ended: true });
        flush();
        for (const step of endOfSession(id, ms)) push(step, [index]);
        continue;
      }
      case 'message_sent':
        flush();
        message(index, event, data);
        continue;
    }
    if (consumed < events.length) break;
  }
  flush();

  function view(event: CaoCloudEventLike, data: CaoEventData, kind: MessageKind, status?: MessageStatus): MessageView {
    const note = noteFor(event, data);
    return {
      kind,
      sender: nameOf(data.sender, data.sender_agent),
      receiver: nameOf(data.receiver, data.receiver_agent),
      ...(data.message !== undefined ? { text: options.details ? data.message : readableMessage(data.message) } : {}),
      ...(status ? { status } : {}),
      ...(note ? { note } : {}),
    };
  }

  function postMessage(index: number, id: string, v: MessageView, marks: StepMarks = {}): void {
    const parts = renderMessage(v, options.layout === 'webhook' ? 1 : undefined);
    parts.forEach((part, i) =>
      push(
        {
          op: 'post',
          key: partKey(id, i + 1),
          covers: i === parts.length - 1 ? [id] : [],
          message: part,
          ...(i === 0 ? { marks: mergeMarks({ messages: 1 }, marks) } : {}),
        },
        [index],
      ),
    );
  }

  function findOpen(match: (o: OpenMessage) => boolean): OpenMessage | undefined {
    return state.open.find(match);
  }

  function message(index: number, event: CaoCloudEventLike, data: CaoEventData): void {
    const id = event.id;
    const orchestration = data.orchestration_type ?? 'send_message';
    const kind = KIND[orchestration] ?? 'message';
    const digest = digestOf(data.message);
    switch (data.phase) {
      case 'completed': {
        // the worker's answer: a message of its own, back to the caller
        const open = findOpen((o) => o.orchestration === orchestration && o.sender === data.receiver && (o.receiverAgent === undefined || o.receiverAgent === data.sender_agent));
        postMessage(index, id, view(event, data, 'result'), open ? { close: [{ post: open.post, key: `${orchestration}|${data.receiver ?? ''}|completed` }] } : {});
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
        if (!open) {
          // the same later phase reported again (a source that restarted): shown already
          if (state.closed.includes(closedKey)) return;
          // its first phase was never shown here (not observed, filtered, or before a restart without state): this is the message
          postMessage(index, id, full);
          return;
        }
        const close: StepMarks = { close: [{ post: open.post, key: closedKey }] };
        const first = renderMessage(full)[0]!;
        const mode: LaterPhases = status === 'failed' && options.layout !== 'webhook' ? 'edit' : options.laterPhases;
        switch (mode) {
          case 'edit':
            push({ op: 'update', key: `${id}:edit`, target: open.post, message: first, marks: close }, [index]);
            break;
          case 'reaction':
            push({ op: 'react', key: `${id}:react`, target: open.post, name: RECEIVED_REACTION, fallback: first, marks: close }, [index]);
            break;
          case 'reply':
            push({ op: 'post', key: id, covers: [id], under: open.post, message: renderStatusReply(status, full.receiver, full.note), marks: close }, [index]);
            break;
          case 'post':
            postMessage(index, id, full, close);
            break;
          case 'hide':
            break;
        }
        if (status === 'failed') {
          line(index, `${id}:failed`, `:warning: The ${kind === 'message' ? 'message' : kind} from *${slackEscape(full.sender)}* to *${slackEscape(full.receiver)}* failed`, `${full.sender} → ${full.receiver} failed`);
          flush();
        }
        return;
      }
      default: {
        const opening: OpenMessage = {
          orchestration,
          ...(data.sender ? { sender: data.sender } : {}),
          ...(data.receiver ? { receiver: data.receiver } : {}),
          ...(data.receiver_agent ? { receiverAgent: data.receiver_agent } : {}),
          digest,
          post: partKey(id, 1),
        };
        postMessage(index, id, view(event, data, kind), { open: [opening] });
        return;
      }
    }
  }

  function summary(): { line: string; plain: string } {
    const agents = [...new Set(state.names.map(([, shown]) => shown))];
    const count = `${state.messages} message${state.messages === 1 ? '' : 's'}`;
    return {
      line: `${count}${agents.length > 0 ? ` between ${agents.map((a) => `*${slackEscape(a)}*`).join(', ')}` : ''}`,
      plain: `${count}${agents.length > 0 ? ` between ${agents.join(', ')}` : ''}`,
    };
  }

  function endOfSession(id: string, ms: number): SlackStep[] {
    const out: SlackStep[] = [];
    const s = summary();
    if (options.layout === 'thread') {
      const since = state.since ?? ms;
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
  if (options.layout !== 'webhook' && (steps.length > 0 || placeMarks.started)) {
    const since = state.since ?? now;
    const started = placeMarks.started || base.started;
    const line = `CAO session  ·  ${started ? 'started' : 'followed since'} ${slackDate(since, '{date_short_pretty} {time}')}`;
    const place: SlackStep =
      options.layout === 'thread'
        ? { op: 'place', parent: renderThreadParent(session, line, started ? 'started' : 'followed'), ...(placeMarks.started ? { marks: placeMarks } : {}) }
        : { op: 'place', ...(options.topic ? { topic: renderTopic(`CAO session ${session} · started ${plainDate(since)} · the agents' messages, one post each`) } : {}) };
    steps.unshift(place);
    for (let i = 0; i < lastStepOf.length; i++) lastStepOf[i] = lastStepOf[i] === -2 ? 0 : lastStepOf[i]! >= 0 ? lastStepOf[i]! + 1 : -1;
  }
  base.updatedAt = now;
  boundRecord(base);
  return { record: base, steps, lastStepOf, consumed };
}
