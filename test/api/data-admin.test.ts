/**
 * Device data in the admin API (SPEC §9, issue 5) with a real SQLite bucket store: query, export as
 * CSV and JSON (parsed back; streamed over a real socket), range deletes, cross-tenant 404s, and the
 * OpenAPI document listing the data routes.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { CSV_COLUMNS } from '../../src/api/data/export.ts';
import { errorMessage } from './helpers.ts';
import { DAY, HOUR, ago, dataFixture, type DataFixture } from './data-fixture.ts';

let f: DataFixture;
before(() => {
  f = dataFixture();
});
after(() => f.close());

/** RFC 4180 parser (quoted fields with "" escapes and embedded commas/line breaks). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

describe('admin query', () => {
  test('GET /devices/:id/data: same filters, modes and answers as the device API', async () => {
    const d = f.device();
    await f.seed(d.id, Array.from({ length: 20 }, (_, i) => ({ variable: i % 2 === 0 ? 'even' : 'odd', value: i, time: Date.now() - (20 - i) * HOUR })));
    const records = await f.call('GET', `/devices/${d.id}/data?variables[]=even&qty=3`);
    assert.equal(records.status, 200);
    assert.deepEqual(records.body.result.map((r: { value: number }) => r.value), [18, 16, 14]);
    assert.deepEqual((await f.call('GET', `/devices/${d.id}/data?variable=odd&variable=even&query=count`)).body, { status: true, result: 20 });
    assert.equal((await f.call('GET', `/devices/${d.id}/data?variable=odd&query=sum`)).body.result, 100);
    assert.equal((await f.call('GET', `/devices/${d.id}/data?query=count&start_date=5.5 hours`)).body.result, 5);
    assert.match(errorMessage(await f.call('GET', `/devices/${d.id}/data?qty=20000`)), /qty/);
    // The token in the query string works here too (qs-parsed).
    assert.equal((await f.call('GET', `/devices/${d.id}/data?query=count&token=${f.token}`, { token: null })).body.result, 20);
  });

  test('permissions follow the account token: read may query but not delete', async () => {
    const d = f.device();
    const read = f.registry.createAccountToken(f.accountId, { name: 'reader', permission: 'read' }).token;
    assert.equal((await f.call('GET', `/devices/${d.id}/data`, { token: read })).status, 200);
    assert.equal((await f.call('DELETE', `/devices/${d.id}/data`, { token: read })).status, 403);
    assert.equal((await f.call('GET', `/devices/${d.id}/data`, { token: null })).status, 401);
    // A device token is not an account token.
    assert.equal((await f.call('GET', `/devices/${d.id}/data`, { token: d.token })).status, 401);
  });
});

describe('export', () => {
  test('CSV: header, attachment, RFC 4180 escaping, oldest first, parsed back to the records', async () => {
    const d = f.device();
    const stored = await f.seed(d.id, [
      { variable: 'note', value: 'plain', unit: 'u', time: '2025-01-01T00:00:00Z', group: 'g' },
      { variable: 'note', value: 'with, comma and "quotes"\nand a line break', time: '2025-01-02T00:00:00Z', location: { lat: 48.5, lng: -2.25 }, metadata: { k: 'v,"w"' } },
      { variable: 'num', value: 21.5, time: '2025-01-03T00:00:00Z' },
      { variable: 'flag', value: true, time: '2025-01-04T00:00:00Z' },
      { variable: 'nothing', value: null, time: '2025-01-05T00:00:00Z' },
    ]);
    const answer = await f.raw('GET', `/devices/${d.id}/data/export?format=csv`, { headers: { authorization: f.token } });
    assert.equal(answer.status, 200);
    assert.match(String(answer.headers['content-type']), /^text\/csv/);
    assert.match(String(answer.headers['content-disposition']), new RegExp(`^attachment; filename="device-${d.id}-.*\\.csv"$`));
    const rows = parseCsv(answer.text);
    assert.deepEqual(rows[0], [...CSV_COLUMNS]);
    assert.equal(rows.length, 1 + stored.length);
    const byColumn = rows.slice(1).map((row) => Object.fromEntries(CSV_COLUMNS.map((c, i) => [c, row[i]])));
    assert.deepEqual(byColumn.map((r) => r.value), ['plain', 'with, comma and "quotes"\nand a line break', '21.5', 'true', '']);
    assert.deepEqual(byColumn.map((r) => r.id), stored.map((r) => r.id));
    const [first, second] = byColumn;
    assert.equal(first!.unit, 'u');
    assert.equal(first!.group, 'g');
    assert.equal(first!.device, d.id);
    assert.equal(first!.time, '2025-01-01T00:00:00.000Z');
    assert.equal(first!.lat, '');
    assert.equal(second!.lat, '48.5');
    assert.equal(second!.lng, '-2.25');
    assert.deepEqual(JSON.parse(second!.metadata!), { k: 'v,"w"' });
    assert.ok(!Number.isNaN(Date.parse(second!.created_at!)));
  });

  test('CSV is the default format; filters apply; an empty bucket gives just the header', async () => {
    const d = f.device();
    await f.seed(d.id, [{ variable: 'a', value: 1 }, { variable: 'b', value: 2 }]);
    const answer = await f.raw('GET', `/devices/${d.id}/data/export?variables[]=b`, { headers: { authorization: f.token } });
    const rows = parseCsv(answer.text);
    assert.equal(rows.length, 2);
    assert.equal(rows[1]![2], 'b');
    const empty = f.device();
    assert.equal((await f.raw('GET', `/devices/${empty.id}/data/export`, { headers: { authorization: f.token } })).text, `${CSV_COLUMNS.join(',')}\r\n`);
    assert.deepEqual((await f.raw('GET', `/devices/${empty.id}/data/export?format=json`, { headers: { authorization: f.token } })).body, []);
    const bad = await f.raw('GET', `/devices/${d.id}/data/export?format=xml`, { headers: { authorization: f.token } });
    assert.equal(bad.status, 400);
    assert.match(errorMessage(bad), /format/);
  });

  test('JSON: an array of records in the API shape, oldest first, and a large export over a real socket', async () => {
    const d = f.device();
    const total = 5_000;
    const start = Date.now() - total * 1000;
    for (let i = 0; i < total; i += 1000) {
      await f.seed(d.id, Array.from({ length: 1000 }, (_, j) => ({ variable: 'seq', value: i + j, time: start + (i + j) * 1000, metadata: { i: i + j } })));
    }
    await f.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = f.app.server.address() as AddressInfo;
    const response = await fetch(`http://127.0.0.1:${port}/devices/${d.id}/data/export?format=json`, { headers: { authorization: `Bearer ${f.token}` } });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    assert.match(response.headers.get('content-disposition') ?? '', /^attachment; filename=".*\.json"$/);
    // Streamed, not buffered: chunked transfer, no Content-Length.
    assert.equal(response.headers.get('content-length'), null);
    const records = (await response.json()) as Array<{ value: number; time: string; metadata: { i: number }; device: string }>;
    assert.equal(records.length, total);
    assert.deepEqual(records.map((r) => r.value), Array.from({ length: total }, (_, i) => i));
    assert.equal(records[0]!.device, d.id);
    assert.equal(records[42]!.metadata.i, 42);
    assert.equal(records[1]!.time, new Date(start + 1000).toISOString());

    const csv = await fetch(`http://127.0.0.1:${port}/devices/${d.id}/data/export?format=csv&start_date=${encodeURIComponent(new Date(start + 4000 * 1000).toISOString())}`, { headers: { authorization: f.token } });
    const rows = parseCsv(await csv.text());
    assert.equal(rows.length, 1 + 1000);

    // The device API over the same socket: post with fetch, read back with ?token=.
    const posted = await fetch(`http://127.0.0.1:${port}/data`, {
      method: 'POST',
      headers: { token: d.token, 'content-type': 'application/json' },
      body: JSON.stringify([{ variable: 'over_the_wire', value: 1 }, { variable: 'over_the_wire', value: 2 }]),
    });
    assert.equal(posted.status, 202);
    assert.deepEqual(await posted.json(), { status: true, result: '2 Data Added' });
    const read = await fetch(`http://127.0.0.1:${port}/data?variables[0]=over_the_wire&query=sum&token=${encodeURIComponent(d.token)}`);
    assert.deepEqual(await read.json(), { status: true, result: 3 });
  });
});

describe('admin delete', () => {
  test('DELETE /devices/:id/data with a time range deletes that range and answers the count', async () => {
    const d = f.device();
    await f.seed(d.id, Array.from({ length: 10 }, (_, i) => ({ variable: 'x', value: i, time: Date.now() - (i + 1) * DAY })));
    const from = ago(5.5 * DAY);
    const to = ago(2.5 * DAY);
    const answer = await f.call('DELETE', `/devices/${d.id}/data?start_date=${from}&end_date=${to}`);
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, { status: true, result: 3 });
    const rest = await f.call('GET', `/devices/${d.id}/data?qty=100`);
    assert.deepEqual(rest.body.result.map((r: { value: number }) => r.value), [0, 1, 5, 6, 7, 8, 9]);
    // Relative range, any device type (this one is immutable), then everything.
    assert.equal((await f.call('DELETE', `/devices/${d.id}/data?start_date=2.5 days`)).body.result, 2);
    assert.equal((await f.call('DELETE', `/devices/${d.id}/data`)).body.result, 5);
    assert.equal((await f.call('GET', `/devices/${d.id}/data?query=count`)).body.result, 0);
  });
});

describe('tenancy', () => {
  test('another account\'s device is a 404 for query, export and delete, and nothing is touched', async () => {
    const other = f.registry.createAccount({ name: 'other' });
    const theirs = f.registry.createDevice(other.account.id, { name: 'secret' });
    await f.seed(theirs.device.id, { variable: 'secret', value: 42 });
    for (const [method, url] of [
      ['GET', `/devices/${theirs.device.id}/data`],
      ['GET', `/devices/${theirs.device.id}/data/export`],
      ['GET', `/devices/${theirs.device.id}/data/export?format=json`],
      ['DELETE', `/devices/${theirs.device.id}/data`],
      ['GET', '/devices/000000000000000000000000/data'],
    ] as const) {
      const answer = await f.call(method, url);
      assert.equal(answer.status, 404, `${method} ${url}`);
      assert.match(errorMessage(answer), /not found/);
    }
    assert.equal((await f.call('GET', `/devices/${theirs.device.id}/data?query=count`, { token: other.token })).body.result, 1);
  });
});

describe('OpenAPI', () => {
  test('lists the device data API and the admin data routes with summaries, tags and documented queries', async () => {
    const doc = (await f.raw('GET', '/docs/openapi.json')).body;
    const expected: Record<string, string[]> = {
      '/data': ['delete', 'get', 'post', 'put'],
      '/info': ['get'],
      '/devices/{deviceId}/data': ['delete', 'get'],
      '/devices/{deviceId}/data/export': ['get'],
    };
    for (const [path, methods] of Object.entries(expected)) {
      assert.deepEqual(Object.keys(doc.paths[path] ?? {}).sort(), methods, path);
      for (const method of methods) {
        const operation = doc.paths[path][method];
        assert.ok(operation.summary, `${method} ${path} summary`);
        assert.equal(operation.tags.length, 1);
        assert.ok(operation.responses['4XX'] ?? operation.responses['4xx'], `${method} ${path} documents errors`);
      }
    }
    const params = doc.paths['/data'].get.parameters.map((p: { name: string }) => p.name);
    for (const name of ['variables', 'variable', 'groups', 'values', 'ids', 'start_date', 'end_date', 'qty', 'skip', 'ordination', 'query', 'function', 'interval']) {
      assert.ok(params.includes(name), `GET /data documents ${name}`);
    }
    const query = doc.paths['/data'].get.parameters.find((p: { name: string }) => p.name === 'query');
    assert.ok(query.schema.enum.includes('aggregate'));
    assert.ok(doc.paths['/data'].post.requestBody);
  });
});
