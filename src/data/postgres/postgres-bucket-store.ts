import pg from 'pg';
import type { Pool, PoolConfig } from 'pg';
import type { AggregatePoint, BucketStore, QueryResult } from '../bucket-store.ts';
import { GroupCommitWriter, type CommitObserver, type CommitWaiter } from '../group-commit.ts';
import { MAX_QTY, type DataFilter, type DataQuery } from '../query.ts';
import type { DataRecord } from '../record.ts';
import { migratePostgres } from './postgres-migrate.ts';
import { NEWEST, OLDEST, aggregateSql, perVariableSql, recordsSql, streamPageSql } from './postgres-query-sql.ts';
import { INSERT_SQL, SqlParams, encodeValue, insertParams, rowToRecord, toInsertColumns, whereClause, type RecordRow } from './postgres-records.ts';
import { POSTGRES_BUCKET_MIGRATIONS } from './postgres-schema.ts';

export interface PostgresBucketStoreOptions {
  /** e.g. `postgres://user:password@127.0.0.1:5432/bucketmq`. */
  connectionString: string;
  /** Told of each committed batch (metrics). */
  onCommit?: CommitObserver;
  /**
   * Schema holding the tables (created if missing; every connection's search_path is set to it).
   * Default: the server's search_path (normally `public`). Tests use one schema per run.
   */
  schema?: string;
  /** Pool connections; default 4 (one committing batch, the rest for reads). */
  poolSize?: number;
  /** Records per committed batch at most; default 20,000. */
  maxBatch?: number;
  /**
   * Batches committing at once, each on its own pool connection. Default 2: while one batch waits for
   * its WAL flush, the next is being sent and inserted.
   */
  writers?: number;
}

/** Records per page of `stream` (keyset-paged, so memory stays flat for any export size). */
const STREAM_PAGE = 1_000;

const INT8_OID = 20;

/**
 * Bigint columns (time, created_at, seq, count(*)) come back as JS numbers: every value we store is an
 * epoch ms or a row count, far below 2^53. The default parser returns strings.
 */
const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? (text: string) => Number(text) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/**
 * The PostgreSQL bucket store (SPEC §3): for deployments that outgrow one machine. Same semantics as the
 * SQLite store, checked by the same contract suite (test/data/bucket-store.contract.ts).
 *
 * Writes: a GroupCommitWriter gathers concurrent inserts; each batch is one INSERT ... SELECT FROM unnest
 * of 13 column arrays, a single statement and so a single transaction, committed with the server's
 * synchronous_commit (on by default: flushed to the WAL when it returns; stronger than the SQLite store's
 * synchronous=NORMAL, since turning it off would lose acknowledged records if the PostgreSQL server
 * crashed, not only on a power cut).
 */
export class PostgresBucketStore implements BucketStore {
  readonly #pool: Pool;
  readonly #writer: GroupCommitWriter<DataRecord>;
  #closed = false;

  private constructor(pool: Pool, maxBatch: number, writers: number, onCommit: CommitObserver | undefined) {
    this.#pool = pool;
    this.#writer = new GroupCommitWriter<DataRecord>((records) => this.#commit(records), { maxBatch, inFlight: writers, onCommit });
  }

  /** Connects, creates the schema if needed and brings the tables up to date. */
  static async open(options: PostgresBucketStoreOptions): Promise<PostgresBucketStore> {
    const config: PoolConfig = { connectionString: options.connectionString, max: options.poolSize ?? 4, types: TYPES };
    if (options.schema !== undefined) {
      if (!/^[a-z_][a-z0-9_]*$/.test(options.schema)) throw new Error(`invalid PostgreSQL schema name '${options.schema}'`);
      config.options = `-c search_path=${options.schema}`;
    }
    const pool = new pg.Pool(config);
    // An idle connection dropped by the server must not crash the process; the next query reconnects.
    pool.on('error', () => {});
    try {
      if (options.schema !== undefined) await pool.query(`CREATE SCHEMA IF NOT EXISTS ${options.schema}`);
      await migratePostgres(pool, 'buckets', POSTGRES_BUCKET_MIGRATIONS);
    } catch (error) {
      await pool.end();
      throw error;
    }
    return new PostgresBucketStore(pool, options.maxBatch ?? 20_000, options.writers ?? 2, options.onCommit);
  }

  insert(records: DataRecord[]): Promise<void> {
    return this.#writer.write(records);
  }

  submit(waiter: CommitWaiter<DataRecord>): void {
    this.#writer.submit(waiter);
  }

  async #commit(records: DataRecord[]): Promise<void> {
    await this.#pool.query(INSERT_SQL, insertParams(toInsertColumns(records)));
  }

  async query(deviceId: string, query: DataQuery): Promise<QueryResult> {
    this.#assertOpen();
    const params = new SqlParams();
    switch (query.mode) {
      case 'default': {
        const limit = Math.max(0, Math.min(MAX_QTY, Math.floor(query.qty)));
        const offset = Math.max(0, Math.floor(query.skip));
        const where = whereClause(deviceId, query, params);
        return this.#records(recordsSql(where, query.ordination === 'ascending' ? OLDEST : NEWEST, params, limit, offset), params);
      }
      case 'last_value': return this.#records(perVariableSql(deviceId, query, NEWEST, null, params), params);
      case 'first_value': return this.#records(perVariableSql(deviceId, query, OLDEST, null, params), params);
      case 'max': return this.#records(perVariableSql(deviceId, query, `value_num DESC, ${NEWEST}`, `value_type = 'number'`, params), params);
      case 'min': return this.#records(perVariableSql(deviceId, query, `value_num ASC, ${NEWEST}`, `value_type = 'number'`, params), params);
      case 'last_item': return this.#records(recordsSql(whereClause(deviceId, query, params), NEWEST, params, 1), params);
      case 'first_item': return this.#records(recordsSql(whereClause(deviceId, query, params), OLDEST, params, 1), params);
      case 'last_location': return this.#records(recordsSql(`${whereClause(deviceId, query, params)} AND lat IS NOT NULL`, NEWEST, params, 1), params);
      case 'first_location': return this.#records(recordsSql(`${whereClause(deviceId, query, params)} AND lat IS NOT NULL`, OLDEST, params, 1), params);
      case 'last_insert': return this.#records(recordsSql(whereClause(deviceId, query, params), 'seq DESC', params, 1), params);
      case 'first_insert': return this.#records(recordsSql(whereClause(deviceId, query, params), 'seq ASC', params, 1), params);
      case 'count':
        return { kind: 'number', value: await this.#count(whereClause(deviceId, query, params), params) };
      case 'avg':
      case 'sum': {
        // With no numeric values both are 0: the API answers a bare number (SPEC §8).
        const fn = query.mode === 'avg' ? 'avg' : 'sum';
        const sql = `SELECT coalesce(${fn}(value_num), 0)::float8 AS value FROM bucket_records WHERE ${whereClause(deviceId, query, params)} AND value_type = 'number'`;
        const result = await this.#pool.query<{ value: number }>(sql, params.values);
        return { kind: 'number', value: result.rows[0]?.value ?? 0 };
      }
      case 'aggregate': {
        const aggregate = query.aggregate;
        if (aggregate === undefined) throw new Error("query mode 'aggregate' needs aggregate.function and aggregate.intervalMs");
        const interval = Math.floor(aggregate.intervalMs);
        if (!(interval > 0)) throw new Error('aggregate.intervalMs must be a positive number of milliseconds');
        const sql = aggregateSql(whereClause(deviceId, query, params), aggregate.function, interval, params);
        const result = await this.#pool.query<AggregatePoint>(sql, params.values);
        return { kind: 'aggregate', points: result.rows };
      }
      default: {
        const never: never = query.mode;
        throw new Error(`unknown query mode ${String(never)}`);
      }
    }
  }

  async #records(sql: string, params: SqlParams): Promise<QueryResult> {
    const result = await this.#pool.query<RecordRow>(sql, params.values);
    return { kind: 'records', records: result.rows.map(rowToRecord) };
  }

  async #count(where: string, params: SqlParams): Promise<number> {
    const result = await this.#pool.query<{ count: number }>(`SELECT count(*) AS count FROM bucket_records WHERE ${where}`, params.values);
    return result.rows[0]?.count ?? 0;
  }

  async update(deviceId: string, filter: DataFilter, patch: Partial<Pick<DataRecord, 'value' | 'unit' | 'time' | 'group' | 'location' | 'metadata'>>): Promise<number> {
    this.#assertOpen();
    const params = new SqlParams();
    const sets: string[] = [];
    if (patch.value !== undefined) {
      const v = encodeValue(patch.value);
      sets.push(`value_type = ${params.add(v.type)}`, `value_num = ${params.add(v.num)}::float8`, `value_text = ${params.add(v.text)}::text`);
    }
    if (patch.unit !== undefined) sets.push(`unit = ${params.add(patch.unit)}::text`);
    if (patch.time !== undefined) sets.push(`time = ${params.add(Math.round(patch.time))}::int8`);
    if (patch.group !== undefined) sets.push(`grp = ${params.add(patch.group)}`);
    if (patch.location !== undefined) {
      sets.push(`lng = ${params.add(patch.location?.coordinates[0] ?? null)}::float8`, `lat = ${params.add(patch.location?.coordinates[1] ?? null)}::float8`);
    }
    if (patch.metadata !== undefined) sets.push(`metadata = ${params.add(patch.metadata === null ? null : JSON.stringify(patch.metadata))}::json`);
    if (sets.length === 0) return 0;
    const where = whereClause(deviceId, filter, params);
    const result = await this.#pool.query(`UPDATE bucket_records SET ${sets.join(', ')} WHERE ${where}`, params.values);
    return result.rowCount ?? 0;
  }

  async delete(deviceId: string, filter: DataFilter): Promise<number> {
    this.#assertOpen();
    const params = new SqlParams();
    const result = await this.#pool.query(`DELETE FROM bucket_records WHERE ${whereClause(deviceId, filter, params)}`, params.values);
    return result.rowCount ?? 0;
  }

  async deleteOlderThan(deviceId: string, before: number): Promise<number> {
    this.#assertOpen();
    const result = await this.#pool.query('DELETE FROM bucket_records WHERE device = $1 AND time < $2::int8', [deviceId, before]);
    return result.rowCount ?? 0;
  }

  async enforceCap(deviceId: string, cap: number): Promise<number> {
    if (!(cap >= 0)) throw new Error('record cap must be a non-negative number');
    this.#assertOpen();
    const result = await this.#pool.query(
      `DELETE FROM bucket_records WHERE seq IN (
         SELECT seq FROM bucket_records WHERE device = $1 ORDER BY time DESC, seq DESC OFFSET $2)`,
      [deviceId, Math.floor(cap)],
    );
    return result.rowCount ?? 0;
  }

  async *stream(deviceId: string, filter: DataFilter): AsyncIterable<DataRecord> {
    this.#assertOpen();
    let after: { time: number; seq: number } | null = null;
    for (;;) {
      // Each page is its own short query: nothing is held open between pages, so writers and
      // deletions proceed while a slow consumer exports.
      const params = new SqlParams();
      const sql = streamPageSql(whereClause(deviceId, filter, params), after, params, STREAM_PAGE);
      const result = await this.#pool.query<RecordRow>(sql, params.values);
      for (const row of result.rows) yield rowToRecord(row);
      if (result.rows.length < STREAM_PAGE) return;
      const last = result.rows[result.rows.length - 1]!;
      after = { time: last.time, seq: last.seq };
      this.#assertOpen();
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#writer.close();
    this.#closed = true;
    await this.#pool.end();
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('bucket store is closed');
  }
}

