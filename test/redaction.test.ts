/**
 * Redaction: the built-in rules catch the common secrets; the config file adds, replaces or
 * disables rules; and it happens before anything leaves the process — the webhook and the OTLP
 * receiver both get only the redacted text.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { CaoEventData } from '../exporters/transform.ts';
import { ConfigError, loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { DEFAULT_REDACTION_RULES, compileRedaction, redact, redactText } from '../src/redact.ts';
import { startRuntime } from '../src/runtime.ts';
import { startCaptureServer } from './helpers/capture-server.ts';
import { startOtlpHttpReceiver, waitFor } from './helpers/otlp-receiver.ts';
import { scratchDir } from './helpers/scratch-dir.ts';

const dir = scratchDir('cao-events-redaction-');
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

// Secret-shaped test values (none of them real).
const AWS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
const AWS_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const BEARER = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYW8ifQ.c2lnbmF0dXJl';
const GITHUB = `ghp_${'a1B2c3D4e5'.repeat(4)}`;
const GITHUB_PAT = `github_pat_11ABCDEFG0${'x'.repeat(30)}`;
const SLACK = 'xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp';
const PRIVATE_KEY = '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nabc\n-----END RSA PRIVATE KEY-----';

describe('redaction rules', () => {
  const cases: Array<[string, string, string]> = [
    ['an AWS access key id', `use ${AWS_KEY_ID} for s3`, 'use [REDACTED:aws-access-key-id] for s3'],
    ['an AWS secret access key assignment', `aws_secret_access_key = ${AWS_SECRET}`, 'aws_secret_access_key = [REDACTED:aws-secret-access-key]'],
    ['a bearer token', `curl -H "Authorization: Bearer ${BEARER}" …`, 'curl -H "Authorization: Bearer [REDACTED:bearer-token]" …'],
    ['a GitHub token', `token ${GITHUB} works`, 'token [REDACTED:github-token] works'],
    ['a fine-grained GitHub token', `export GH=${GITHUB_PAT}`, 'export GH=[REDACTED:github-token]'],
    ['a Slack token', `SLACK_BOT=${SLACK}`, 'SLACK_BOT=[REDACTED:slack-token]'],
    ['a private key block', `key:\n${PRIVATE_KEY}\nthanks`, 'key:\n[REDACTED:private-key]\nthanks'],
    ['a password assignment', 'db password=hunter2; user=cao', 'db password=[REDACTED:password]; user=cao'],
    ['an api_key assignment in JSON', '{"api_key": "sk-live-123456"}', '{"api_key": "[REDACTED:api-key]"}'],
  ];
  for (const [what, input, expected] of cases) {
    it(`redacts ${what}`, () => {
      assert.equal(redactText(input, DEFAULT_REDACTION_RULES), expected);
    });
  }

  it('leaves ordinary agent text alone, and returns the same event when nothing matched', () => {
    const text = 'Implement the CSV parser; the password field of the form must be validated. Bearer of bad news.';
    assert.equal(redactText(text, DEFAULT_REDACTION_RULES), text);
    const event = { type: 'message_sent' as const, sessionName: 's', sender: 'a', orchestrationType: 'assign' as const, phase: 'dispatched' as const, message: text };
    assert.equal(redact(event, DEFAULT_REDACTION_RULES), event);
    assert.equal(redact({ ...event, message: AWS_KEY_ID }, false).message, AWS_KEY_ID, 'false turns it off');
  });

  it('the config file adds patterns, replaces the defaults, or turns redaction off', () => {
    const added = loadConfig({ configPath: file('add.yaml', "redaction:\n  patterns:\n    - 'TICKET-\\d+'\n    - { name: email, pattern: '[a-z]+@example\\.com', flags: i, replacement: '<email>' }\n") });
    const rules = compileRedaction(added.redaction);
    assert.ok(rules);
    assert.equal(redactText(`TICKET-42 by Bob@Example.com with ${AWS_KEY_ID}`, rules), '[REDACTED:pattern-0] by <email> with [REDACTED:aws-access-key-id]');
    const replaced = loadConfig({ configPath: file('replace.yaml', "redaction:\n  defaults: false\n  patterns: ['TICKET-\\d+']\n") });
    assert.equal(redactText(`TICKET-1 ${AWS_KEY_ID}`, compileRedaction(replaced.redaction) || []), `[REDACTED:pattern-0] ${AWS_KEY_ID}`);
    const off = loadConfig({ configPath: file('off.yaml', 'redaction:\n  enabled: false\n') });
    assert.equal(compileRedaction(off.redaction), false);
    assert.equal(compileRedaction(loadConfig({ flags: { redact: false } }).redaction), false, '--no-redact');
    assert.equal(compileRedaction(loadConfig({ env: { CAO_EVENTS_REDACT: 'false' } }).redaction), false);
  });

  const bad: Array<[string, string, RegExp]> = [
    ['an invalid regular expression', "redaction:\n  patterns: ['(unclosed']\n", /^redaction\.patterns\[0\]\.pattern \(.*\): not a valid regular expression/],
    ['a pattern matching the empty string', "redaction:\n  patterns: ['x*']\n", /^redaction\.patterns\[0\]\.pattern .*matches the empty string/],
    ['a bad flag', "redaction:\n  patterns: [{ pattern: 'x', flags: g }]\n", /^redaction\.patterns\[0\]\.flags .*i, m, s, u/],
    ['an unknown key', "redaction:\n  patterns: [{ pattern: 'x', replace: y }]\n", /^redaction\.patterns\[0\]\.replace .*unknown key/],
    ['patterns that are not a list', 'redaction:\n  patterns: nope\n', /^redaction\.patterns .*must be a list/],
  ];
  for (const [what, text, message] of bad) {
    it(`refuses ${what}, naming the path`, () => {
      assert.throws(() => loadConfig({ configPath: file('bad.yaml', text) }), (err: Error) => err instanceof ConfigError && message.test(err.message));
    });
  }
});

describe('redaction before anything leaves the process', () => {
  it('the webhook and the OTLP receiver both get only the redacted message', async () => {
    const otlp = await startOtlpHttpReceiver();
    const hook = await startCaptureServer();
    const path = file('e2e.yaml', [
      `callbackUrl: ${hook.url}`,
      'otlp:',
      `  endpoint: ${otlp.url}`,
      '  protocol: http/json',
      'redaction:',
      "  patterns: ['internal-[0-9]{4}']",
    ].join('\n'));
    const config = loadConfig({ configPath: path });
    const runtime = startRuntime(config, createLogger('silent'), { env: {} });
    const message = `Deploy with ${AWS_KEY_ID} / aws_secret_access_key=${AWS_SECRET}, call with "Authorization: Bearer ${BEARER}", host internal-4711`;
    runtime.record({ type: 'message_sent', sessionName: 'cao-redact', sender: 'a1b2c3d4', receiver: 'e5f6a7b8', orchestrationType: 'assign', phase: 'dispatched', message });
    await runtime.telemetry.forceFlush();
    await waitFor(() => otlp.spans.some((s) => s.events[0]?.name === 'cao.message_sent'), 10_000, 'the span at the OTLP receiver');
    const expected = 'Deploy with [REDACTED:aws-access-key-id] / aws_secret_access_key=[REDACTED:aws-secret-access-key], ' +
      'call with "Authorization: Bearer [REDACTED:bearer-token]", host [REDACTED:pattern-0]';
    assert.equal(hook.requests.length, 1);
    assert.equal((JSON.parse(hook.requests[0]!.body) as { data: CaoEventData }).data.message, expected);
    const span = otlp.spans.find((s) => s.events[0]?.name === 'cao.message_sent')!;
    assert.equal(span.events[0]!.attributes['cao.message.content'], expected);
    for (const secret of [AWS_KEY_ID, AWS_SECRET, BEARER, 'internal-4711']) {
      assert.ok(!hook.requests[0]!.body.includes(secret), `${secret} not in the webhook body`);
      assert.ok(!JSON.stringify(otlp.spans).includes(secret), `${secret} not in what the collector got`);
    }
    await runtime.close();
    await hook.close();
    await otlp.close();
  });
});
