/**
 * `cao-events demo` (`npm run demo`): the whole pipeline on embedded defaults. Starts the CAO
 * simulator, the real gateway (proxy + classifier + poller) in front of it and, unless
 * --callback-url is given, the built-in receiver as the callback; drives a scripted session;
 * prints the CloudEvents timeline as the receiver acknowledges them, then a summary.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CloudEventV1 } from 'cloudevents';
import { CONTENT_MODES, type ContentMode } from '../../exporters/cloudevents/encode.ts';
import type { CloudEventSink } from '../../exporters/sink.ts';
import { cloudEventsSinkSpec, createWebhookSink } from '../sink-factory.ts';
import type { CaoEventData } from '../../exporters/transform.ts';
import { ConfigError, DEFAULT_CONFIG, loadConfig, loadLogSettings } from '../config.ts';
import { EVENT_TYPES } from '../core/events.ts';
import { formatEventLine } from '../format-event.ts';
import { startGatewayService } from '../gateway-service.ts';
import { createLogger } from '../logger.ts';
import { checkOtlpConfig } from '../otlp.ts';
import { OtlpJsonFileExporter } from '../otlp-file-exporter.ts';
import { startReceiver } from '../receiver.ts';
import { startRuntime } from '../runtime.ts';
import { startCaoSimulator } from './cao-simulator.ts';
import { type CaoVersion, NEWEST_CAO_VERSION, parseCaoVersion } from './cao-versions.ts';
import { runScenario } from './scenario.ts';

/** A sink from the demo's --config file, and how it did. */
export interface DemoSinkSummary {
  name: string;
  delivered: number;
  skipped: number;
  failed: number;
  dropped: number;
}

export interface DemoSummary {
  caoVersion: CaoVersion;
  callbackUrl: string;
  mode: ContentMode;
  delivered: number;
  byType: Record<string, number>;
  latencyMs: { p50: number; p99: number };
  failures: { failed: number; dropped: number };
  traceIds: string[];
  ids: string[];
  otlp: string;
  /** The --config file's sinks (Slack, Discord, …), beside the built-in receiver. */
  sinks: DemoSinkSummary[];
}

/** How long the demo waits for the --config file's sinks to deliver the session (Slack posts about one message a second). */
const CONFIGURED_SINKS_FLUSH_MS = 180_000;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return Math.round(sorted[Math.max(0, index)]! * 100) / 100;
}

export async function runDemo(values: Record<string, string | boolean | undefined>, out: NodeJS.WritableStream = process.stdout): Promise<DemoSummary> {
  // Every setting is checked before anything starts, so a mistake is one message and an exit.
  let version: CaoVersion;
  try {
    version = parseCaoVersion((values['cao-version'] as string | undefined) ?? NEWEST_CAO_VERSION);
  } catch (err) {
    throw new ConfigError(`--cao-version: ${(err as Error).message}`);
  }
  const mode = (values.mode as string | undefined) ?? 'structured';
  if (!(CONTENT_MODES as readonly string[]).includes(mode)) {
    throw new ConfigError(`--mode must be one of ${CONTENT_MODES.join(', ')} (got ${JSON.stringify(mode)})`);
  }
  const log = loadLogSettings({ flags: values, env: process.env }, { logLevel: 'warn' });
  const checked = loadConfig({
    flags: {
      mode,
      port: '0',
      'poll-interval-ms': '150',
      ...(values['callback-url'] ? { 'callback-url': values['callback-url'] } : {}),
      ...(values['otlp-endpoint'] ? { 'otlp-endpoint': values['otlp-endpoint'] } : {}),
      ...(values['otlp-protocol'] ? { 'otlp-protocol': values['otlp-protocol'] } : {}),
    },
    // The demo's own settings; with --config, the user's file and environment (`${SLACK_BOT_TOKEN}`) too.
    env: values.config ? process.env : {},
    ...(values.config ? { configPath: String(values.config) } : {}),
  });
  checkOtlpConfig(checked.otlp.endpoint || checked.otlp.protocol ? checked.otlp : undefined, process.env);
  const logger = createLogger(log.logLevel, { format: log.logFormat });

  const delivered: Array<{ event: CloudEventV1<unknown>; at: number }> = [];
  const print = (line: string) => out.write(`${line}\n`);
  const closers: Array<() => Promise<void>> = [];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.reverse()) await close();
  };
  let config: typeof checked;
  let sink: CloudEventSink;
  let traceFile: string | undefined;
  const configuredSinks: DemoSinkSummary[] = [];
  try {
    // The project directory the simulated agents work in (CAO refuses missing or system directories).
    const project = mkdtempSync(join(tmpdir(), 'cao-events-demo-project-'));
    closers.push(async () => rmSync(project, { recursive: true, force: true }));
    const simulator = await startCaoSimulator({ version, initMs: 400, workMs: 300 });
    closers.push(() => simulator.close());
    const receiver = values['callback-url'] ? undefined : await startReceiver();
    if (receiver) closers.push(() => receiver.close());
    const callbackUrl = checked.callbackUrl ?? receiver!.url;
    config = { ...checked, callbackUrl, gateway: { ...checked.gateway, upstream: simulator.url } };
    sink = createWebhookSink(cloudEventsSinkSpec({ url: callbackUrl, mode: config.mode }), {
      logger,
      onDelivered: (_sink, events) => {
        const at = Date.now();
        for (const event of events) {
          delivered.push({ event, at });
          print(`  ${formatEventLine(event)}`);
        }
      },
    });
    const otlpConfigured = Boolean(config.otlp.endpoint || process.env.OTEL_EXPORTER_OTLP_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
    traceFile = otlpConfigured ? undefined : ((values['trace-file'] as string | undefined) ?? join(tmpdir(), `cao-events-demo-${process.pid}.otlp.jsonl`));
    const runtime = startRuntime({ ...config, callbackUrl: undefined }, logger, {
      spanExporters: traceFile ? [new OtlpJsonFileExporter(traceFile)] : [],
      sinks: [sink],
      metrics: false,
    });
    closers.push(() => runtime.close());
    const gateway = await startGatewayService(
      { ...config, ingest: { ...DEFAULT_CONFIG.ingest, port: 0 } },
      runtime,
      { ingest: false },
    );
    closers.push(() => gateway.close());
    print(`cao-events demo: simulated CAO ${version} at ${simulator.url}, gateway at ${gateway.url}`);
    print(`CloudEvents (${mode}) → ${callbackUrl}${receiver ? ' (built-in receiver)' : ''}`);
    print('');
    await runScenario(gateway.url, version, project, 300);
    // let the poller confirm the last kills (it needs two listings without them)
    await new Promise((r) => setTimeout(r, 800));
    const configured = runtime.telemetry.sinks.filter((s) => s !== sink);
    if (configured.length > 0) {
      print('');
      print(`Waiting for ${configured.map((s) => s.name).join(', ')} to deliver the session…`);
      await Promise.all(configured.map((s) => s.forceFlush(CONFIGURED_SINKS_FLUSH_MS)));
      for (const s of configured) {
        const st = s.stats;
        configuredSinks.push({ name: s.name, delivered: st.delivered, skipped: st.skipped, failed: st.failed, dropped: st.dropped });
      }
    }
  } finally {
    await closeAll();
  }
  const callbackUrl = config.callbackUrl!;
  const byType: Record<string, number> = Object.fromEntries(EVENT_TYPES.map((t) => [t, 0]));
  const latencies: number[] = [];
  for (const { event, at } of delivered) {
    const type = (event.data as CaoEventData).event_type;
    byType[type] = (byType[type] ?? 0) + 1;
    latencies.push(at - Date.parse(String(event.time)));
  }
  latencies.sort((a, b) => a - b);
  const stats = sink.stats;
  const summary: DemoSummary = {
    caoVersion: version,
    callbackUrl,
    mode: config.mode,
    delivered: delivered.length,
    byType,
    latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99) },
    failures: { failed: stats.failed, dropped: stats.dropped },
    traceIds: [...new Set(delivered.map(({ event }) => String(event.traceparent).split('-')[1]!))],
    ids: delivered.map(({ event }) => event.id),
    otlp: traceFile ? `file ${traceFile}` : `OTLP ${config.otlp.endpoint ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT ?? process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT}`,
    sinks: configuredSinks,
  };
  print('');
  print(`Summary: ${summary.delivered} CloudEvents delivered`);
  for (const [type, n] of Object.entries(byType)) print(`  ${type.padEnd(17)} ${n}`);
  print(`  delivery latency  p50 ${summary.latencyMs.p50} ms, p99 ${summary.latencyMs.p99} ms`);
  print(`  failures          ${stats.failed} failed, ${stats.dropped} dropped`);
  print(`  traces            ${summary.traceIds.length} (one per session): ${summary.traceIds.join(', ')}`);
  print(`  spans             ${summary.otlp}`);
  for (const s of configuredSinks) {
    print(`  sink ${s.name.padEnd(12)} ${s.delivered} delivered, ${s.skipped} not shown (seen again or a later phase), ${s.failed} failed, ${s.dropped} dropped`);
  }
  if (values['summary-json']) print(JSON.stringify(summary));
  return summary;
}

export async function runDemoCommand(values: Record<string, string | boolean | undefined>): Promise<number> {
  const summary = await runDemo(values);
  const missing = Object.entries(summary.byType).filter(([, n]) => n === 0).map(([t]) => t);
  if (missing.length > 0) {
    process.stderr.write(`cao-events demo: no ${missing.join(', ')} event arrived\n`);
    return 1;
  }
  const sinkFailures = summary.sinks.reduce((n, s) => n + s.failed + s.dropped, 0);
  return summary.failures.failed + summary.failures.dropped + sinkFailures === 0 ? 0 : 1;
}
