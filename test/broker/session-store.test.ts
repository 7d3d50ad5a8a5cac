import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemorySessionStore } from '../../src/broker/session/memory-session-store.ts';
import { SqliteSessionStore } from '../../src/broker/session/sqlite-session-store.ts';
import type { StoredOutbound } from '../../src/broker/session/session-store.ts';
import type { Database } from '../../src/storage/sqlite-database.ts';
import { tempDatabases } from '../storage/temp-database.ts';
import { runSessionStoreContract } from './session-store.contract.ts';

// The nested data/ directory of each file checks that openDatabase creates it.
const databases = tempDatabases('bucketmq-sessions-');
const tempDatabaseFile = (): Promise<string> => databases.file();
const open = (file: string): Database => databases.open(file);

runSessionStoreContract('memory', async () => {
  const store = new MemorySessionStore();
  return { store, reopen: async () => (await store.close(), store) };
});

runSessionStoreContract('sqlite', async () => {
  const file = await tempDatabaseFile();
  let db = open(file);
  let store = new SqliteSessionStore(db);
  const reopen = async () => {
    await store.close();
    db.close();
    db = open(file);
    store = new SqliteSessionStore(db);
    return store;
  };
  return { store, reopen };
});

describe('SqliteSessionStore write-behind', () => {
  const key = 'ns\u0000client';
  const entry = (seq: number): StoredOutbound => ({
    seq,
    message: { topic: 't', payload: Buffer.from('x'), qos: 1, retain: false, properties: null, expiresAt: 0, origin: '' },
    qos: 1,
    subscriptionIds: [],
    retain: false,
    packetId: seq,
    state: 'publish',
  });

  test('mutations of one tick reach disk together, in one transaction, on the next tick', async () => {
    const file = await tempDatabaseFile();
    const store = new SqliteSessionStore(open(file));
    const observer = open(file);
    const countRows = observer.prepare<[], number>('SELECT COUNT(*) FROM mqtt_outbound').pluck();

    store.saveSession({ key, namespace: 'ns', clientId: 'client', expiryInterval: 60, disconnectedAt: 0, client: null });
    for (let seq = 1; seq <= 1_000; seq++) store.addOutbound(key, entry(seq));
    assert.equal(countRows.get(), 0, 'nothing is written synchronously');

    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(countRows.get(), 1_000);
    assert.deepEqual(store.stats, { batches: 1, ops: 1_001, failed: 0 });
    await store.close();
  });

  test('a failing operation is reported with context and the rest of the batch commits', async () => {
    const reports: string[] = [];
    const db = open(':memory:');
    const store = new SqliteSessionStore(db, { reportError: (context) => reports.push(context) });
    db.exec('DROP TABLE mqtt_inbound_qos2');

    store.saveSession({ key, namespace: 'ns', clientId: 'client', expiryInterval: 60, disconnectedAt: 0, client: null });
    store.addInboundQos2(key, 1);
    store.addOutbound(key, entry(1));
    await new Promise((resolve) => setImmediate(resolve)); // the timer path must not throw either

    assert.deepEqual(reports, ['session store: addInboundQos2 failed for session "ns\\u0000client"']);
    assert.deepEqual(store.stats, { batches: 1, ops: 2, failed: 1 });
    assert.equal(db.prepare<[], number>('SELECT COUNT(*) FROM mqtt_outbound').pluck().get(), 1);
    await store.close();
  });

  test('a waiter is told after the commit of its batch, not before, in the same turn as the batch', async () => {
    const file = await tempDatabaseFile();
    const store = new SqliteSessionStore(open(file));
    const countRows = open(file).prepare<[], number>('SELECT COUNT(*) FROM mqtt_outbound').pluck();
    const seen: Array<[ok: boolean, rows: number]> = [];
    store.saveSession({ key, namespace: 'ns', clientId: 'client', expiryInterval: 60, disconnectedAt: 0, client: null });
    for (let seq = 1; seq <= 100; seq++) {
      store.addOutbound(key, entry(seq));
      store.whenDurable({ durable: (ok) => seen.push([ok, countRows.get()!]) });
    }
    assert.deepEqual(seen, [], 'not told while the batch is pending');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(seen, Array.from({ length: 100 }, () => [true, 100]));
    assert.equal(store.stats.batches, 1, 'one transaction for the batch, not one per waiter');
    await store.close();
  });

  test('a failed write fails the waiters of its batch; a closed store fails new waiters', async () => {
    const db = open(':memory:');
    const store = new SqliteSessionStore(db, { reportError: () => undefined });
    db.exec('DROP TABLE mqtt_outbound');
    const seen: boolean[] = [];
    store.saveSession({ key, namespace: 'ns', clientId: 'client', expiryInterval: 60, disconnectedAt: 0, client: null });
    store.addOutbound(key, entry(1));
    store.whenDurable({ durable: (ok) => seen.push(ok) });
    await new Promise((resolve) => setImmediate(resolve));
    await store.close();
    store.whenDurable({ durable: (ok) => seen.push(ok) });
    assert.deepEqual(seen, [false, false]);
  });

  test('writes after close are reported and dropped', async () => {
    const reports: string[] = [];
    const store = new SqliteSessionStore(open(':memory:'), { reportError: (context) => reports.push(context) });
    await store.close();
    store.removeOutbound(key, 1);
    assert.equal(reports.length, 1);
    assert.match(reports[0] ?? '', /removeOutbound .* after close/);
  });

  test('opening the same file again re-runs no migration', async () => {
    const file = await tempDatabaseFile();
    const first = open(file);
    new SqliteSessionStore(first);
    first.close();
    const second = open(file);
    new SqliteSessionStore(second);
    const versions = second.prepare("SELECT component, version FROM schema_migrations WHERE component = 'broker-sessions'").all();
    assert.deepEqual(versions, [1, 2, 3].map((version) => ({ component: 'broker-sessions', version })));
    assert.equal(second.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(second.pragma('synchronous', { simple: true }), 1); // NORMAL
  });
});
