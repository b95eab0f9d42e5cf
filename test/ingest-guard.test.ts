/**
 * The plugin ingest endpoint refuses what a web page could forge, against the real server on
 * 127.0.0.1: a cross-site `text/plain` POST (415), a foreign Origin (403), a DNS-rebound Host
 * (403); it answers operators' allowed hosts and origins; /metrics and /healthz need the token
 * when one is set. Plus the pure checks behind it.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { request } from 'undici';
import type { CaoEvent } from '../src/core/events.ts';
import { createLogger } from '../src/logger.ts';
import { CaoMetrics } from '../src/metrics.ts';
import { startIngestServer } from '../src/sources/ingest-server.ts';
import { exposureWarning, hostAllowed, hostName, isLoopbackName, originAllowed } from '../src/sources/request-guard.ts';
import { logCapture } from './helpers/log-capture.ts';

const EVENT = JSON.stringify({ event_type: 'post_kill_session', session_id: 'cao-x', session_name: 'cao-x' });

async function send(url: string, headers: Record<string, string>, body: string | undefined = EVENT, method = 'POST') {
  const res = await request(url, { method, headers, body });
  return { status: res.statusCode, text: await res.body.text() };
}

describe('ingest endpoint refuses forged requests', () => {
  const cleanup: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('accepts only application/json (a cross-site form or text/plain POST gets 415)', async () => {
    const got: CaoEvent[] = [];
    const ingest = await startIngestServer({ port: 0, onEvent: (e) => got.push(e) });
    cleanup.push(() => ingest.close());
    for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const r = await send(ingest.url, { 'content-type': type });
      assert.equal(r.status, 415, type);
      assert.match(r.text, /application\/json/);
    }
    assert.equal((await send(ingest.url, {})).status, 415, 'no content type');
    assert.equal(got.length, 0);
    assert.equal((await send(ingest.url, { 'content-type': 'application/json; charset=utf-8' })).status, 202);
    assert.equal(got.length, 1);
  });

  it('refuses a foreign Origin and a non-loopback Host (DNS rebinding) on every route, unless allowed', async () => {
    const got: CaoEvent[] = [];
    const logs = logCapture();
    const ingest = await startIngestServer({ port: 0, onEvent: (e) => got.push(e), metrics: new CaoMetrics(), logger: createLogger('info', logs.stream) });
    cleanup.push(() => ingest.close());
    const json = { 'content-type': 'application/json' };
    const port = ingest.port;

    const crossSite = await send(ingest.url, { ...json, origin: 'https://evil.example' });
    assert.equal(crossSite.status, 403);
    assert.match(crossSite.text, /ingest\.allowedOrigins/);
    assert.equal((await send(ingest.url, { ...json, origin: 'null' })).status, 403, 'sandboxed pages send Origin: null');
    const rebound = await send(ingest.url, { ...json, host: `evil.example:${port}` });
    assert.equal(rebound.status, 403);
    assert.match(rebound.text, /ingest\.allowedHosts/);
    for (const path of ['/metrics', '/healthz']) {
      assert.equal((await send(ingest.url.replace('/v1/cao/events', path), { host: `evil.example:${port}` }, undefined, 'GET')).status, 403, path);
      assert.equal((await send(ingest.url.replace('/v1/cao/events', path), { origin: 'https://evil.example' }, undefined, 'GET')).status, 403, path);
    }
    assert.equal(got.length, 0, 'nothing forged was recorded');
    assert.ok(logs.lines().some((l) => l.level === 40 && /refused/.test(String(l.msg))), 'refusals are logged');

    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`]) {
      assert.equal((await send(ingest.url, { ...json, host })).status, 202, host);
    }
    assert.equal(got.length, 4);
  });

  it('answers the hosts and origins an operator allows', async () => {
    const got: CaoEvent[] = [];
    const ingest = await startIngestServer({
      port: 0,
      onEvent: (e) => got.push(e),
      allowedHosts: ['cao-box.internal'],
      allowedOrigins: ['https://dash.example'],
    });
    cleanup.push(() => ingest.close());
    const json = { 'content-type': 'application/json' };
    assert.equal((await send(ingest.url, { ...json, host: `cao-box.internal:${ingest.port}` })).status, 202);
    assert.equal((await send(ingest.url, { ...json, origin: 'https://dash.example' })).status, 202);
    assert.equal((await send(ingest.url, { ...json, origin: 'https://dash.example.evil' })).status, 403);
    assert.equal((await send(ingest.url, { ...json, host: `other.internal:${ingest.port}` })).status, 403);
    assert.equal(got.length, 2);
  });

  it('protects /metrics and /healthz with the token when one is set', async () => {
    const ingest = await startIngestServer({ port: 0, token: 's3cret', onEvent: () => undefined, metrics: new CaoMetrics() });
    cleanup.push(() => ingest.close());
    for (const path of ['/metrics', '/healthz']) {
      const url = ingest.url.replace('/v1/cao/events', path);
      assert.equal((await send(url, {}, undefined, 'GET')).status, 401, `${path} without the token`);
      assert.equal((await send(url, { authorization: 'Bearer wrong' }, undefined, 'GET')).status, 401, `${path} with a wrong token`);
      assert.equal((await send(url, { authorization: 'Bearer s3cret' }, undefined, 'GET')).status, 200, `${path} with the token`);
    }
  });

  it('does not warn when bound to loopback without a token', async () => {
    const logs = logCapture();
    const ingest = await startIngestServer({ port: 0, host: '127.0.0.1', onEvent: () => undefined, logger: createLogger('info', logs.stream) });
    cleanup.push(() => ingest.close());
    assert.equal(logs.lines().filter((l) => l.level === 40).length, 0);
  });
});

describe('request guard (pure)', () => {
  it('reads host names from Host headers', () => {
    assert.equal(hostName('127.0.0.1:4319'), '127.0.0.1');
    assert.equal(hostName('[::1]:4319'), '::1');
    assert.equal(hostName('Example.COM.'), 'example.com');
    assert.equal(hostName('localhost'), 'localhost');
  });

  it('knows loopback', () => {
    for (const name of ['localhost', 'api.localhost', '127.0.0.1', '127.1.2.3', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) {
      assert.equal(isLoopbackName(name), true, name);
    }
    for (const name of ['0.0.0.0', '10.0.0.5', 'example.com', 'localhost.example.com', '::', '128.0.0.1']) {
      assert.equal(isLoopbackName(name), false, name);
    }
  });

  it('allows the bound address, but never every name because of a wildcard bind', () => {
    assert.equal(hostAllowed('10.0.0.5:4319', { boundHost: '10.0.0.5' }), true);
    assert.equal(hostAllowed('10.0.0.5:4319', { boundHost: '0.0.0.0' }), false);
    assert.equal(hostAllowed('box:4319', { boundHost: '0.0.0.0', allowedHosts: ['box'] }), true);
    assert.equal(hostAllowed('anything:1', { boundHost: '0.0.0.0', allowedHosts: ['*'] }), true);
    assert.equal(hostAllowed(undefined, { boundHost: '127.0.0.1' }), true, 'HTTP/1.0 without Host');
  });

  it('allows no browser origin unless listed', () => {
    assert.equal(originAllowed(undefined, { boundHost: '127.0.0.1' }), true);
    assert.equal(originAllowed('http://127.0.0.1:4319', { boundHost: '127.0.0.1' }), false);
    assert.equal(originAllowed('https://Dash.example/', { boundHost: '127.0.0.1', allowedOrigins: ['https://dash.example'] }), true);
  });

  it('warns when listening beyond loopback without a token', () => {
    assert.match(exposureWarning('0.0.0.0', undefined) ?? '', /beyond loopback without a token.*ingest\.token/);
    assert.match(exposureWarning('10.0.0.5', undefined) ?? '', /10\.0\.0\.5/);
    assert.equal(exposureWarning('0.0.0.0', 's3cret'), undefined);
    assert.equal(exposureWarning('127.0.0.1', undefined), undefined);
    assert.equal(exposureWarning('::1', undefined), undefined);
    assert.equal(exposureWarning('localhost', undefined), undefined);
  });
});
