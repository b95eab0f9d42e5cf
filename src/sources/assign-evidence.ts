/**
 * When did an `assign` reach its worker, or fail to? Pure rules over what CAO's GET endpoints
 * show of a worker, used by the poller (I/O stays there). From CAO's source and real runs
 * (2.1.1, 2.4.1, 2.5.4):
 *
 * - CAO ≥ 2.3 types a deferred assign's task inside the server, seconds after the create call
 *   returned: initialize the CLI (the pane's shell reads `processing`, then the CLI `idle`),
 *   type the task, then confirm the worker started (`processing`, `completed` or
 *   `waiting_user_answer`), re-typing it up to 3 times. No HTTP passes through a gateway then.
 * - 2.5.x keeps its own record of that delivery on the terminal: `initial_delivery` =
 *   `{state: pending|delivered|failed, kind?, message?}` in `GET /terminals/{id}` (null when the
 *   terminal had no deferred task), written `delivered` once CAO saw the worker start. While it
 *   is pending CAO reports an `idle`/`completed` worker as `unknown`.
 * - 2.4.x has no such record: the evidence is a status only input can cause — `completed`, or
 *   `processing` / `waiting_user_answer` after the worker was seen ready (`idle`). The first
 *   `processing` is the pane's shell before the CLI starts, not the task. Nothing tells an
 *   assign worker from a handoff (run-step) worker there (both carry `caller_id`), so only a
 *   worker another source saw being assigned (the core's state) is watched.
 * - 2.1.x types the task from the client (`POST /terminals/{id}/input?orchestration_type=assign`,
 *   after the worker is ready): the same status evidence, once the dispatch is known.
 * - A worker whose CLI never starts (≥ 2.3): CAO writes its caller an inbox message *from the
 *   worker*, `Worker <w> failed to initialize: …` (or `… received the assigned task but never
 *   started …`, `… is waiting on an interactive prompt …`), then deletes the worker (not in the
 *   prompt case). The message stays `pending` (no delivery is triggered until CAO's 30 s sweep).
 */

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** What `GET /terminals/{id}` tells about a worker's task. */
export interface WorkerRead {
  status?: string;
  callerId?: string;
  /**
   * 2.5.x: the terminal's `initial_delivery.state`; `null` when the server keeps the record but
   * the terminal has none (no deferred task); undefined when the server has no such field.
   */
  initialDelivery?: string | null;
  /** 2.5.x: `initial_delivery.message` (CAO's reason when it failed). */
  initialDeliveryMessage?: string;
}

/** Parses `GET /terminals/{id}`; undefined when it is not a terminal. */
export function parseWorkerRead(v: unknown): WorkerRead | undefined {
  if (!isObject(v) || typeof v.id !== 'string') return undefined;
  const read: WorkerRead = {};
  if (typeof v.status === 'string' && v.status !== '') read.status = v.status;
  if (typeof v.caller_id === 'string' && v.caller_id !== '') read.callerId = v.caller_id;
  if ('initial_delivery' in v) {
    const d = v.initial_delivery;
    read.initialDelivery = isObject(d) && typeof d.state === 'string' ? d.state : null;
    if (isObject(d) && typeof d.message === 'string' && d.message !== '') read.initialDeliveryMessage = d.message;
  }
  return read;
}

/** What the poller has seen of one worker so far. */
export interface WorkerView {
  /** Seen `idle`: the CLI was ready, so a later `processing` follows input. */
  idleSeen: boolean;
  /** 2.5.x record (see WorkerRead.initialDelivery). */
  initialDelivery?: string | null;
}

export type TaskOutcome = 'delivered' | 'failed';

/**
 * The outcome a status or CAO's own record proves, if any. `view` must already include this
 * observation's `idle` (see noteStatus).
 */
export function taskOutcome(view: WorkerView, status: string | undefined): TaskOutcome | undefined {
  if (view.initialDelivery === 'delivered') return 'delivered';
  if (view.initialDelivery === 'failed') return 'failed';
  if (view.initialDelivery === 'pending') return undefined; // CAO has not confirmed it yet
  if (status === 'completed') return 'delivered';
  if ((status === 'processing' || status === 'waiting_user_answer') && view.idleSeen) return 'delivered';
  return undefined;
}

/** Notes a status in the view (before taskOutcome is asked). */
export function noteStatus(view: WorkerView, status: string | undefined): void {
  if (status === 'idle') view.idleSeen = true;
}

/** An inbox row (as the poller parses it). */
export interface NoticeRow {
  id: string;
  sender?: string;
  receiver: string;
  message: string;
}

/**
 * CAO's notice to a caller that its worker's deferred task failed: a message from the worker to
 * the caller starting `Worker <worker> ` (CAO's own texts all do).
 */
export function failureNotice<T extends NoticeRow>(rows: readonly T[], worker: string, caller: string): T | undefined {
  return rows.find((m) => m.sender === worker && m.receiver === caller && m.message.startsWith(`Worker ${worker} `));
}
