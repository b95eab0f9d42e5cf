/**
 * Standard Webhooks signing: what a sink sends is verified by an independent implementation of
 * the scheme written here from the spec (node:crypto only, none of exporters/signing.ts), with
 * two secrets during a rotation; the spec's published test vector; `cao-events verify`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sign, verify } from '../exporters/delivery/signing.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { startRuntime } from '../src/runtime.ts';
import { startCaptureServer } from './helpers/capture-server.ts';
import { logCapture } from './helpers/log-capture.ts';
import { scratchDir } from './helpers/scratch-dir.ts';

/**
 * The receiver side of the Standard Webhooks spec, written independently: the key is the
 * base64 after `whsec_`; the signed content is `${webhook-id}.${webhook-timestamp}.${body}`;
 * `webhook-signature` is a space-separated list of `v1,<base64 HMAC-SHA256>`; the timestamp
 * must be within 5 minutes.
 */
function independentVerify(headers: Record<string, unknown>, body: string, secret: string): boolean {
  const id = String(headers['webhook-id'] ?? '');
  const timestamp = String(headers['webhook-timestamp'] ?? '');
  const signatures = String(headers['webhook-signature'] ?? '');
  if (!id || !/^\d+$/.test(timestamp) || !signatures) return false;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest();
  return signatures.split(' ').some((entry) => {
    const [version, value] = entry.split(',');
    if (version !== 'v1' || !value) return false;
    const got = Buffer.from(value, 'base64');
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
}

const newSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;
const dir = scratchDir('cao-events-signing-');
const CLI = new URL('../src/cli.ts', import.meta.url).pathname;

describe('Standard Webhooks signatures', () => {
  it('match the specification\'s published test vector', () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const body = '{"test": 2432232314}';
    assert.equal(sign('msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, body, [secret]), 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
    const headers = { 'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek', 'webhook-timestamp': '1614265330', 'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=' };
    assert.deepEqual(verify(headers, body, [secret], { nowMs: 1614265330_000 }), { ok: true, id: 'msg_p5jXN8AQM9LWM0D4loKWxJek', timestamp: 1614265330, secretIndex: 0 });
    assert.equal(verify(headers, body, [secret]).ok, false, 'a 2021 timestamp is outside the tolerance today');
    assert.equal(verify(headers, `${body} `, [secret], { nowMs: 1614265330_000 }).ok, false, 'a changed body fails');
  });

  it('a sink configured with two secrets (rotation) signs every request so that either secret verifies it', async () => {
    const receiver = await startCaptureServer();
    const [oldSecret, newSecretValue] = [newSecret(), newSecret()];
    const path = join(dir, 'signed.yaml');
    writeFileSync(path, [
      'sinks:',
      '  - name: signed',
      `    url: ${receiver.url}`,
      '    signing:',
      '      secrets:',
      '        - ${OLD_SECRET}',
      '        - ${NEW_SECRET}',
    ].join('\n'));
    const config = loadConfig({ configPath: path, env: { OLD_SECRET: oldSecret, NEW_SECRET: newSecretValue } });
    const logs = logCapture();
    const runtime = startRuntime({ ...config, otlp: {} }, createLogger('info', logs.stream), { env: {} });
    runtime.record({ type: 'session_created', sessionName: 'cao-signed' });
    runtime.record({ type: 'message_sent', sessionName: 'cao-signed', sender: 'a1b2c3d4', receiver: 'e5f6a7b8', orchestrationType: 'send_message', phase: 'dispatched', message: 'ünïcode ✓ "quoted"' });
    await runtime.telemetry.forceFlush();
    assert.equal(receiver.requests.length, 2);
    for (const { headers, body } of receiver.requests) {
      assert.equal(headers['webhook-id'], (JSON.parse(body) as { id: string }).id, 'webhook-id is the CloudEvent id');
      assert.equal(String(headers['webhook-signature']).split(' ').length, 2, 'one v1 signature per secret');
      assert.ok(independentVerify(headers, body, oldSecret), 'verifies with the old secret');
      assert.ok(independentVerify(headers, body, newSecretValue), 'verifies with the new secret');
      assert.ok(!independentVerify(headers, body, newSecret()), 'an unrelated secret does not verify');
      assert.ok(!independentVerify(headers, body.replace('cao-signed', 'cao-forged'), oldSecret), 'a changed body does not verify');
    }
    assert.ok(!logs.text().includes(oldSecret.slice(6)) && !logs.text().includes(newSecretValue.slice(6)), 'secrets never logged');
    await runtime.close();
    await receiver.close();
  });

  it('refuses a secret that is not whsec_ base64 of 24-64 bytes, naming the path but never the value', () => {
    const path = join(dir, 'bad-secret.yaml');
    writeFileSync(path, 'sinks:\n  - url: http://127.0.0.1:1/\n    signing:\n      secrets: [whsec_c2hvcnQ=]\n');
    assert.throws(() => loadConfig({ configPath: path }), (err: Error) =>
      /^sinks\[0\]\.signing\.secrets\[0\] \(.*bad-secret\.yaml\): must encode 24 to 64 bytes/.test(err.message) && !err.message.includes('c2hvcnQ'));
    writeFileSync(path, 'sinks:\n  - url: http://127.0.0.1:1/\n    signing:\n      secrets: [plain-password]\n');
    assert.throws(() => loadConfig({ configPath: path }), (err: Error) =>
      /secrets\[0\] .*must start with whsec_/.test(err.message) && !err.message.includes('plain-password'));
  });
});

describe('cao-events verify', () => {
  async function run(args: string[], stdin: string) {
    const child = spawn(process.execPath, [CLI, 'verify', ...args], { env: { PATH: process.env.PATH ?? '' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (err += c));
    child.stdin.end(stdin);
    const [code] = await once(child, 'exit');
    return { code: code as number, out, err };
  }

  it('says valid (exit 0) for a signed request, invalid (exit 1) for a tampered one, and takes rotation secrets', async () => {
    const [a, b] = [newSecret(), newSecret()];
    const body = '{"specversion":"1.0","id":"x-1","type":"io.github.awslabs.cao.session_created","source":"s"}';
    const ts = Math.floor(Date.now() / 1000);
    const request = { headers: { 'webhook-id': 'x-1', 'webhook-timestamp': String(ts), 'webhook-signature': sign('x-1', ts, body, [b]) }, body };
    const valid = await run(['--secret', a], JSON.stringify(request));
    assert.equal(valid.code, 1, 'the old secret alone does not verify what only the new one signed');
    assert.match(valid.out, /^invalid: no v1 signature matches/);
    const rotated = await run(['--secret', `${a} ${b}`], JSON.stringify(request));
    assert.equal(rotated.code, 0);
    assert.match(rotated.out, /^valid: webhook-id x-1, signed \d+ s ago, secret #2/);
    const file = join(dir, 'request.json');
    writeFileSync(file, JSON.stringify({ ...request, body: body.replace('x-1', 'x-2') }));
    const tampered = await run(['--secret', b, '--file', file], '');
    assert.equal(tampered.code, 1);
    const usage = await run(['--secret', 'nope'], '{}');
    assert.equal(usage.code, 2);
    assert.match(usage.err, /secret #1: must start with whsec_/);
  });
});
