/** The runnable examples work: the Slack-bridge style receiver prints the demo session as a chat transcript. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { runDemo } from '../src/demo/demo-command.ts';
import { freePort } from './helpers/free-port.ts';
import { waitFor } from './helpers/otlp-receiver.ts';
import { scratchDir } from './helpers/scratch-dir.ts';

describe('examples/slack-bridge-receiver.ts', () => {
  it('renders the demo session as a transcript', async () => {
    const port = await freePort();
    const script = new URL('../examples/slack-bridge-receiver.ts', import.meta.url).pathname;
    const child = spawn(process.execPath, [script, String(port)]);
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (err += c));
    await waitFor(() => err.includes('receiver on'), 10_000, 'the example to listen');
    const quiet = new Writable({ write: (_c, _e, cb) => cb() });
    const summary = await runDemo({ 'callback-url': `http://127.0.0.1:${port}/`, 'trace-file': join(scratchDir('cao-events-examples-'), 'spans.jsonl') }, quiet);
    // one line per event; a message's further lines are indented under it
    const eventLines = () => out.trim().split('\n').filter((l) => l.startsWith('['));
    await waitFor(() => eventLines().length >= summary.delivered, 5_000, 'the transcript');
    child.kill();
    const lines = eventLines();
    assert.ok(out.split('\n').every((l) => l === '' || l.startsWith('[') || l.startsWith('    ')), out);
    assert.equal(lines.length, summary.delivered);
    assert.equal(lines[0], '[cao-demo] ── cao-demo started ──');
    assert.equal(lines.at(-1), '[cao-demo] ── cao-demo ended ──');
    assert.ok(lines.some((l) => /code_supervisor \([0-9a-f]{8}\) → developer \([0-9a-f]{8}\) \[assign dispatched\]: Implement the CSV parser/.test(l)));
    assert.ok(lines.some((l) => /reviewer \([0-9a-f]{8}\) → code_supervisor \([0-9a-f]{8}\) \[handoff completed\]/.test(l)));
  });
});

describe('examples/slack-demo.ts', () => {
  it('prints the demo session as a Slack channel reads (channel layout, local Slack stand-in)', async () => {
    const script = new URL('../examples/slack-demo.ts', import.meta.url).pathname;
    const child = spawn(process.execPath, [script, 'channel']);
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (err += c));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, err);
    const lines = out.trim().split('\n');
    assert.match(lines[0]!, /^#cao-demo {2}\(topic: CAO session cao-demo · ended .* · 6 messages between code_supervisor, developer, tester, reviewer\)$/);
    assert.deepEqual(
      lines.filter((l) => l.includes(' → ')).map((l) => l.trim().replace(/ {2}·  ✓ received$/, '')),
      [
        '*code_supervisor* → *developer*  ·  _task_',
        '*code_supervisor* → *tester*  ·  _task_',
        '*code_supervisor* → *reviewer*  ·  _handoff_',
        '*reviewer* → *code_supervisor*  ·  _handoff result_',
        '*developer* → *code_supervisor*',
        '*tester* → *code_supervisor*',
      ],
    );
    assert.match(err, /0 failed/);
  });
});
