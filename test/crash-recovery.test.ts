/**
 * kill -9 of the sidecar mid-stream, then restart: with the outbox on, every event accepted
 * before the crash arrives afterwards, with its id unchanged. Real processes (the CLI gateway),
 * the CAO simulator upstream, a real receiver that is down during the first run.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { request } from 'undici';
import { pendingIds } from './helpers/outbox-contents.ts';
import { startCaoSimulator } from '../src/demo/cao-simulator.ts';
import { startReceiver } from '../src/receiver.ts';
import { freePort } from './helpers/free-port.ts';
import { waitFor } from './helpers/otlp-receiver.ts';
import { scratchDir } from './helpers/scratch-dir.ts';

const CLI = new URL('../src/cli.ts', import.meta.url).pathname;
const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CAO_EVENT') && !k.startsWith('OTEL_')));

function gateway(args: string[]) {
  const child = spawn(process.execPath, [CLI, 'gateway', ...args], { env: clean });
  after(() => child.kill('SIGKILL'));
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c));
  const listening = async (): Promise<string> => {
    await waitFor(() => err.includes('"listen"'), 20_000, 'the gateway to listen');
    const line = err.split('\n').find((l) => l.includes('"listen"'))!;
    return String((JSON.parse(line) as { listen: string }).listen);
  };
  return { child, listening, stderr: () => err };
}

describe('crash recovery', () => {
  it('kill -9 mid-stream then restart: all events arrive, ids unchanged', async () => {
    const sim = await startCaoSimulator({ workMs: 60_000 });
    const port = await freePort();
    const callback = `http://127.0.0.1:${port}/`;
    const outbox = scratchDir('cao-events-crash-');
    const args = ['--callback-url', callback, '--upstream', sim.url, '--port', '0', '--ingest-port', '0', '--no-poll', '--outbox-dir', outbox];

    const first = gateway(args);
    const url = await first.listening();
    const launch = await request(new URL('/sessions?agent_profile=code_supervisor&session_name=cao-crash', url), { method: 'POST' });
    const sup = (await launch.body.json()) as { id: string };
    for (let i = 0; i < 5; i++) {
      const res = await request(new URL(`/terminals/${sup.id}/inbox/messages?sender_id=${sup.id}&message=note%20${i}`, url), { method: 'POST' });
      assert.equal(res.statusCode, 200);
      await res.body.dump();
    }
    // session_created, terminal_created and five messages are on disk, none delivered (the receiver is down)
    await waitFor(() => pendingIds(outbox).length === 7, 10_000, 'seven pending events in the outbox');
    const before = pendingIds(outbox);
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));

    const receiver = await startReceiver({ port });
    const second = gateway(args);
    await second.listening();
    await waitFor(() => receiver.received.length >= 7, 20_000, 'the recovered events');
    assert.deepEqual(receiver.received.map((r) => r.event.id), before, 'every event, in order, same ids');
    await waitFor(() => pendingIds(outbox).length === 0, 5_000, 'the outbox to drain');
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.once('exit', r));
    await receiver.close();
    await sim.close();
  });
});
