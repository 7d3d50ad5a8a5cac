/**
 * GET /data query strings (SPEC §8) with a real SQLite bucket store: every qs list form, aliases,
 * every `query` mode's answer shape, qty bounds, ordination, ISO and relative dates, aggregate.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseDuration, parseQueryString, toDataQuery } from '../../src/api/data/qs-query.ts';
import { errorMessage } from './helpers.ts';
import { DAY, HOUR, ago, dataFixture, type DataFixture } from './data-fixture.ts';

let f: DataFixture;
let device: { id: string; token: string };
const base = Date.now() - 10 * DAY;

before(async () => {
  f = dataFixture();
  device = f.device();
  // temperature: 10 readings, one per hour from `base`, values 1..10; humidity: 3; status: strings; one located.
  await f.seed(device.id, [
    ...Array.from({ length: 10 }, (_, i) => ({ variable: 'temperature', value: i + 1, unit: 'C', time: base + i * HOUR, group: i < 5 ? 'g1' : 'g2' })),
    { variable: 'humidity', value: 40, time: base + 30 * 60_000 },
    { variable: 'humidity', value: 50, time: base + 90 * 60_000 },
    { variable: 'humidity', value: 60, time: ago(2 * HOUR) },
    { variable: 'status', value: 'ok', time: ago(30 * 60_000) },
    { variable: 'status', value: '21.5', time: ago(20 * 60_000) },
    { variable: 'position', value: 'here', location: { lat: 10, lng: 20 }, time: ago(3 * DAY) },
  ]);
});
after(() => f.close());

async function get(query: string): Promise<{ status: number; body: any; text: string }> {
  return f.raw('GET', `/data${query === '' ? '' : `?${query}`}`, { headers: { token: device.token } });
}

async function result(query: string): Promise<any> {
  const answer = await get(query);
  assert.equal(answer.status, 200, `${query}: ${answer.text}`);
  assert.equal(answer.body.status, true);
  return answer.body.result;
}

const variablesOf = (records: Array<{ variable: string }>): string[] => records.map((r) => r.variable);
const sorted = (list: string[]): string[] => [...list].sort();

describe('qs list forms', () => {
  test('indexed, bracketed and repeated lists, and the singular alias, all mean the same list', async () => {
    const forms = [
      'variables[0]=humidity&variables[1]=status',
      'variables[]=humidity&variables[]=status',
      'variables=humidity&variables=status',
      'variable=humidity&variable=status',
      'variable[]=humidity&variables[]=status',
      'variables%5B0%5D=humidity&variables%5B1%5D=status',
      'variable=HUMIDITY&variable=Status',
    ];
    const answers = await Promise.all(forms.map((q) => result(`${q}&qty=100`)));
    const expected = sorted(['humidity', 'humidity', 'humidity', 'status', 'status']);
    for (const [i, answer] of answers.entries()) assert.deepEqual(sorted(variablesOf(answer)), expected, forms[i]);
    assert.deepEqual(answers[0], answers[1]);
  });

  test('a single item in any form', async () => {
    for (const q of ['variable=humidity', 'variables=humidity', 'variables[]=humidity', 'variables[0]=humidity']) {
      assert.deepEqual(variablesOf(await result(q)), ['humidity', 'humidity', 'humidity'], q);
    }
  });

  test('groups/group, values/value and ids/id behave the same', async () => {
    for (const q of ['groups[]=g1', 'group=g1', 'groups[0]=g1', 'groups=g1&groups=nothing']) {
      assert.equal((await result(`${q}&qty=100`)).length, 5, q);
    }
    for (const q of ['values[0]=3&values[1]=60', 'value=3&value=60', 'values[]=3&values[]=60']) {
      assert.deepEqual((await result(q)).map((r: { value: number }) => r.value).sort(), [3, 60], q);
    }
    // Text matches strings, numbers match numbers: "21.5" is stored as a string here.
    assert.deepEqual((await result('value=21.5')).map((r: { value: unknown }) => r.value), ['21.5']);
    assert.deepEqual((await result('values=ok')).map((r: { value: unknown }) => r.value), ['ok']);
    const [first, second] = await result('variable=temperature&qty=2');
    for (const q of [`ids[0]=${first.id}&ids[1]=${second.id}`, `id=${first.id}&id=${second.id}`, `ids[]=${first.id}&ids[]=${second.id}`]) {
      assert.deepEqual(sorted((await result(q)).map((r: { id: string }) => r.id)), sorted([first.id, second.id]), q);
    }
  });

  test('the parser: qs shapes, beyond qs\'s default array limit of 20', () => {
    const many = Array.from({ length: 30 }, (_, i) => `variables[${i}]=v${i}`).join('&');
    const parsed = parseQueryString(many);
    assert.ok(Array.isArray(parsed.variables));
    assert.equal(toDataQuery(parsed, 0).variables?.length, 30);
    assert.deepEqual(toDataQuery(parseQueryString('variables[]=a&variables[]=b'), 0).variables, ['a', 'b']);
    assert.deepEqual(toDataQuery(parseQueryString('variables[5000]=a'), 0).variables, ['a']);
  });
});

describe('query modes', () => {
  test('default: newest first, qty 15 by default; records carry the API shape', async () => {
    const records = await result('');
    assert.equal(records.length, 15);
    const times = records.map((r: { time: string }) => Date.parse(r.time));
    assert.deepEqual(times, [...times].sort((a, b) => b - a));
    assert.equal(records[0].variable, 'status');
    assert.match(records[0].time, /Z$/);
    assert.match(records[0].created_at, /Z$/);
  });

  test('ordination, asc/desc shorthands, skip', async () => {
    const asc = await result('variable=temperature&ordination=ascending&qty=3');
    assert.deepEqual(asc.map((r: { value: number }) => r.value), [1, 2, 3]);
    assert.deepEqual(await result('variable=temperature&ordination=asc&qty=3'), asc);
    const desc = await result('variable=temperature&ordination=desc&qty=3&skip=2');
    assert.deepEqual(desc.map((r: { value: number }) => r.value), [8, 7, 6]);
    assert.deepEqual((await result('variable=temperature&ordination=descending&qty=1')).map((r: { value: number }) => r.value), [10]);
  });

  test('last_* and first_* answer records', async () => {
    const lastValue = await result('variable=temperature&query=last_value');
    assert.ok(Array.isArray(lastValue));
    assert.equal(lastValue[0].value, 10);
    assert.equal((await result('variable=temperature&query=first_value'))[0].value, 1);
    assert.equal((await result('query=last_item'))[0].value, '21.5');
    assert.equal((await result('query=first_item'))[0].value, 1);
    assert.deepEqual((await result('query=last_location'))[0].location, { type: 'Point', coordinates: [20, 10] });
    assert.equal((await result('query=first_location'))[0].variable, 'position');
    assert.equal((await result('query=last_insert')).length, 1);
    assert.equal((await result('query=first_insert')).length, 1);
  });

  test('min and max answer records; count, avg and sum a bare number', async () => {
    const max = await result('variable=temperature&query=max');
    assert.ok(Array.isArray(max));
    assert.equal(max[0].value, 10);
    assert.equal((await result('variable=temperature&query=min'))[0].value, 1);
    for (const [q, expected] of [
      ['variable=temperature&query=count', 10],
      ['query=count', 16],
      ['variable=temperature&query=sum', 55],
      ['variable=temperature&query=avg', 5.5],
      ['variable=nothing&query=count', 0],
    ] as const) {
      const answer = await get(q);
      assert.equal(answer.status, 200);
      assert.equal(answer.body.result, expected, q);
      assert.equal(typeof answer.body.result, 'number', `${q} is a bare number`);
    }
  });

  test('aggregate: {variable, time ISO, value} points per interval', async () => {
    const points = await result('variable=temperature&query=aggregate&function=sum&interval=5%20hours&ordination=asc');
    assert.ok(points.length >= 2 && points.length <= 3);
    for (const p of points) {
      assert.deepEqual(Object.keys(p).sort(), ['time', 'value', 'variable']);
      assert.equal(p.variable, 'temperature');
      assert.match(p.time, /^\d{4}-\d{2}-\d{2}T.*Z$/);
    }
    assert.equal(points.reduce((s: number, p: { value: number }) => s + p.value, 0), 55);
    const hourly = await result('variable=temperature&query=aggregate&function=count&interval=1 hour');
    assert.equal(hourly.reduce((s: number, p: { value: number }) => s + p.value, 0), 10);
    const max = await result('variable=temperature&query=aggregate&function=max&interval=1 day');
    assert.equal(Math.max(...max.map((p: { value: number }) => p.value)), 10);
  });

  test('aggregate without function or interval, or with bad ones → 400 naming it', async () => {
    assert.match(errorMessage(await get('query=aggregate&interval=1 hour')), /querystring\/function/);
    assert.match(errorMessage(await get('query=aggregate&function=avg')), /querystring\/interval/);
    assert.match(errorMessage(await get('query=aggregate&function=median&interval=1 hour')), /querystring\/function/);
    assert.match(errorMessage(await get('query=aggregate&function=avg&interval=soon')), /querystring\/interval/);
    assert.match(errorMessage(await get('query=everything')), /querystring\/query/);
  });
});

describe('bounds and dates', () => {
  test('qty: up to 10,000; over, zero, negative or not a number → 400 naming qty', async () => {
    assert.equal((await result('qty=10000')).length, 16);
    for (const q of ['qty=10001', 'qty=0', 'qty=-1', 'qty=many', 'qty=5&qty=6']) {
      const answer = await get(q);
      assert.equal(answer.status, 400, q);
      assert.match(errorMessage(answer), /qty/, q);
    }
    assert.match(errorMessage(await get('skip=-1')), /skip/);
    assert.match(errorMessage(await get('ordination=sideways')), /ordination/);
  });

  test('start_date/end_date: ISO dates', async () => {
    const from = new Date(base + 2 * HOUR).toISOString();
    const to = new Date(base + 4 * HOUR).toISOString();
    const records = await result(`variable=temperature&start_date=${from}&end_date=${to}`);
    assert.deepEqual(records.map((r: { value: number }) => r.value), [5, 4, 3]);
    assert.match(errorMessage(await get('start_date=tomorrowish')), /querystring\/start_date/);
    assert.match(errorMessage(await get(`start_date=${to}&end_date=${from}`)), /start_date must not be after end_date/);
  });

  test('relative dates: "1 day", "3 hours" mean now minus that', async () => {
    assert.deepEqual(sorted(variablesOf(await result('start_date=3 hours'))), ['humidity', 'status', 'status']);
    assert.deepEqual(sorted(variablesOf(await result('start_date=1%20hour'))), ['status', 'status']);
    assert.deepEqual(sorted(variablesOf(await result('start_date=4 days&end_date=1 day'))), ['position']);
    assert.equal(await result('start_date=1 day&query=count'), 3);
    assert.equal(await result('end_date=5 days&query=count'), 12);
    assert.equal(parseDuration('15 minutes'), 15 * 60_000);
    assert.equal(parseDuration('2 weeks'), 14 * DAY);
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('a while'), null);
  });
});
