/**
 * PostgresBucketStore (src/data/postgres/): the BucketStore contract suite (every query mode, filters,
 * update, delete, retention, cap, stream, group commit and failure isolation), then what is specific to
 * PostgreSQL: schema migrations, durable acknowledgement seen from a fresh connection, metadata fidelity.
 *
 * Needs BUCKETMQ_TEST_PG_URL (see test/data/postgres-helpers.ts): skipped without it locally, failing
 * without it in CI.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DataQuery } from '../../src/data/query.ts';
import type { DataRecord } from '../../src/data/record.ts';
import { generateRecordId } from '../../src/data/validate-record.ts';
import { PostgresBucketStore } from '../../src/data/postgres/postgres-bucket-store.ts';
import { runBucketStoreContract } from './bucket-store.contract.ts';
import { dropSchema, freshClient, openTestStore, pgSkip, randomSchema, requirePgUrl } from './postgres-helpers.ts';

const skip = pgSkip();

if (skip === false) {
  runBucketStoreContract('postgres', () => openTestStore());
} else {
  describe('BucketStore contract: postgres', { skip }, () => {});
}
const T0 = Date.UTC(2024, 0, 1);

function record(fields: Partial<DataRecord> & Pick<DataRecord, 'variable'>): DataRecord {
  return { id: generateRecordId(), device: 'dev1', value: null, unit: null, time: T0, group: 'g', location: null, metadata: null, created_at: T0, ...fields };
}

function q(fields: Partial<DataQuery>): DataQuery {
  return { mode: 'default', qty: 15, skip: 0, ordination: 'descending', ...fields };
}

async function records(store: PostgresBucketStore, deviceId: string, query: DataQuery): Promise<DataRecord[]> {
  const result = await store.query(deviceId, query);
  assert.equal(result.kind, 'records');
  return result.kind === 'records' ? result.records : [];
}


describe('PostgresBucketStore: schema and durability', { skip }, () => {
  test('start-up creates the schema once and records its version; reopening is a no-op', async () => {
    const schema = randomSchema();
    try {
      const first = await PostgresBucketStore.open({ connectionString: requirePgUrl(), schema, poolSize: 1 });
      await first.close();
      const second = await PostgresBucketStore.open({ connectionString: requirePgUrl(), schema, poolSize: 1 });
      await second.close();
      const client = await freshClient(schema);
      try {
        const versions = await client.query('SELECT component, version FROM bucketmq_schema_migrations ORDER BY version');
        assert.deepEqual(versions.rows, [{ component: 'buckets', version: 1 }]);
        const indexes = await client.query("SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'bucket_records' ORDER BY indexname", [schema]);
        assert.ok(indexes.rows.some((r: { indexname: string }) => r.indexname === 'bucket_records_device_variable_time'));
        assert.ok(indexes.rows.some((r: { indexname: string }) => r.indexname === 'bucket_records_device_time'));
        // A newer schema than this build knows is refused rather than used.
        await client.query("INSERT INTO bucketmq_schema_migrations (component, version) VALUES ('buckets', 99)");
      } finally {
        await client.end();
      }
      await assert.rejects(PostgresBucketStore.open({ connectionString: requirePgUrl(), schema, poolSize: 1 }), /version 99/);
    } finally {
      await dropSchema(schema);
    }
  });

  test('a record acknowledged by insert() is visible from a fresh connection', async () => {
    const { store, schema, cleanup } = await openTestStore();
    try {
      const r = record({ variable: 'temperature', value: 21.5, unit: 'C', metadata: { mqtt_topic: 'sensors/t' } });
      await store.insert([r]);
      const client = await freshClient(schema);
      try {
        const rows = await client.query('SELECT id, variable, value_num, metadata FROM bucket_records');
        assert.deepEqual(rows.rows, [{ id: r.id, variable: 'temperature', value_num: 21.5, metadata: { mqtt_topic: 'sensors/t' } }]);
      } finally {
        await client.end();
      }
    } finally {
      await cleanup();
    }
  });

  test('metadata keeps its key order (json, not jsonb) and PostgreSQL-hostile text round-trips', async () => {
    const { store, cleanup } = await openTestStore();
    try {
      const r = record({ variable: 'm', value: "it's {\"x\"} \\ ,;", metadata: { zeta: 1, alpha: { b: 2, a: 1 }, 'quote"key': "it's" } });
      await store.insert([r]);
      const [back] = await records(store, 'dev1', q({}));
      assert.deepEqual(back, r);
      assert.equal(JSON.stringify(back!.metadata), JSON.stringify(r.metadata));
    } finally {
      await cleanup();
    }
  });

  test('writes after close are refused; reads throw', async () => {
    const { store, cleanup } = await openTestStore();
    await cleanup();
    await assert.rejects(store.insert([record({ variable: 'x' })]), /closed/);
    await assert.rejects(store.query('dev1', q({})), /closed/);
  });
});
