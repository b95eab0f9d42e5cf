/**
 * The rules that tell, from what CAO's GET endpoints show, whether an assign's task reached its
 * worker or failed (src/sources/assign-evidence.ts), on the shapes and timelines real CAO
 * releases showed (test/fixtures/real-cao/, status-sequences.json).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { failureNotice, noteStatus, parseWorkerRead, taskOutcome, type WorkerView } from '../src/sources/assign-evidence.ts';

/** Feeds a status sequence; returns the outcome after each status. */
function replay(statuses: string[], record?: Array<string | null>): Array<string | undefined> {
  const view: WorkerView = { idleSeen: false };
  return statuses.map((s, i) => {
    if (record) view.initialDelivery = record[i];
    noteStatus(view, s);
    return taskOutcome(view, s);
  });
}

describe('assign evidence', () => {
  it('reads GET /terminals/{id} of each release: caller, status, 2.5\'s delivery record', () => {
    assert.deepEqual(parseWorkerRead({ id: 'a', status: 'idle', caller_id: 'b', initial_delivery: { state: 'pending' } }),
      { status: 'idle', callerId: 'b', initialDelivery: 'pending' });
    assert.deepEqual(parseWorkerRead({ id: 'a', status: 'error', caller_id: 'b', initial_delivery: { state: 'failed', kind: 'provider_init_error', message: 'Worker a failed' } }),
      { status: 'error', callerId: 'b', initialDelivery: 'failed', initialDeliveryMessage: 'Worker a failed' });
    assert.deepEqual(parseWorkerRead({ id: 'a', status: 'idle', caller_id: null, initial_delivery: null }), { status: 'idle', initialDelivery: null }, '2.5: no deferred task');
    assert.deepEqual(parseWorkerRead({ id: 'a', status: 'completed', caller_id: 'b' }), { status: 'completed', callerId: 'b' }, '2.4: no record');
    assert.deepEqual(parseWorkerRead({ id: 'a', status: 'idle' }), { status: 'idle' }, '2.1: no caller ids');
    assert.equal(parseWorkerRead([]), undefined);
    assert.equal(parseWorkerRead({ status: 'idle' }), undefined);
  });

  it('2.4.1: the shell\'s `processing` and the CLI\'s `idle` are not the task; `completed`, or `processing` after `idle`, is', () => {
    assert.deepEqual(replay(['unknown', 'processing', 'idle', 'completed']), [undefined, undefined, undefined, 'delivered']);
    assert.deepEqual(replay(['processing', 'idle', 'processing']), [undefined, undefined, 'delivered'], 'a real CLI shows it working');
    assert.deepEqual(replay(['processing', 'idle', 'waiting_user_answer']), [undefined, undefined, 'delivered'], 'it asks about the task');
    assert.deepEqual(replay(['processing', 'waiting_user_answer']), [undefined, undefined], 'parked on a prompt before the task (CAO refuses to type then)');
  });

  it('2.5.4: only CAO\'s own record counts while it exists (its status flickers processing/unknown while the task waits)', () => {
    assert.deepEqual(replay(['unknown', 'processing', 'unknown', 'processing', 'unknown', 'completed'], ['pending', 'pending', 'pending', 'pending', 'pending', 'delivered']),
      [undefined, undefined, undefined, undefined, undefined, 'delivered']);
    assert.deepEqual(replay(['processing', 'completed'], ['pending', 'pending']), [undefined, undefined], 'completed before CAO confirmed it: wait');
    assert.deepEqual(replay(['processing', 'error'], ['pending', 'failed']), [undefined, 'failed']);
  });

  it('2.1.1: a worker created idle answers the typed task', () => {
    assert.deepEqual(replay(['idle', 'processing', 'completed']), [undefined, 'delivered', 'delivered']);
  });

  it('CAO\'s failure notice: a message from the worker to its caller starting `Worker <worker> `', () => {
    const rows = [
      { id: '1', sender: 'w1', receiver: 'sup', message: 'Parser done' },
      { id: '2', sender: 'w2', receiver: 'sup', message: "Worker w2 failed to initialize: TimeoutError('mock_cli initialization timed out after 15 seconds'). It has been deleted — re-assign the task or report the failure." },
      { id: '3', sender: 'w3', receiver: 'sup', message: 'Worker w2 failed to initialize: not mine' },
    ];
    assert.equal(failureNotice(rows, 'w2', 'sup')?.id, '2');
    assert.equal(failureNotice(rows, 'w1', 'sup'), undefined, 'an ordinary message');
    assert.equal(failureNotice(rows, 'w3', 'sup'), undefined, 'names another worker');
    assert.equal(failureNotice(rows, 'w2', 'other'), undefined, 'to another caller');
  });
});
