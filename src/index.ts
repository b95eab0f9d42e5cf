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
export { CloudEventsSpanExporter } from '../exporters/cloudevents-span-exporter.ts';
export type { CloudEventSink } from '../exporters/cloudevents-span-exporter.ts';
export { HttpSink } from '../exporters/http-sink.ts';
export type { HttpSinkOptions, SinkStats } from '../exporters/http-sink.ts';
export type { ContentMode } from '../exporters/encode.ts';
export { sign, verify, signatureHeaders } from '../exporters/signing.ts';
export type { VerifyResult } from '../exporters/signing.ts';
export { redact, redactText, DEFAULT_REDACTION_RULES } from './redact.ts';
export type { RedactionRule } from './redact.ts';
export { PolicySink } from '../exporters/policy-sink.ts';
export type { SinkTransform, TransformContext, TransformOutput } from '../exporters/transforms/types.ts';
export { DurableSink, Outbox } from '../exporters/outbox.ts';
export { startReceiver } from './receiver.ts';
export type { Receiver, ReceivedEvent } from './receiver.ts';
