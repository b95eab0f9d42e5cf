/**
 * A plan: what the Slack renderer asks the Web API sender to do for one batch of a session's
 * events, in order. It is the request body the delivery queue keeps and resends on a retry, so
 * every step is idempotent by its key: the sender records each step it finished in the session
 * map and skips it when the plan comes again (a retry, a replay, the same events after a
 * restart). Values that only Slack knows (the channel id, the thread ts, a post's ts) are looked
 * up in the session map when the step runs, never written into the plan.
 */
import type { SlackMessage } from './present.ts';
import type { StepMarks } from './session-record.ts';

export type SlackStep = (
  /** Make sure the session has its place: thread layout, the thread (its parent post); channel layout, its channel (topic, invitees). */
  | { op: 'place'; parent?: SlackMessage; topic?: string }
  /** A post; `under`: a quiet reply in the thread of that post (channel layout). `covers`: the event ids it shows. */
  | { op: 'post'; key: string; covers: string[]; message: SlackMessage; under?: string }
  /** Replace a post's content; when that post was never made (or is gone), post `message` instead. */
  | { op: 'update'; key: string; target: string; message: SlackMessage }
  /** A reaction on a post; when the post is unknown, post `fallback` instead. */
  | { op: 'react'; key: string; target: string; name: string; fallback: SlackMessage }
  | { op: 'topic'; key: string; topic: string }
  | { op: 'archive'; key: string }
) & {
  /** What the step changes in the session map once carried out (see session-record.ts). */
  marks?: StepMarks;
};

export interface SlackPlan {
  session: string;
  steps: SlackStep[];
}

/** The key a post step records as done for part `n` (1-based) of an event's message. */
export function partKey(eventId: string, part: number): string {
  return part === 1 ? eventId : `${eventId}#${part}`;
}
