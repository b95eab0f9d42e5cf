/**
 * SIGTERM with a backlog: the gateway keeps delivering for --shutdown-timeout-ms, then logs
 * exactly how many events it did not deliver and where they are: lost (no outbox) or kept in
 * the outbox (and delivered after the next start). Real processes (the CLI gateway), the CAO
 * simulator upstream, a callback URL where nothing listens.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { request } from 'undici';
import { startCaoSimulator } from '../src/demo/cao-simulator.ts';
import { startReceiver } from '../src/receiver.ts';
import { startCli } from './helpers/cli-process.ts';
import { freePort } from './helpers/free-port.ts';
import { pendingIds } from './helpers/outbox-contents.ts';
import { waitFor } from './helpers/otlp-receiver.ts';
import { scratchDir } from './helpers/scratch-dir.ts';

const gateway = (args: string[]) => startCli('gateway', args);

/** A session, its terminal and `messages` messages through the gateway: 2 + messages events. */
async function traffic(base: string, messages: number): Promise<void> {
  const launch = await request(`${base}/sessions?agent_profile=code_supervisor&session_name=cao-sigterm`, { method: 'POST' });
  assert.equal(launch.statusCode, 201);
  const sup = (await launch.body.json()) as { id: string };
  for (let i = 0; i < messages; i++) {
    const res = await request(`${base}/terminals/${sup.id}/inbox/messages?sender_id=${sup.id}&message=note%20${i}`, { method: 'POST' });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
  }
}

async function metric(ingestPort: number, name: RegExp): Promise<number> {
  const text = await (await request(`http://127.0.0.1:${ingestPort}/metrics`)).body.text();
  return [...text.matchAll(name)].reduce((n, m) => n + Number(m[1]), 0);
}

describe('SIGTERM with a backlog', () => {
  it('no outbox: after the bounded flush, one ERROR line with the exact number of events lost', async () => {
    const sim = await startCaoSimulator({ workMs: 60_000 });
    const [port, ingestPort, deadPort] = [await freePort(), await freePort(), await freePort()];
    const gw = gateway(['--callback-url', `http://127.0.0.1:${deadPort}/hook`, '--upstream', sim.url, '--port', String(port), '--ingest-port', String(ingestPort), '--no-poll', '--shutdown-timeout-ms', '300']);
    await waitFor(() => gw.stderr().includes('"listen"'), 20_000, 'the gateway to listen');
    await traffic(`http://127.0.0.1:${port}`, 23);
    const recorded = /^cao_events_events_total\{[^}]*outcome="recorded"\} (\d+)$/gm;
    const deadline = Date.now() + 10_000;
    while ((await metric(ingestPort, recorded)) !== 25) {
      assert.ok(Date.now() < deadline, '25 events recorded');
      await new Promise((r) => setTimeout(r, 50));
    }
    const waiting = await metric(ingestPort, /^cao_events_(?:queue_depth|in_flight)\{sink="[^"]+"\} (\d+)$/gm);
    assert.equal(waiting, 25, 'all 25 wait for the dead sink');
    gw.child.kill('SIGTERM');
    const [code] = await once(gw.child, 'exit');
    assert.equal(code, 0);
    const account = gw.lines().find((l) => String(l.msg).startsWith('shutdown:') && l.sinks !== undefined);
    assert.ok(account, `a shutdown account line:\n${gw.stderr()}`);
    assert.equal(account!.level, 50);
    assert.equal(account!.undelivered, 25);
    assert.equal(account!.lost, 25);
    assert.equal(account!.keptOnDisk, 0);
    assert.match(String(account!.msg), /^shutdown: 25 cloudevent\(s\) not delivered: 25 lost, 0 kept in the outbox$/);
    await sim.close();
  });

  it('with the outbox: the exact number kept and the directory they are in; the next start delivers them', async () => {
    const sim = await startCaoSimulator({ workMs: 60_000 });
    const [port, ingestPort, sinkPort] = [await freePort(), await freePort(), await freePort()];
    const outbox = scratchDir('cao-events-sigterm-');
    const args = ['--callback-url', `http://127.0.0.1:${sinkPort}/hook`, '--upstream', sim.url, '--port', String(port), '--ingest-port', String(ingestPort), '--no-poll', '--shutdown-timeout-ms', '300', '--outbox-dir', outbox];
    const first = gateway(args);
    await waitFor(() => first.stderr().includes('"listen"'), 20_000, 'the gateway to listen');
    await traffic(`http://127.0.0.1:${port}`, 5);
    await waitFor(() => pendingIds(outbox).length === 7, 10_000, 'seven events in the outbox');
    const before = pendingIds(outbox);
    first.child.kill('SIGTERM');
    const [code] = await once(first.child, 'exit');
    assert.equal(code, 0);
    const account = first.lines().find((l) => String(l.msg).startsWith('shutdown:') && l.sinks !== undefined);
    assert.equal(account?.level, 40);
    assert.equal(account?.undelivered, 7);
    assert.equal(account?.keptOnDisk, 7);
    assert.equal(account?.lost, 0);
    const perSink = Object.values(account!.sinks as Record<string, { outbox: string }>);
    assert.equal(perSink.length, 1);
    assert.ok(perSink[0]!.outbox.startsWith(outbox), 'says where they are');
    const receiver = await startReceiver({ port: sinkPort });
    const second = gateway(args);
    await waitFor(() => receiver.received.length >= 7, 20_000, 'the kept events after the restart');
    assert.deepEqual(receiver.received.map((r) => r.event.id), before);
    second.child.kill('SIGTERM');
    await once(second.child, 'exit');
    assert.ok(second.lines().some((l) => l.msg === 'shutdown: every cloudevent delivered'));
    await receiver.close();
    await sim.close();
  });
});
