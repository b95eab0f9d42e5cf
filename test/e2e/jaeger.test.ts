/**
 * cao-events → real Jaeger v2, and cao-events → real OpenTelemetry Collector → real Jaeger; the
 * session from the demo (the CAO simulator) and once from a real cao-server (the newest release
 * test/e2e/install.sh installs; a missing venv or tmux fails the test).
 * Both binaries are built from the Go module proxy by .ci/install-jaeger and .ci/install-otelcol
 * (cached; without Go, or when a build fails, these tests fail: nothing is skipped). Jaeger runs
 * all-in-one with in-memory storage (test/e2e/jaeger-all-in-one.yaml), the collector runs the
 * repository's otel-collector.yaml unchanged; everything on free loopback ports. A CAO session is
 * driven through cao-events (the session producer), its spans go over OTLP, its CloudEvents to a
 * receiver, and Jaeger's HTTP query API must show the session as one trace holding every span
 * event the receiver got, with its cao.* and gen_ai.* attributes.
 *
 * Run on its own: npm run test:e2e:jaeger
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { type Jaeger, startJaeger } from './helpers/jaeger.ts';
import { type OtelCollector, startOtelCollector } from './helpers/otel-collector.ts';
import { caoVersions } from './helpers/real-cao.ts';
import { realCaoSession } from './helpers/real-session-producer.ts';
import { type OtlpTarget, type SessionProducer, demoSession } from './helpers/session-producer.ts';
import { assertSessionInJaeger, type SessionTrace } from './helpers/session-trace.ts';

/** The session driven in most of these tests: the demo (the CAO simulator behind the real gateway). */
const produceSession: SessionProducer = demoSession;
/** The newest CAO release the suite installs (test/e2e/cao-versions). */
const newest = caoVersions().reduce((a, b) => (compareVersions(a.version, b.version) >= 0 ? a : b));

function compareVersions(a: string, b: string): number {
  const [x, y] = [a.split('.').map(Number), b.split('.').map(Number)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const warnings: string[] = [];
let checked = 0;

async function runSession(jaeger: Jaeger, otlp: OtlpTarget, producer: SessionProducer = produceSession): Promise<SessionTrace> {
  const since = new Date(Date.now() - 60_000);
  const session = await producer(otlp);
  const trace = await assertSessionInJaeger(jaeger, session, since);
  warnings.push(...trace.warnings);
  checked += 1;
  return trace;
}

describe('Jaeger v2 and the OpenTelemetry Collector, real binaries', () => {
  const running: Array<Jaeger | OtelCollector> = [];
  after(async () => {
    for (const p of running.reverse()) await p.stop();
  });

  for (const protocol of ['http/protobuf', 'grpc', 'http/json'] as const) {
    it(`cao-events → Jaeger over OTLP ${protocol}: the session is one trace with every span event and its attributes`, async () => {
      const jaeger = await startJaeger();
      running.push(jaeger);
      const endpoint = protocol === 'grpc' ? jaeger.otlpGrpc : jaeger.otlpHttp;
      await runSession(jaeger, { endpoint, protocol });
      await jaeger.stop();
    });
  }

  it(`a session of REAL cao-server ${newest.version} through cao-events gateway (plugin installed) → Jaeger over OTLP http/protobuf`, async () => {
    const jaeger = await startJaeger();
    running.push(jaeger);
    const trace = await runSession(jaeger, { endpoint: jaeger.otlpHttp, protocol: 'http/protobuf' }, realCaoSession(newest));
    assert.ok(trace.spans.some((s) => s.name === 'invoke_workflow code_supervisor'), 'the session\'s lifetime span');
    await jaeger.stop();
  });

  it('cao-events → collector running otel-collector.yaml → Jaeger, end to end', async () => {
    const jaeger = await startJaeger();
    running.push(jaeger);
    const collector = await startOtelCollector(jaeger.otlpGrpcPort);
    running.push(collector);
    // cao-events knows only the collector's port: whatever reaches Jaeger went through it
    const trace = await runSession(jaeger, { endpoint: collector.otlpHttp, protocol: 'http/protobuf' });
    // its debug exporter (a queue of its own beside the one to Jaeger) logs the spans it saw
    const forwarded = (): number => [...collector.process.output().matchAll(/"spans": (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    for (const deadline = Date.now() + 10_000; forwarded() < trace.spans.length && Date.now() < deadline;) await sleep(100);
    const log = collector.process.output();
    assert.equal(forwarded(), trace.spans.length, `the collector's debug exporter saw every span Jaeger has\n${log.slice(-3000)}`);
    assert.doesNotMatch(log, /deprecat/i, 'otel-collector.yaml uses no deprecated component or setting');
    await collector.stop();
    await jaeger.stop();
  });

  // Each short span lasts a few µs and the cao.session root is not a zero-length span ending
  // before its children start, so Jaeger neither "sanitizes" negative durations nor flags clock skew.
  it('Jaeger stores the spans as sent (no @jaeger@warnings corrections)', () => {
    assert.ok(checked > 0, 'a session was checked in Jaeger');
    // one example per kind of warning (the text before its first comma or semicolon)
    const kinds = new Map<string, { count: number; example: string }>();
    for (const w of warnings) {
      const kind = w.replace(/^[^:]*: /, '').split(/[,;]/)[0]!;
      kinds.set(kind, { count: (kinds.get(kind)?.count ?? 0) + 1, example: kinds.get(kind)?.example ?? w });
    }
    assert.deepEqual([...kinds.entries()].map(([kind, { count, example }]) => `${count}× ${kind} (e.g. ${example})`), []);
  });
});
