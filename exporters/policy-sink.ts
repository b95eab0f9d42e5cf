/**
 * The per-sink policy in front of a sink's queue: the filter (which events this sink gets) and
 * the message-content policy (full, none, truncate:N). Applied before anything is queued, so an
 * outbox placed behind it stores only what this sink may send, and a filtered event is never
 * held for a sink that does not want it.
 */
import type { CloudEventV1 } from 'cloudevents';
import type { CloudEventSink } from './cloudevents/span-exporter.ts';
import { type ContentPolicy, applyContentPolicy } from './content-policy.ts';
import type { SinkStats } from './delivery/delivery-queue.ts';
import type { EventFilter } from './sink-filter.ts';

export interface PolicySinkOptions {
  inner: CloudEventSink;
  filter?: EventFilter;
  content?: ContentPolicy;
  /** Sees every event offered, before the filter (e.g. to learn agent names). */
  observe?: (event: CloudEventV1<unknown>) => void;
}

const NO_STATS: SinkStats = {
  enqueued: 0, delivered: 0, retried: 0, failed: 0, dropped: 0, skipped: 0, queued: 0, inFlight: 0, disabled: false,
};

export class PolicySink implements CloudEventSink {
  readonly name: string;
  readonly inner: CloudEventSink;
  readonly #filter: EventFilter | undefined;
  readonly #content: ContentPolicy | undefined;
  readonly #observe: PolicySinkOptions['observe'];
  #filtered = 0;

  constructor(options: PolicySinkOptions) {
    this.inner = options.inner;
    this.name = options.inner.name;
    this.#filter = options.filter;
    this.#content = options.content?.kind === 'full' ? undefined : options.content;
    this.#observe = options.observe;
  }

  /** The inner sink's counters plus the events this policy filtered out. */
  get stats(): SinkStats & { filtered: number } {
    const inner = (this.inner as { stats?: SinkStats }).stats ?? NO_STATS;
    return { ...inner, filtered: this.#filtered };
  }

  enqueue(events: readonly CloudEventV1<unknown>[]): void {
    const accepted: CloudEventV1<unknown>[] = [];
    for (const event of events) {
      this.#observe?.(event);
      if (this.#filter && !this.#filter(event)) {
        this.#filtered += 1;
        continue;
      }
      accepted.push(this.#content ? applyContentPolicy(event, this.#content) : event);
    }
    if (accepted.length > 0) this.inner.enqueue(accepted);
  }

  forceFlush(timeoutMs?: number): Promise<void> {
    return this.inner.forceFlush(timeoutMs);
  }

  shutdown(timeoutMs?: number): Promise<void> {
    return this.inner.shutdown(timeoutMs);
  }
}
