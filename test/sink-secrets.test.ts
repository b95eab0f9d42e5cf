/**
 * Webhook URLs are secrets: a sink is named by the operator or by its host, port and a short
 * hash of the URL, and no log line, metric label or /healthz field ever holds a URL path, query,
 * password or token (a Slack/Discord-style token in the path is the common case).
 * `user:pass@` in a sink URL becomes HTTP Basic auth. The real gateway process, real HTTP.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { request } from 'undici';
import { ConfigError, loadConfig } from '../src/config.ts';
import { startCaoSimulator } from '../src/demo/cao-simulator.ts';
import { startCaptureServer } from './helpers/capture-server.ts';
import { freePort } from './helpers/free-port.ts';
import { waitFor } from './helpers/otlp-receiver.ts';
import { scratchDir } from './helpers/scratch-dir.ts';

const CLI = new URL('../src/cli.ts', import.meta.url).pathname;
const dir = scratchDir('cao-events-secrets-');
const SECRETS = ['T0SECRETTEAM', 'B0SECRETHOOK', 'XXSECRETTOKENXX', 'QUERYSECRET', 'hunter2', 'alice', 'PATHSECRET', '/services', '/hooks'];
const children: Array<ReturnType<typeof spawn>> = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

describe('sink URLs are secrets', () => {
  it('no URL path, query, password or token in the start-up line, any log line, /healthz or /metrics; credentials become Basic auth', async () => {
    const sim = await startCaoSimulator();
    const hook = await startCaptureServer();
    const [port, ingestPort, deadPort] = [await freePort(), await freePort(), await freePort()];
    const hookPort = new URL(hook.url).port;
    const config = join(dir, 'secrets.yaml');
    writeFileSync(config, `sinks:\n  - url: "http://alice:hunter2@127.0.0.1:${hookPort}/hooks/PATHSECRET"\n`);
    const callback = `http://127.0.0.1:${deadPort}/services/T0SECRETTEAM/B0SECRETHOOK/XXSECRETTOKENXX?token=QUERYSECRET`;
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CAO_EVENT') && !k.startsWith('OTEL_')));
    const child = spawn(process.execPath, [CLI, 'gateway', '--config', config, '--callback-url', callback, '--upstream', sim.url, '--port', String(port), '--ingest-port', String(ingestPort), '--no-poll', '--shutdown-timeout-ms', '200', '--log-level', 'debug'], { env: clean });
    children.push(child);
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    await waitFor(() => stderr.includes('"listen"'), 20_000, 'the gateway to listen');
    const launch = await request(`http://127.0.0.1:${port}/sessions?agent_profile=developer&session_name=cao-secret`, { method: 'POST' });
    assert.equal(launch.statusCode, 201);
    await launch.body.dump();
    await waitFor(() => hook.requests.length >= 2, 10_000, 'the configured sink to receive the events');
    await waitFor(() => stderr.includes('ECONNREFUSED'), 10_000, 'a failed attempt to the callback URL (a WARN line)');
    const health = await (await request(`http://127.0.0.1:${ingestPort}/healthz`)).body.text();
    const metrics = await (await request(`http://127.0.0.1:${ingestPort}/metrics`)).body.text();
    child.kill('SIGTERM');
    await once(child, 'exit');
    const startLine = stderr.split('\n').find((l) => l.includes('"listen"'))!;
    for (const secret of SECRETS) {
      assert.ok(!stderr.includes(secret), `the log never holds ${secret}`);
      assert.ok(!health.includes(secret), `/healthz never holds ${secret}`);
      assert.ok(!metrics.includes(secret), `/metrics never holds ${secret}`);
    }
    // One label value per sink: its name, host-port-hash for sinks without `name:`.
    const names = [...new Set([...metrics.matchAll(/sink="([^"]+)"/g)].map((m) => m[1]!))].sort();
    assert.equal(names.length, 2);
    for (const name of names) assert.match(name, /^127\.0\.0\.1-\d+-[0-9a-f]{8}$/);
    assert.ok(names.every((n) => startLine.includes(n)), 'the start-up line names both sinks by those names');
    assert.deepEqual(JSON.parse(health).sinks.map((s: { name: string }) => s.name).sort(), names);
    // user:pass@ went as Basic auth, and not in the URL
    assert.equal(hook.requests[0]!.headers.authorization, `Basic ${Buffer.from('alice:hunter2').toString('base64')}`);
    assert.equal(hook.requests[0]!.url, '/hooks/PATHSECRET');
    await hook.close();
    await sim.close();
  });

  it('credentials in the URL and an Authorization header both: a configuration error naming the key, without echoing either', () => {
    const path = join(dir, 'both.yaml');
    writeFileSync(path, 'sinks:\n  - url: "https://bob:s3cr3t@hooks.example.com/x"\n    headers: { Authorization: "Bearer t0k3n" }\n');
    assert.throws(() => loadConfig({ configPath: path }), (err: Error) =>
      err instanceof ConfigError && /^sinks\[0\]\.url .*user:pass@ credentials and headers has Authorization too/.test(err.message) &&
      !/s3cr3t|t0k3n|bob/.test(err.message));
  });
});
