/** Account-token authentication and the permission matrix of the admin API (SPEC §1, §9). */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { apiFixture, errorMessage, type ApiFixture } from './helpers.ts';

let f: ApiFixture;
before(() => {
  f = apiFixture();
});
after(() => f.close());

describe('where the token comes from', () => {
  const sources: Array<[string, (token: string) => { url: string; headers: Record<string, string> }]> = [
    ['raw Authorization header', (t) => ({ url: '/account', headers: { authorization: t } })],
    ['Authorization: Bearer', (t) => ({ url: '/account', headers: { authorization: `Bearer ${t}` } })],
    ['Account-Token header', (t) => ({ url: '/account', headers: { 'account-token': t } })],
    ['Token header', (t) => ({ url: '/account', headers: { token: t } })],
    ['token query parameter', (t) => ({ url: `/account?token=${encodeURIComponent(t)}`, headers: {} })],
  ];
  for (const [name, build] of sources) {
    test(name, async () => {
      const { url, headers } = build(f.token);
      const answer = await f.call('GET', url, { token: null, headers });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal(answer.body.result.id, f.accountId);
    });
  }
});

describe('401', () => {
  test('no token', async () => {
    const answer = await f.call('GET', '/devices', { token: null });
    assert.equal(answer.status, 401);
    assert.match(errorMessage(answer), /account token is required/);
  });

  test('an unknown token, an empty Bearer, an absurdly long token', async () => {
    for (const token of ['not-a-token', 'Bearer ', 'x'.repeat(5000)]) {
      const answer = await f.call('GET', '/devices', { token });
      assert.equal(answer.status, 401, token.slice(0, 20));
      assert.match(errorMessage(answer), /invalid or expired/);
    }
  });

  test('a device token is not an account token', async () => {
    const device = f.registry.createDevice(f.accountId, { name: 'd' });
    const answer = await f.call('GET', '/devices', { token: device.token });
    assert.equal(answer.status, 401);
  });

  test('a token past its expire_time (relative, as time passes)', async () => {
    const { token } = f.registry.createAccountToken(f.accountId, { name: 'short', permission: 'full', expire_time: '1 hour' });
    assert.equal((await f.call('GET', '/devices', { token })).status, 200);
    f.clock.now += 2 * 3_600_000;
    const answer = await f.call('GET', '/devices', { token });
    assert.equal(answer.status, 401);
    assert.match(errorMessage(answer), /invalid or expired/);
  });

  test('a token created through the API with a past ISO expire_time', async () => {
    const created = await f.call('POST', '/account/tokens', { body: { name: 'past', permission: 'full', expire_time: '2001-01-01T00:00:00Z' } });
    assert.equal(created.status, 201);
    assert.equal((await f.call('GET', '/devices', { token: created.body.result.token })).status, 401);
  });

  test('authentication comes before validation and before the body is read', async () => {
    const answer = await f.call('POST', '/devices', { token: 'wrong', body: { name: '' } });
    assert.equal(answer.status, 401);
  });

  test('the OpenAPI document needs no token', async () => {
    assert.equal((await f.call('GET', '/docs/openapi.json', { token: null })).status, 200);
  });
});

describe('permission matrix (full: all; read: GET only; write: all but GET)', () => {
  const expected = {
    full: { GET: 200, POST: 201, PUT: 200, DELETE: 200 },
    read: { GET: 200, POST: 403, PUT: 403, DELETE: 403 },
    write: { GET: 403, POST: 201, PUT: 200, DELETE: 200 },
  } as const;
  for (const permission of ['full', 'read', 'write'] as const) {
    test(permission, async () => {
      const { token } = f.registry.createAccountToken(f.accountId, { name: permission, permission });
      const device = f.registry.createDevice(f.accountId, { name: 'target' }).device;
      const requests: Array<[keyof (typeof expected)['full'], string, unknown?]> = [
        ['GET', `/devices/${device.id}`],
        ['POST', '/devices', { name: 'new' }],
        ['PUT', `/devices/${device.id}/params`, [{ key: 'k', value: 'v' }]],
        ['DELETE', `/devices/${device.id}`],
      ];
      for (const [method, url, body] of requests) {
        const answer = await f.call(method, url, { token, body });
        assert.equal(answer.status, expected[permission][method], `${permission} ${method} ${url}: ${JSON.stringify(answer.body)}`);
        if (answer.status === 403) assert.match(errorMessage(answer), new RegExp(`"${permission}" permission`));
      }
    });
  }
});
