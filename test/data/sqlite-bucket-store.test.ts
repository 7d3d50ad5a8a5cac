import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Ingestor } from '../../src/data/ingest.ts';
import type { DataQuery } from '../../src/data/query.ts';
import { SqliteBucketStore } from '../../src/data/sqlite/sqlite-bucket-store.ts';
import { RecordError, validateRecords } from '../../src/data/validate-record.ts';
import type { Database } from '../../src/storage/sqlite-database.ts';
import { tempDatabases } from '../storage/temp-database.ts';
import { runBucketStoreContract } from './bucket-store.contract.ts';

const databases = tempDatabases('bucketmq-buckets-');
const tempDatabaseFile = (): Promise<string> => databases.file();
const open = (file: string): Database => databases.open(file);

const count: DataQuery = { mode: 'count', qty: 15, skip: 0, ordination: 'descending' };
const all: DataQuery = { mode: 'default', qty: 10_000, skip: 0, ordination: 'ascending' };

runBucketStoreContract('sqlite', async () => {
  const db = open(await tempDatabaseFile());
  const store = new SqliteBucketStore(db);
  return {
    store,
    cleanup: async () => {
      await store.close();
      db.close();
    },
  };
});

describe('SqliteBucketStore', () => {
  test('records are durable: a store over the reopened file returns them unchanged', async () => {
    const file = await tempDatabaseFile();
    let db = open(file);
    let store = new SqliteBucketStore(db);
    const records = validateRecords(
      [
        { variable: 'temperature', value: 21.5, unit: 'C', location: { lat: 1.5, lng: -2.25 }, metadata: { mqtt_topic: 'sensors/t' } },
        { variable: 'door', value: true, time: 1_700_000_000 },
        { variable: 'note', value: 'ok', time: '2024-05-01T10:00:00.123Z' },
        { variable: 'gone', value: null },
      ],
      { deviceId: 'dev-1', now: 1_700_000_500_000 },
    );
    await store.insert(records);
    await store.close();
    db.close();

    db = open(file);
    store = new SqliteBucketStore(db);
    // Oldest first; `temperature` and `gone` share the arrival time and keep their insertion order.
    assert.deepEqual(await store.query('dev-1', all), { kind: 'records', records: [...records].sort((a, b) => a.time - b.time) });
    await store.close();
  });

  test('a resolved insert is already committed: another connection sees it', async () => {
    const file = await tempDatabaseFile();
    const store = new SqliteBucketStore(open(file));
    const observer = open(file);
    const rows = observer.prepare<[string], number>('SELECT count(*) FROM records r JOIN bucket_devices d ON d.key = r.device WHERE d.device = ?').pluck();
    const pending = store.insert(validateRecords([{ variable: 'x', value: 1 }, { variable: 'y', value: 2 }], { deviceId: 'dev-2', now: Date.now() }));
    assert.equal(rows.get('dev-2'), 0, 'nothing is written synchronously');
    await pending;
    assert.equal(rows.get('dev-2'), 2);
    await store.close();
  });

  test('concurrent callers share transactions', async () => {
    const store = new SqliteBucketStore(open(await tempDatabaseFile()));
    const before = store.batches;
    await Promise.all(
      Array.from({ length: 200 }, (_, i) => store.insert(validateRecords({ variable: 'x', value: i }, { deviceId: 'dev-3', now: Date.now() }))),
    );
    assert.ok(store.batches - before <= 2, `200 callers took ${store.batches - before} transactions`);
    assert.deepEqual(await store.query('dev-3', count), { kind: 'number', value: 200 });
    await store.close();
  });

  test('a bad record at index 2 stores nothing of its message (through the Ingestor)', async () => {
    const store = new SqliteBucketStore(open(await tempDatabaseFile()));
    const ingestor = new Ingestor(store);
    const message = [{ variable: 'a', value: 1 }, { variable: 'b', value: 2 }, { variable: 'bad-name', value: 3 }];
    await assert.rejects(ingestor.ingest('dev-4', message), (error: unknown) => error instanceof RecordError && error.index === 2 && error.field === 'variable');
    assert.deepEqual(await store.query('dev-4', count), { kind: 'number', value: 0 });
    assert.equal(await ingestor.ingest('dev-4', message.slice(0, 2)), 2);
    assert.deepEqual(await store.query('dev-4', count), { kind: 'number', value: 2 });
    await store.close();
  });

  test('stream pages keep order across page boundaries, ties included', async () => {
    const store = new SqliteBucketStore(open(await tempDatabaseFile()), { pageSize: 7 });
    // 60 records in 4 distinct times, inserted out of time order.
    const records = validateRecords(Array.from({ length: 60 }, (_, i) => ({ variable: 'x', value: i, time: 1_000 * (3 - (i % 4)) + 1e12 })), { deviceId: 'dev-5', now: Date.now() });
    await store.insert(records);
    const expected = [...records].sort((a, b) => a.time - b.time || (a.value as number) - (b.value as number)).map((r) => r.value);
    const out: unknown[] = [];
    for await (const r of store.stream('dev-5', {})) out.push(r.value);
    assert.deepEqual(out, expected);
    await store.close();
  });

  test('retention and the cap delete in chunks and still count everything', async () => {
    const store = new SqliteBucketStore(open(await tempDatabaseFile()), { deleteChunk: 7 });
    const now = Date.now();
    await store.insert(validateRecords(Array.from({ length: 100 }, (_, i) => ({ variable: 'x', value: i, time: now - i * 1_000 })), { deviceId: 'dev-6', now }));
    assert.equal(await store.deleteOlderThan('dev-6', now - 49_500), 50);
    assert.equal(await store.enforceCap('dev-6', 9), 41);
    const left = await store.query('dev-6', { ...all, ordination: 'descending' });
    assert.deepEqual(left.kind === 'records' && left.records.map((r) => r.value), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    await store.close();
  });

  test('the records table sits in the shared database under component "buckets"', async () => {
    const db = open(':memory:');
    const store = new SqliteBucketStore(db);
    const components = db.prepare<[], string>('SELECT component FROM schema_migrations').pluck().all();
    assert.deepEqual(components, ['buckets']);
    await store.close();
    assert.ok(db.open, 'closing the store leaves the database open');
    await assert.rejects(store.insert(validateRecords({ variable: 'x', value: 1 }, { deviceId: 'd', now: 0 })), /closed/);
    await assert.rejects(store.query('d', count), /closed/);
  });
});
