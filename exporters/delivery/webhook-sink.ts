/**
 * A webhook sink, composed of its layers: the sink's policy (filter: which events it gets;
 * content policy: full, none or truncate:N; both applied before anything is queued, so an
 * outbox only ever holds what this sink may send), and one DeliveryQueue with its Renderer,
 * Sender and storage (memory or outbox). Implements the CloudEventSink contract: `enqueue`
 * never throws or waits, `stats` says how it is doing, `shutdown` accounts for what is left.
 */
import type { CloudEventV1 } from 'cloudevents';
import { type ContentPolicy, applyContentPolicy } from '../content-policy.ts';
import type { CloudEventSink, SinkStats } from '../sink.ts';
import type { EventFilter } from '../sink-filter.ts';
import type { DeliveryQueue } from './delivery-queue.ts';

export interface WebhookSinkOptions {
  name: string;
  queue: DeliveryQueue;
  filter?: EventFilter;
  content?: ContentPolicy;
}

export class WebhookSink implements CloudEventSink {
  readonly name: string;
  readonly #queue: DeliveryQueue;
  readonly #filter: EventFilter | undefined;
  readonly #content: ContentPolicy | undefined;
  #filtered = 0;

  constructor(options: WebhookSinkOptions) {
    this.name = options.name;
    this.#queue = options.queue;
    this.#filter = options.filter;
    this.#content = options.content?.kind === 'full' ? undefined : options.content;
  }

  get stats(): SinkStats {
    return { ...this.#queue.stats, filtered: this.#filtered };
  }

  enqueue(events: readonly CloudEventV1<unknown>[]): void {
    const accepted: CloudEventV1<unknown>[] = [];
    for (const event of events) {
      if (this.#filter && !this.#filter(event)) {
        this.#filtered += 1;
        continue;
      }
      accepted.push(this.#content ? applyContentPolicy(event, this.#content) : event);
    }
    if (accepted.length > 0) this.#queue.enqueue(accepted);
  }

  forceFlush(timeoutMs?: number): Promise<void> {
    return this.#queue.forceFlush(timeoutMs);
  }

  async shutdown(timeoutMs?: number): Promise<void> {
    await this.#queue.shutdown(timeoutMs);
  }
}
