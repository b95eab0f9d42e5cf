/**
 * A 40 s outage of the receiver in the middle of a stream of 2,000 events, with the outbox on,
 * at the default queue size (10,000 in memory) and the smallest (1): every event arrives
 * exactly once and in order once the receiver is back. Real pipeline (emit → span → CloudEvent
 * → sink), real sockets (the receiver stops listening: connections are refused), real files.
 *
 * Time: the sink's retry clock is a JumpClock. While the receiver is down the test jumps from
 * one back-off timer to the next until 40 s of the sink's time have passed (a few hundred
 * milliseconds of wall time): the queue, its retry policy and its breaker run unchanged.
 * CAO_EVENTS_REALTIME_OUTAGE=1 runs the same test on the system clock with a real 40 s outage
 * (slow; not part of `npm test`). The recovery time is printed as a test diagnostic, never
 * asserted.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { systemClock } from '../exporters/delivery/clock.ts';
import type { CaoEventData } from '../exporters/transform.ts';
import { createLogger } from '../src/logger.ts';
import { cloudEventsSinkSpec, createWebhookSink } from '../src/sink-factory.ts';
import { createCaoTelemetry } from '../src/core/telemetry.ts';
import { JumpClock } from './helpers/jump-clock.ts';
import { logCapture } from './helpers/log-capture.ts';
import { startSwitchableReceiver } from './helpers/switchable-receiver.ts';
import { scratchDir } from './helpers/scratch-dir.ts';

const REALTIME = process.env.CAO_EVENTS_REALTIME_OUTAGE === '1';
const OUTAGE_MS = 40_000;
const TOTAL = 2_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const text = (i: number) => `m-${String(i).padStart(4, '0')}`;

for (const maxQueue of [10_000, 1]) {
  describe(`a ${OUTAGE_MS / 1000} s outage mid-stream, outbox on, maxQueue ${maxQueue}${REALTIME ? ' (real time)' : ''}`, () => {
    it(`all ${TOTAL} events arrive exactly once, in order, after the receiver is back`, async (t) => {
      const receiver = await startSwitchableReceiver();
      const logs = logCapture();
      const clock = REALTIME ? undefined : new JumpClock();
      const now = () => (clock ?? systemClock).now();
      const sink = createWebhookSink(cloudEventsSinkSpec({ url: receiver.url, maxQueue }), {
        logger: createLogger('info', logs.stream),
        outbox: { dir: scratchDir('cao-events-outage-') },
        clock,
      });
      const telemetry = createCaoTelemetry({ sinks: [sink], otlp: false });
      t.after(async () => {
        await telemetry.shutdown();
        await receiver.close();
      });
      const emit = (i: number) =>
        telemetry.emit({ type: 'message_sent', sessionName: 'cao-outage', sender: 'a1b2c3d4', receiver: 'e5f6a7b8', orchestrationType: 'send_message', phase: 'dispatched', message: text(i) });
      const messages = () => receiver.received.map((e) => (e.data as CaoEventData).message).filter((m) => m?.startsWith('m-'));
      const until = async (done: () => boolean, what: string, boundMs = 120_000) => {
        const deadline = Date.now() + boundMs;
        while (!done()) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${messages().length} of ${TOTAL} arrived)`);
          // jump over a back-off only while the queue waits on one (nothing in flight)
          if (clock && sink.stats.inFlight === 0 && clock.pendingTimers > 0) clock.jumpToNextTimer();
          await sleep(clock ? 1 : 50);
        }
      };

      let i = 0;
      for (; i < 700; i++) emit(i);
      await until(() => messages().length >= 300, 'the first 300 events');
      await receiver.down(); // the outage begins mid-stream: connections are refused
      const outageStart = now();
      // The rest of the stream arrives during the outage, in bursts.
      while (now() - outageStart < OUTAGE_MS) {
        for (let k = 0; k < 100 && i < TOTAL; k++, i++) emit(i);
        if (clock) {
          const left = OUTAGE_MS - (now() - outageStart);
          if (sink.stats.inFlight === 0) clock.jumpBy(Math.min(left, clock.nextDueIn() ?? left));
          await sleep(1);
        } else {
          await sleep(1_000);
        }
      }
      for (; i < TOTAL; i++) emit(i);
      const during = sink.stats;
      assert.equal(during.lost, 0, 'nothing lost during the outage');
      assert.equal(during.failed, 0, 'nothing given up during the outage');
      assert.equal(during.breaker, 'open');
      assert.ok(during.outbox!.pending >= TOTAL - messages().length, 'what has not arrived is in the outbox');
      const arrivedBefore = messages().length;
      await receiver.up();
      const back = now();
      const realBack = Date.now();
      await until(() => messages().length >= TOTAL && sink.stats.delivered >= TOTAL, `all ${TOTAL} events`);
      const recoveredMs = now() - back;
      t.diagnostic(
        `outage ${OUTAGE_MS / 1000} s (${clock ? 'sink clock jumped' : 'real time'}); ${arrivedBefore} arrived before it, ` +
          `${TOTAL - arrivedBefore} after; all delivered ${(recoveredMs / 1000).toFixed(1)} s of sink time ` +
          `(${((Date.now() - realBack) / 1000).toFixed(1)} s wall) after the receiver came back`,
      );
      const expected = Array.from({ length: TOTAL }, (_, k) => text(k));
      assert.equal(messages().length, TOTAL, 'exactly once: no duplicates');
      assert.deepEqual(messages(), expected, 'in order');
      const after = sink.stats;
      assert.equal(after.delivered, TOTAL);
      assert.equal(after.lost, 0);
      assert.equal(after.deadLettered, 0);
      assert.equal(after.outbox?.pending, 0);
      assert.ok(after.retried > 0, 'the outage was felt: attempts failed and were retried');
      assert.ok(!logs.lines().some((l) => Number(l.level) >= 50), 'no ERROR line: nothing was lost');
    });
  });
}
