/** BoundedMap and the ledger built on it: bounded memory, recent facts remembered, repeats refused. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BoundedMap } from '../src/core/bounded-map.ts';
import { FactLedger } from '../src/core/ledger.ts';

describe('BoundedMap', () => {
  it('never holds more than its limit and keeps the most recent entries', () => {
    const map = new BoundedMap<number, string>(100);
    for (let i = 0; i < 10_000; i++) {
      map.set(i, `v${i}`);
      assert.ok(map.size <= 100);
    }
    for (let i = 9_950; i < 10_000; i++) assert.equal(map.get(i), `v${i}`);
    assert.equal(map.has(0), false);
  });

  it('set refreshes an old entry, delete removes it from either generation', () => {
    const map = new BoundedMap<string, number>(4);
    map.set('a', 1).set('b', 2); // young full → becomes old
    map.set('a', 3); // refreshed into the young generation
    map.set('c', 4); // rotation: old (b) dropped
    assert.equal(map.get('a'), 3);
    assert.equal(map.has('b'), false);
    assert.equal(map.delete('a'), true);
    assert.equal(map.has('a'), false);
  });
});

describe('FactLedger at its bound', () => {
  it('keeps refusing recent repeats after far more facts than it remembers', () => {
    const ledger = new FactLedger({ maxRemembered: 1_000 });
    const msg = (i: number) => ({ type: 'message_sent' as const, sessionName: 's', sender: 'a', orchestrationType: 'send_message' as const, phase: 'dispatched' as const, message: `m${i}` });
    for (let i = 0; i < 20_000; i++) assert.equal(ledger.admit(msg(i)), true);
    assert.equal(ledger.admit(msg(19_999)), false, 'a recent repeat is still refused');
  });
});

describe('FactLedger: one message fact across sources', () => {
  const base = { type: 'message_sent' as const, sessionName: 's', sender: 'a1b2c3d4', receiver: 'e5f6a7b8', orchestrationType: 'assign' as const, phase: 'delivered' as const };
  it('a report without content and one with content on the same route and phase are one fact, either order', () => {
    const first = new FactLedger();
    assert.equal(first.admit({ ...base, message: 'Implement the parser' }), true);
    assert.equal(first.admit(base), false, 'the poller (no content) after the plugin');
    const second = new FactLedger();
    assert.equal(second.admit(base), true);
    assert.equal(second.admit({ ...base, message: 'Implement the parser' }), false, 'the plugin after the poller');
  });
  it('two different messages on one route are two facts', () => {
    const ledger = new FactLedger();
    assert.equal(ledger.admit({ ...base, message: 'one' }), true);
    assert.equal(ledger.admit({ ...base, message: 'two' }), true);
    assert.equal(ledger.admit({ ...base, phase: 'dispatched', message: 'one' }), true, 'another phase is another fact');
  });
});
