/**
 * Faults around the gateway, on loopback: a 5 MiB message, malformed and truncated upstream
 * responses, an upstream that resets mid-body. The client always gets what the upstream sent
 * (or a clear 502), nothing invalid is recorded, and the gateway keeps serving.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { request } from 'undici';
import type { CaoEventData } from '../exporters/transform.ts';
import { loadConfig } from '../src/config.ts';
import { startCaoSimulator } from '../src/demo/cao-simulator.ts';
import { startGatewayService } from '../src/gateway-service.ts';
import { createLogger } from '../src/logger.ts';
import { startReceiver } from '../src/receiver.ts';
import { startRuntime } from '../src/runtime.ts';
import { logCapture } from './helpers/log-capture.ts';
import { waitFor } from './helpers/otlp-receiver.ts';

async function gatewayTo(upstream: string) {
  const receiver = await startReceiver({ maxBodyBytes: 64 * 1024 * 1024 });
  const logs = logCapture();
  const config = loadConfig({ flags: { 'callback-url': receiver.url, upstream, port: '0', poll: false } });
  const runtime = startRuntime(config, createLogger('info', logs.stream));
  const gateway = await startGatewayService(config, runtime, { ingest: false });
  return {
    receiver,
    logs,
    gateway,
    close: async () => {
      await gateway.close();
      await runtime.close();
      await receiver.close();
    },
  };
}

describe('gateway faults', () => {
  it('a 5 MiB assign task passes through unchanged and arrives whole as a CloudEvent', async () => {
    const sim = await startCaoSimulator({ workMs: 60_000 });
    const g = await gatewayTo(sim.url);
    const post = async (path: string, body?: unknown) => {
      const res = await request(new URL(path, g.gateway.url), { method: 'POST', headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
      return { status: res.statusCode, json: (await res.body.json()) as { id: string } };
    };
    const sup = await post('/sessions?agent_profile=code_supervisor&session_name=cao-big');
    assert.equal(sup.status, 201);
    const task = `Refactor this:\n${'x'.repeat(5 * 1024 * 1024)}\nend.`;
    const worker = await post(`/sessions/cao-big/terminals?provider=claude_code&agent_profile=developer&caller_id=${sup.json.id}&defer_init=true`, { initial_message: task, initial_message_orchestration_type: 'assign' });
    assert.equal(worker.status, 201);
    await waitFor(() => g.receiver.received.some((r) => (r.event.data as CaoEventData).orchestration_type === 'assign'), 10_000, 'the assign event');
    const assign = g.receiver.received.find((r) => (r.event.data as CaoEventData).orchestration_type === 'assign')!;
    assert.equal((assign.event.data as CaoEventData).message, task);
    assert.ok(!g.logs.text().includes('xxxxxxxx'), 'the message is not logged');
    await g.close();
    await sim.close();
  });

  it('malformed, truncated and reset upstream responses reach the client as sent; nothing is recorded; the gateway keeps serving', async () => {
    const upstream = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.url!.startsWith('/sessions?truncated')) {
          res.writeHead(201, { 'content-type': 'application/json' }).end('{"id":"abcd1234","session_name":"cao-');
        } else if (req.url!.startsWith('/sessions?garbage')) {
          res.writeHead(201, { 'content-type': 'application/json' }).end('<html>not json</html>');
        } else if (req.url!.startsWith('/sessions?reset')) {
          res.writeHead(201, { 'content-type': 'application/json', 'content-length': '100' });
          res.write('{"id":"abcd1234",');
          setTimeout(() => res.socket?.destroy(), 20);
        } else {
          res.writeHead(200, { 'content-type': 'application/json' }).end('[]');
        }
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const g = await gatewayTo(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`);
    const truncated = await request(new URL('/sessions?truncated=1&agent_profile=x', g.gateway.url), { method: 'POST' });
    assert.equal(truncated.statusCode, 201);
    assert.equal(await truncated.body.text(), '{"id":"abcd1234","session_name":"cao-');
    const garbage = await request(new URL('/sessions?garbage=1&agent_profile=x', g.gateway.url), { method: 'POST' });
    assert.equal(await garbage.body.text(), '<html>not json</html>');
    const reset = await request(new URL('/sessions?reset=1&agent_profile=x', g.gateway.url), { method: 'POST' });
    await assert.rejects(reset.body.text(), 'a broken upstream body is a broken client body, not a silently short one');
    const fine = await request(new URL('/sessions', g.gateway.url));
    assert.equal(await fine.body.text(), '[]');
    await g.gateway.settled();
    assert.equal(g.receiver.received.length, 0);
    await g.close();
    upstream.closeAllConnections();
    upstream.close();
  });
});
