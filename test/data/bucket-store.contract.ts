import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { AggregatePoint, BucketStore } from '../../src/data/bucket-store.ts';
import type { DataQuery, QueryMode } from '../../src/data/query.ts';
import type { DataRecord } from '../../src/data/record.ts';
import { validateRecords } from '../../src/data/validate-record.ts';

/**
 * The one suite every BucketStore passes (STYLE.md habit 8): SQLite, PostgreSQL, and whatever comes
 * next. It uses only the BucketStore interface. One store is made per run and shared by the tests;
 * each test writes under its own device id, so nothing leaks between tests (nor between runs on a
 * reused database).
 *
 * Semantics pinned here (SPEC §3, §8):
 * - "newest" = time descending, then insertion order descending; "oldest" the reverse.
 * - default mode: records newest first (`ordination: 'ascending'` = oldest first), qty/skip paging.
 * - *_value, min, max: one record per variable, results ordered by variable name; min/max consider
 *   only numeric values (ties go to the newest record).
 * - *_item: one record overall; *_location: the newest/oldest with a location; *_insert: by insertion.
 * - count counts records; avg/sum cover numeric values only and are 0 when there are none.
 * - aggregate: per variable, buckets start at multiples of intervalMs since the epoch; `count` counts
 *   every record, the other functions only numbers (buckets without numbers are left out); points
 *   ordered by variable, then time.
 * - values filter: a number matches numbers, a string strings, a boolean booleans.
 * - stream: oldest first (by time, then insertion).
 */

export interface BucketStoreFixture {
  store: BucketStore;
  cleanup(): Promise<void>;
}

const MINUTE = 60_000;
/** 2024-01-01T00:00:00Z: a multiple of every interval used below. */
const T0 = Date.UTC(2024, 0, 1);
const NOW = T0 + 60 * MINUTE;

const runId = randomBytes(4).toString('hex');
let deviceCounter = 0;
function newDevice(label: string): string {
  deviceCounter++;
  return `contract-${runId}-${deviceCounter}-${label}`;
}

function make(device: string, input: unknown, now = NOW): DataRecord[] {
  return validateRecords(input, { deviceId: device, now });
}

/** Named records, each validated on its own (explicit groups where the group matters). */
function named<K extends string>(device: string, spec: Record<K, Record<string, unknown>>): Record<K, DataRecord> {
  const out = {} as Record<K, DataRecord>;
  for (const key of Object.keys(spec) as K[]) out[key] = make(device, spec[key])[0]!;
  return out;
}

function q(mode: QueryMode, extra: Partial<DataQuery> = {}): DataQuery {
  return { mode, qty: 15, skip: 0, ordination: 'descending', ...extra };
}

async function records(store: BucketStore, device: string, query: DataQuery): Promise<DataRecord[]> {
  const result = await store.query(device, query);
  assert.equal(result.kind, 'records', `mode ${query.mode} returns records`);
  return result.kind === 'records' ? result.records : [];
}

async function number(store: BucketStore, device: string, query: DataQuery): Promise<number> {
  const result = await store.query(device, query);
  assert.equal(result.kind, 'number', `mode ${query.mode} returns a number`);
  return result.kind === 'number' ? result.value : NaN;
}

async function points(store: BucketStore, device: string, query: DataQuery): Promise<AggregatePoint[]> {
  const result = await store.query(device, query);
  assert.equal(result.kind, 'aggregate');
  return result.kind === 'aggregate' ? result.points : [];
}

const at = (minutes: number): number => T0 + minutes * MINUTE;

/**
 * The weather bucket used by the query tests. Time order (minutes):
 * t0@0 l1@0.5 t1@1 h1@1.5 t2@2 h2@2.5 t3@3 h3@3.5 t4@4 h4@4.5 t5@5 d1@6 d2@7.
 * Insertion order: t1 t2 t3 t4 t5 h1 h2 h3 h4 d1 d2 l1, then t0 alone.
 */
function weatherSpec() {
  return {
    t1: { variable: 'temperature', value: 20, time: at(1), group: 'g1', unit: 'C' },
    t2: { variable: 'temperature', value: 22, time: at(2), group: 'g1', unit: 'C', location: { lat: 10, lng: 20 } },
    t3: { variable: 'temperature', value: 21, time: at(3), group: 'g1' },
    t4: { variable: 'temperature', value: 25, time: at(4), group: 'g2', location: { lat: 11, lng: 21 } },
    t5: { variable: 'temperature', value: 23, time: at(5), group: 'g2' },
    h1: { variable: 'humidity', value: 50, time: at(1.5), group: 'g1' },
    h2: { variable: 'humidity', value: 55, time: at(2.5), group: 'g1', location: { lat: 12, lng: 22 } },
    h3: { variable: 'humidity', value: 'n/a', time: at(3.5), group: 'g2' },
    h4: { variable: 'humidity', value: null, time: at(4.5), group: 'g2' },
    d1: { variable: 'door', value: true, time: at(6), group: 'g3' },
    d2: { variable: 'door', value: false, time: at(7), group: 'g3' },
    l1: { variable: 'label', value: '21', time: at(0.5), group: 'g3' },
    t0: { variable: 'temperature', value: 19, time: at(0), group: 'g1' },
  };
}
type WeatherKey = keyof ReturnType<typeof weatherSpec>;

export function runBucketStoreContract(name: string, makeStore: () => Promise<BucketStoreFixture>): void {
  describe(`BucketStore contract: ${name}`, () => {
    let fixture: BucketStoreFixture;
    let store: BucketStore;
    before(async () => {
      fixture = await makeStore();
      store = fixture.store;
    });
    after(async () => {
      await fixture.cleanup();
    });

    /** Seeds a weather bucket (and a decoy device with the same shape) and returns id lookups. */
    async function weather(label: string) {
      const device = newDevice(label);
      const r = named(device, weatherSpec());
      const { t0, ...rest } = r;
      await store.insert(Object.values(rest));
      await store.insert([t0]);
      const decoy = newDevice(`${label}-decoy`);
      await store.insert(Object.values(named(decoy, weatherSpec())));
      /** The keys of the weather records, by id, for readable assertions. */
      const keyOf = new Map(Object.entries(r).map(([k, v]) => [v.id, k]));
      const keys = (list: DataRecord[]): string[] => list.map((x) => keyOf.get(x.id) ?? `foreign:${x.device}:${x.variable}`);
      const idsOf = (...list: WeatherKey[]): string[] => list.map((k) => r[k].id);
      return { device, r, keys, idsOf };
    }

    test('records round-trip exactly: every value type, unit, location, metadata, group, times, id', async () => {
      const device = newDevice('roundtrip');
      const values = [0, -1.5, 1e-7, 123456789.125, Number.MAX_SAFE_INTEGER, -2.5e300, 'text', '', 'héllo ✓ 日本', 'true', '21', true, false, null];
      const input: Array<Record<string, unknown>> = values.map((value, i) => ({ variable: `v${i}`, value, time: at(i) }));
      input.push({ variable: 'full', value: 3.25, unit: 'kWh', time: at(100), group: 'grp-1', location: { lat: -33.865, lng: 151.209 }, metadata: { a: 1, nested: { list: [1, 'x', null, true], s: 'é' } } });
      const stored = make(device, input);
      await store.insert(stored);
      const back = await records(store, device, q('default', { ordination: 'ascending', qty: 100 }));
      assert.deepEqual(back, stored);
      assert.equal(back[values.length]!.location?.coordinates[0], 151.209);
      assert.equal(typeof back[values.indexOf('21')]!.value, 'string');
      assert.equal(typeof back[values.indexOf(true)]!.value, 'boolean');
    });

    test('inserting nothing resolves', async () => {
      await store.insert([]);
    });

    test('default mode: newest first, ascending with ordination, qty and skip', async () => {
      const { device, keys } = await weather('default');
      assert.deepEqual(keys(await records(store, device, q('default', { qty: 100 }))), ['d2', 'd1', 't5', 'h4', 't4', 'h3', 't3', 'h2', 't2', 'h1', 't1', 'l1', 't0']);
      assert.deepEqual(keys(await records(store, device, q('default', { qty: 3, skip: 2 }))), ['t5', 'h4', 't4']);
      assert.deepEqual(keys(await records(store, device, q('default', { qty: 4, ordination: 'ascending' }))), ['t0', 'l1', 't1', 'h1']);
      assert.deepEqual(keys(await records(store, device, q('default', { qty: 4, skip: 11, ordination: 'ascending' }))), ['d1', 'd2']);
      assert.deepEqual(keys(await records(store, device, q('default', { qty: 5, skip: 13 }))), []);
      assert.equal((await records(store, device, q('default'))).length, 13, 'qty 15 returns all 13');
      assert.deepEqual(await records(store, newDevice('empty'), q('default')), []);
    });

    test('equal times: insertion order breaks ties in every direction', async () => {
      const device = newDevice('ties');
      const [a, b, c] = make(device, [
        { variable: 'x', value: 1, time: at(1) },
        { variable: 'x', value: 2, time: at(1) },
        { variable: 'x', value: 3, time: at(1) },
      ]);
      await store.insert([a!]);
      await store.insert([b!, c!]);
      const values = (list: DataRecord[]) => list.map((r) => r.value);
      assert.deepEqual(values(await records(store, device, q('default'))), [3, 2, 1]);
      assert.deepEqual(values(await records(store, device, q('default', { ordination: 'ascending' }))), [1, 2, 3]);
      assert.deepEqual(values(await records(store, device, q('default', { qty: 1, skip: 1 }))), [2]);
      assert.deepEqual(values(await records(store, device, q('last_item'))), [3]);
      assert.deepEqual(values(await records(store, device, q('first_item'))), [1]);
      assert.deepEqual(values(await records(store, device, q('last_value'))), [3]);
      assert.deepEqual(values(await records(store, device, q('first_value'))), [1]);
    });

    test('filters: variables, groups, ids, dates (inclusive) and their combination', async () => {
      const { device, keys, idsOf } = await weather('filters');
      const get = async (extra: Partial<DataQuery>) => keys(await records(store, device, q('default', { qty: 100, ...extra })));
      assert.deepEqual(await get({ variables: ['temperature'] }), ['t5', 't4', 't3', 't2', 't1', 't0']);
      assert.deepEqual(await get({ variables: ['temperature', 'humidity'], ordination: 'ascending' }), ['t0', 't1', 'h1', 't2', 'h2', 't3', 'h3', 't4', 'h4', 't5']);
      assert.deepEqual(await get({ variables: ['nothing'] }), []);
      assert.deepEqual(await get({ groups: ['g2'] }), ['t5', 'h4', 't4', 'h3']);
      assert.deepEqual(await get({ groups: ['g1', 'g3'] }), ['d2', 'd1', 't3', 'h2', 't2', 'h1', 't1', 'l1', 't0']);
      assert.deepEqual(await get({ ids: idsOf('t2', 'h3') }), ['h3', 't2']);
      assert.deepEqual(await get({ ids: idsOf('d1') }), ['d1']);
      assert.deepEqual(await get({ startDate: at(2), endDate: at(4) }), ['t4', 'h3', 't3', 'h2', 't2']);
      assert.deepEqual(await get({ startDate: at(6) }), ['d2', 'd1']);
      assert.deepEqual(await get({ endDate: at(0.5) }), ['l1', 't0']);
      assert.deepEqual(await get({ variables: ['temperature'], groups: ['g1'], startDate: at(1) }), ['t3', 't2', 't1']);
      assert.deepEqual(await get({ variables: ['temperature'], groups: ['g1'], qty: 2, skip: 1 }), ['t2', 't1']);
      assert.deepEqual(await get({ variables: [], groups: [] }), ['d2', 'd1', 't5', 'h4', 't4', 'h3', 't3', 'h2', 't2', 'h1', 't1', 'l1', 't0'], 'empty lists filter nothing');
    });

    test('values filter compares as stored: numbers, strings and booleans apart', async () => {
      const { device, keys } = await weather('values');
      const get = async (values: Array<string | number | boolean>) => keys(await records(store, device, q('default', { qty: 100, values })));
      assert.deepEqual(await get([21]), ['t3']);
      assert.deepEqual(await get(['21']), ['l1']);
      assert.deepEqual(await get([true]), ['d1']);
      assert.deepEqual(await get([false]), ['d2']);
      assert.deepEqual(await get(['true']), []);
      assert.deepEqual(await get(['n/a']), ['h3']);
      assert.deepEqual(await get([22, 'n/a', false]), ['d2', 'h3', 't2']);
      assert.deepEqual(await get([20, 50]), ['h1', 't1']);
      assert.deepEqual(keys(await records(store, device, q('default', { values: [20, 50], variables: ['humidity'] }))), ['h1']);
    });

    test('last_value and first_value: one record per variable, by variable name, within the filters', async () => {
      const { device, keys } = await weather('per-variable');
      const get = async (mode: QueryMode, extra: Partial<DataQuery> = {}) => keys(await records(store, device, q(mode, extra)));
      assert.deepEqual(await get('last_value'), ['d2', 'h4', 'l1', 't5']);
      assert.deepEqual(await get('first_value'), ['d1', 'h1', 'l1', 't0']);
      assert.deepEqual(await get('last_value', { variables: ['temperature'] }), ['t5']);
      assert.deepEqual(await get('last_value', { variables: ['temperature', 'humidity'] }), ['h4', 't5']);
      assert.deepEqual(await get('last_value', { variables: ['temperature', 'nope'] }), ['t5']);
      assert.deepEqual(await get('last_value', { variables: ['nope'] }), []);
      assert.deepEqual(await get('last_value', { endDate: at(3) }), ['h2', 'l1', 't3']);
      assert.deepEqual(await get('last_value', { groups: ['g1'] }), ['h2', 't3']);
      assert.deepEqual(await get('first_value', { startDate: at(2), variables: ['temperature', 'humidity', 'door'] }), ['d1', 'h2', 't2']);
      assert.deepEqual(await get('last_value', { values: [50, 22] }), ['h1', 't2']);
      assert.deepEqual(await get('last_value', { ids: [] }), ['d2', 'h4', 'l1', 't5']);
      assert.deepEqual(await records(store, newDevice('empty'), q('last_value')), []);
    });

    test('last_item, first_item, last_location, first_location, last_insert, first_insert', async () => {
      const { device, keys } = await weather('single');
      const get = async (mode: QueryMode, extra: Partial<DataQuery> = {}) => keys(await records(store, device, q(mode, extra)));
      assert.deepEqual(await get('last_item'), ['d2']);
      assert.deepEqual(await get('first_item'), ['t0']);
      assert.deepEqual(await get('last_item', { variables: ['humidity'] }), ['h4']);
      assert.deepEqual(await get('first_item', { groups: ['g2'] }), ['h3']);
      assert.deepEqual(await get('last_location'), ['t4']);
      assert.deepEqual(await get('first_location'), ['t2']);
      assert.deepEqual(await get('last_location', { variables: ['humidity'] }), ['h2']);
      assert.deepEqual(await get('last_location', { endDate: at(3) }), ['h2']);
      assert.deepEqual(await get('last_location', { variables: ['door'] }), []);
      assert.deepEqual(await get('last_insert'), ['t0']);
      assert.deepEqual(await get('first_insert'), ['t1']);
      assert.deepEqual(await get('last_insert', { variables: ['humidity'] }), ['h4']);
      assert.deepEqual(await get('first_insert', { variables: ['humidity', 'label'] }), ['h1']);
      assert.deepEqual(await get('last_insert', { variables: ['temperature'], startDate: at(1) }), ['t5']);
      assert.deepEqual(await records(store, newDevice('empty'), q('last_item')), []);
    });

    test('count, avg and sum: numbers over the filtered records (avg/sum numeric only, 0 when none)', async () => {
      const { device } = await weather('numbers');
      const get = (mode: QueryMode, extra: Partial<DataQuery> = {}) => number(store, device, q(mode, extra));
      assert.equal(await get('count'), 13);
      assert.equal(await get('count', { variables: ['temperature'] }), 6);
      assert.equal(await get('count', { startDate: at(5) }), 3);
      assert.equal(await get('count', { variables: ['humidity'], groups: ['g2'] }), 2);
      assert.equal(await get('count', { qty: 1 }), 13, 'qty does not limit count');
      assert.equal(await number(store, newDevice('empty'), q('count')), 0);
      assert.equal(await get('sum'), 235);
      assert.equal(await get('sum', { variables: ['humidity'] }), 105);
      assert.equal(await get('sum', { variables: ['temperature'], endDate: at(2) }), 61);
      assert.equal(await get('sum', { variables: ['door'] }), 0);
      assert.equal(await get('avg'), 29.375);
      assert.equal(await get('avg', { variables: ['humidity'] }), 52.5);
      assert.ok(Math.abs((await get('avg', { variables: ['temperature'] })) - 130 / 6) < 1e-9);
      assert.equal(await get('avg', { variables: ['label'] }), 0);
      assert.equal(await number(store, newDevice('empty'), q('avg')), 0);
    });

    test('min and max: the record with the extreme numeric value per variable', async () => {
      const { device, keys } = await weather('minmax');
      const get = async (mode: QueryMode, extra: Partial<DataQuery> = {}) => keys(await records(store, device, q(mode, extra)));
      assert.deepEqual(await get('max'), ['h2', 't4']);
      assert.deepEqual(await get('min'), ['h1', 't0']);
      assert.deepEqual(await get('min', { startDate: at(1) }), ['h1', 't1']);
      assert.deepEqual(await get('max', { variables: ['temperature'], groups: ['g1'] }), ['t2']);
      assert.deepEqual(await get('max', { variables: ['door', 'label'] }), []);
      const full = await records(store, device, q('max', { variables: ['temperature'] }));
      assert.equal(full[0]!.value, 25);
      assert.deepEqual(full[0]!.location, { type: 'Point', coordinates: [21, 11] });

      const tied = newDevice('minmax-ties');
      const [a, b, c] = make(tied, [
        { variable: 'x', value: 5, time: at(1) },
        { variable: 'x', value: 5, time: at(3) },
        { variable: 'x', value: 1, time: at(2) },
      ]);
      await store.insert([a!, b!, c!]);
      assert.deepEqual((await records(store, tied, q('max'))).map((r) => r.id), [b!.id], 'ties go to the newest');
      assert.deepEqual((await records(store, tied, q('min'))).map((r) => r.id), [c!.id]);
    });

    test('aggregate: every function over interval buckets per variable', async () => {
      const { device } = await weather('aggregate');
      const get = (fn: 'avg' | 'sum' | 'min' | 'max' | 'count', intervalMs: number, extra: Partial<DataQuery> = {}) =>
        points(store, device, q('aggregate', { aggregate: { function: fn, intervalMs }, ...extra }));
      const p = (variable: string, minutes: number, value: number): AggregatePoint => ({ variable, time: at(minutes), value });
      const two = 2 * MINUTE;
      assert.deepEqual(await get('avg', two), [p('humidity', 0, 50), p('humidity', 2, 55), p('temperature', 0, 19.5), p('temperature', 2, 21.5), p('temperature', 4, 24)]);
      assert.deepEqual(await get('sum', two, { variables: ['temperature'] }), [p('temperature', 0, 39), p('temperature', 2, 43), p('temperature', 4, 48)]);
      assert.deepEqual(await get('min', two, { variables: ['temperature'] }), [p('temperature', 0, 19), p('temperature', 2, 21), p('temperature', 4, 23)]);
      assert.deepEqual(await get('max', two, { variables: ['temperature'] }), [p('temperature', 0, 20), p('temperature', 2, 22), p('temperature', 4, 25)]);
      assert.deepEqual(await get('count', two), [
        p('door', 6, 2),
        p('humidity', 0, 1), p('humidity', 2, 2), p('humidity', 4, 1),
        p('label', 0, 1),
        p('temperature', 0, 2), p('temperature', 2, 2), p('temperature', 4, 2),
      ]);
      assert.deepEqual(await get('sum', 60 * MINUTE), [p('humidity', 0, 105), p('temperature', 0, 130)]);
      assert.deepEqual(await get('count', 60 * MINUTE, { groups: ['g2'], startDate: at(4) }), [p('humidity', 0, 1), p('temperature', 0, 2)]);
      assert.deepEqual(await get('max', 3 * MINUTE, { variables: ['temperature'] }), [p('temperature', 0, 22), p('temperature', 3, 25)]);
      assert.deepEqual(await points(store, newDevice('empty'), q('aggregate', { aggregate: { function: 'avg', intervalMs: MINUTE } })), []);
    });

    test('update: sets the given fields of matching records only and counts them', async () => {
      const device = newDevice('update');
      const decoy = newDevice('update-decoy');
      const spec = (i: number) => ({ variable: 'level', value: i, time: at(i), group: i <= 2 ? 'g1' : 'g2', unit: 'cm' });
      const r = make(device, [1, 2, 3, 4].map(spec));
      const other = make(decoy, [1, 2, 3, 4].map(spec));
      await store.insert(r);
      await store.insert(other);

      assert.equal(await store.update(device, { variables: ['level'], groups: ['g2'] }, { value: 'high', unit: 'm' }), 2);
      const now = await records(store, device, q('default', { ordination: 'ascending' }));
      assert.deepEqual(now.map((x) => [x.value, x.unit]), [[1, 'cm'], [2, 'cm'], ['high', 'm'], ['high', 'm']]);

      const location = { type: 'Point' as const, coordinates: [5.5, -7.25] as [number, number] };
      assert.equal(await store.update(device, { ids: [r[0]!.id] }, { location, metadata: { fixed: true, note: 'é' }, group: 'moved' }), 1);
      assert.deepEqual(await records(store, device, q('first_item')), [{ ...r[0]!, location, metadata: { fixed: true, note: 'é' }, group: 'moved' }]);

      assert.equal(await store.update(device, { values: [2] }, { time: at(10), value: false }), 1);
      assert.deepEqual((await records(store, device, q('last_item'))).map((x) => [x.id, x.value, x.time]), [[r[1]!.id, false, at(10)]]);
      assert.equal(await store.update(device, { ids: [r[0]!.id] }, { value: null, unit: null, location: null, metadata: null }), 1);
      const cleared = (await records(store, device, q('default', { ids: [r[0]!.id] })))[0]!;
      assert.deepEqual([cleared.value, cleared.unit, cleared.location, cleared.metadata], [null, null, null, null]);

      assert.equal(await store.update(device, { variables: ['nothing'] }, { value: 1 }), 0);
      assert.equal(await store.update(device, { startDate: at(100) }, { value: 1 }), 0);
      assert.equal(await store.update(device, {}, { value: 7 }), 4, 'no filter: every record of the device');
      assert.deepEqual((await records(store, decoy, q('default', { ordination: 'ascending' }))).map((x) => [x.value, x.unit, x.group]), [[1, 'cm', 'g1'], [2, 'cm', 'g1'], [3, 'cm', 'g2'], [4, 'cm', 'g2']], 'another device is untouched');
    });

    test('delete: matching records only, counted; no filter deletes the whole bucket', async () => {
      const device = newDevice('delete');
      const decoy = newDevice('delete-decoy');
      const spec = (i: number) => ({ variable: i % 2 === 0 ? 'even' : 'odd', value: i, time: at(i), group: i < 5 ? 'low' : 'high' });
      const r = make(device, Array.from({ length: 10 }, (_, i) => spec(i)));
      await store.insert(r);
      await store.insert(make(decoy, Array.from({ length: 10 }, (_, i) => spec(i))));
      const count = (d = device) => number(store, d, q('count'));

      assert.equal(await store.delete(device, { values: [3] }), 1);
      assert.equal(await store.delete(device, { values: [3] }), 0);
      assert.equal(await store.delete(device, { variables: ['even'], groups: ['high'] }), 2);
      assert.equal(await store.delete(device, { ids: [r[0]!.id, r[1]!.id] }), 2);
      assert.equal(await store.delete(device, { startDate: at(7), endDate: at(9) }), 2, 'removes 7 and 9 (8 is gone already)');
      assert.deepEqual((await records(store, device, q('default', { ordination: 'ascending' }))).map((x) => x.value), [2, 4, 5]);
      assert.equal(await store.delete(device, {}), 3);
      assert.equal(await count(), 0);
      assert.equal(await store.delete(device, {}), 0);
      assert.equal(await count(decoy), 10, 'another device is untouched');
    });

    test('deleteOlderThan: retention removes records strictly older than the cut-off', async () => {
      const device = newDevice('retention');
      const decoy = newDevice('retention-decoy');
      const spec = (i: number) => ({ variable: 'x', value: i, time: at(i) });
      await store.insert(make(device, Array.from({ length: 10 }, (_, i) => spec(i))));
      await store.insert(make(decoy, Array.from({ length: 10 }, (_, i) => spec(i))));
      assert.equal(await store.deleteOlderThan(device, at(5)), 5);
      assert.deepEqual((await records(store, device, q('default', { ordination: 'ascending' }))).map((x) => x.value), [5, 6, 7, 8, 9]);
      assert.equal(await store.deleteOlderThan(device, at(5)), 0);
      assert.equal(await store.deleteOlderThan(device, at(100)), 5);
      assert.equal(await number(store, decoy, q('count')), 10);
    });

    test('enforceCap: keeps the newest records by time', async () => {
      const device = newDevice('cap');
      const decoy = newDevice('cap-decoy');
      const minutes = [5, 1, 9, 3, 7, 0, 8, 2, 6, 4];
      await store.insert(make(device, minutes.map((m) => ({ variable: 'x', value: m, time: at(m) }))));
      await store.insert(make(decoy, minutes.map((m) => ({ variable: 'x', value: m, time: at(m) }))));
      assert.equal(await store.enforceCap(device, 20), 0);
      assert.equal(await store.enforceCap(device, 4), 6);
      assert.deepEqual((await records(store, device, q('default'))).map((x) => x.value), [9, 8, 7, 6]);
      assert.equal(await store.enforceCap(device, 4), 0);
      assert.equal(await store.enforceCap(device, 1), 3);
      assert.deepEqual((await records(store, device, q('default'))).map((x) => x.value), [9]);
      assert.equal(await store.enforceCap(device, 0), 1);
      assert.equal(await number(store, device, q('count')), 0);
      assert.equal(await number(store, decoy, q('count')), 10);
    });

    test('stream: 25,000 records oldest first, each exactly once; filters apply', async () => {
      const device = newDevice('stream');
      const total = 25_000;
      const all: DataRecord[] = [];
      for (let start = 0; start < total; start += 1_000) {
        const chunk = make(device, Array.from({ length: 1_000 }, (_, k) => {
          const i = start + k;
          return { variable: i % 2 === 0 ? 'a' : 'b', value: i, time: T0 + i * 1_000, group: `p${Math.floor(i / 5_000)}` };
        }));
        all.push(...chunk);
      }
      // Some concurrency, as exports run while data arrives.
      await Promise.all(Array.from({ length: 25 }, (_, k) => store.insert(all.slice(k * 1_000, (k + 1) * 1_000))));

      let n = 0;
      for await (const record of store.stream(device, {})) {
        const expected = all[n]!;
        if (record.id !== expected.id || record.value !== n) assert.fail(`stream position ${n}: got ${record.id}/${String(record.value)}, expected ${expected.id}/${n}`);
        n++;
      }
      assert.equal(n, total);

      const filtered: number[] = [];
      for await (const record of store.stream(device, { variables: ['b'], groups: ['p2', 'p4'], startDate: T0 + 12_000 * 1_000 })) filtered.push(record.value as number);
      const expected = all.map((_, i) => i).filter((i) => i % 2 === 1 && (Math.floor(i / 5_000) === 2 || Math.floor(i / 5_000) === 4) && i >= 12_000);
      assert.equal(filtered.length, expected.length);
      assert.deepEqual(filtered, expected);

      const none: DataRecord[] = [];
      for await (const record of store.stream(newDevice('empty'), {})) none.push(record);
      assert.deepEqual(none, []);
    });

    test('stream: equal times come out in insertion order', async () => {
      const device = newDevice('stream-ties');
      const r = make(device, Array.from({ length: 50 }, (_, i) => ({ variable: 'x', value: i, time: at(i < 25 ? 1 : 0) })));
      await store.insert(r);
      const out: number[] = [];
      for await (const record of store.stream(device, {})) out.push(record.value as number);
      assert.deepEqual(out, [...Array.from({ length: 25 }, (_, i) => 25 + i), ...Array.from({ length: 25 }, (_, i) => i)]);
    });

    test('100 concurrent callers: every caller resolves and every record is stored once', async () => {
      const device = newDevice('concurrent');
      const callers = Array.from({ length: 100 }, (_, c) => make(device, Array.from({ length: 10 }, (_, k) => ({ variable: 'x', value: c * 10 + k, time: at(k), group: `caller-${c}` }))));
      await Promise.all(callers.map((records) => store.insert(records)));
      assert.equal(await number(store, device, q('count')), 1_000);
      for (const c of [0, 1, 49, 98, 99]) {
        const back = await records(store, device, q('default', { groups: [`caller-${c}`], ordination: 'ascending', qty: 100 }));
        assert.deepEqual(back.map((r) => r.id), callers[c]!.map((r) => r.id));
      }
      assert.equal(await number(store, device, q('sum')), (999 * 1_000) / 2);
    });

    test('a failing caller is isolated: only it rejects and nothing of it is stored', async () => {
      const device = newDevice('isolation');
      const [existing] = make(device, { variable: 'x', value: -1, time: at(0) });
      await store.insert([existing!]);

      const callers = Array.from({ length: 50 }, (_, c) => make(device, Array.from({ length: 5 }, (_, k) => ({ variable: 'x', value: c * 5 + k, time: at(1), group: `caller-${c}` }))));
      // Caller 17 brings a record whose id is already stored (as a replayed message would).
      callers[17]![3] = { ...callers[17]![3]!, id: existing!.id };
      // Caller 31 repeats an id within its own message.
      callers[31]![4] = { ...callers[31]![4]!, id: callers[31]![0]!.id };
      const settled = await Promise.allSettled(callers.map((records) => store.insert(records)));
      const rejected = settled.flatMap((s, i) => (s.status === 'rejected' ? [i] : []));
      assert.deepEqual(rejected, [17, 31]);

      assert.equal(await number(store, device, q('count')), 1 + 48 * 5);
      assert.deepEqual(await records(store, device, q('default', { groups: ['caller-17'] })), []);
      assert.deepEqual(await records(store, device, q('default', { groups: ['caller-31'] })), []);
      assert.deepEqual((await records(store, device, q('default', { ids: [existing!.id] }))).map((r) => r.value), [-1], 'the stored record is not overwritten');
      assert.equal((await records(store, device, q('default', { groups: ['caller-18'] }))).length, 5);

      // The store keeps working after the failure.
      await store.insert(make(device, { variable: 'x', value: 1e6 }));
      assert.equal(await number(store, device, q('count')), 2 + 48 * 5);
    });

    test('submit: each waiter hears once, after its records are readable; a failing one hears its error', async () => {
      const device = newDevice('submit');
      const [existing] = make(device, { variable: 'x', value: -1, time: at(0) });
      await store.insert([existing!]);
      const callers = Array.from({ length: 20 }, (_, c) => make(device, [{ variable: 'x', value: c, time: at(1), group: `caller-${c}` }, { variable: 'y', value: c, time: at(1), group: `caller-${c}` }]));
      callers[7]![1] = { ...callers[7]![1]!, id: existing!.id };
      const heard = await Promise.all(
        callers.map(
          (items, c) =>
            new Promise<{ error: Error | null; visible: number; calls: number }>((resolve) => {
              let calls = 0;
              store.submit({
                items,
                committed(error) {
                  calls++;
                  // What the waiter may rely on when it hears success: a read sees the records.
                  void number(store, device, q('count', { groups: [`caller-${c}`] })).then((visible) => setTimeout(() => resolve({ error, visible, calls }), 20));
                },
              });
            }),
        ),
      );
      assert.deepEqual(heard.map((h) => h.calls), callers.map(() => 1), 'each waiter hears exactly once');
      assert.deepEqual(heard.flatMap((h, c) => (h.error === null ? [] : [c])), [7]);
      assert.deepEqual(heard.map((h) => h.visible), callers.map((_, c) => (c === 7 ? 0 : 2)));
    });
  });
}
