/**
 * OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG for the OTLP path.
 *
 * cao-events records every CAO event (its tracer provider samples AlwaysOn), because the
 * CloudEvents exporter turns recorded spans into webhooks and a CloudEvent must never be sampled
 * away. The configured sampler is applied in front of the OTLP span processors instead: it decides
 * once per trace (one trace = one CAO session), from the first span of the trace that ends (the
 * session's root span), with that span's remote parent when CAO passed a traceparent. Every later
 * span of the trace follows the same decision, so a session is either whole in the tracing backend
 * or absent, as the parent-based samplers of the SDK would have it. The samplers are the SDK's.
 *
 * Supported values (OpenTelemetry SDK environment specification): always_on, always_off,
 * traceidratio, parentbased_always_on (the default), parentbased_always_off,
 * parentbased_traceidratio. OTEL_TRACES_SAMPLER_ARG is the ratio (0…1, default 1) of the two
 * ratio samplers. Anything else stops start-up with an error naming the variable (the setting is
 * read and checked in otlp.ts, which loads nothing).
 */
import { type Context, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  type ReadableSpan,
  type Sampler,
  SamplingDecision,
  type Span,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace';
import { BoundedMap } from './core/bounded-map.ts';
import { type TraceSamplerSetting, traceSamplerSetting } from './otlp.ts';

type Env = Record<string, string | undefined>;

/** The SDK sampler for a setting. */
export function samplerFor(setting: TraceSamplerSetting): Sampler {
  const ratio = () => new TraceIdRatioBasedSampler(setting.ratio ?? 1);
  switch (setting.name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio();
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio() });
  }
}

/** Hands a span on to `next` only when the sampler keeps its trace. */
export class SampledSpanProcessor implements SpanProcessor {
  readonly #sampler: Sampler;
  readonly #next: SpanProcessor;
  /** Decision per trace id; bounded (a forgotten trace is decided again the same way for ratio samplers). */
  readonly #decisions = new BoundedMap<string, boolean>(20_000);

  constructor(sampler: Sampler, next: SpanProcessor) {
    this.#sampler = sampler;
    this.#next = next;
  }

  onStart(span: Span, parentContext: Context): void {
    this.#next.onStart(span, parentContext);
  }

  onEnd(span: ReadableSpan): void {
    if (this.sampled(span)) this.#next.onEnd(span);
  }

  sampled(span: ReadableSpan): boolean {
    const { traceId } = span.spanContext();
    const known = this.#decisions.get(traceId);
    if (known !== undefined) return known;
    const parent = span.parentSpanContext;
    const context = parent?.isRemote ? trace.setSpanContext(ROOT_CONTEXT, parent) : ROOT_CONTEXT;
    const { decision } = this.#sampler.shouldSample(context, traceId, span.name, span.kind, span.attributes, span.links);
    const sampled = decision === SamplingDecision.RECORD_AND_SAMPLED;
    this.#decisions.set(traceId, sampled);
    return sampled;
  }

  forceFlush(): Promise<void> {
    return this.#next.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.#next.shutdown();
  }
}

/** `processor` behind the sampler OTEL_TRACES_SAMPLER names (parentbased_always_on when unset). */
export function withTraceSampler(processor: SpanProcessor, env: Env): SpanProcessor {
  return new SampledSpanProcessor(samplerFor(traceSamplerSetting(env)), processor);
}
