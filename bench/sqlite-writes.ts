/**
 * SQLite bucket writes alone (SPEC §3): the floor under every ingest row of bench/ingest.ts.
 *
 *   npm run bench:sqlite [-- --records 400000 --batch 2000 --devices 8 --rounds 3]
 *
 * Validated records (3 variables, 8 devices, the `{mqtt_topic}` metadata MQTT records carry) go
 * through the writer's own code, `rowBatch` then `BucketWrites.apply`, in 2,000-record
 * transactions on a fresh file database with the production schema and pragmas. Everything runs
 * on this thread, so the figure is what the writer thread costs per row when nothing else runs;
 * under full load both vCPUs slow each other (bench/README.md).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BucketWrites } from '../src/data/sqlite/bucket-writes.ts';
import { BUCKET_MIGRATIONS, rowBatch } from '../src/data/sqlite/schema.ts';
import type { DataRecord } from '../src/data/record.ts';
import { validateRecords } from '../src/data/validate-record.ts';
import { migrate, openDatabase } from '../src/storage/sqlite-database.ts';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '400000' },
    batch: { type: 'string', default: '2000' },
    devices: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
  },
});
const total = Number(args.records);
const batchSize = Number(args.batch);
const devices = Number(args.devices);
const rounds = Number(args.rounds);

/** The records of `total / 3` messages, each decoded into temperature, humidity and battery. */
function messages(start: number): DataRecord[][] {
  const out: DataRecord[][] = [];
  const now = Date.now();
  for (let m = 0; m * 3 < total; m++) {
    const n = start + m;
    out.push(validateRecords([
      { variable: 'temperature', value: 20 + (n % 500) / 100, unit: 'C' },
      { variable: 'humidity', value: 40 + (n % 40) / 2, unit: '%' },
      { variable: 'battery', value: 3600 - (n % 300), unit: 'mV' },
    ], { deviceId: `device-${n % devices}`, now: now + m, metadata: { mqtt_topic: `sensors/device-${n % devices}` } }));
  }
  return out;
}

function batches(records: DataRecord[][]): DataRecord[][] {
  const flat = records.flat();
  const out: DataRecord[][] = [];
  for (let i = 0; i < flat.length; i += batchSize) out.push(flat.slice(i, i + batchSize));
  return out;
}

console.log(`| round | rows | rows/s | CPU µs/row (this thread) |\n|---:|---:|---:|---:|`);
const dir = mkdtempSync(path.join(tmpdir(), 'bucketmq-sqlite-bench-'));
try {
  for (let round = 1; round <= rounds; round++) {
    const file = path.join(dir, `buckets-${round}.db`);
    const db = openDatabase(file);
    migrate(db, 'buckets', BUCKET_MIGRATIONS);
    const writes = new BucketWrites(db);
    const work = batches(messages(round * total));
    const cpu = process.cpuUsage();
    const started = performance.now();
    let rows = 0;
    for (const batch of work) rows += writes.apply({ kind: 'insert', rows: rowBatch(batch) });
    const ms = performance.now() - started;
    const used = process.cpuUsage(cpu);
    db.close();
    rmSync(file, { force: true });
    console.log(`| ${round} | ${rows.toLocaleString('en-US')} | ${Math.round((rows / ms) * 1000).toLocaleString('en-US')} | ${((used.user + used.system) / rows).toFixed(2)} |`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
