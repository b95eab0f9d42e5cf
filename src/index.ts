/** cao-events as a library: `import { createCaoTelemetry } from 'cao-events'`. */
export { createCaoTelemetry, DEFAULT_SERVICE_NAME } from './telemetry.ts';
export type { CaoTelemetry, CaoTelemetryOptions } from './telemetry.ts';
export {
  validateCaoEvent,
  CaoEventError,
  EVENT_TYPES,
  ORCHESTRATION_TYPES,
  PHASES,
  EVENT_SOURCES,
} from './events.ts';
export type {
  CaoEvent,
  CaoEventType,
  OrchestrationType,
  Phase,
  EventSource,
} from './events.ts';
export type { RecordedEvent } from './recorder.ts';
export { ATTR, spanEventName } from './attributes.ts';
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
