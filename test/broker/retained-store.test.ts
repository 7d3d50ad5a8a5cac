import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '../../src/broker/message.ts';
import { MemoryRetainedStore } from '../../src/broker/retained/memory-retained-store.ts';
import { SqliteRetainedStore } from '../../src/broker/retained/sqlite-retained-store.ts';
import type { Database } from '../../src/storage/sqlite-database.ts';
import { tempDatabases } from '../storage/temp-database.ts';
import { runRetainedStoreContract } from './retained-store.contract.ts';

const databases = tempDatabases('bucketmq-retained-');
const tempDatabaseFile = (): Promise<string> => databases.file();
const open = (file: string): Database => databases.open(file);

runRetainedStoreContract('memory', async () => {
  const store = new MemoryRetainedStore();
  return { store, reopen: async () => (await store.close(), store) };
});

runRetainedStoreContract('sqlite', async () => {
  const file = await tempDatabaseFile();
  let db = open(file);
  let store = new SqliteRetainedStore(db);
  const reopen = async () => {
    await store.close();
    db.close();
    db = open(file);
    store = new SqliteRetainedStore(db);
    return store;
  };
  return { store, reopen };
});

describe('SqliteRetainedStore write-behind', () => {
  const retained = (topic: string, payload: string): Message => ({
    topic,
    payload: Buffer.from(payload),
    qos: 0,
    retain: true,
    properties: null,
    expiresAt: 0,
    origin: '',
  });

  test('one tick of writes is one transaction, with repeated topics coalesced', async () => {
    const file = await tempDatabaseFile();
    const store = new SqliteRetainedStore(open(file));
    const observer = open(file);
    const countRows = observer.prepare<[], number>('SELECT COUNT(*) FROM mqtt_retained').pluck();

    for (let i = 0; i < 300; i++) store.set('ns', retained(`t/${i % 100}`, `v${i}`));
    assert.equal(countRows.get(), 0, 'nothing is written synchronously');

    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(countRows.get(), 100);
    assert.deepEqual(store.stats, { batches: 1, ops: 100, failed: 0 });
    await store.close();
  });

  test('a waiter is told after the commit of its batch, not before, and one batch serves many waiters', async () => {
    const file = await tempDatabaseFile();
    const store = new SqliteRetainedStore(open(file));
    const countRows = open(file).prepare<[], number>('SELECT COUNT(*) FROM mqtt_retained').pluck();
    const seen: Array<[ok: boolean, rows: number]> = [];
    for (let i = 0; i < 50; i++) {
      store.set('ns', retained(`t/${i}`, 'v'));
      store.whenDurable({ durable: (ok) => seen.push([ok, countRows.get()!]) });
    }
    assert.deepEqual(seen, [], 'not told while the batch is pending');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(seen, Array.from({ length: 50 }, () => [true, 50]), 'every waiter told once, each seeing all 50 rows on disk');
    assert.equal(store.stats.batches, 1);
    await store.close();
  });

  test('load lays the pending batch over the rows without committing it early', async () => {
    const file = await tempDatabaseFile();
    const store = new SqliteRetainedStore(open(file));
    const countRows = open(file).prepare<[], number>('SELECT COUNT(*) FROM mqtt_retained').pluck();
    store.set('ns', retained('t/1', 'one'));
    await store.flush();
    const told: boolean[] = [];
    store.set('ns', retained('t/2', 'two'));
    store.whenDurable({ durable: (ok) => told.push(ok) });
    assert.deepEqual(store.load('ns').map((m) => m.topic).sort(), ['t/1', 't/2']);
    assert.equal(countRows.get(), 1, 'still one tick of writes, committed on its own turn');
    assert.deepEqual(told, []);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(countRows.get(), 2);
    assert.deepEqual(told, [true]);
    assert.equal(store.stats.batches, 2);
    await store.close();
  });

  test('a failed write fails the waiters of its batch; a closed store fails new waiters', async () => {
    const db = open(':memory:');
    const store = new SqliteRetainedStore(db, { reportError: () => undefined });
    db.exec('DROP TABLE mqtt_retained');
    const seen: boolean[] = [];
    store.set('ns', retained('t', 'v'));
    store.whenDurable({ durable: (ok) => seen.push(ok) });
    await new Promise((resolve) => setImmediate(resolve));
    await store.close();
    store.whenDurable({ durable: (ok) => seen.push(ok) });
    assert.deepEqual(seen, [false, false]);
  });

  test('the retained table sits beside the session tables in one database', async () => {
    const db = open(':memory:');
    new SqliteRetainedStore(db);
    const { SqliteSessionStore } = await import('../../src/broker/session/sqlite-session-store.ts');
    new SqliteSessionStore(db);
    const components = db.prepare<[], string>('SELECT DISTINCT component FROM schema_migrations ORDER BY component').pluck().all();
    assert.deepEqual(components, ['broker-retained', 'broker-sessions']);
  });
});
