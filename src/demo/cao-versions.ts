/**
 * The CAO releases the simulator speaks, named after real releases, and what differs between them
 * (pure data). Every trait was observed on the real release (cao-server from PyPI driven by the
 * end-to-end suite, test/e2e; its recorded exchanges are in test/fixtures/real-cao/<version>/ and
 * replayed against the simulator by test/simulator-contract.test.ts), or read in that release's
 * source where a comment says so.
 *
 * - 2.1.1: oldest installable release (2.0.0 was never published to PyPI). Orchestration is
 *   client-side: the MCP server creates a terminal synchronously and types the task with
 *   `orchestration_type`; no caller ids, no deferred init, no run-step.
 * - 2.4.1: newest 2.4: deferred-init assign (`defer_init`), server-side handoff
 *   (`POST /terminals/run-step`), caller ids.
 * - 2.5.4: newest release: 2.4 plus the terminal's own record of its deferred task
 *   (`initial_delivery`), more terminal fields, UTC timestamps.
 */

export const CAO_VERSIONS = ['2.1.1', '2.4.1', '2.5.4'] as const;
export type CaoVersion = (typeof CAO_VERSIONS)[number];
export const NEWEST_CAO_VERSION: CaoVersion = '2.5.4';

export class UnknownCaoVersionError extends RangeError {
  override name = 'UnknownCaoVersionError';
}

/** A version name as given by a user (`--cao-version`); throws naming the known ones. */
export function parseCaoVersion(value: string): CaoVersion {
  if ((CAO_VERSIONS as readonly string[]).includes(value)) return value as CaoVersion;
  const hint = value === 'head' || value === '2.0.0'
    ? ` (${value} is not a released version that could be verified here; the newest is ${NEWEST_CAO_VERSION})`
    : '';
  throw new UnknownCaoVersionError(`unknown CAO version ${JSON.stringify(value)}: one of ${CAO_VERSIONS.join(', ')}${hint}`);
}

export interface CaoTraits {
  /** `caller_id` query parameter and Terminal field (≥ 2.3). */
  callerIds: boolean;
  /** `defer_init` + `initial_message` on POST /sessions/{s}/terminals and POST /sessions (≥ 2.4). */
  deferredInit: boolean;
  /** `POST /terminals/run-step` (≥ 2.3). */
  runStep: boolean;
  /** `initial_delivery` on the terminal; idle/completed read `unknown` while it is pending (2.5). */
  deliveryRecord: boolean;
  /** Times in UTC (`…Z`, `…+00:00`) instead of naive local time (2.5). */
  utcTimes: boolean;
  /** POST /sessions without `provider` is a 422 (2.1); later releases default to kiro_cli. */
  providerRequired: boolean;
  /** POST …/inbox/messages checks that the receiver exists (≥ 2.3). */
  receiverChecked: boolean;
  /** A synchronous terminal init runs on the server's event loop: every request waits for it (2.1). */
  initBlocksServer: boolean;
  /**
   * When a pending inbox message is delivered besides the POST itself: on every idle/completed
   * status change of the receiver (≥ 2.3, plus a 30 s sweep), or by a log watcher every 5 s (2.1).
   */
  inboxTrigger: 'status' | 'log-watch';
  /** DELETE /terminals/{unknown}: 409 (2.5) or 200 `{success:false}`. */
  deleteUnknownTerminal: 'conflict' | 'unsuccessful';
  /** DELETE /sessions/{unknown}: 200 naming it deleted (≥ 2.3, and the plugin hook fires) or 404 (2.1). */
  deleteUnknownSession: 'ok' | 'not-found';
  /** How a refused working directory is answered: 400, or 2.4.1's 500 wrapping the same text. */
  workingDirectoryError: 400 | 500;
  /** `GET …/output?mode=last` before any reply: 200 with CAO's "[NO RESPONSE …]" text, or 2.1's 404. */
  noReplyOutput: 'no-response-text' | 'not-found';
  /** After `/exit` a mock_cli pane shows its shell (`processing`); 2.1.1's kiro stand-in stays `completed`. */
  statusAfterExit: 'processing' | 'unchanged';
  /** /health carries `terminal_backend` and `components` (≥ 2.4). */
  healthDetails: boolean;
  /** Which JSON shapes terminals and rows have. */
  shape: '2.1' | '2.4' | '2.5';
}

export const TRAITS: Record<CaoVersion, CaoTraits> = {
  '2.1.1': {
    callerIds: false, deferredInit: false, runStep: false, deliveryRecord: false, utcTimes: false,
    providerRequired: true, receiverChecked: false, initBlocksServer: true, inboxTrigger: 'log-watch',
    deleteUnknownTerminal: 'unsuccessful', deleteUnknownSession: 'not-found', workingDirectoryError: 400,
    noReplyOutput: 'not-found', statusAfterExit: 'unchanged', healthDetails: false, shape: '2.1',
  },
  '2.4.1': {
    callerIds: true, deferredInit: true, runStep: true, deliveryRecord: false, utcTimes: false,
    providerRequired: false, receiverChecked: true, initBlocksServer: false, inboxTrigger: 'status',
    deleteUnknownTerminal: 'unsuccessful', deleteUnknownSession: 'ok', workingDirectoryError: 500,
    noReplyOutput: 'no-response-text', statusAfterExit: 'processing', healthDetails: true, shape: '2.4',
  },
  '2.5.4': {
    callerIds: true, deferredInit: true, runStep: true, deliveryRecord: true, utcTimes: true,
    providerRequired: false, receiverChecked: true, initBlocksServer: false, inboxTrigger: 'status',
    deleteUnknownTerminal: 'conflict', deleteUnknownSession: 'ok', workingDirectoryError: 400,
    noReplyOutput: 'no-response-text', statusAfterExit: 'processing', healthDetails: true, shape: '2.5',
  },
};
