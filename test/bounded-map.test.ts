/** BoundedMap and the ledger built on it: bounded memory, recent facts remembered, repeats refused. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BoundedMap } from '../src/bounded-map.ts';
import { FactLedger } from '../src/fact-ledger.ts';

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
