/** BoundedMap and the ledger built on it: bounded memory, recent facts remembered, repeats refused. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BoundedMap } from '../src/core/bounded-map.ts';
import { type CaoEvent, validateCaoEvent } from '../src/core/events.ts';
import { FactLedger } from '../src/core/ledger.ts';
import { CaoState } from '../src/core/state.ts';

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

const state = () => new CaoState();
const valid = (e: CaoEvent) => validateCaoEvent(e);

describe('FactLedger at its bound', () => {
  it('keeps pairing recent reports after far more facts than it remembers', () => {
    const ledger = new FactLedger({ state: state(), maxRemembered: 1_000 });
    const msg = (i: number, source: 'gateway' | 'api') => valid({ type: 'message_sent', sessionName: 's', sender: 'a', orchestrationType: 'send_message', phase: 'dispatched', message: `m${i}`, source });
    for (let i = 0; i < 20_000; i++) assert.equal(ledger.admit(msg(i, 'gateway')), true);
    assert.equal(ledger.admit(msg(19_999, 'api')), false, 'another source\'s report of a recent fact is still the same fact');
  });
});

describe('FactLedger: message facts across sources', () => {
  const base = { type: 'message_sent' as const, sessionName: 's', sender: 'a1b2c3d4', receiver: 'e5f6a7b8', orchestrationType: 'assign' as const, phase: 'delivered' as const };
  it('a report without content and one with content on the same route and phase are one fact, either order', () => {
    const first = new FactLedger({ state: state() });
    assert.equal(first.admit(valid({ ...base, source: 'plugin', message: 'Implement the parser' })), true);
    assert.equal(first.admit(valid({ ...base, source: 'poller' })), false, 'the poller (no content) after the plugin');
    const second = new FactLedger({ state: state() });
    assert.equal(second.admit(valid({ ...base, source: 'poller' })), true);
    assert.equal(second.admit(valid({ ...base, source: 'plugin', message: 'Implement the parser' })), false, 'the plugin after the poller');
  });
  it('two different messages on one route are two facts', () => {
    const ledger = new FactLedger({ state: state() });
    assert.equal(ledger.admit(valid({ ...base, message: 'one' })), true);
    assert.equal(ledger.admit(valid({ ...base, message: 'two' })), true);
    assert.equal(ledger.admit(valid({ ...base, phase: 'dispatched', message: 'one' })), true, 'another phase is another fact');
  });
  it('two occurrences of the same text are two facts; each source\'s reports pair in order', () => {
    const ledger = new FactLedger({ state: state() });
    const done = (source: 'plugin' | 'poller', id: string) => valid({ ...base, orchestrationType: 'send_message', message: 'done', source, observationId: id });
    assert.equal(ledger.admit(done('plugin', 'p1')), true, 'first delivery, plugin first');
    assert.equal(ledger.admit(done('plugin', 'p2')), true, 'second delivery of the same text');
    assert.equal(ledger.admit(done('poller', 'inbox:7')), false, 'the poller\'s report of the first');
    assert.equal(ledger.admit(done('poller', 'inbox:8')), false, 'the poller\'s report of the second');
    assert.equal(ledger.admit(done('poller', 'inbox:9')), true, 'a third, seen by the poller first');
    assert.equal(ledger.admit(done('plugin', 'p3')), false, 'and then by the plugin');
  });
  it('one observation reported twice by its source is one fact', () => {
    const ledger = new FactLedger({ state: state() });
    const done = valid({ ...base, orchestrationType: 'send_message', message: 'done', source: 'plugin', observationId: 'p1' });
    assert.equal(ledger.admit(done), true);
    assert.equal(ledger.admit(done), false);
  });
  it('an occurrence waits for other sources only within the window', () => {
    let now = 0;
    const ledger = new FactLedger({ state: state(), messageWindowMs: 1_000, now: () => now });
    assert.equal(ledger.admit(valid({ ...base, source: 'plugin', message: 'x' })), true);
    now = 1_000;
    assert.equal(ledger.admit(valid({ ...base, source: 'poller', message: 'x' })), true, 'past the window: a new occurrence');
  });
});
