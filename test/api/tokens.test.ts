/** Device tokens and account tokens through the admin API (SPEC §1): create once, list, revoke. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { apiFixture, errorMessage, type ApiFixture } from './helpers.ts';

let f: ApiFixture;
let deviceId: string;
before(async () => {
  f = apiFixture();
  const created = await f.call('POST', '/devices', { body: { name: 'Sensor' } });
  deviceId = created.body.result.id;
});
after(() => f.close());

describe('device tokens', () => {
  test('create answers the token once; it authenticates until deleted', async () => {
    const url = `/devices/${deviceId}/tokens`;
    const created = await f.call('POST', url, { body: { name: 'field unit', permission: 'write', expire_time: '3 hours', serie_number: 'SN-1' } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const result = created.body.result;
    assert.equal(typeof result.token, 'string');
    assert.equal(result.name, 'field unit');
    assert.equal(result.permission, 'write');
    assert.equal(result.serie_number, 'SN-1');
    assert.equal(result.device_id, deviceId);
    assert.equal(result.expire_time, new Date(f.clock.now + 3 * 3_600_000).toISOString());

    const identity = f.registry.authenticateDeviceToken(result.token);
    assert.deepEqual(identity && [identity.deviceId, identity.tokenId, identity.permission], [deviceId, result.id, 'write']);

    const listed = await f.call('GET', url);
    assert.equal(listed.status, 200);
    const names = listed.body.result.map((t: { name: string }) => t.name);
    assert.deepEqual(names.sort(), ['Default', 'field unit']);
    assert.ok(listed.body.result.every((t: Record<string, unknown>) => !('token' in t)), 'listing never shows tokens');
    assert.ok(!JSON.stringify(listed.body).includes(result.token));

    const removed = await f.call('DELETE', `${url}/${result.id}`);
    assert.deepEqual(removed, { status: 200, body: { status: true, result: 'Token Successfully Removed' } });
    assert.equal(f.registry.authenticateDeviceToken(result.token), null);
    assert.equal((await f.call('DELETE', `${url}/${result.id}`)).status, 404);
    assert.deepEqual((await f.call('GET', url)).body.result.map((t: { name: string }) => t.name), ['Default']);
  });

  test('expire_time defaults to never; serie_number to null', async () => {
    const created = await f.call('POST', `/devices/${deviceId}/tokens`, { body: { name: 'plain', permission: 'read' } });
    assert.equal(created.status, 201);
    assert.equal(created.body.result.expire_time, 'never');
    assert.equal(created.body.result.serie_number, null);
  });

  test('a token created with a past expire_time does not authenticate', async () => {
    const created = await f.call('POST', `/devices/${deviceId}/tokens`, { body: { name: 'old', permission: 'full', expire_time: '2020-01-01T00:00:00Z' } });
    assert.equal(created.status, 201);
    assert.equal(f.registry.authenticateDeviceToken(created.body.result.token), null);
  });

  test('bad bodies are refused, naming the field', async () => {
    const url = `/devices/${deviceId}/tokens`;
    const cases: Array<[unknown, RegExp]> = [
      [{ permission: 'full' }, /^body\/name is required$/],
      [{ name: 't', permission: 'admin' }, /^body\/permission must be one of full, read, write$/],
      [{ name: 't' }, /^body\/permission is required$/],
      [{ name: 't', permission: 'full', expire_time: 'soon' }, /expire_time: "soon" is not/],
      [{ name: 't', permission: 'full', expire_time: 3 }, /^body\/expire_time must be string$/],
      [{ name: 't', permission: 'full', owner: 'me' }, /^body\/owner is not a known field$/],
    ];
    for (const [body, expected] of cases) {
      const answer = await f.call('POST', url, { body });
      assert.equal(answer.status, 400, JSON.stringify(body));
      assert.match(errorMessage(answer), expected);
    }
  });
});

describe('account tokens', () => {
  test('create, use, list and revoke', async () => {
    const created = await f.call('POST', '/account/tokens', { body: { name: 'ci', permission: 'read', expire_time: '1 day' } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const { token, id, permission, expire_time } = created.body.result;
    assert.equal(permission, 'read');
    assert.equal(expire_time, new Date(f.clock.now + 86_400_000).toISOString());

    const asCi = await f.call('GET', '/account', { token });
    assert.equal(asCi.status, 200);
    assert.equal(asCi.body.result.id, f.accountId);

    const listed = await f.call('GET', '/account/tokens');
    assert.deepEqual(listed.body.result.map((t: { name: string }) => t.name).sort(), ['ci', 'default']);
    assert.ok(!JSON.stringify(listed.body).includes(token));

    assert.equal((await f.call('DELETE', `/account/tokens/${id}`)).status, 200);
    assert.equal((await f.call('GET', '/account', { token })).status, 401);
    assert.equal((await f.call('DELETE', `/account/tokens/${id}`)).status, 404);
  });

  test('a write token may create write tokens but not full or read ones', async () => {
    const { token: writer } = f.registry.createAccountToken(f.accountId, { name: 'writer', permission: 'write' });
    assert.equal((await f.call('POST', '/account/tokens', { token: writer, body: { name: 'w2', permission: 'write' } })).status, 201);
    for (const permission of ['full', 'read']) {
      const answer = await f.call('POST', '/account/tokens', { token: writer, body: { name: 'up', permission } });
      assert.equal(answer.status, 403, permission);
      assert.match(errorMessage(answer), new RegExp(`cannot create a "${permission}" token`));
    }
  });

  test("another account's token id answers 404", async () => {
    const other = f.registry.createAccount({ name: 'other' });
    const [theirs] = f.registry.accountTokens(other.account.id);
    const answer = await f.call('DELETE', `/account/tokens/${theirs!.id}`);
    assert.equal(answer.status, 404);
    assert.notEqual(f.registry.authenticateAccountToken(other.token), null);
  });

  test('GET /account shows the plan with its limits; GET /account/plans lists the plans', async () => {
    const account = await f.call('GET', '/account');
    assert.equal(account.body.result.name, 'acme');
    assert.equal(account.body.result.plan.name, 'scale');
    assert.equal(account.body.result.plan.limits.mqtt_publish, 15_000);
    const plans = await f.call('GET', '/account/plans');
    assert.deepEqual(plans.body.result.map((p: { name: string }) => p.name), ['free', 'scale', 'starter']);
    assert.equal(plans.body.result[0].limits.mqtt_publish, 250);
  });
});
