/**
 * Throughput of PostgresBucketStore.insert under many concurrent one-record writers (not part of
 * `npm test`; the benchmark proper lives in bench/). Each caller awaits each write, so at most CALLERS
 * records are in flight and every record is acknowledged only after its batch committed.
 *
 *   BUCKETMQ_TEST_PG_URL=postgres://bucketmq:bucketmq@127.0.0.1:5432/bucketmq_test \
 *     CALLERS=200 PER_CALLER=1000 RECORDS_PER_WRITE=1 WRITERS=2 node --import tsx test/data/postgres-throughput.ts
 */
import { PostgresBucketStore } from '../../src/data/postgres/postgres-bucket-store.ts';
import type { DataRecord } from '../../src/data/record.ts';
import { generateRecordId } from '../../src/data/validate-record.ts';
import { dropSchema, freshClient, randomSchema, requirePgUrl } from './postgres-helpers.ts';

const callers = Number(process.env.CALLERS ?? 200);
const perCaller = Number(process.env.PER_CALLER ?? 1_000);
const perWrite = Number(process.env.RECORDS_PER_WRITE ?? 1);
const writers = Number(process.env.WRITERS ?? 2);

const schema = randomSchema();
const store = await PostgresBucketStore.open({ connectionString: requirePgUrl(), schema, writers });
function write(caller: number): DataRecord[] {
  const now = Date.now();
  return Array.from({ length: perWrite }, () => ({
    id: generateRecordId(), device: `device-${caller % 20}`, variable: 'temperature', value: 20 + Math.random(), unit: 'C',
    time: now, group: 'g', location: null, metadata: { mqtt_topic: 'sensors/t' }, created_at: now,
  }));
}
try {
  const started = performance.now();
  await Promise.all(Array.from({ length: callers }, async (_, c) => {
    for (let i = 0; i < perCaller; i++) await store.insert(write(c));
  }));
  const seconds = (performance.now() - started) / 1_000;
  const total = callers * perCaller * perWrite;
  await store.close();
  const client = await freshClient(schema);
  const stored = (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM bucket_records')).rows[0]!.n;
  await client.end();
  console.log(`${total} records (${callers} callers × ${perCaller} writes × ${perWrite} records, ${writers} writers) in ${seconds.toFixed(2)} s: ${Math.round(total / seconds)} records/s; ${stored} stored`);
} finally {
  await store.close();
  await dropSchema(schema);
}
