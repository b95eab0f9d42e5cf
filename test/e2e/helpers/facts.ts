/**
 * Expected CloudEvents as "facts": the fields a test checks, nothing else, so that events may gain
 * fields without breaking a table. Add a key to `Fact` and to FIELDS to check a new field.
 */
import type { CloudEventV1 } from 'cloudevents';
import type { CaoEventData } from '../../../exporters/transform.ts';

export type Source = 'gateway' | 'poller' | 'plugin';

export interface Fact {
  type: 'session_created' | 'session_killed' | 'terminal_created' | 'terminal_killed' | 'message_sent';
  session: string;
  terminal?: string;
  agent?: string;
  orch?: 'send_message' | 'handoff' | 'assign';
  phase?: 'dispatched' | 'delivered' | 'completed' | 'failed';
  /** null: the event must not carry one. */
  sender?: string | null;
  receiver?: string | null;
  /** Agent profiles of the sender and receiver terminals (message_sent); null: must not carry one. */
  senderAgent?: string | null;
  receiverAgent?: string | null;
  /** Exact text, or a pattern; null: no message. */
  message?: string | RegExp | null;
  /** Sources allowed to be the first to report it (the ledger keeps the first report). */
  by?: Source[];
}

/** A fact that must arrive exactly once. */
export interface Expectation {
  fact: Fact;
}

/** A fact this observer cannot see, and why (asserted absent: a source must not invent it). */
export interface Unseen {
  fact: Fact;
  why: string;
}

const FIELDS: Array<[keyof Fact, keyof CaoEventData | 'subject']> = [
  ['session', 'subject'],
  ['terminal', 'terminal_id'],
  ['agent', 'agent_name'],
  ['orch', 'orchestration_type'],
  ['phase', 'phase'],
  ['sender', 'sender'],
  ['receiver', 'receiver'],
  ['senderAgent', 'sender_agent'],
  ['receiverAgent', 'receiver_agent'],
  ['message', 'message'],
];

export function typeOf(e: CloudEventV1<CaoEventData>): string {
  return String(e.type).split('.').pop() ?? '';
}

export function matches(fact: Fact, e: CloudEventV1<CaoEventData>): boolean {
  if (typeOf(e) !== fact.type) return false;
  const data = (e.data ?? {}) as Record<string, unknown>;
  for (const [key, field] of FIELDS) {
    const want = fact[key];
    if (want === undefined) continue;
    const got = field === 'subject' ? e.subject : data[field];
    if (want === null) {
      if (got !== undefined && got !== null) return false;
    } else if (want instanceof RegExp) {
      if (typeof got !== 'string' || !want.test(got)) return false;
    } else if (got !== want) return false;
  }
  if (fact.by && !fact.by.includes(data.observed_by as Source)) return false;
  return true;
}

export function describeFact(f: Fact): string {
  const parts: string[] = [f.type, f.session];
  if (f.terminal) parts.push(`terminal=${f.terminal}`);
  if (f.agent) parts.push(`agent=${f.agent}`);
  if (f.orch) parts.push(`${f.orch}/${f.phase}`);
  if (f.sender !== undefined || f.receiver !== undefined) parts.push(`${f.sender ?? '-'}→${f.receiver ?? '-'}`);
  if (f.senderAgent !== undefined || f.receiverAgent !== undefined) parts.push(`(${f.senderAgent ?? '-'}→${f.receiverAgent ?? '-'})`);
  if (f.message !== undefined) parts.push(f.message instanceof RegExp ? String(f.message) : JSON.stringify(f.message));
  if (f.by) parts.push(`by ${f.by.join('|')}`);
  return parts.join(' ');
}

export function describeEvent(e: CloudEventV1<CaoEventData>): string {
  const d = (e.data ?? {}) as Record<string, unknown>;
  const parts: string[] = [typeOf(e), String(e.subject)];
  if (d.terminal_id) parts.push(`terminal=${d.terminal_id}`);
  if (d.agent_name) parts.push(`agent=${d.agent_name}`);
  if (d.orchestration_type) parts.push(`${d.orchestration_type}/${d.phase}`);
  if (d.sender || d.receiver) parts.push(`${d.sender ?? '-'}→${d.receiver ?? '-'}`);
  if (d.sender_agent || d.receiver_agent) parts.push(`(${d.sender_agent ?? '-'}→${d.receiver_agent ?? '-'})`);
  if (d.message !== undefined) parts.push(JSON.stringify(String(d.message)).slice(0, 80));
  parts.push(`by ${d.observed_by}`);
  return parts.join(' ');
}

export interface Verdict {
  /** Required facts not received, or received more than once. */
  problems: string[];
  /** Events that match no expectation, known-wrong or todo fact. */
  unexpected: string[];
}

/**
 * Every expectation must match exactly one event, no event two expectations; every event must
 * match an expectation.
 */
export function judge(events: Array<CloudEventV1<CaoEventData>>, expected: Expectation[]): Verdict {
  const problems: string[] = [];
  const claimed = new Set<number>();
  for (const { fact } of expected) {
    const hits = events.flatMap((e, i) => (matches(fact, e) ? [i] : []));
    if (hits.length === 0) problems.push(`missing: ${describeFact(fact)}`);
    if (hits.length > 1) problems.push(`${hits.length} events for one fact: ${describeFact(fact)}:\n    ${hits.map((i) => describeEvent(events[i]!)).join('\n    ')}`);
    for (const i of hits) {
      if (claimed.has(i)) problems.push(`event matches two facts: ${describeEvent(events[i]!)}`);
      claimed.add(i);
    }
  }
  const unexpected = events.flatMap((e, i) => (claimed.has(i) ? [] : [describeEvent(e)]));
  return { problems, unexpected };
}
