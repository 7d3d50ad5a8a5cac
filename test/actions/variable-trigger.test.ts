/**
 * `variable` triggers end to end (issue 17): a real server, records from the HTTP data API and from
 * MQTT, the recording stand-in executors (recording-executors.ts), locks that survive a restart.
 *
 * To show that a message did *not* fire an action, each step also sends a `marker` record that fires
 * a second action: runs start in the order they were submitted, so once the marker's run is seen,
 * any run of the message before it would have been seen too.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { anyMeets, meets } from '../../src/actions/conditions.ts';
import type { VariableCondition } from '../../src/actions/model.ts';
import type { DataRecord } from '../../src/data/record.ts';
import { ActionFixture } from './action-fixture.ts';

const f = new ActionFixture();
before(() => f.start());
after(() => f.close());

function record(variable: string, value: DataRecord['value']): DataRecord {
  return { id: 'r', device: 'd', variable, value, unit: null, time: 0, group: 'g', location: null, metadata: null, created_at: 0 };
}

describe('conditions', () => {
  test('each operator, as numbers and as text', () => {
    const cases: Array<[VariableCondition, DataRecord['value'], boolean]> = [
      [{ variable: 't', is: '>', value: 30 }, 31, true],
      [{ variable: 't', is: '>', value: 30 }, 30, false],
      [{ variable: 't', is: '>', value: '30' }, '31.5', true],
      [{ variable: 't', is: '<', value: 10 }, 9, true],
      [{ variable: 't', is: '<', value: 10 }, 'abc', false],
      [{ variable: 't', is: '=', value: 5 }, '5', true],
      [{ variable: 't', is: '=', value: 5, value_type: 'string' }, '5.0', false],
      [{ variable: 't', is: '!=', value: 5 }, 6, true],
      [{ variable: 't', is: '!=', value: 5 }, 'abc', false],
      [{ variable: 't', is: '!=', value: 'on', value_type: 'string' }, 'off', true],
      [{ variable: 't', is: 'between', value: 10, second_value: 20 }, 10, true],
      [{ variable: 't', is: 'between', value: 10, second_value: 20 }, 20, true],
      [{ variable: 't', is: 'between', value: 10, second_value: 20 }, 20.1, false],
      [{ variable: 't', is: 'between', value: 'b', second_value: 'd', value_type: 'string' }, 'c', true],
      [{ variable: 't', is: '>', value: '9', value_type: 'string' }, '10', false],
      [{ variable: 't', is: 'any' }, null, true],
      [{ variable: 'other', is: 'any' }, 1, false],
      [{ variable: 't', is: '>', value: 0 }, true, false],
    ];
    for (const [condition, value, expected] of cases) assert.equal(meets(condition, record('t', value)), expected, `${JSON.stringify(condition)} on ${JSON.stringify(value)}`);
    assert.equal(anyMeets([{ variable: 'a', is: '>', value: 1 }, { variable: 'b', is: 'any' }], [record('c', 1), record('b', 0)]), true);
  });
});

describe('variable trigger', () => {
  test('lock and unlock across a sequence of values, surviving a restart of the server', async () => {
    const device = f.createDevice();
    const hot = await f.createAction({
      name: 'too hot',
      trigger: { type: 'variable', conditions: [{ variable: 'temperature', is: '>', value: 30 }], unlock: [{ variable: 'temperature', is: '<', value: 25 }], devices: [device.id] },
    });
    const marker = await f.createAction({ name: 'marker', trigger: { type: 'variable', conditions: [{ variable: 'marker', is: 'any' }], devices: [device.id] } });
    let markers = 0;
    const send = async (value: number): Promise<void> => {
      await f.postData(device.token, { variable: 'temperature', value });
      await f.postData(device.token, { variable: 'marker', value: ++markers });
      await f.executors.waitFor(() => f.executors.of(marker).length === markers, 5_000, `marker ${markers}`);
    };
    const fired = (): number[] => f.executors.of(hot).map((run) => run.records![0]!.value as number);
    const locks = async (): Promise<string[]> => {
      const answer = await f.api('GET', `/actions/${hot}/locks`);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      return answer.body.result.map((lock: { device_id: string }) => lock.device_id);
    };

    await send(20);
    await send(31); // fires, locks
    await send(35); // locked
    assert.deepEqual(fired(), [31]);
    assert.deepEqual(await locks(), [device.id]);
    assert.equal(f.executors.of(hot)[0]!.locked, true, 'the run knows it locked the action');

    await f.restart();
    const firedBefore = fired().length;
    assert.deepEqual(await locks(), [device.id], 'the lock survived the restart');
    await send(36); // still locked after the restart
    await send(27); // between the thresholds: stays locked
    assert.equal(fired().length, firedBefore);
    await send(24); // unlocks, does not fire
    assert.deepEqual(await locks(), []);
    await send(32); // fires again, locks again
    assert.deepEqual(fired(), [31, 32]);
    assert.deepEqual(await locks(), [device.id]);

    // The history shows both firings, across the restart.
    const runs = await f.api('GET', `/actions/${hot}/runs`);
    assert.equal(runs.status, 200);
    assert.deepEqual(runs.body.result.map((r: { trigger: string; ok: boolean; device_id: string }) => [r.trigger, r.ok, r.device_id]), [['variable', true, device.id], ['variable', true, device.id]]);

    // DELETE unlocks by hand; changing the trigger clears the locks.
    assert.equal((await f.api('DELETE', `/actions/${hot}/locks/${device.id}`)).status, 200);
    assert.equal((await f.api('DELETE', `/actions/${hot}/locks/${device.id}`)).status, 404);
    await send(33);
    assert.deepEqual(await locks(), [device.id]);
    assert.equal((await f.api('PUT', `/actions/${hot}`, { trigger: { type: 'variable', conditions: [{ variable: 'temperature', is: '>', value: 40 }], unlock: [{ variable: 'temperature', is: '<', value: 25 }] } })).status, 200);
    assert.deepEqual(await locks(), []);
  });

  test('several conditions fire once per message, with the records that met one; from MQTT too', async () => {
    const device = f.createDevice();
    const id = await f.createAction({
      trigger: { type: 'variable', conditions: [{ variable: 'a', is: '>', value: 1 }, { variable: 'b', is: 'between', value: 0, second_value: 10 }, { variable: 'c', is: '=', value: 'on', value_type: 'string' }], devices: [device.id] },
    });
    await f.postData(device.token, [{ variable: 'a', value: 5 }, { variable: 'b', value: 3 }, { variable: 'c', value: 'off' }, { variable: 'd', value: 1 }]);
    await f.executors.waitFor(() => f.executors.of(id).length === 1);
    assert.deepEqual(f.executors.of(id)[0]!.records!.map((r) => r.variable), ['a', 'b']);
    assert.equal(f.executors.of(id)[0]!.depth, 0);

    // The MQTT data path (insert_bucket, then the stored records) reaches variable triggers as well.
    await f.createAction({ trigger: { type: 'mqtt_topic', topics: ['vt/#'], devices: [device.id] }, action: { type: 'insert_bucket' } });
    const client = await f.connect(device.token);
    await client.publishAsync('vt/x', '{"variable":"c","value":"on"}', { qos: 1 });
    await f.executors.waitFor(() => f.executors.of(id).length === 2);
    assert.deepEqual(f.executors.of(id)[1]!.records!.map((r) => [r.variable, r.value, r.metadata]), [['c', 'on', { mqtt_topic: 'vt/x' }]]);
  });

  test('records inserted by an action carry its depth, and a chain past the bound is refused as a loop', async () => {
    const device = f.createDevice();
    const id = await f.createAction({ trigger: { type: 'variable', conditions: [{ variable: 'echo', is: 'any' }], devices: [device.id] } });
    await f.server.data.ingestor.ingest(device.id, { variable: 'echo', value: 1 }, { via: 'action', depth: 3 });
    await f.executors.waitFor(() => f.executors.of(id).length === 1);
    assert.equal(f.executors.of(id)[0]!.depth, 3);

    const events: Array<Record<string, unknown>> = [];
    // (The first run's own event may still come: its record is made when its executor has answered.)
    const stop = f.server.inspector.subscribe(device.id, (event) => event.type === 'action_run' && event.data.depth === 9 && events.push(event.data));
    await f.server.data.ingestor.ingest(device.id, { variable: 'echo', value: 2 }, { via: 'action', depth: 9 });
    stop();
    assert.equal(f.executors.of(id).length, 1, 'not executed');
    assert.equal(events.length, 1, 'the refusal is in the inspector at once');
    assert.equal(events[0]!.error, 'loop');
    assert.equal(events[0]!.ok, false);
    const runs = await f.api('GET', `/actions/${id}/runs`);
    assert.deepEqual(runs.body.result.map((r: { error?: string; depth: number }) => [r.error, r.depth]), [['loop', 9], [undefined, 3]]);
    assert.equal(f.server.actionRuns.runner.stats.loops, 1);
  });

  test('the API refuses bad triggers, naming the field', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ type: 'variable', conditions: [{ variable: 't', is: 'between', value: 1 }] }, /body\/trigger\/conditions\/0\/second_value is required/],
      [{ type: 'variable', conditions: [{ variable: 't', is: '>' }] }, /body\/trigger\/conditions\/0\/value is required/],
      [{ type: 'variable', conditions: [{ variable: 't', is: '~', value: 1 }] }, /body\/trigger\/conditions\/0\/is must be one of/],
      [{ type: 'variable', conditions: [] }, /body\/trigger\/conditions/],
      [{ type: 'variable' }, /body\/trigger\/conditions is required/],
      [{ type: 'variable', conditions: [{ variable: 't', is: '>', value: 'hot' }] }, /trigger\/conditions\/0\/value must be a number/],
      [{ type: 'variable', conditions: [{ variable: 't', is: 'between', value: 5, second_value: 1 }] }, /trigger\/conditions\/0\/second_value must not be less than value/],
      [{ type: 'variable', conditions: [{ variable: 't', is: '>', value: 1, second_value: 3 }] }, /trigger\/conditions\/0\/second_value is only for between/],
      [{ type: 'variable', conditions: [{ variable: 't', is: 'any' }], devices: ['nope'] }, /trigger\/devices\/0: device nope not found/],
      [{ type: 'variable', conditions: [{ variable: 't', is: 'any' }], topics: ['a'] }, /trigger\/topics is not a field of a variable trigger/],
      [{ type: 'schedule', cron: '61 * * * *' }, /trigger\/cron: .*minute/],
      [{ type: 'schedule', cron: 'every day' }, /trigger\/cron: .*five, six, or seven/],
      [{ type: 'schedule', cron: '* * * * *', timezone: 'Mars/Olympus' }, /trigger\/timezone: "Mars\/Olympus" is not an IANA time zone/],
      [{ type: 'schedule' }, /body\/trigger\/cron is required/],
      [{ type: 'telepathy' }, /body\/trigger\/type must be one of mqtt_topic, variable, schedule/],
    ];
    for (const [trigger, message] of cases) {
      const answer = await f.api('POST', '/actions', { name: 'bad', trigger, action: { type: 'insert_bucket' } });
      assert.equal(answer.status, 400, JSON.stringify(trigger));
      assert.match(answer.body.message, message, JSON.stringify(trigger));
    }
  });

  test('tag-scoped variable actions follow tag changes at once', async () => {
    const device = f.createDevice([{ key: 'site', value: 'north' }]);
    const id = await f.createAction({ trigger: { type: 'variable', conditions: [{ variable: 'level', is: 'any' }], tags: [{ key: 'site', value: 'north' }] } });
    const other = await f.createAction({ trigger: { type: 'variable', conditions: [{ variable: 'level', is: 'any' }], devices: [device.id] } });
    await f.postData(device.token, { variable: 'level', value: 1 });
    await f.executors.waitFor(() => f.executors.of(other).length === 1);
    assert.equal(f.executors.of(id).length, 1);

    assert.equal((await f.api('PUT', `/devices/${device.id}`, { tags: [{ key: 'site', value: 'south' }] })).status, 200);
    await f.postData(device.token, { variable: 'level', value: 2 });
    await f.executors.waitFor(() => f.executors.of(other).length === 2);
    assert.equal(f.executors.of(id).length, 1, 'out of scope once the tag changed');

    f.server.registry.updateDevice(f.accountId, device.id, { tags: [{ key: 'site', value: 'north' }, { key: 'kind', value: 'tank' }] });
    await f.postData(device.token, { variable: 'level', value: 3 });
    await f.executors.waitFor(() => f.executors.of(other).length === 3);
    assert.equal(f.executors.of(id).length, 2, 'back in scope');
  });
});
