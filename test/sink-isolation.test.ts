/**
 * One sink's failure never affects another, and OpenTelemetry's own errors reach our log: a sink
 * that throws when handed events costs only its own events (an ERROR line with their count) and
 * the next sink still gets them; an OTel exporter that fails is reported through the diag
 * logger the sidecar installs. Real HTTP on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { emptySinkStats } from '../exporters/sink.ts';
import type { CloudEventSink } from '../exporters/sink.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { startReceiver } from '../src/receiver.ts';
import { startRuntime } from '../src/runtime.ts';
import { logCapture } from './helpers/log-capture.ts';
import { waitFor } from './helpers/otlp-receiver.ts';

describe('sink isolation and OTel diagnostics', () => {
  it('a sink that throws costs its own events only: the next sink gets every event, the loss is an ERROR line', async () => {
    const receiver = await startReceiver();
    const logs = logCapture();
    const broken: CloudEventSink = {
      name: 'broken',
      stats: emptySinkStats(),
      enqueue: () => {
        throw new Error('disk on fire');
      },
      forceFlush: async () => undefined,
      shutdown: async () => {
        throw new Error('still on fire');
      },
    };
    const config = loadConfig({ flags: { 'callback-url': receiver.url, upstream: 'http://127.0.0.1:9/' } });
    const runtime = startRuntime(config, createLogger('info', logs.stream), { sinks: [broken], metrics: false });
    assert.equal(runtime.telemetry.sinks[0], broken, 'the broken sink comes first');
    runtime.record({ type: 'session_created', sessionName: 'cao-iso' });
    runtime.record({ type: 'session_killed', sessionName: 'cao-iso' });
    await waitFor(() => receiver.received.length === 2, 10_000, 'both events at the healthy sink');
    const errors = logs.lines().filter((l) => l.level === 50 && l.sink === 'broken');
    assert.equal(errors.length, 2);
    assert.equal(errors[0]!.lost, 1);
    assert.equal(errors[0]!.error, 'disk on fire');
    await runtime.close(); // a sink that fails to shut down does not stop the others
    assert.ok(logs.lines().some((l) => l.level === 50 && l.sink === 'broken' && l.msg === 'sink shutdown failed'));
    await receiver.close();
  });

  it("OpenTelemetry's own errors (an exporter that fails) are ERROR lines in our log", async () => {
    const failing: SpanExporter = {
      export(_spans: ReadableSpan[], done: (result: ExportResult) => void) {
        done({ code: ExportResultCode.FAILED, error: new Error('collector said no') });
      },
      shutdown: async () => undefined,
    };
    const logs = logCapture();
    const runtime = startRuntime(loadConfig({ flags: { upstream: 'http://127.0.0.1:9/' } }), createLogger('info', logs.stream), { spanExporters: [failing], metrics: false });
    runtime.record({ type: 'session_created', sessionName: 'cao-diag' });
    await waitFor(() => logs.lines().some((l) => l.component === 'opentelemetry' && l.level === 50), 10_000, 'the OTel error in our log');
    const line = logs.lines().find((l) => l.component === 'opentelemetry' && l.level === 50)!;
    assert.match(JSON.stringify(line), /collector said no/);
    await runtime.close();
  });
});
