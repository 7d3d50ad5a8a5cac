import type BetterSqlite3 from 'better-sqlite3';
import type { Database } from '../../storage/sqlite-database.ts';
import { DeviceKeys } from './device-keys.ts';
import type { Params } from './query-sql.ts';
import { INSERT_SQL, NUMBER_WIDTH, TEXT_WIDTH, type RowBatch } from './schema.ts';

/**
 * What the bucket writer is asked to do: insert a row batch (schema.ts `rowBatch`), or run one
 * UPDATE/DELETE built by query-sql.ts (trusted SQL text, values as parameters).
 */
export type WriteRequest =
  | { kind: 'insert'; rows: RowBatch }
  | { kind: 'run'; sql: string; params: Params };

/**
 * Every change to a SQLite bucket goes through one BucketWrites, on one connection: the writer
 * thread's (bucket-writer-worker.ts), or the store's own for an in-memory database. Returns the
 * rows inserted or changed.
 */
export class BucketWrites {
  readonly #db: Database;
  readonly #keys: DeviceKeys;
  readonly #insert: (rows: RowBatch, keys: number[]) => void;
  readonly #statements = new Map<string, BetterSqlite3.Statement<unknown[], unknown>>();

  constructor(db: Database) {
    this.#db = db;
    this.#keys = new DeviceKeys(db);
    const insert = db.prepare(INSERT_SQL);
    // One transaction per batch: a failing row (a duplicate id) rolls the whole batch back, and the
    // group-commit writer then retries each caller alone.
    this.#insert = db.transaction((rows: RowBatch, keys: number[]) => {
      const { strings, refs, numbers } = rows;
      for (let r = 0, t = 0, n = 0; r < rows.count; r++, t += TEXT_WIDTH, n += NUMBER_WIDTH) {
        insert.run(strings[refs[t]!], keys[r], strings[refs[t + 2]!], strings[refs[t + 3]!], nullable(numbers[n]!), text(strings, refs[t + 4]!), text(strings, refs[t + 5]!), numbers[n + 1], strings[refs[t + 6]!], nullable(numbers[n + 2]!), nullable(numbers[n + 3]!), text(strings, refs[t + 7]!), numbers[n + 4]);
      }
    });
  }

  apply(request: WriteRequest): number {
    if (request.kind === 'run') return this.#statement(request.sql).run(request.params).changes;
    const rows = request.rows;
    // Keys are made before (outside) the batch's transaction, so a rolled-back batch can never leave
    // a cached key that the database does not hold.
    const keys = new Array<number>(rows.count);
    for (let r = 0, t = 1; r < rows.count; r++, t += TEXT_WIDTH) keys[r] = this.#keys.obtain(rows.strings[rows.refs[t]!]!);
    this.#insert(rows, keys);
    return rows.count;
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

/** A RowBatch string reference; -1 is null. */
function text(strings: string[], ref: number): string | null {
  return ref === -1 ? null : strings[ref]!;
}

/** RowBatch numbers use NaN for null. */
function nullable(n: number): number | null {
  return n === n ? n : null;
}
