/**
 * The `bucket_records` table of component 'buckets' on PostgreSQL: the same columns as the SQLite store
 * (src/data/sqlite/schema.ts), with PostgreSQL types.
 *
 * - `seq` bigserial: insertion order, never reused; the tie-breaker of every ordering and the key of
 *   `last_insert`/`first_insert`.
 * - `time`/`created_at` bigint epoch ms rather than timestamptz (microseconds): an exact round trip of
 *   the JS number, and cheaper to compare and bucket.
 * - `metadata` json, not jsonb: kept as written (key order included, like SQLite's TEXT), and cheaper to
 *   insert (jsonb parses to binary on every row; about 15% of a batch's time here).
 *
 * Indexes, each one a b-tree write per insert, so no more than these: (device, variable, time) for the
 * common per-variable read and `last_value`, (device, time) for whole-device reads, retention and the cap,
 * (device, grp) for group filters, and the unique public id.
 */
export const POSTGRES_BUCKET_MIGRATIONS = [
  `CREATE TABLE bucket_records (
     seq        bigserial        PRIMARY KEY,
     id         text             NOT NULL UNIQUE,
     device     text             NOT NULL,
     variable   text             NOT NULL,
     value_type text             NOT NULL CHECK (value_type IN ('number', 'string', 'boolean', 'null')),
     value_num  double precision,
     value_text text,
     unit       text,
     time       bigint           NOT NULL,
     grp        text             NOT NULL,
     lng        double precision,
     lat        double precision,
     metadata   json,
     created_at bigint           NOT NULL
   );
   CREATE INDEX bucket_records_device_variable_time ON bucket_records (device, variable, time);
   CREATE INDEX bucket_records_device_time ON bucket_records (device, time);
   CREATE INDEX bucket_records_device_grp ON bucket_records (device, grp);`,
] as const;
