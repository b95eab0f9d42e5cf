/**
 * The default CloudEvents `source`: names the observed CAO server, unique across machines and
 * stable across restarts, never a port 0 or a bare loopback address.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { startRuntime } from '../src/runtime.ts';
import { defaultSource, sourceFor } from '../src/core/source-id.ts';

const run = promisify(execFile);

describe('the default source', () => {
  const laptop = { hostname: 'Dev-Laptop.local', machineKey: '3f9a2c1e7b40' };

  it('names the CAO server by machine, host name and CAO port', () => {
    assert.equal(sourceFor('http://127.0.0.1:9890', laptop), 'cao://3f9a2c1e7b40.dev-laptop.local:9890');
    assert.equal(sourceFor('http://localhost:9889/', laptop), 'cao://3f9a2c1e7b40.dev-laptop.local:9889');
    assert.equal(sourceFor('http://[::1]:9890', laptop), 'cao://3f9a2c1e7b40.dev-laptop.local:9890');
    assert.equal(sourceFor('http://10.0.0.5:9890', laptop), 'cao://3f9a2c1e7b40.dev-laptop.local:9890/10.0.0.5', 'CAO elsewhere: its host too');
    const other = sourceFor('http://127.0.0.1:9890', { hostname: 'Dev-Laptop.local', machineKey: '0c1d2e3f4a5b' });
    assert.notEqual(other, sourceFor('http://127.0.0.1:9890', laptop), 'two laptops of the same name differ');
    for (const s of [other, sourceFor('http://127.0.0.1:9890', laptop)]) assert.doesNotThrow(() => new URL(s));
  });

  it('is the same in every process on this machine (stable across restarts)', async () => {
    const code = `import('${new URL('../src/core/source-id.ts', import.meta.url).href}').then((m) => console.log(m.defaultSource('http://127.0.0.1:9890')))`;
    const [a, b] = await Promise.all([run(process.execPath, ['-e', code]), run(process.execPath, ['-e', code])]);
    assert.equal(a.stdout.trim(), defaultSource('http://127.0.0.1:9890'));
    assert.equal(a.stdout.trim(), b.stdout.trim());
    assert.match(a.stdout.trim(), /^cao:\/\/[0-9a-f]{12}\.[a-z0-9.-]+:9890$/);
  });

  it('the runtime uses it for the upstream CAO (never the gateway\'s port 0), unless `source` is set', async () => {
    const logger = createLogger('silent');
    const runtime = startRuntime(loadConfig({ flags: { port: '0', upstream: 'http://127.0.0.1:9890' }, env: {} }), logger, { metrics: false });
    assert.equal(runtime.telemetry.source, defaultSource('http://127.0.0.1:9890'));
    assert.ok(!runtime.telemetry.source.includes(':0'));
    await runtime.close();
    const named = startRuntime(loadConfig({ flags: { source: 'https://cao.example.com/prod' }, env: {} }), logger, { metrics: false });
    assert.equal(named.telemetry.source, 'https://cao.example.com/prod');
    await named.close();
  });
});
