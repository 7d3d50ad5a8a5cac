/**
 * Every failure answers `{"status": false, "message"}` with the right status (SPEC §8/§9): schema
 * validation naming the field, malformed JSON, oversized bodies, unknown routes, and server faults
 * that never leak a stack trace.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { apiFixture, errorMessage, type ApiFixture } from './helpers.ts';

let f: ApiFixture;
before(() => {
  f = apiFixture({ bodyLimit: 100 * 1024 });
});
after(() => f.close());

describe('POST /devices validation names the field', () => {
  const cases: Array<[string, unknown, string | RegExp]> = [
    ['missing name', { type: 'mutable' }, 'body/name is required'],
    ['empty name', { name: '' }, 'body/name must NOT have fewer than 1 characters'],
    ['name too long', { name: 'n'.repeat(101) }, 'body/name must NOT have more than 100 characters'],
    ['name not a string', { name: 42 }, 'body/name must be string'],
    ['unknown type', { name: 'x', type: 'weird' }, 'body/type must be one of immutable, mutable'],
    ['unknown field', { name: 'x', colour: 'red' }, 'body/colour is not a known field'],
    ['params not an array', { name: 'x', params: 'interval=5' }, 'body/params must be array'],
    ['param without value', { name: 'x', params: [{ key: 'k' }] }, 'body/params/0/value is required'],
    ['tags not objects', { name: 'x', tags: ['a:b'] }, 'body/tags/0 must be object'],
    ['active not boolean', { name: 'x', active: 'yes' }, 'body/active must be boolean'],
    ['negative retention', { name: 'x', retention_days: -1 }, 'body/retention_days must be >= 1'],
    ['parser over 64 KiB', { name: 'x', payload_parser: 'x'.repeat(65 * 1024) }, 'body/payload_parser must NOT have more than 65536 characters'],
    ['parser over 64 KiB in bytes', { name: 'x', payload_parser: 'é'.repeat(40_000) }, 'body/payload_parser must be at most 65536 bytes'],
    ['body not an object', ['x'], 'body must be object'],
  ];
  for (const [name, body, expected] of cases) {
    test(name, async () => {
      const answer = await f.call('POST', '/devices', { body });
      assert.equal(answer.status, 400, JSON.stringify(answer.body));
      if (typeof expected === 'string') assert.equal(errorMessage(answer), expected);
      else assert.match(errorMessage(answer), expected);
    });
  }

  test('PUT /devices/:id with an empty body', async () => {
    const device = f.registry.createDevice(f.accountId, { name: 'd' }).device;
    const answer = await f.call('PUT', `/devices/${device.id}`, { body: {} });
    assert.equal(answer.status, 400);
    assert.equal(errorMessage(answer), 'body must NOT have fewer than 1 properties');
  });
});

describe('transport-level errors', () => {
  test('malformed JSON → 400', async () => {
    const answer = await f.call('POST', '/devices', { body: '{"name": "x"', headers: { 'content-type': 'application/json' } });
    assert.equal(answer.status, 400);
    assert.equal(errorMessage(answer), 'body is not valid JSON');
  });

  test('empty JSON body → 400', async () => {
    const answer = await f.call('POST', '/devices', { body: '', headers: { 'content-type': 'application/json' } });
    assert.equal(answer.status, 400);
    errorMessage(answer);
  });

  test('a body over the limit → 413', async () => {
    const answer = await f.call('POST', '/devices', { body: { name: 'x', payload_parser: 'x'.repeat(200 * 1024) } });
    assert.equal(answer.status, 413);
    assert.equal(errorMessage(answer), 'body is larger than the limit of 102400 bytes');
  });

  test('a body that is not JSON → 415', async () => {
    const answer = await f.call('POST', '/devices', { body: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(answer.status, 415);
    errorMessage(answer);
  });

  test('an unknown route → 404 in our shape, without echoing the query string', async () => {
    const answer = await f.call('GET', '/nothing/here?token=secret-value', { token: null });
    assert.equal(answer.status, 404);
    assert.equal(errorMessage(answer), 'route GET /nothing/here not found');
  });

  test('an unknown id → 404 naming it', async () => {
    const answer = await f.call('GET', '/devices/0123456789abcdef01234567');
    assert.equal(answer.status, 404);
    assert.equal(errorMessage(answer), 'device 0123456789abcdef01234567 not found');
  });
});

test('a server fault answers 500 with a generic message and no stack', async () => {
  const g = apiFixture();
  g.db.close(); // every registry call now throws
  try {
    const answer = await g.call('GET', '/devices');
    assert.equal(answer.status, 500);
    assert.equal(errorMessage(answer), 'internal server error');
  } finally {
    await g.app.close();
  }
});
