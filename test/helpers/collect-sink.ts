/** A CloudEventSink that keeps what it is given, in order: the CloudEvents side of a core test without HTTP. */
import type { CloudEventV1 } from 'cloudevents';
import { type CloudEventSink, emptySinkStats } from '../../exporters/sink.ts';

export class CollectSink implements CloudEventSink {
  readonly name = 'collect';
  readonly stats = emptySinkStats();
  readonly events: CloudEventV1<unknown>[] = [];
  enqueue(events: readonly CloudEventV1<unknown>[]): void {
    this.events.push(...events);
    this.stats.enqueued += events.length;
    this.stats.delivered += events.length;
  }
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}
