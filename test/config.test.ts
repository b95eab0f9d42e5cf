/** Configuration: precedence, validation with errors that name the key, config files. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, DEFAULT_CONFIG, loadConfig } from '../src/config.ts';
import { traceExportersFrom } from '../src/otlp.ts';
import { scratchDir } from './helpers/scratch-dir.ts';

const dir = scratchDir('cao-events-config-');
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('configuration', () => {
  it('uses the defaults when nothing is given', () => {
    assert.deepEqual(loadConfig(), DEFAULT_CONFIG);
    assert.equal(DEFAULT_CONFIG.gateway.host, '127.0.0.1', 'servers bind to loopback by default');
    assert.equal(DEFAULT_CONFIG.callbackUrl, undefined, 'CloudEvents are opt-in');
  });

  it('applies flags > environment > file > defaults', () => {
    const path = file('c.yaml', 'callbackUrl: http://127.0.0.1:1/file\nmode: batch\ngateway:\n  port: 7000\n  upstream: http://127.0.0.1:7001\npoller:\n  intervalMs: 500\n');
    const fromFile = loadConfig({ configPath: path });
    assert.equal(fromFile.callbackUrl, 'http://127.0.0.1:1/file');
    assert.equal(fromFile.gateway.port, 7000);
    assert.equal(fromFile.gateway.host, '127.0.0.1');
    assert.equal(fromFile.poller.intervalMs, 500);
    const withEnv = loadConfig({ configPath: path, env: { CAO_EVENT_CALLBACK_URL: 'http://127.0.0.1:2/env', CAO_EVENTS_GATEWAY_PORT: '7100' } });
    assert.equal(withEnv.callbackUrl, 'http://127.0.0.1:2/env');
    assert.equal(withEnv.gateway.port, 7100);
    assert.equal(withEnv.mode, 'batch');
    const withFlags = loadConfig({
      configPath: path,
      env: { CAO_EVENT_CALLBACK_URL: 'http://127.0.0.1:2/env' },
      flags: { 'callback-url': 'http://127.0.0.1:3/flag', mode: 'binary', poll: false },
    });
    assert.equal(withFlags.callbackUrl, 'http://127.0.0.1:3/flag');
    assert.equal(withFlags.mode, 'binary');
    assert.equal(withFlags.poller.enabled, false);
  });

  it('finds the file through CAO_EVENTS_CONFIG and reads JSON too', () => {
    const path = file('c.json', JSON.stringify({ typePrefix: 'com.example.cao', otlp: { protocol: 'grpc' } }));
    const config = loadConfig({ env: { CAO_EVENTS_CONFIG: path } });
    assert.equal(config.typePrefix, 'com.example.cao');
    assert.equal(config.otlp.protocol, 'grpc');
  });

  const bad: Array<[string, Parameters<typeof loadConfig>[0], RegExp]> = [
    ['an unknown mode from a flag', { flags: { mode: 'xml' } }, /^mode \(flag --mode\): must be one of structured, binary, batch/],
    ['a callback URL that is not a URL', { env: { CAO_EVENT_CALLBACK_URL: 'not a url' } }, /^callbackUrl \(env CAO_EVENT_CALLBACK_URL\): not a valid URL/],
    ['a non-http callback URL', { env: { CAO_EVENT_CALLBACK_URL: 'ftp://127.0.0.1/' } }, /^callbackUrl .*http:\/\/ or https:\/\//],
    ['a port out of range', { flags: { port: '70000' } }, /^gateway\.port \(flag --port\): must be an integer from 0 to 65535/],
    ['a non-numeric interval', { env: { CAO_EVENTS_POLL_INTERVAL_MS: 'soon' } }, /^poller\.intervalMs \(env CAO_EVENTS_POLL_INTERVAL_MS\)/],
    ['a missing config file', { configPath: join(dir, 'nope.yaml') }, /nope\.yaml: cannot be read \(ENOENT\)/],
    ['an unknown key in the file', { configPath: file('typo.yaml', 'gateway:\n  upstrem: http://127.0.0.1:1\n') }, /^gateway\.upstrem \(.*typo\.yaml\): unknown key/],
    ['a wrong type in the file', { configPath: file('type.yaml', 'timeoutMs: "fast"\n') }, /^timeoutMs \(.*type\.yaml\): must be an integer/],
    ['malformed YAML', { configPath: file('broken.yaml', 'mode: [structured\n') }, /broken\.yaml: not valid YAML/],
    ['malformed JSON', { configPath: file('broken.json', '{"mode": ') }, /broken\.json: not valid JSON/],
    ['a file that is not a mapping', { configPath: file('list.yaml', '- a\n- b\n') }, /must be a mapping/],
  ];
  for (const [what, sources, message] of bad) {
    it(`refuses ${what} with one message naming the key`, () => {
      assert.throws(() => loadConfig(sources), (err: Error) => err instanceof ConfigError && message.test(err.message));
    });
  }

  it('refuses an unsupported OTEL_EXPORTER_OTLP_PROTOCOL naming the variable', () => {
    assert.throws(
      () => traceExportersFrom(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'carrier-pigeon' }),
      /OTEL_EXPORTER_OTLP_PROTOCOL: unsupported OTLP protocol "carrier-pigeon"/,
    );
  });

  it('builds no OTLP exporter unless an endpoint is configured (nothing silently aimed at localhost)', () => {
    assert.equal(traceExportersFrom(undefined, {}).length, 0);
    assert.equal(traceExportersFrom(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }).length, 1);
    assert.equal(traceExportersFrom(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_TRACES_EXPORTER: 'none' }).length, 0);
    assert.equal(traceExportersFrom(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_SDK_DISABLED: 'true' }).length, 0);
    assert.equal(traceExportersFrom(false, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }).length, 0);
  });
});
