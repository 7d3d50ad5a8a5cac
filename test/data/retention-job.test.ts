/** The retention job (SPEC §1): retention days for immutable devices, record caps for mutable ones. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ingestor } from '../../src/data/ingest.ts';
import { RetentionJob } from '../../src/data/retention-job.ts';
import { SqliteBucketStore } from '../../src/data/sqlite/sqlite-bucket-store.ts';
import { openDatabase } from '../../src/storage/sqlite-database.ts';
import { Registry } from '../../src/tenancy/registry.ts';

const DAY = 24 * 60 * 60 * 1000;
const NOW = Date.parse('2025-06-01T00:00:00Z');

function fixture() {
  const db = openDatabase(':memory:');
  const registry = new Registry(db, { now: () => NOW });
  registry.installPlans();
  const store = new SqliteBucketStore(db);
  const ingestor = new Ingestor(store);
  const { account } = registry.createAccount({ name: 'acme' });
  return {
    registry,
    store,
    ingestor,
    accountId: account.id,
    count: async (deviceId: string) => {
      const result = await store.query(deviceId, { mode: 'count', qty: 15, skip: 0, ordination: 'descending' });
      return result.kind === 'number' ? result.value : -1;
    },
    close: async () => {
      await store.close();
      db.close();
    },
  };
}

test('a pass removes records beyond retention days and beyond record caps, and nothing else', async () => {
  const f = fixture();
  try {
    const kept = f.registry.createDevice(f.accountId, { name: 'forever', type: 'immutable' }).device;
    const weekly = f.registry.createDevice(f.accountId, { name: 'weekly', type: 'immutable', retention_days: 7 }).device;
    const capped = f.registry.createDevice(f.accountId, { name: 'capped', type: 'mutable', record_cap: 3 }).device;
    const ages = [30, 10, 8, 6, 1, 0];
    const input = ages.map((days, i) => ({ variable: 'v', value: i, time: NOW - days * DAY }));
    for (const device of [kept, weekly, capped]) await f.ingestor.ingest(device.id, input, { now: NOW });

    const job = new RetentionJob(f.registry, f.store, { now: () => NOW });
    const pass = await job.runOnce();
    assert.deepEqual(pass, { expired: 3, capped: 3, failed: 0 });
    assert.equal(await f.count(kept.id), 6);
    assert.equal(await f.count(weekly.id), 3);
    assert.equal(await f.count(capped.id), 3);
    assert.deepEqual(await job.runOnce(), { expired: 0, capped: 0, failed: 0 }, 'a second pass has nothing to do');
  } finally {
    await f.close();
  }
});

test('runs by itself every intervalMs, and stop() ends it', async () => {
  const f = fixture();
  try {
    const device = f.registry.createDevice(f.accountId, { name: 'daily', type: 'immutable', retention_days: 1 }).device;
    await f.ingestor.ingest(device.id, [{ variable: 'v', value: 1, time: NOW - 2 * DAY }, { variable: 'v', value: 2, time: NOW }], { now: NOW });
    const job = new RetentionJob(f.registry, f.store, { now: () => NOW, intervalMs: 10 });
    job.start();
    const deadline = Date.now() + 5_000;
    while (job.passes < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    await job.stop();
    assert.ok(job.passes >= 2, `passes: ${job.passes}`);
    assert.equal(await f.count(device.id), 1);
    const passes = job.passes;
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(job.passes, passes, 'no pass after stop');
  } finally {
    await f.close();
  }
});
