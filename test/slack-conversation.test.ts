/**
 * The Slack sink's conversation model (exporters/renderers/slack/conversation.ts), pure: which
 * events become posts, edits or nothing; that planning never changes the session map (only a
 * carried-out step does, through its marks), so a plan lost in a crash is planned again whole;
 * names shown for agents; a session's new run.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CaoEventData } from '../exporters/transform.ts';
import { type ConversationOptions, planBatch } from '../exporters/renderers/slack/conversation.ts';
import type { SlackStep } from '../exporters/renderers/slack/plan.ts';
import { type SlackSessionRecord, applyMarks, cloneRecord, markDone, parseRecord } from '../exporters/renderers/slack/session-record.ts';
import type { CaoCloudEventLike } from '../exporters/renderers/types.ts';

const THREAD: ConversationOptions = { layout: 'thread', laterPhases: 'edit', details: false, topic: true, archive: false };
const CHANNEL: ConversationOptions = { ...THREAD, layout: 'channel', archive: true };
const NOW = Date.parse('2026-12-02T10:00:00Z');
let n = 0;

function ev(data: Omit<CaoEventData, 'session_name'> & { session_name?: string }): CaoCloudEventLike {
  n += 1;
  return { id: `ev-${n}`, specversion: '1.0', source: 'cao://test', type: `io.github.awslabs.cao.${data.event_type}`, time: new Date(NOW - 1000 + n).toISOString(), data: { session_name: 's', ...data } } as CaoCloudEventLike;
}

const started = () => ev({ event_type: 'session_created' });
const joined = (id: string, agent: string) => ev({ event_type: 'terminal_created', terminal_id: id, agent_name: agent, provider: 'kiro_cli' });
const said = (phase: 'dispatched' | 'delivered', from: string, to: string, text: string, agents: [string, string]) =>
  ev({ event_type: 'message_sent', orchestration_type: 'send_message', phase, sender: from, receiver: to, sender_agent: agents[0], receiver_agent: agents[1], message: text, observed_by: 'gateway' });

/** What the sender does with a plan: each step done, its marks applied. */
function carryOut(record: SlackSessionRecord, steps: SlackStep[]): SlackSessionRecord {
  const out = cloneRecord(record);
  for (const step of steps) {
    if (step.op !== 'place') markDone(out, [step.key, ...(step.op === 'post' ? step.covers : [])]);
    if (step.op === 'post') out.posts[step.key] = `ts-${step.key}`;
    if (step.op === 'place') out.thread ??= 'ts-root';
    applyMarks(out, step.marks);
  }
  return out;
}

const texts = (steps: SlackStep[]) =>
  steps.map((s) => (s.op === 'post' || s.op === 'update' ? `${s.op}: ${s.message.blocks.map((b) => (b.type === 'context' ? b.elements.map((e) => e.text).join(' ') : b.text.text.replace(/\n/g, ' / '))).join(' / ')}` : s.op));

describe('slack conversation model', () => {
  it('planning changes nothing of the session map: a plan that never ran is planned again whole', () => {
    const events = [started(), joined('a1', 'supervisor'), said('dispatched', 'a1', 'b2', 'hi', ['supervisor', 'developer'])];
    const first = planBatch('s', events, undefined, CHANNEL, NOW);
    const again = planBatch('s', events, first.record, CHANNEL, NOW);
    assert.deepEqual(texts(again.steps), texts(first.steps), 'the same steps: nothing counted as shown before Slack showed it');
    assert.deepEqual(texts(first.steps), [
      'place',
      'post: :large_green_circle: Session *s* started / :heavy_plus_sign: *supervisor* joined (kiro_cli)',
      'post: *supervisor* → *developer* / hi',
    ]);
    assert.equal(first.record.started, undefined);
    assert.deepEqual(first.record.open, []);
  });

  it('once carried out, re-sightings after a restart and a repeated later phase show nothing; the first later phase edits the post', () => {
    const dispatch = said('dispatched', 'a1', 'b2', 'hi', ['supervisor', 'developer']);
    const one = planBatch('s', [started(), joined('a1', 'supervisor'), joined('b2', 'developer'), dispatch], undefined, THREAD, NOW);
    let record = carryOut(one.record, one.steps);
    const delivered = planBatch('s', [said('delivered', 'a1', 'b2', 'hi', ['supervisor', 'developer'])], record, THREAD, NOW);
    assert.deepEqual(texts(delivered.steps), ['place', 'update: *supervisor* → *developer*  ·  ✓ received / hi']);
    assert.equal((delivered.steps[1] as Extract<SlackStep, { op: 'update' }>).target, dispatch.id);
    record = carryOut(delivered.record, delivered.steps);
    // cao-events restarted: the session and its terminals are reported anew, a source repeats the delivery
    const again = planBatch('s', [started(), joined('a1', 'supervisor'), joined('b2', 'developer'), said('delivered', 'a1', 'b2', 'hi', ['supervisor', 'developer'])], record, THREAD, NOW);
    assert.deepEqual(again.steps, []);
  });

  it('a second terminal of the same profile is named apart; a handoff names its receiver before the worker exists', () => {
    const plan = planBatch('s', [
      joined('a1', 'developer'),
      joined('b2', 'developer'),
      ev({ event_type: 'message_sent', orchestration_type: 'handoff', phase: 'dispatched', sender: 'a1', sender_agent: 'developer', receiver_agent: 'reviewer', message: 'review it' }),
    ], undefined, CHANNEL, NOW);
    assert.deepEqual(texts(plan.steps).slice(1), [
      'post: :heavy_plus_sign: *developer* joined (kiro_cli) / :heavy_plus_sign: *developer 2* joined (kiro_cli)',
      'post: *developer* → *reviewer*  ·  _handoff_ / review it',
    ]);
  });

  it('the summary names agents in the order they joined, whatever their terminal ids (an all-digit id too)', () => {
    const plan = planBatch('s', [
      started(),
      joined('ab12cd34', 'supervisor'),
      joined('9f00aa11', 'developer'),
      joined('12345678', 'tester'),
      said('dispatched', '12345678', 'ab12cd34', 'done', ['tester', 'supervisor']),
      ev({ event_type: 'session_killed' }),
    ], undefined, CHANNEL, NOW);
    const topic = plan.steps.find((s): s is Extract<SlackStep, { op: 'topic' }> => s.op === 'topic');
    assert.ok(topic, JSON.stringify(texts(plan.steps)));
    assert.match(topic.topic, /1 message between supervisor, developer, tester$/);
    assert.deepEqual(plan.record.names, [['ab12cd34', 'supervisor'], ['9f00aa11', 'developer'], ['12345678', 'tester']]);
  });

  it('a session map written when names were an object still loads, in its key order', () => {
    const record = parseRecord({ layout: 'thread', names: { a1: 'supervisor', b2: 'developer' }, messages: 0 });
    assert.deepEqual(record?.names, [['a1', 'supervisor'], ['b2', 'developer']]);
    assert.deepEqual(parseRecord({ layout: 'thread', names: [['a1', 'x'], ['bad'], [1, 2]], messages: 0 })?.names, [['a1', 'x']]);
  });

  it('a new run of a session that ended is a plan of its own; the thread layout opens a new thread for it', () => {
    const first = planBatch('s', [started(), ev({ event_type: 'session_killed' })], undefined, THREAD, NOW);
    const record = carryOut(first.record, first.steps);
    assert.equal(record.ended, true);
    const mixed = planBatch('s', [ev({ event_type: 'terminal_killed', terminal_id: 'a1', agent_name: 'x' }), started(), joined('c3', 'tester')], record, THREAD, NOW);
    assert.equal(mixed.consumed, 1, 'the late line of the old run first');
    const next = planBatch('s', [started(), joined('c3', 'tester')], record, THREAD, NOW);
    assert.equal(next.record.thread, undefined, 'a fresh record: a new thread');
    assert.deepEqual(texts(next.steps), ['place', 'post: :heavy_plus_sign: *tester* joined (kiro_cli)']);
  });

  it('details: true adds the vocabulary; an event posted long after it happened says when', () => {
    const plan = planBatch('s', [said('dispatched', 'a1', 'b2', 'hi', ['sup', 'dev'])], undefined, { ...CHANNEL, details: true }, NOW);
    assert.match(texts(plan.steps)[1]!, /^post: \*sup\* → \*dev\* \/ hi \/ send_message {2}· {2}dispatched {2}· {2}observed by gateway {2}· {2}<!date\^/);
    const late = planBatch('s', [said('dispatched', 'a1', 'b2', 'hi', ['sup', 'dev'])], undefined, CHANNEL, NOW + 120_000);
    assert.match(texts(late.steps)[1]!, /^post: \*sup\* → \*dev\* \/ hi \/ <!date\^\d+\^\{date_short_pretty\} \{time_secs\}\|2026-12-02T09:59:/);
  });
});
