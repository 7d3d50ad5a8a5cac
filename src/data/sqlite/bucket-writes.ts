import type BetterSqlite3 from 'better-sqlite3';
import type { Database } from '../../storage/sqlite-database.ts';
import { DeviceKeys } from './device-keys.ts';
import type { Params } from './query-sql.ts';
import { INSERT_SQL, ROW_WIDTH } from './schema.ts';

/**
 * What the bucket writer is asked to do: insert flat rows (schema.ts `appendRows`), or run one
 * UPDATE/DELETE built by query-sql.ts (trusted SQL text, values as parameters).
 */
export type WriteRequest =
  | { kind: 'insert'; rows: unknown[] }
  | { kind: 'run'; sql: string; params: Params };

/**
 * Every change to a SQLite bucket goes through one BucketWrites, on one connection: the writer
 * thread's (bucket-writer-worker.ts), or the store's own for an in-memory database. Returns the
 * rows inserted or changed.
 */
export class BucketWrites {
  readonly #db: Database;
  readonly #keys: DeviceKeys;
  readonly #insert: (rows: unknown[], keys: number[]) => void;
  readonly #statements = new Map<string, BetterSqlite3.Statement<unknown[], unknown>>();

  constructor(db: Database) {
    this.#db = db;
    this.#keys = new DeviceKeys(db);
    const insert = db.prepare(INSERT_SQL);
    // One transaction per batch: a failing row (a duplicate id) rolls the whole batch back, and the
    // group-commit writer then retries each caller alone.
    this.#insert = db.transaction((rows: unknown[], keys: number[]) => {
      for (let i = 0, r = 0; i < rows.length; i += ROW_WIDTH, r++) {
        insert.run(rows[i], keys[r], rows[i + 2], rows[i + 3], rows[i + 4], rows[i + 5], rows[i + 6], rows[i + 7], rows[i + 8], rows[i + 9], rows[i + 10], rows[i + 11], rows[i + 12]);
      }
    });
  }

  apply(request: WriteRequest): number {
    if (request.kind === 'run') return this.#statement(request.sql).run(request.params).changes;
    const rows = request.rows;
    // Keys are made before (outside) the batch's transaction, so a rolled-back batch can never leave
    // a cached key that the database does not hold.
    const keys = new Array<number>(rows.length / ROW_WIDTH);
    for (let i = 0, r = 0; i < rows.length; i += ROW_WIDTH, r++) keys[r] = this.#keys.obtain(rows[i + 1] as string);
    this.#insert(rows, keys);
    return keys.length;
  }

  /** Prepared once per distinct SQL text; texts come from a bounded set of filter shapes. */
  #statement(sql: string): BetterSqlite3.Statement<unknown[], unknown> {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}
