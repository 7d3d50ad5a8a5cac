/**
 * The action runner's visible side (issue 17): mqtt_topic actions of the runner's types (once per
 * message, scope by tags following tag changes, after the insert), an action's own publishes offered
 * back (`offerPublish`, with the loop stopped), the run history (fields, last 100, across a
 * restart), the inspector's `action_run` events, and the test-run endpoints. A real server with the
 * recording stand-in executors (recording-executors.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RUNS_KEPT } from '../../src/actions/run-history.ts';
import { MAX_RUN_DEPTH } from '../../src/actions/runner.ts';
import type { InspectorEvent } from '../../src/inspector/inspector-bus.ts';
import { settle } from '../broker/mock-time.ts';
import { ActionFixture } from './action-fixture.ts';

const f = new ActionFixture();
before(() => f.start());
after(() => f.close());

/** An mqtt_topic action run by the runner (a type other than insert_bucket; see setActionType). */
async function topicAction(topics: string[], scope: object = {}): Promise<string> {
  const id = await f.createAction({ trigger: { type: 'mqtt_topic', topics, ...scope } });
  await f.setActionType(id, 'http_post');
  return id;
}

function inspect(deviceId: string): InspectorEvent[] {
  const events: InspectorEvent[] = [];
  const stop = f.server.inspector.subscribe(deviceId, (event) => event.type === 'action_run' && events.push(event));
  after(stop);
  return events;
}

describe('mqtt_topic runs', () => {
  test('once per message however many filters match; tag scope follows tag changes; the inspector shows each run', async () => {
    const north = f.createDevice([{ key: 'site', value: 'north' }]);
    const id = await topicAction(['rt/#', 'rt/+/t', 'rt/a/t'], { tags: [{ key: 'site', value: 'north' }] });
    const all = await topicAction(['rt/#']);
    const events = inspect(north.id);
    const client = await f.connect(north.token);
    await client.publishAsync('rt/a/t', 'one', { qos: 1 });
    await f.executors.waitFor(() => f.executors.of(all).length === 1);
    assert.equal(f.executors.of(id).length, 1, 'three filters match, one run');
    const run = f.executors.of(id)[0]!;
    assert.deepEqual([run.trigger, run.topic, run.payload!.toString(), run.device!.id, run.device!.name, run.depth, run.test], ['mqtt_topic', 'rt/a/t', 'one', north.id, 'device-1', 0, false]);
    assert.deepEqual(Object.keys(run.device!).sort(), ['id', 'name', 'params', 'tags'], 'the run sees the device, not the cache\'s internals');

    assert.equal((await f.api('PUT', `/devices/${north.id}`, { tags: [{ key: 'site', value: 'south' }] })).status, 200);
    await client.publishAsync('rt/a/t', 'two', { qos: 1 });
    await f.executors.waitFor(() => f.executors.of(all).length === 2);
    assert.equal(f.executors.of(id).length, 1, 'out of scope after the tag change');
    assert.equal((await f.api('PUT', `/devices/${north.id}`, { tags: [{ key: 'site', value: 'north' }] })).status, 200);
    await client.publishAsync('rt/a/t', 'three', { qos: 0 });
    await f.executors.waitFor(() => f.executors.of(all).length === 3);
    assert.equal(f.executors.of(id).length, 2, 'back in scope');

    await settle(() => events.length === 5, 5_000, 'inspector events');
    const event = events.find((e) => e.data.action === id)!;
    assert.equal(event.deviceId, north.id);
    assert.equal(event.data.action_name, 'http_post action');
    assert.equal(event.data.ok, true);
    assert.equal(event.data.trigger, 'mqtt_topic');
  });

  test('with an insert_bucket action on the same topic: the record is stored and acknowledged, then the other action runs', async () => {
    const device = f.createDevice();
    await f.createAction({ trigger: { type: 'mqtt_topic', topics: ['both/#'] } });
    const id = await topicAction(['both/#']);
    f.executors.hold(); // a slow target: the PUBACK must not wait for it
    try {
      const client = await f.connect(device.token);
      await client.publishAsync('both/x', '{"variable":"v","value":1}', { qos: 1 });
      const stored = await f.server.data.store.query(device.id, { mode: 'count', qty: 1, skip: 0, ordination: 'descending' });
      assert.deepEqual(stored, { kind: 'number', value: 1 });
      await f.executors.waitFor(() => f.executors.of(id).length === 1);

      // tago/data/post is stored without an action, and runs the actions matching it too.
      const legacy = await topicAction(['tago/#'], { devices: [device.id] });
      await client.publishAsync('tago/data/post', '{"variable":"v","value":2}', { qos: 1 });
      const after = await f.server.data.store.query(device.id, { mode: 'count', qty: 1, skip: 0, ordination: 'descending' });
      assert.deepEqual(after, { kind: 'number', value: 2 });
      await f.executors.waitFor(() => f.executors.of(legacy).length === 1);
    } finally {
      f.executors.release();
    }
  });

  test('an action\'s own publish offered back runs matching actions; a self-trigger chain stops at the bound with a loop run', async () => {
    const device = f.createDevice();
    const id = await topicAction(['echo/#'], { devices: [device.id] });
    const events = inspect(device.id);
    const runner = f.server.actionRuns.runner;
    // What mqtt_publish does after publishing: offer its message with its run's depth + 1. Here the
    // stand-in plays a self-triggering mqtt_publish by offering the message again from each run.
    const offer = (depth: number): void => runner.offerPublish({ accountId: f.accountId, topic: 'echo/x', payload: Buffer.from('e'), device: { id: device.id, name: 'n', tags: [], params: [] }, depth });
    const loopsBefore = runner.stats.loops;
    let offered = 0;
    const chain = (): void => {
      const runs = f.executors.of(id);
      while (offered < runs.length) offer(runs[offered++]!.depth + 1);
    };
    offer(1);
    for (let depth = 1; depth <= MAX_RUN_DEPTH; depth++) {
      await f.executors.waitFor(() => f.executors.of(id).length === depth);
      chain();
    }
    assert.ok(events.some((e) => e.data.error === 'loop'), 'the loop run is in the inspector');
    assert.deepEqual(f.executors.of(id).map((run) => run.depth), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(runner.stats.loops, loopsBefore + 1);
    const runs = await f.api('GET', `/actions/${id}/runs`);
    const loop = runs.body.result.filter((r: { error?: string }) => r.error === 'loop');
    assert.equal(loop.length, 1);
    assert.deepEqual(loop[0], { ...loop[0], ok: false, attempts: 0, depth: MAX_RUN_DEPTH + 1, device_id: device.id });
    // A publish for no device reaches only unscoped actions.
    const unscoped = await topicAction(['echo/#']);
    runner.offerPublish({ accountId: f.accountId, topic: 'echo/y', payload: Buffer.alloc(0), device: null, depth: 1 });
    await f.executors.waitFor(() => f.executors.of(unscoped).length === 1);
    assert.equal(f.executors.of(id).length, MAX_RUN_DEPTH);
  });
});

describe('run history', () => {
  test('every run recorded with its fields; the last 100 kept, newest first, across a restart; a throwing executor is a failed run', async () => {
    const device = f.createDevice();
    const id = await f.createAction({ trigger: { type: 'variable', conditions: [{ variable: 'n', is: 'any' }], devices: [device.id] } });
    await f.postData(device.token, { variable: 'n', value: 0 });
    await f.executors.waitFor(() => f.executors.of(id).length === 1);
    f.executors.failWith = 'target said no';
    try {
      for (let i = 1; i <= RUNS_KEPT + 4; i++) await f.server.data.ingestor.ingest(device.id, { variable: 'n', value: i });
      await f.executors.waitFor(() => f.executors.of(id).length === RUNS_KEPT + 5);
    } finally {
      f.executors.failWith = null;
    }
    await f.restart();
    const runs = await f.api('GET', `/actions/${id}/runs`);
    assert.equal(runs.status, 200);
    assert.equal(runs.body.result.length, RUNS_KEPT);
    const newest = runs.body.result[0];
    assert.deepEqual({ ...newest, started_at: 'x', duration_ms: 0 }, { action_id: id, trigger: 'variable', device_id: device.id, started_at: 'x', duration_ms: 0, ok: false, error: 'target said no', attempts: 1, test: false, depth: 0 });
    assert.ok(Date.parse(newest.started_at) >= Date.parse(runs.body.result[RUNS_KEPT - 1].started_at));
    assert.ok(runs.body.result.every((r: { ok: boolean }) => !r.ok), 'the first (ok) runs were trimmed');

    // Scoped to the account: another account sees no such action.
    const other = f.server.registry.createAccount({ name: `other-${id}` });
    assert.equal((await f.api('GET', `/actions/${id}/runs`, undefined, other.token)).status, 404);
    assert.equal((await f.api('GET', `/actions/${id}/locks`, undefined, other.token)).status, 404);
  });
});

describe('test runs', () => {
  test('mqtt_topic: a sample message through the same runner, recorded as a test, saying whether the trigger would fire', async () => {
    const device = f.createDevice([{ key: 'kind', value: 'pump' }]);
    const id = await topicAction(['pumps/+/cmd'], { tags: [{ key: 'kind', value: 'pump' }] });
    const answer = await f.api('POST', `/actions/${id}/test`, { device: device.id, message: { topic: 'pumps/7/cmd', payload: 'cafe', payload_encoding: 'hex' } });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.result.trigger_met, true);
    assert.equal(answer.body.result.run.ok, true);
    assert.equal(answer.body.result.run.test, true);
    const run = f.executors.of(id).at(-1)!;
    assert.deepEqual([run.test, run.topic, run.payload!.toString('hex'), run.device!.id], [true, 'pumps/7/cmd', 'cafe', device.id]);
    const history = await f.api('GET', `/actions/${id}/runs`);
    assert.equal(history.body.result[0].test, true);

    const miss = await f.api('POST', `/actions/${id}/test`, { message: { topic: 'pumps/7/state', payload: 'b24=', payload_encoding: 'base64' } });
    assert.equal(miss.status, 200);
    assert.equal(miss.body.result.trigger_met, false);
    assert.match(miss.body.result.trigger_note, /matches none of trigger\/topics/);
    assert.equal(f.executors.of(id).at(-1)!.payload!.toString(), 'on');
    const outOfScope = await f.api('POST', `/actions/${id}/test`, { message: { topic: 'pumps/1/cmd', payload: 'x' } });
    assert.match(outOfScope.body.result.trigger_note, /give body\/device/);

    const noMessage = await f.api('POST', `/actions/${id}/test`, {});
    assert.equal(noMessage.status, 400);
    assert.match(noMessage.body.message, /body\/message is required/);
    const badHex = await f.api('POST', `/actions/${id}/test`, { message: { topic: 'a', payload: 'xyz', payload_encoding: 'hex' } });
    assert.match(badHex.body.message, /body\/message\/payload is not hex/);
    const unknownDevice = await f.api('POST', `/actions/${id}/test`, { device: 'nope', message: { topic: 'a', payload: 'x' } });
    assert.equal(unknownDevice.status, 400);
    assert.match(unknownDevice.body.message, /body\/device: device nope not found/);
  });

  test('variable: sample records, the lock state and the conditions; the sample is not stored and no lock changes', async () => {
    const device = f.createDevice();
    const id = await f.createAction({ trigger: { type: 'variable', conditions: [{ variable: 't', is: '>', value: 30 }], unlock: [{ variable: 't', is: '<', value: 20 }] } });
    const hot = await f.api('POST', `/actions/${id}/test`, { device: device.id, records: [{ variable: 't', value: 35 }, { variable: 'h', value: 1 }] });
    assert.equal(hot.status, 200, JSON.stringify(hot.body));
    assert.equal(hot.body.result.trigger_met, true);
    const run = f.executors.of(id).at(-1)!;
    assert.deepEqual(run.records!.map((r) => [r.variable, r.value]), [['t', 35]]);
    assert.equal(run.locked, false);
    assert.deepEqual((await f.api('GET', `/actions/${id}/locks`)).body.result, []);
    const count = await f.server.data.store.query(device.id, { mode: 'count', qty: 1, skip: 0, ordination: 'descending' });
    assert.deepEqual(count, { kind: 'number', value: 0 });

    const cold = await f.api('POST', `/actions/${id}/test`, { device: device.id, records: { variable: 't', value: 25 } });
    assert.equal(cold.body.result.trigger_met, false);
    assert.equal(cold.body.result.trigger_note, 'no record meets trigger/conditions');
    const bad = await f.api('POST', `/actions/${id}/test`, { records: { variable: 'bad name', value: 1 } });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /body\/records: record 0: variable/);
  });

  test('an unsaved action body is checked as on create, run, and not kept', async () => {
    const answer = await f.api('POST', '/actions/test', { action: { name: 'draft', trigger: { type: 'schedule', cron: '0 9 * * *', timezone: 'Europe/Paris' }, action: { type: 'insert_bucket' } } });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual([answer.body.result.run.trigger, answer.body.result.run.test, answer.body.result.trigger_met], ['schedule', true, true]);
    assert.equal(f.executors.calls.at(-1)!.context.action.name, 'draft');
    const bad = await f.api('POST', '/actions/test', { action: { name: 'draft', trigger: { type: 'schedule', cron: '0 25 * * *' }, action: { type: 'insert_bucket' } } });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /trigger\/cron: .*hour/);
  });
});
