/**
 * The demo end to end, as a user runs it (`npm run demo -- --callback-url … --otlp-endpoint …`):
 * a real process, our own receiver as the callback and a real OTLP receiver; its printed summary
 * must match what the receiver and the collector got.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { CaoEventData } from '../src/core/fields.ts';
import type { DemoSummary } from '../src/demo/demo-command.ts';
import { startReceiver } from '../src/receiver.ts';
import { startOtlpHttpReceiver } from './helpers/otlp-receiver.ts';
import { scratchDir } from './helpers/scratch-dir.ts';

const run = promisify(execFile);
const CLI = new URL('../src/cli.ts', import.meta.url).pathname;
const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CAO_EVENT') && !k.startsWith('OTEL_')));
const SCRATCH = scratchDir('cao-events-demo-test-');
clean.TMPDIR = SCRATCH; // the demo's span file goes there

describe('cao-events demo', () => {
  for (const [version, mode] of [['2.5.4', 'structured'], ['2.1.1', 'batch']] as const) {
    it(`CAO ${version}, ${mode} mode: delivers valid CloudEvents of every type to --callback-url and OTLP to --otlp-endpoint`, async () => {
      const receiver = await startReceiver();
      const otlp = await startOtlpHttpReceiver();
      const { stdout } = await run(process.execPath, [
        CLI, 'demo', '--cao-version', version, '--mode', mode,
        '--callback-url', receiver.url, '--otlp-endpoint', otlp.url, '--summary-json',
      ], { env: clean, timeout: 60_000 });
      const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as DemoSummary;
      const got = receiver.received.map((r) => r.event);
      assert.ok(receiver.received.every((r) => r.mode === mode));
      assert.equal(summary.delivered, got.length);
      assert.deepEqual(summary.ids, got.map((e) => e.id));
      for (const type of ['session_created', 'session_killed', 'terminal_created', 'terminal_killed', 'message_sent']) {
        const n = got.filter((e) => (e.data as CaoEventData).event_type === type).length;
        assert.ok(n > 0, `${type} arrived`);
        assert.equal(summary.byType[type], n);
      }
      assert.deepEqual(summary.failures, { failed: 0, dropped: 0 });
      assert.equal(summary.traceIds.length, 1);
      // every message names both agents: no consumer needs a terminal → agent table
      for (const e of got) {
        const data = e.data as CaoEventData;
        if (data.event_type !== 'message_sent') continue;
        assert.ok(data.sender_agent && data.receiver_agent, `${data.orchestration_type}/${data.phase} ${data.sender}→${data.receiver}: ${JSON.stringify(data)}`);
      }
      // one increasing sequence in the session's one trace
      assert.deepEqual(got.map((e) => Number(e.sequence)), got.map((_, i) => i + 1));
      assert.match(stdout, /Summary: \d+ CloudEvents delivered/);
      // every CloudEvent's span reached the collector
      const spanIds = new Set(otlp.spans.map((s) => s.spanId));
      for (const e of got) assert.ok(spanIds.has(String(e.traceparent).split('-')[2]!), `span of ${e.id}`);
      assert.ok(otlp.spans.some((s) => s.name === 'cao.session' && s.traceId === summary.traceIds[0]));
      await receiver.close();
      await otlp.close();
    });
  }

  it('--cao-version names the real releases; anything else is a configuration error naming them', async () => {
    const failed = await run(process.execPath, [CLI, 'demo', '--cao-version', 'head'], { env: clean, timeout: 60_000 }).then(
      () => assert.fail('the demo accepted --cao-version head'),
      (err: { code: number; stderr: string }) => err,
    );
    assert.equal(failed.code, 2);
    assert.match(failed.stderr, /--cao-version: unknown CAO version "head": one of 2\.1\.1, 2\.4\.1, 2\.5\.4/);
  });

  it('writes the spans to an OTLP JSON file when no endpoint is given, and exits 0', async () => {
    const spansFile = join(SCRATCH, 'spans.jsonl');
    const { stdout } = await run(process.execPath, [CLI, 'demo', '--trace-file', spansFile], { env: clean, timeout: 60_000 });
    assert.ok(stdout.split('\n').some((l) => /^\s*spans\s+file /.test(l) && l.trim().endsWith(spansFile)), stdout);
    const { readFileSync } = await import('node:fs');
    const lines = readFileSync(spansFile, 'utf8').trim().split('\n');
    const spans = lines.flatMap((l) => (JSON.parse(l) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<{ name: string }> }> }> }).resourceSpans
      .flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)));
    assert.ok(spans.some((s) => s.name === 'cao.session'));
    assert.ok(spans.some((s) => s.name === 'execute_tool assign'), 'message spans are GenAI execute_tool spans');
    assert.ok(spans.some((s) => s.name === 'invoke_workflow code_supervisor'), 'the session\'s lifetime span');
    assert.ok(spans.some((s) => s.name === 'invoke_agent developer'), 'a worker\'s lifetime span');
  });
});
