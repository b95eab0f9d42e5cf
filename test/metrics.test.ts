/** Self-observability: Prometheus text from the OTel metrics SDK, and OTLP metrics to a real receiver. */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { request } from 'undici';
import { createLogger } from '../src/logger.ts';
import { CaoMetrics } from '../src/metrics.ts';
import { startReceiver } from '../src/receiver.ts';
import { cloudEventsSinkSpec, createWebhookSink } from '../src/sink-factory.ts';
import { spanEventToCloudEvent } from '../exporters/transform.ts';
import { waitFor } from './helpers/otlp-receiver.ts';

describe('metrics', () => {
  it('serves events by type/source/outcome, deliveries per sink, queue depth and latency as Prometheus text', async () => {
    const metrics = new CaoMetrics({ otlp: false });
    const receiver = await startReceiver();
    const sink = createWebhookSink(cloudEventsSinkSpec({ url: receiver.url, name: 'test-sink' }), { logger: createLogger('silent'), metrics });
    metrics.event('message_sent', 'gateway', 'recorded');
    metrics.event('message_sent', 'gateway', 'recorded');
    metrics.event('session_created', 'poller', 'duplicate');
    const event = spanEventToCloudEvent({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 },
      { name: 'cao.session_created', time: [Math.floor(Date.now() / 1000), 0], attributes: { 'cao.session.name': 'cao-m' } }, 0)!;
    sink.enqueue([event]);
    await sink.forceFlush();
    const server = createServer((req, res) => metrics.handle(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const res = await request(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`);
    const text = await res.body.text();
    assert.equal(res.statusCode, 200);
    assert.match(text, /cao_events_events_total\{type="message_sent",source="gateway",outcome="recorded"\} 2/);
    assert.match(text, /cao_events_events_total\{type="session_created",source="poller",outcome="duplicate"\} 1/);
    assert.match(text, /cao_events_deliveries_total\{sink="test-sink",outcome="delivered"\} 1/);
    assert.match(text, /cao_events_deliveries_total\{sink="test-sink",outcome="dead_lettered"\} 0/);
    assert.match(text, /cao_events_lost_total\{sink="test-sink",reason="queue_full"\} 0/);
    assert.match(text, /cao_events_queue_depth\{sink="test-sink"\} 0/);
    assert.match(text, /cao_events_delivery_latency_seconds_count\{sink="test-sink"\} 1/);
    assert.ok(!/cao_events_outbox/.test(text), 'no outbox metrics for a sink without one');
    assert.deepEqual(metrics.health(), { ok: true, sinks: [{ name: 'test-sink', disabled: false, breaker: 'closed', queued: 0, inFlight: 0, lost: 0 }] });
    server.closeAllConnections();
    server.close();
    await sink.shutdown();
    await receiver.close();
    await metrics.shutdown();
  });

  it('pushes the same metrics over OTLP when an endpoint is configured', async () => {
    const bodies: string[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => { if (req.url === '/v1/metrics') bodies.push(body); res.writeHead(200, { 'content-type': 'application/json' }).end('{}'); });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const metrics = new CaoMetrics({ otlp: { endpoint, protocol: 'http/json' }, env: {}, exportIntervalMs: 100 });
    metrics.event('terminal_created', 'plugin', 'recorded');
    await waitFor(() => bodies.some((b) => b.includes('cao_events.events')), 10_000, 'OTLP metrics');
    assert.ok(bodies.some((b) => b.includes('"terminal_created"')));
    await metrics.shutdown();
    server.closeAllConnections();
    server.close();
  });
});

describe('metrics on the sidecar', () => {
  it('the gateway serves /metrics and /healthz on its ingest port, counting gateway events and deliveries', async () => {
    const { loadConfig } = await import('../src/config.ts');
    const { startRuntime } = await import('../src/runtime.ts');
    const { startGatewayService } = await import('../src/gateway-service.ts');
    const { startCaoSimulator } = await import('../src/demo/cao-simulator.ts');
    const sim = await startCaoSimulator();
    const receiver = await startReceiver();
    const config = loadConfig({ flags: { 'callback-url': receiver.url, upstream: sim.url, port: '0', 'ingest-port': '0', poll: false } });
    const runtime = startRuntime(config, createLogger('silent'));
    const gateway = await startGatewayService(config, runtime);
    const launch = await request(new URL('/sessions?agent_profile=developer', gateway.url), { method: 'POST' });
    await launch.body.dump();
    await gateway.settled();
    await runtime.telemetry.forceFlush();
    const base = gateway.ingestUrl!.replace('/v1/cao/events', '');
    const text = await (await request(`${base}/metrics`)).body.text();
    assert.match(text, /cao_events_events_total\{type="session_created",source="gateway",outcome="recorded"\} 1/);
    assert.match(text, /cao_events_deliveries_total\{sink="[^"]+",outcome="delivered"\} 2/);
    const health = await request(`${base}/healthz`);
    assert.equal(health.statusCode, 200);
    assert.equal(((await health.body.json()) as { ok: boolean }).ok, true);
    await gateway.close();
    await runtime.close();
    await receiver.close();
    await sim.close();
  });
});
