/** cao-events as a library: `import { createCaoTelemetry } from 'cao-events'`. */
export { createCaoTelemetry, DEFAULT_SERVICE_NAME } from './core/telemetry.ts';
export type { CaoTelemetry, CaoTelemetryOptions } from './core/telemetry.ts';
export {
  validateCaoEvent,
  CaoEventError,
  EVENT_TYPES,
  ORCHESTRATION_TYPES,
  PHASES,
  EVENT_SOURCES,
} from './core/events.ts';
export type {
  CaoEvent,
  CaoEventType,
  OrchestrationType,
  Phase,
  EventSource,
} from './core/events.ts';
export type { ValidCaoEvent } from './core/events.ts';
export type { RecordedEvent } from './core/recorder.ts';
export { ATTR, spanEventName } from './core/attributes.ts';
export { FIELDS } from './core/fields.ts';
export type { CaoStateView, SessionInfo, TerminalInfo } from './core/state.ts';
export { defaultSource, sourceFor } from './core/source-id.ts';
export {
  spanEventToCloudEvent,
  spanToCloudEvents,
  DEFAULT_TYPE_PREFIX,
} from '../exporters/transform.ts';
export type { CaoCloudEvent, CaoEventData, TransformOptions } from '../exporters/transform.ts';
export { CloudEventsSpanExporter } from '../exporters/cloudevents/span-exporter.ts';
export type { CloudEventSink } from '../exporters/cloudevents/span-exporter.ts';
export type { SinkStats, ShutdownSummary, LossReason } from '../exporters/sink.ts';
export { WebhookSink } from '../exporters/delivery/webhook-sink.ts';
export { DeliveryQueue } from '../exporters/delivery/delivery-queue.ts';
export { MemoryStorage } from '../exporters/delivery/memory-storage.ts';
export { OutboxStorage } from '../exporters/delivery/outbox.ts';
export { HttpSender } from '../exporters/delivery/sender.ts';
export type { Sender, OutgoingRequest, SendResult } from '../exporters/delivery/sender.ts';
export { cloudEventsRenderer } from '../exporters/renderers/cloudevents.ts';
export { createWebhookSink, cloudEventsSinkSpec } from './sink-factory.ts';
export type { SinkSpec, SinkEnvironment } from './sink-factory.ts';
export type { ContentMode } from '../exporters/cloudevents/encode.ts';
export { sign, verify, signatureHeaders } from '../exporters/delivery/signing.ts';
export type { VerifyResult } from '../exporters/delivery/signing.ts';
export { redact, redactText, DEFAULT_REDACTION_RULES } from './redact.ts';
export type { RedactionRule } from './redact.ts';
export type { Renderer, RenderContext, RenderedRequest, SinkTransform, TransformContext, TransformOutput } from '../exporters/renderers/types.ts';
export { startReceiver } from './receiver.ts';
export type { Receiver, ReceivedEvent } from './receiver.ts';
