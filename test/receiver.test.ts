/** The built-in receiver refuses bodies over its limit (declared or streamed) and keeps serving. */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { request } from 'undici';
import { startReceiver } from '../src/receiver.ts';

describe('receiver body limit', () => {
  it('answers 413 to a body over the limit, with or without content-length', async () => {
    const receiver = await startReceiver({ maxBodyBytes: 1024 });
    const big = 'x'.repeat(4096);
    const declared = await request(receiver.url, { method: 'POST', headers: { 'content-type': 'application/cloudevents+json' }, body: big });
    assert.equal(declared.statusCode, 413);
    await declared.body.dump();
    const streamed = await request(receiver.url, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json' },
      body: Readable.from([big.slice(0, 2048), big.slice(2048)]),
    });
    assert.equal(streamed.statusCode, 413);
    await streamed.body.dump();
    const health = await request(receiver.url.replace(/\/$/, '/healthz'));
    assert.equal(health.statusCode, 200);
    await health.body.dump();
    assert.equal(receiver.received.length, 0);
    await receiver.close();
  });
});
