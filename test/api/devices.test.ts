/** Devices, params and tags through the admin API (SPEC §1, §9), and tenant isolation. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { apiFixture, errorMessage, type ApiFixture } from './helpers.ts';

let f: ApiFixture;
before(() => {
  f = apiFixture();
});
after(() => f.close());

async function createDevice(body: Record<string, unknown>): Promise<any> {
  const answer = await f.call('POST', '/devices', { body });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return answer.body.result;
}

describe('device CRUD', () => {
  test('POST /devices creates a device with a working token; GET, PUT and DELETE follow', async () => {
    const created = await createDevice({
      name: 'Boiler',
      tags: [{ key: 'site', value: 'paris' }],
      params: [{ key: 'interval', value: '60' }],
      retention_days: 30,
      payload_parser: 'payload = payload;',
    });
    assert.equal(created.device_id, created.id);
    assert.equal(created.type, 'immutable');
    assert.equal(created.retention_days, 30);
    assert.equal(created.record_cap, null);
    assert.equal(created.active, true);
    assert.equal(created.connected, false);
    assert.deepEqual(created.tags, [{ key: 'site', value: 'paris' }]);
    assert.equal(created.params[0].key, 'interval');
    assert.equal(created.params[0].sent, false);
    assert.equal(typeof created.token, 'string');
    assert.equal(f.registry.authenticateDeviceToken(created.token)?.deviceId, created.id);

    const read = await f.call('GET', `/devices/${created.id}`);
    assert.equal(read.status, 200);
    assert.equal(read.body.status, true);
    assert.equal(read.body.result.name, 'Boiler');
    assert.equal(read.body.result.token, undefined, 'the token is only in the create answer');

    const updated = await f.call('PUT', `/devices/${created.id}`, { body: { name: 'Boiler 2', tags: [], active: false, payload_parser: null } });
    assert.equal(updated.status, 200);
    assert.equal(updated.body.result.name, 'Boiler 2');
    assert.deepEqual(updated.body.result.tags, []);
    assert.equal(updated.body.result.active, false);
    assert.equal(updated.body.result.payload_parser, null);
    assert.equal(f.registry.authenticateDeviceToken(created.token), null, 'an inactive device cannot log in');

    const removed = await f.call('DELETE', `/devices/${created.id}`);
    assert.deepEqual(removed, { status: 200, body: { status: true, result: 'Device Successfully Removed' } });
    assert.equal((await f.call('GET', `/devices/${created.id}`)).status, 404);
    assert.equal((await f.call('DELETE', `/devices/${created.id}`)).status, 404);
  });

  test('a mutable device gets a record cap and refuses retention_days', async () => {
    const created = await createDevice({ name: 'Table', type: 'mutable', record_cap: 500 });
    assert.equal(created.type, 'mutable');
    assert.equal(created.record_cap, 500);
    assert.equal(created.retention_days, null);
    const bad = await f.call('PUT', `/devices/${created.id}`, { body: { retention_days: 3 } });
    assert.equal(bad.status, 400);
    assert.match(errorMessage(bad), /body\/retention_days/);
    const immutable = await f.call('POST', '/devices', { body: { name: 'x', record_cap: 3 } });
    assert.equal(immutable.status, 400);
    assert.match(errorMessage(immutable), /body\/record_cap/);
  });

  test('type cannot be changed after creation', async () => {
    const created = await createDevice({ name: 'Fixed' });
    const answer = await f.call('PUT', `/devices/${created.id}`, { body: { type: 'mutable' } });
    assert.equal(answer.status, 400);
    assert.equal(errorMessage(answer), 'body/type is not a known field');
  });
});

describe('listing', () => {
  test('filters by tags (KEY:VALUE, all must match) and by name', async () => {
    const g = apiFixture();
    try {
      const make = async (name: string, tags: Array<[string, string]>): Promise<void> => {
        g.clock.now += 1000; // listings are oldest first
        const answer = await g.call('POST', '/devices', { body: { name, tags: tags.map(([key, value]) => ({ key, value })) } });
        assert.equal(answer.status, 201);
      };
      await make('meter-a', [['site', 'paris'], ['kind', 'meter']]);
      await make('meter-b', [['site', 'lyon'], ['kind', 'meter']]);
      await make('gate', [['site', 'paris'], ['url', 'http://x:8080']]);
      const names = async (query: string): Promise<string[]> => {
        const answer = await g.call('GET', `/devices${query}`);
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
        return answer.body.result.map((d: { name: string }) => d.name);
      };
      assert.deepEqual(await names('?tags=site:paris'), ['meter-a', 'gate']);
      assert.deepEqual(await names('?tags=site:paris&tags=kind:meter'), ['meter-a']);
      assert.deepEqual(await names('?tags=url:http://x:8080'), ['gate'], 'the value keeps its colons');
      assert.deepEqual(await names('?tags=site:nowhere'), []);
      assert.deepEqual(await names('?name=METER'), ['meter-a', 'meter-b']);
      const bad = await g.call('GET', '/devices?tags=nocolon');
      assert.equal(bad.status, 400);
      assert.equal(errorMessage(bad), 'querystring/tags/0 must be written KEY:VALUE');
    } finally {
      await g.close();
    }
  });

  test('pages with page and amount (at most 1000)', async () => {
    const g = apiFixture();
    try {
      for (let i = 0; i < 5; i++, g.clock.now += 1000) assert.equal((await g.call('POST', '/devices', { body: { name: `d${i}` } })).status, 201);
      const page = async (query: string): Promise<string[]> => (await g.call('GET', `/devices${query}`)).body.result.map((d: { name: string }) => d.name);
      assert.deepEqual(await page('?amount=2'), ['d0', 'd1']);
      assert.deepEqual(await page('?amount=2&page=2'), ['d2', 'd3']);
      assert.deepEqual(await page('?amount=2&page=3'), ['d4']);
      assert.deepEqual(await page('?amount=2&page=4'), []);
      assert.equal((await page('')).length, 5);
      const tooMany = await g.call('GET', '/devices?amount=1001');
      assert.equal(tooMany.status, 400);
      assert.equal(errorMessage(tooMany), 'querystring/amount must be <= 1000');
      const zero = await g.call('GET', '/devices?page=0');
      assert.equal(zero.status, 400);
      assert.match(errorMessage(zero), /^querystring\/page /);
      const text = await g.call('GET', '/devices?amount=lots');
      assert.equal(text.status, 400);
      assert.equal(errorMessage(text), 'querystring/amount must be integer');
    } finally {
      await g.close();
    }
  });
});

describe('params', () => {
  test('PUT adds and updates by key, GET lists, DELETE removes by id', async () => {
    const created = await createDevice({ name: 'Thermostat', params: [{ key: 'setpoint', value: '20' }] });
    const url = `/devices/${created.id}/params`;
    const put = await f.call('PUT', url, { body: [{ key: 'setpoint', value: '21', sent: true }, { key: 'mode', value: 'eco' }] });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.deepEqual(
      put.body.result.map((p: { key: string; value: string; sent: boolean }) => [p.key, p.value, p.sent]),
      [['setpoint', '21', true], ['mode', 'eco', false]],
    );
    const listed = await f.call('GET', url);
    assert.deepEqual(listed.body.result, put.body.result);
    const mode = listed.body.result[1];
    const removed = await f.call('DELETE', `${url}/${mode.id}`);
    assert.deepEqual(removed.body, { status: true, result: 'Param Successfully Removed' });
    assert.deepEqual((await f.call('GET', url)).body.result.map((p: { key: string }) => p.key), ['setpoint']);
    const again = await f.call('DELETE', `${url}/${mode.id}`);
    assert.equal(again.status, 404);
    assert.match(errorMessage(again), /not found/);
  });

  test('a body that is not an array is refused, naming the field', async () => {
    const created = await createDevice({ name: 'P' });
    const answer = await f.call('PUT', `/devices/${created.id}/params`, { body: { key: 'a', value: 'b' } });
    assert.equal(answer.status, 400);
    assert.equal(errorMessage(answer), 'body must be array');
    const item = await f.call('PUT', `/devices/${created.id}/params`, { body: [{ key: 'a', value: 5 }] });
    assert.equal(item.status, 400);
    assert.equal(errorMessage(item), 'body/0/value must be string');
  });
});

describe('tenant isolation', () => {
  test("another account's device answers 404 exactly like an unknown id, on every route", async () => {
    const mine = await createDevice({ name: 'Mine' });
    const other = f.registry.createAccount({ name: 'other' });
    const theirs = f.registry.createDevice(other.account.id, { name: 'Theirs', params: [{ key: 'k', value: 'v' }] });
    const theirParam = theirs.device.params[0]!.id;
    const probes: Array<[string, string, unknown?]> = [
      ['GET', '/devices/ID'],
      ['PUT', '/devices/ID', { name: 'stolen' }],
      ['GET', '/devices/ID/params'],
      ['PUT', '/devices/ID/params', [{ key: 'k', value: 'stolen' }]],
      ['DELETE', `/devices/ID/params/${theirParam}`],
      ['GET', '/devices/ID/tokens'],
      ['POST', '/devices/ID/tokens', { name: 't', permission: 'full' }],
      ['DELETE', `/devices/ID/tokens/${theirs.tokenInfo.id}`],
      ['DELETE', '/devices/ID'],
    ];
    for (const [method, path, body] of probes) {
      const foreign = await f.call(method, path.replace('ID', theirs.device.id), { body });
      const unknown = await f.call(method, path.replace('ID', 'ffffffffffffffffffffffff'), { body });
      assert.equal(foreign.status, 404, `${method} ${path}`);
      assert.equal(errorMessage(foreign).replace(theirs.device.id, 'X'), errorMessage(unknown).replace('ffffffffffffffffffffffff', 'X'), `${method} ${path}`);
    }
    // Nothing of theirs changed, and their listing is not ours.
    const still = f.registry.device(other.account.id, theirs.device.id)!;
    assert.equal(still.name, 'Theirs');
    assert.equal(still.params[0]!.value, 'v');
    assert.notEqual(f.registry.authenticateDeviceToken(theirs.token), null);
    const list = await f.call('GET', '/devices?amount=1000');
    assert.ok(list.body.result.some((d: { id: string }) => d.id === mine.id));
    assert.ok(!list.body.result.some((d: { id: string }) => d.id === theirs.device.id));
    const theirList = await f.call('GET', '/devices', { token: other.token });
    assert.deepEqual(theirList.body.result.map((d: { id: string }) => d.id), [theirs.device.id]);
  });
});
