import type BetterSqlite3 from 'better-sqlite3';
import type { BucketStore, QueryResult } from '../bucket-store.ts';
import { GroupCommitWriter, type CommitObserver, type CommitWaiter } from '../group-commit.ts';
import { DEFAULT_QTY, MAX_QTY, type DataFilter, type DataQuery } from '../query.ts';
import type { DataRecord } from '../record.ts';
import { migrate, type Database } from '../../storage/sqlite-database.ts';
import {
  NEWEST,
  OLDEST,
  aggregateSql,
  compileFilter,
  countSql,
  deleteBeyondCapChunkSql,
  deleteOlderChunkSql,
  deleteSql,
  numericSql,
  perVariableSql,
  recordsSql,
  streamPageSql,
  type Params,
} from './query-sql.ts';
import { createBucketWriter, type BucketWriter } from './bucket-writer.ts';
import { DeviceKeys } from './device-keys.ts';
import { BUCKET_MIGRATIONS, recordFromRow, rowBatch, valueColumns, type RecordRow } from './schema.ts';

export interface SqliteBucketStoreOptions {
  /**
   * Most records in one group-commit transaction; default 2,000. Three batches are out at once, so
   * the writer thread always has the next one waiting while the event loop gathers another; with
   * 20,000-record batches the two took turns instead (bench:ingest, back to back: 1 record/msg 44k →
   * 62–72k records/s, 10 records/msg 66–70k → 80–90k, on the VM in its slow phase). Three rather than
   * two: parser rows 3–5% more messages/s in 7 of 9 alternations.
   */
  maxBatch?: number;
  /** Records read per query by `stream`; default 1,000. */
  pageSize?: number;
  /** Rows removed per statement by `deleteOlderThan` and `enforceCap`, yielding between; default 10,000. */
  deleteChunk?: number;
  /** Close the database when the store closes (it was opened for the store alone); default false. */
  closeDatabase?: boolean;
  /** Told of each committed batch (metrics). */
  onCommit?: CommitObserver;
}

type Statement = BetterSqlite3.Statement<unknown[], unknown>;
type Patch = Parameters<BucketStore['update']>[2];

/**
 * Buckets in SQLite (SPEC §3), component 'buckets', table `records` (see schema.ts). The database
 * belongs to the caller unless `closeDatabase`; `close` finishes pending writes and stops this store.
 *
 * Writes: every change goes to one BucketWriter (bucket-writer.ts: a writer thread with its own
 * connection for a file database), in order. `insert` hands records to a GroupCommitWriter whose
 * commit is one transaction running one prepared INSERT per record; every caller that arrives while a
 * transaction runs joins the next one. The writer should be the file's only writer: another
 * connection writing the same file would wait for (or make it wait for) SQLite's single write lock.
 *
 * Reads: statements are prepared once per distinct SQL text (query-sql.ts builds text from a filter's
 * shape, never its values) and kept for the store's life.
 */
export class SqliteBucketStore implements BucketStore {
  readonly #db: Database;
  readonly #writer: BucketWriter;
  readonly #commits: GroupCommitWriter<DataRecord>;
  readonly #statements = new Map<string, Statement>();
  readonly #pageSize: number;
  readonly #deleteChunk: number;
  readonly #keys: DeviceKeys;
  readonly #closeDatabase: boolean;
  #closed = false;

  constructor(db: Database, options: SqliteBucketStoreOptions = {}) {
    this.#db = db;
    this.#pageSize = options.pageSize ?? 1_000;
    this.#deleteChunk = options.deleteChunk ?? 10_000;
    this.#closeDatabase = options.closeDatabase ?? false;
    migrate(db, 'buckets', BUCKET_MIGRATIONS);
    this.#keys = new DeviceKeys(db);
    this.#writer = createBucketWriter(db);
    this.#commits = new GroupCommitWriter<DataRecord>(async (records) => {
      await this.#writer.apply({ kind: 'insert', rows: rowBatch(records) });
    }, { maxBatch: options.maxBatch ?? 2_000, inFlight: 3, onCommit: options.onCommit });
  }

  /** Group-commit transactions so far (for metrics and tests). */
  get batches(): number {
    return this.#commits.batches;
  }

  insert(records: DataRecord[]): Promise<void> {
    return this.#commits.write(records);
  }

  submit(waiter: CommitWaiter<DataRecord>): void {
    this.#commits.submit(waiter);
  }

  async query(deviceId: string, query: DataQuery): Promise<QueryResult> {
    this.#assertOpen();
    const filter = compileFilter(this.#keys.find(deviceId), query, query.mode === 'last_value' || query.mode === 'first_value' || query.mode === 'min' || query.mode === 'max');
    const { where, params } = filter;
    switch (query.mode) {
      case 'default': {
        const order = query.ordination === 'ascending' ? OLDEST : NEWEST;
        const limit = Number.isFinite(query.qty) ? Math.max(0, Math.min(MAX_QTY, Math.floor(query.qty))) : DEFAULT_QTY;
        const offset = Number.isFinite(query.skip) ? Math.max(0, Math.floor(query.skip)) : 0;
        return this.#records(deviceId, recordsSql(where, order, true), { ...params, limit, offset });
      }
      case 'last_value': return this.#records(deviceId, perVariableSql(filter, NEWEST, null), params);
      case 'first_value': return this.#records(deviceId, perVariableSql(filter, OLDEST, null), params);
      case 'max': return this.#records(deviceId, perVariableSql(filter, `value_num DESC, ${NEWEST}`, `value_type = 'number'`), params);
      case 'min': return this.#records(deviceId, perVariableSql(filter, `value_num ASC, ${NEWEST}`, `value_type = 'number'`), params);
      case 'last_item': return this.#records(deviceId, `${recordsSql(where, NEWEST, false)} LIMIT 1`, params);
      case 'first_item': return this.#records(deviceId, `${recordsSql(where, OLDEST, false)} LIMIT 1`, params);
      case 'last_location': return this.#records(deviceId, `${recordsSql(`${where} AND lat IS NOT NULL`, NEWEST, false)} LIMIT 1`, params);
      case 'first_location': return this.#records(deviceId, `${recordsSql(`${where} AND lat IS NOT NULL`, OLDEST, false)} LIMIT 1`, params);
      case 'last_insert': return this.#records(deviceId, `${recordsSql(where, 'seq DESC', false)} LIMIT 1`, params);
      case 'first_insert': return this.#records(deviceId, `${recordsSql(where, 'seq ASC', false)} LIMIT 1`, params);
      case 'count': return { kind: 'number', value: this.#statement(countSql(where)).pluck().get(params) as number };
      case 'avg':
      case 'sum': {
        const row = this.#statement(numericSql(where)).get(params) as { avg: number | null; sum: number };
        // With no numeric values both are 0: the API answers a bare number (SPEC §8).
        return { kind: 'number', value: query.mode === 'avg' ? (row.avg ?? 0) : row.sum };
      }
      case 'aggregate': {
        const aggregate = query.aggregate;
        if (aggregate === undefined) throw new Error("query mode 'aggregate' needs aggregate.function and aggregate.intervalMs");
        const interval = Math.floor(aggregate.intervalMs);
        if (!(interval > 0)) throw new Error('aggregate.intervalMs must be a positive number of milliseconds');
        const rows = this.#statement(aggregateSql(where, aggregate.function)).all({ ...params, interval }) as Array<{ variable: string; bucket: number; value: number }>;
        return { kind: 'aggregate', points: rows.map((r) => ({ variable: r.variable, time: r.bucket, value: r.value })) };
      }
      default: {
        const never: never = query.mode;
        throw new Error(`unknown query mode ${String(never)}`);
      }
    }
  }

  async update(deviceId: string, filter: DataFilter, patch: Patch): Promise<number> {
    this.#assertOpen();
    const { where, params } = compileFilter(this.#keys.find(deviceId), filter);
    const sets: string[] = [];
    const values: Params = {};
    if (patch.value !== undefined) {
      sets.push('value_type = @setValueType', 'value_num = @setValueNum', 'value_text = @setValueText');
      [values.setValueType, values.setValueNum, values.setValueText] = valueColumns(patch.value);
    }
    if (patch.unit !== undefined) {
      sets.push('unit = @setUnit');
      values.setUnit = patch.unit;
    }
    if (patch.time !== undefined) {
      sets.push('time = @setTime');
      values.setTime = Math.round(patch.time);
    }
    if (patch.group !== undefined) {
      sets.push('grp = @setGroup');
      values.setGroup = patch.group;
    }
    if (patch.location !== undefined) {
      sets.push('lat = @setLat', 'lng = @setLng');
      values.setLat = patch.location === null ? null : patch.location.coordinates[1];
      values.setLng = patch.location === null ? null : patch.location.coordinates[0];
    }
    if (patch.metadata !== undefined) {
      sets.push('metadata = @setMetadata');
      values.setMetadata = patch.metadata === null ? null : JSON.stringify(patch.metadata);
    }
    if (sets.length === 0) return 0;
    return this.#writer.apply({ kind: 'run', sql: `UPDATE records SET ${sets.join(', ')} WHERE ${where}`, params: { ...params, ...values } });
  }

  async delete(deviceId: string, filter: DataFilter): Promise<number> {
    this.#assertOpen();
    const { where, params } = compileFilter(this.#keys.find(deviceId), filter);
    return this.#writer.apply({ kind: 'run', sql: deleteSql(where), params });
  }

  deleteOlderThan(deviceId: string, before: number): Promise<number> {
    return this.#deleteInChunks(deleteOlderChunkSql(), { device: this.#keys.find(deviceId), before });
  }

  enforceCap(deviceId: string, cap: number): Promise<number> {
    if (!(cap >= 0)) return Promise.reject(new Error('record cap must be a non-negative number'));
    return this.#deleteInChunks(deleteBeyondCapChunkSql(), { device: this.#keys.find(deviceId), cap: Math.floor(cap) });
  }

  async *stream(deviceId: string, filter: DataFilter): AsyncIterable<DataRecord> {
    this.#assertOpen();
    const { where, params } = compileFilter(this.#keys.find(deviceId), filter);
    const firstPage = this.#statement(streamPageSql(where, true));
    const nextPage = this.#statement(streamPageSql(where, false));
    let rows = firstPage.all({ ...params, page: this.#pageSize }) as Array<RecordRow & { seq: number }>;
    while (rows.length > 0) {
      for (const row of rows) yield recordFromRow(row, deviceId);
      if (rows.length < this.#pageSize) return;
      // Each page is its own short read: nothing is held open between pages, so writers and
      // deletions proceed while a slow consumer exports.
      const last = rows[rows.length - 1]!;
      this.#assertOpen();
      rows = nextPage.all({ ...params, page: this.#pageSize, afterTime: last.time, afterSeq: last.seq }) as typeof rows;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#commits.close();
    await this.#writer.close();
    this.#closed = true;
    this.#statements.clear();
    if (this.#closeDatabase) this.#db.close();
  }

  #records(deviceId: string, sql: string, params: Params): QueryResult {
    const rows = this.#statement(sql).all(params) as RecordRow[];
    return { kind: 'records', records: rows.map((row) => recordFromRow(row, deviceId)) };
  }

  async #deleteInChunks(sql: string, params: Params): Promise<number> {
    this.#assertOpen();
    let total = 0;
    for (;;) {
      const changes = await this.#writer.apply({ kind: 'run', sql, params: { ...params, chunk: this.#deleteChunk } });
      total += changes;
      if (changes < this.#deleteChunk) return total;
      this.#assertOpen();
    }
  }

  /** Prepared once per distinct SQL text; texts come from a bounded set of filter shapes. */
  #statement(sql: string): Statement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('bucket store is closed');
  }
}
