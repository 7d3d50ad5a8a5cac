/**
 * The device data API (SPEC §8) over inject with a real SQLite bucket store: token forms and
 * permissions, POST (JSON, arrays, raw text and binary), validation errors, the body limit, PUT and
 * DELETE on mutable and immutable devices, and GET /info.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { errorMessage } from './helpers.ts';
import { dataFixture, type DataFixture } from './data-fixture.ts';

let f: DataFixture;
before(() => {
  f = dataFixture();
});
after(() => f.close());

const json = { 'content-type': 'application/json' };

async function count(deviceId: string): Promise<number> {
  const result = await f.store.query(deviceId, { mode: 'count', qty: 15, skip: 0, ordination: 'descending' });
  assert.equal(result.kind, 'number');
  return result.value;
}

describe('device token', () => {
  test('is accepted from Token, Device-Token, Authorization (raw and Bearer) and ?token=', async () => {
    const d = f.device();
    const forms: Array<{ headers?: Record<string, string>; query?: string }> = [
      { headers: { token: d.token } },
      { headers: { Token: d.token } },
      { headers: { 'device-token': d.token } },
      { headers: { authorization: d.token } },
      { headers: { authorization: `Bearer ${d.token}` } },
      { headers: { authorization: `bearer ${d.token}` } },
      { query: `token=${encodeURIComponent(d.token)}` },
    ];
    for (const form of forms) {
      const answer = await f.raw('GET', `/data${form.query === undefined ? '' : `?${form.query}`}`, { headers: form.headers ?? {} });
      assert.equal(answer.status, 200, JSON.stringify(form));
      assert.deepEqual(answer.body, { status: true, result: [] });
    }
  });

  test('missing, unknown, expired or of an inactive device → 401 with the error shape', async () => {
    assert.equal((await f.raw('GET', '/data')).status, 401);
    assert.match(errorMessage(await f.raw('GET', '/data')), /device token is required/);
    const unknown = await f.raw('GET', '/data', { headers: { token: 'not-a-token' } });
    assert.equal(unknown.status, 401);
    assert.match(errorMessage(unknown), /invalid or expired/);

    const d = f.device();
    const short = f.registry.createDeviceToken(f.accountId, d.id, { name: 'short', permission: 'full', expire_time: '1 hour' }).token;
    assert.equal((await f.raw('GET', '/data', { headers: { token: short } })).status, 200);
    f.clock.now += 2 * 3_600_000;
    try {
      assert.equal((await f.raw('GET', '/data', { headers: { token: short } })).status, 401);
    } finally {
      f.clock.now -= 2 * 3_600_000;
    }

    f.registry.updateDevice(f.accountId, d.id, { active: false });
    assert.equal((await f.raw('GET', '/data', { headers: { token: d.token } })).status, 401);
  });

  test('an account token is not a device token', async () => {
    assert.equal((await f.raw('GET', '/data', { headers: { authorization: f.token } })).status, 401);
  });

  test('permissions: read may GET only, write may POST/PUT/DELETE only, full everything', async () => {
    const d = f.device('mutable');
    const read = f.deviceToken(d.id, 'read');
    const write = f.deviceToken(d.id, 'write');
    const record = JSON.stringify({ variable: 'x', value: 1 });
    const expect = async (token: string, method: string, status: number): Promise<void> => {
      const answer = await f.raw(method, method === 'PUT' ? '/data' : '/data?variable=none', {
        headers: { token, ...(method === 'POST' || method === 'PUT' ? json : {}) },
        ...(method === 'POST' ? { payload: record } : method === 'PUT' ? { payload: JSON.stringify({ id: 'none', value: 2 }) } : {}),
      });
      assert.equal(answer.status, status, `${method} with ${token === read ? 'read' : token === write ? 'write' : 'full'}: ${answer.text}`);
      if (status === 403) assert.match(errorMessage(answer), /permission/);
    };
    await expect(read, 'GET', 200);
    await expect(read, 'POST', 403);
    await expect(read, 'PUT', 403);
    await expect(read, 'DELETE', 403);
    await expect(write, 'GET', 403);
    await expect(write, 'POST', 202);
    await expect(write, 'PUT', 200);
    await expect(write, 'DELETE', 200);
    for (const method of ['GET', 'POST', 'PUT', 'DELETE']) await expect(d.token, method, method === 'POST' ? 202 : 200);
    // /info is a GET too.
    assert.equal((await f.raw('GET', '/info', { headers: { token: write } })).status, 403);
    assert.equal((await f.raw('GET', '/info', { headers: { token: read } })).status, 200);
  });
});

describe('POST /data', () => {
  test('one record → 202 "1 Data Added", stored as sent (lowercased variable, ISO time)', async () => {
    const d = f.device();
    const answer = await f.raw('POST', '/data', {
      headers: { token: d.token, ...json },
      payload: JSON.stringify({ variable: 'Temperature', value: 21.5, unit: 'C', time: '2025-03-01T10:00:00Z', location: { lat: 48.85, lng: 2.35 }, metadata: { a: 1 } }),
    });
    assert.equal(answer.status, 202);
    assert.deepEqual(answer.body, { status: true, result: '1 Data Added' });
    const read = await f.raw('GET', '/data', { headers: { token: d.token } });
    assert.equal(read.body.result.length, 1);
    const [r] = read.body.result;
    assert.equal(r.variable, 'temperature');
    assert.equal(r.value, 21.5);
    assert.equal(r.unit, 'C');
    assert.equal(r.time, '2025-03-01T10:00:00.000Z');
    assert.deepEqual(r.location, { type: 'Point', coordinates: [2.35, 48.85] });
    assert.deepEqual(r.metadata, { a: 1 });
    assert.equal(r.device, d.id);
    assert.match(r.id, /^[0-9a-f]{24}$/);
  });

  test('an array → "N Data Added", one shared group', async () => {
    const d = f.device();
    const records = Array.from({ length: 50 }, (_, i) => ({ variable: 'n', value: i }));
    const answer = await f.raw('POST', '/data', { headers: { token: d.token, ...json }, payload: JSON.stringify(records) });
    assert.equal(answer.status, 202);
    assert.equal(answer.body.result, '50 Data Added');
    assert.equal(await count(d.id), 50);
    const read = await f.raw('GET', '/data?qty=50', { headers: { token: d.token } });
    assert.equal(new Set(read.body.result.map((r: { group: string }) => r.group)).size, 1);
  });

  test('raw text/plain body → one "payload" record with the text; JSON records in text are stored as records', async () => {
    const d = f.device();
    const text = await f.raw('POST', '/data', { headers: { token: d.token, 'content-type': 'text/plain' }, payload: 'temp=21.5;hum=40' });
    assert.equal(text.status, 202, text.text);
    assert.equal(text.body.result, '1 Data Added');
    const records = await f.raw('POST', '/data', { headers: { token: d.token, 'content-type': 'text/plain' }, payload: '[{"variable":"a","value":1},{"variable":"b","value":2}]' });
    assert.equal(records.body.result, '2 Data Added');
    const payload = await f.raw('GET', '/data?variable=payload', { headers: { token: d.token } });
    assert.deepEqual(payload.body.result.map((r: { value: unknown }) => r.value), ['temp=21.5;hum=40']);
    assert.equal(await count(d.id), 3);
  });

  test('raw binary application/octet-stream body → "payload" record holding hex', async () => {
    const d = f.device();
    const answer = await f.raw('POST', '/data', { headers: { token: d.token, 'content-type': 'application/octet-stream' }, payload: Buffer.from([0x0a, 0x1b, 0xff, 0x00]) });
    assert.equal(answer.status, 202, answer.text);
    const read = await f.raw('GET', '/data?variable=payload&query=last_value', { headers: { token: d.token } });
    assert.equal(read.body.result[0].value, '0a1bff00');
  });

  test('a bad record → 400 naming the record index and the field; nothing of the message is stored', async () => {
    const d = f.device();
    const cases: Array<[unknown, RegExp]> = [
      [[{ variable: 'ok', value: 1 }, { variable: 'ok', value: 2 }, { variable: 'bad-name', value: 3 }], /^record 2: variable .*"-"/],
      [[{ variable: 'ok' }, { value: 1 }], /^record 1: variable is required/],
      [{ variable: 'x', unit: 'u'.repeat(26) }, /^record 0: unit must be at most 25 characters/],
      [[{ variable: 'x' }, { variable: 'y', time: 'yesterday' }], /^record 1: time /],
      [[{ variable: 'x', location: { lat: 200, lng: 0 } }], /^record 0: location /],
      [[{ variable: 'x', value: { nested: true } }], /^record 0: value /],
      [[], /^record 0: message is an empty array/],
    ];
    for (const [payload, message] of cases) {
      const answer = await f.raw('POST', '/data', { headers: { token: d.token, ...json }, payload: JSON.stringify(payload) });
      assert.equal(answer.status, 400, JSON.stringify(payload));
      assert.match(errorMessage(answer), message);
    }
    assert.equal(await count(d.id), 0);
  });

  test('invalid JSON → 400; no body → 400; an unsupported content type → 415', async () => {
    const d = f.device();
    const bad = await f.raw('POST', '/data', { headers: { token: d.token, ...json }, payload: '{"variable":' });
    assert.equal(bad.status, 400);
    assert.match(errorMessage(bad), /not valid JSON/);
    const none = await f.raw('POST', '/data', { headers: { token: d.token } });
    assert.equal(none.status, 400);
    const form = await f.raw('POST', '/data', { headers: { token: d.token, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'a=b' });
    assert.equal(form.status, 415);
    errorMessage(form);
    assert.equal(await count(d.id), 0);
  });

  test('bodies over 200 KB → 413 (JSON and raw), at the limit → stored', async () => {
    const d = f.device();
    const limit = 200 * 1024;
    const record = (size: number): string => {
      const overhead = JSON.stringify([{ variable: 'big', value: '' }]).length;
      const perRecord = 5000;
      const n = Math.floor((size - overhead) / (perRecord + 30));
      return JSON.stringify(Array.from({ length: n }, () => ({ variable: 'big', value: 'x'.repeat(perRecord) })));
    };
    const fits = record(limit - 100);
    assert.ok(fits.length <= limit);
    assert.equal((await f.raw('POST', '/data', { headers: { token: d.token, ...json }, payload: fits })).status, 202);
    const tooBig = `${fits.slice(0, -1)},${JSON.stringify({ variable: 'big', value: 'x'.repeat(5000) })}]`;
    assert.ok(tooBig.length > limit);
    const answer = await f.raw('POST', '/data', { headers: { token: d.token, ...json }, payload: tooBig });
    assert.equal(answer.status, 413);
    assert.match(errorMessage(answer), /204800 bytes/);
    const raw = await f.raw('POST', '/data', { headers: { token: d.token, 'content-type': 'application/octet-stream' }, payload: Buffer.alloc(limit + 1, 1) });
    assert.equal(raw.status, 413);
  });

  test('the admin API keeps its own (larger) body limit', async () => {
    const big = await f.call('POST', '/devices', { body: { name: 'x', payload_parser: `// ${'a'.repeat(60 * 1024)}` } });
    assert.equal(big.status, 201);
  });
});

describe('PUT /data', () => {
  test('updates records of a mutable device by id, one or an array', async () => {
    const d = f.device('mutable');
    const [a, b] = await f.seed(d.id, [{ variable: 'x', value: 1, unit: 'C' }, { variable: 'x', value: 2 }]);
    const one = await f.raw('PUT', '/data', { headers: { token: d.token, ...json }, payload: JSON.stringify({ id: a!.id, value: 10, unit: null, metadata: { fixed: true } }) });
    assert.equal(one.status, 200, one.text);
    assert.deepEqual(one.body, { status: true, result: '1 item(s) updated' });
    const many = await f.raw('PUT', '/data', {
      headers: { token: d.token, ...json },
      payload: JSON.stringify([{ id: b!.id, value: 'two', time: '2024-01-01T00:00:00Z', location: { lat: 1, lng: 2 } }, { id: 'ffffffffffffffffffffffff', value: 0 }]),
    });
    assert.equal(many.body.result, '1 item(s) updated');
    const read = await f.raw('GET', `/data?ids[]=${a!.id}&ids[]=${b!.id}&ordination=asc`, { headers: { token: d.token } });
    const byId = new Map(read.body.result.map((r: { id: string }) => [r.id, r]));
    const ra = byId.get(a!.id) as Record<string, unknown>;
    const rb = byId.get(b!.id) as Record<string, unknown>;
    assert.equal(ra.value, 10);
    assert.equal(ra.unit, undefined);
    assert.deepEqual(ra.metadata, { fixed: true });
    assert.equal(rb.value, 'two');
    assert.equal(rb.time, '2024-01-01T00:00:00.000Z');
    assert.deepEqual(rb.location, { type: 'Point', coordinates: [2, 1] });
  });

  test('a bad change → 400 naming index and field, and no change is made', async () => {
    const d = f.device('mutable');
    const [a] = await f.seed(d.id, { variable: 'x', value: 1 });
    const cases: Array<[unknown, RegExp]> = [
      [[{ id: a!.id, value: 5 }, { value: 3 }], /^record 1: id is required/],
      [[{ id: a!.id, value: 5 }, { id: a!.id, unit: 'u'.repeat(30) }], /^record 1: unit /],
      [{ id: a!.id }, /^record 0: nothing to change/],
      [[], /at least one change/],
    ];
    for (const [payload, message] of cases) {
      const answer = await f.raw('PUT', '/data', { headers: { token: d.token, ...json }, payload: JSON.stringify(payload) });
      assert.equal(answer.status, 400, JSON.stringify(payload));
      assert.match(errorMessage(answer), message);
    }
    const read = await f.raw('GET', '/data', { headers: { token: d.token } });
    assert.equal(read.body.result[0].value, 1);
  });

  test('an immutable device → 400 "device is immutable"', async () => {
    const d = f.device('immutable');
    const [a] = await f.seed(d.id, { variable: 'x', value: 1 });
    const answer = await f.raw('PUT', '/data', { headers: { token: d.token, ...json }, payload: JSON.stringify({ id: a!.id, value: 2 }) });
    assert.equal(answer.status, 400);
    assert.match(errorMessage(answer), /device is immutable/);
  });
});

describe('DELETE /data', () => {
  test('deletes the records matching the filters on a mutable device', async () => {
    const d = f.device('mutable');
    await f.seed(d.id, [{ variable: 'a', value: 1 }, { variable: 'a', value: 2 }, { variable: 'b', value: 3 }, { variable: 'c', value: 4 }]);
    const answer = await f.raw('DELETE', '/data?variables[0]=a&variables[1]=c', { headers: { token: d.token } });
    assert.deepEqual(answer.body, { status: true, result: '3 Data Removed' });
    const rest = await f.raw('GET', '/data', { headers: { token: d.token } });
    assert.deepEqual(rest.body.result.map((r: { variable: string }) => r.variable), ['b']);
    const byValue = await f.raw('DELETE', '/data?value=3', { headers: { token: d.token } });
    assert.equal(byValue.body.result, '1 Data Removed');
    assert.equal(await count(d.id), 0);
  });

  test('an immutable device → 400 and nothing is deleted', async () => {
    const d = f.device('immutable');
    await f.seed(d.id, { variable: 'x', value: 1 });
    const answer = await f.raw('DELETE', '/data', { headers: { token: d.token } });
    assert.equal(answer.status, 400);
    assert.match(errorMessage(answer), /device is immutable/);
    assert.equal(await count(d.id), 1);
  });
});

describe('GET /info', () => {
  test('answers the device\'s own details, never tokens or the account', async () => {
    const created = f.registry.createDevice(f.accountId, { name: 'weather station', type: 'mutable', tags: [{ key: 'site', value: 'paris' }], params: [{ key: 'rate', value: '60' }] });
    const answer = await f.raw('GET', '/info', { headers: { token: created.token } });
    assert.equal(answer.status, 200);
    const info = answer.body.result;
    assert.equal(info.id, created.device.id);
    assert.equal(info.name, 'weather station');
    assert.equal(info.type, 'mutable');
    assert.equal(info.active, true);
    assert.deepEqual(info.tags, [{ key: 'site', value: 'paris' }]);
    assert.equal(info.params[0].key, 'rate');
    assert.ok(info.created_at);
    assert.equal(info.account_id, undefined);
    assert.ok(!answer.text.includes(created.token), 'no token in the answer');
    assert.ok(!/token/i.test(Object.keys(info).join(',')));
  });
});
