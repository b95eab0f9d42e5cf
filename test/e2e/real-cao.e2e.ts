/**
 * End to end against REAL cao-server releases (test/e2e/cao-versions), installed by
 * test/e2e/install.sh: the scenario of helpers/scenario.ts driven through `cao-events gateway` as
 * CAO's own MCP tools and CLI do, and the exact CloudEvents each observer delivers:
 *   gateway+poller+plugin (venv with the cao-events plugin), gateway+poller (venv without it),
 *   watch (poller only, beside the gateway+poller run).
 * Every expectation is strict; what a source cannot see is asserted absent, with the reason
 * (expected.ts). Versions run one after the other. CAO_E2E_DUMP=<dir> writes each run's events.
 * Run: `npm run test:e2e` (after test/e2e/install.sh). CAO_E2E_VERSIONS=2.4.1,2.5.4 runs a subset;
 * CAO_E2E_RECORD=1 rewrites test/fixtures/real-cao/.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { CloudEventV1 } from 'cloudevents';
import type { CaoEventData } from '../../exporters/transform.ts';
import { expectedEvents, familyOf } from './expected.ts';
import { describeEvent, describeFact, judge, matches } from './helpers/facts.ts';
import { dumpRun, writeFixtures } from './helpers/fixtures.ts';
import { caoVersions } from './helpers/real-cao.ts';
import { type ObserverName, type RunResult, realRun } from './helpers/real-run.ts';
import { FAIL_SESSION, SESSION } from './helpers/scenario.ts';

const only = process.env.CAO_E2E_VERSIONS?.split(',').map((s) => s.trim()).filter(Boolean);
const versions = caoVersions().filter((v) => !only || only.includes(v.version));
if (only && versions.length !== only.length) throw new Error(`CAO_E2E_VERSIONS names versions not in test/e2e/cao-versions: ${only.join(',')}`);

function assertObserver(get: () => RunResult, observer: ObserverName): void {
  const events = (): Array<CloudEventV1<CaoEventData>> => get().events[observer] ?? [];
  const exp = () => expectedEvents(get().version.version, observer, get().ids);

  it(`${observer}: every fact it can see, exactly once, and nothing else`, () => {
    const verdict = judge(events(), exp().expected);
    const all = events().map(describeEvent).join('\n  ');
    assert.deepEqual(verdict.problems, [], `received:\n  ${all}`);
    assert.deepEqual(verdict.unexpected, [], `received:\n  ${all}`);
  });

  it(`${observer}: facts it cannot see are not invented`, () => {
    for (const u of exp().unseen) {
      const hit = events().find((e) => matches(u.fact, e));
      assert.equal(hit, undefined, `${describeFact(u.fact)} cannot be seen (${u.why}) but was reported: ${hit && describeEvent(hit)}`);
    }
  });

  it(`${observer}: CloudEvents envelope per session: spec version, subject, terminal ids, unique ids, session_created first`, () => {
    for (const session of [SESSION, FAIL_SESSION]) {
      const evs = events().filter((e) => e.subject === session);
      assert.ok(evs.length > 0, `no events for ${session}`);
      const types = evs.map((e) => String(e.type).split('.').pop());
      assert.equal(types[0], 'session_created', `${session} starts with session_created`);
      for (const e of evs) {
        assert.equal(e.specversion, '1.0');
        assert.equal(e.data?.session_name, session);
        if (e.data?.terminal_id) assert.match(e.data.terminal_id, /^[0-9a-f]{8}$/);
      }
      assert.equal(new Set(evs.map((e) => e.id)).size, evs.length, 'CloudEvent ids are unique');
    }
  });

  const traceCheck = (): void => {
    for (const session of [SESSION, FAIL_SESSION]) {
      const evs = events().filter((e) => e.subject === session);
      const traces = new Set(evs.map((e) => String(e.traceparent).split('-')[1]));
      assert.equal(traces.size, 1, `${session}: one trace (got ${traces.size}):\n  ${evs.map((e) => `${e.sequence} ${describeEvent(e)}`).join('\n  ')}`);
      assert.deepEqual(evs.map((e) => Number(e.sequence)), evs.map((_, i) => i + 1), `${session}: sequence 1..n`);
      assert.equal(String(evs.at(-1)?.type).split('.').pop(), 'session_killed', `${session}: session_killed is its last event`);
    }
  };
  it(`${observer}: one trace and one increasing sequence per session, session_killed last`, traceCheck);
}

for (const version of versions) {
  describe(`real CAO ${version.version} (stand-in ${version.provider})`, () => {
    for (const plugin of [true, false]) {
      describe(plugin ? 'venv with the cao-events plugin' : 'venv without the plugin', () => {
        let result: RunResult | undefined;
        before(async () => {
          result = await realRun(version, plugin);
          if (process.env.CAO_E2E_RECORD) writeFixtures(result, plugin);
          if (process.env.CAO_E2E_DUMP) dumpRun(process.env.CAO_E2E_DUMP, result, plugin);
        }, { timeout: 600_000 });
        const get = (): RunResult => {
          if (!result) throw new Error('the real run did not complete (see the before hook)');
          return result;
        };
        it('CAO behaved as the scenario needs (so the event checks below mean something)', () => {
          const { ids } = get();
          assert.equal(ids.observed.supInbox.length, 3);
          assert.ok(ids.observed.supInbox.every((m) => m.status === 'delivered'));
          if (familyOf(version.version) === '2.4') {
            assert.equal(ids.observed.handoffErrorStatus, 502);
            assert.equal(ids.observed.handoffSlowStatus, 504);
            assert.equal(ids.observed.initFailureStatus, 201);
            assert.match(ids.observed.sup2Inbox[0]?.message ?? '', new RegExp(`^Worker ${ids.initWorker} failed to initialize`));
            assert.equal(ids.observed.handoffOutput, 'Summarise the plan');
          } else {
            assert.equal(ids.observed.initFailureStatus, 500);
            assert.equal(ids.observed.handoffOutput, 'MOCK: Summarise the plan');
          }
        });
        for (const observer of (plugin ? ['gateway+poller+plugin'] : ['gateway+poller', 'watch']) as ObserverName[]) {
          assertObserver(get, observer);
        }
      });
    }
  });
}
