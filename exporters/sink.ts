/**
 * The contract between the CloudEvents span exporter and the places events go: a sink accepts
 * events without ever throwing or waiting, says how it is doing (stats are part of the
 * interface: metrics, /healthz and the shutdown accounting read them, nothing is cast), and
 * flushes and shuts down within a bound.
 */
import type { CloudEventV1 } from 'cloudevents';

/**
 * Why an event was lost: neither delivered nor kept anywhere (an event kept in an outbox or a
 * dead-letter file is not lost). A fixed set, so it can be a metric label.
 */
export const LOSS_REASONS = [
  'queue_full',
  'outbox_full',
  'outbox_write_failed',
  'rejected',
  'retries_exhausted',
  'sink_gone',
  'render_failed',
  'sink_closed',
  'shutdown',
] as const;
export type LossReason = (typeof LOSS_REASONS)[number];

export interface OutboxStats {
  /** The sink's outbox directory. */
  dir: string;
  /** Events on disk not yet delivered or dead-lettered. */
  pending: number;
  /** Bytes the outbox files take on disk. */
  bytes: number;
  /** Events waiting in memory only, because the outbox could not take them (write error or bound). */
  memoryOnly: number;
  /** Writes that failed (appends, acknowledgements, dead letters). */
  writeErrors: number;
  /** True while new events cannot be written to disk (they wait in memory, bounded by maxQueue). */
  degraded: boolean;
  /** Events written to the dead-letter file by this process. */
  deadLettered: number;
}

/** What a shutdown left undelivered, and where it is. */
export interface ShutdownSummary {
  /** Events not delivered when the sink stopped (= keptOnDisk + lost). */
  undelivered: number;
  /** Of those, events that stay in the outbox for the next start. */
  keptOnDisk: number;
  /** Of those, events that are gone (no outbox, or it could not take them). */
  lost: number;
  outboxDir?: string;
}

export interface SinkStats {
  /** Events taken in for delivery (after the filter). */
  enqueued: number;
  /** Events this sink's filter did not select. */
  filtered: number;
  /** Events the sink acknowledged (2xx). */
  delivered: number;
  /** Events the renderer had nothing to send for (done, nothing wrong). */
  skipped: number;
  /** Failed attempts that were retried, counted per event. */
  retried: number;
  /** Events given up on: rejected (4xx), retry budget spent, sink gone (410), render failed. */
  failed: number;
  /** Of `failed`, events kept in the dead-letter file (for `cao-events replay`). */
  deadLettered: number;
  /** Events never attempted and not kept: queue full, sink disabled or shut down. */
  dropped: number;
  /** Events neither delivered nor kept anywhere, in total and by reason. */
  lost: number;
  lostBy: Partial<Record<LossReason, number>>;
  /** Events waiting (in memory and on disk), not in flight. */
  queued: number;
  /** Events in requests under way. */
  inFlight: number;
  /** The sink answered 410 Gone (or the renderer said it is gone): nothing more is sent. */
  disabled: boolean;
  /** `open` after failures in a row: only one probe request at a time until one succeeds. */
  breaker: 'closed' | 'open';
  outbox?: OutboxStats;
  /** Set once the sink has shut down. */
  shutdown?: ShutdownSummary;
}

/** Where converted CloudEvents go. */
export interface CloudEventSink {
  readonly name: string;
  readonly stats: SinkStats;
  /** Accepts events for delivery. Never throws, never waits. */
  enqueue(events: readonly CloudEventV1<unknown>[]): void;
  /** Resolves when everything accepted was delivered or given up, or when the bound passes. */
  forceFlush(timeoutMs?: number): Promise<void>;
  /** Stops accepting, flushes within the bound, and accounts for what is left (see `stats.shutdown`). */
  shutdown(timeoutMs?: number): Promise<void>;
}

export function emptySinkStats(): SinkStats {
  return {
    enqueued: 0, filtered: 0, delivered: 0, skipped: 0, retried: 0, failed: 0, deadLettered: 0,
    dropped: 0, lost: 0, lostBy: {}, queued: 0, inFlight: 0, disabled: false, breaker: 'closed',
  };
}
