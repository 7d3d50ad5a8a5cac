import type { AggregateFunction, DataFilter } from '../query.ts';
import { RECORD_COLUMNS, SqlParams, whereClause } from './postgres-records.ts';

/**
 * SQL for the bucket queries of SPEC §8 on PostgreSQL, mirroring src/data/sqlite/query-sql.ts so both
 * stores answer identically (test/data/bucket-store.contract.ts):
 * - "newest" is (time DESC, seq DESC), "oldest" (time ASC, seq ASC): equal times go by insertion order.
 * - Variable names sort by code point (`COLLATE "C"`), as SQLite's BINARY collation does, whatever the
 *   database's locale.
 */

export const NEWEST = 'time DESC, seq DESC';
export const OLDEST = 'time ASC, seq ASC';

/** Records in an order, `LIMIT`/`OFFSET` bound as parameters. */
export function recordsSql(where: string, order: string, params: SqlParams, limit: number, offset = 0): string {
  return `SELECT ${RECORD_COLUMNS} FROM bucket_records WHERE ${where} ORDER BY ${order} LIMIT ${params.add(limit)} OFFSET ${params.add(offset)}`;
}

/**
 * One record per variable: for each variable the first record in `order` among the filtered (and
 * `extra`-matching) records; results ordered by variable name.
 *
 * Without a variables filter the device's variables are found by a loose index scan (a recursive CTE
 * hopping from one variable to the next on the (device, variable, time) index) and each variable's pick
 * is an indexed LIMIT 1 in a LATERAL join: the cost grows with the number of variables, not of records.
 */
export function perVariableSql(deviceId: string, filter: DataFilter, order: string, extra: string | null, params: SqlParams): string {
  const where = whereClause(deviceId, filter, params, true);
  const device = '$1'; // whereClause binds the device first
  const list = filter.variables ?? [];
  const vars =
    list.length > 0
      ? `vars(name) AS (SELECT DISTINCT unnest(${params.add(list)}::text[]))`
      : `vars(name) AS (
           SELECT (SELECT min(variable) FROM bucket_records WHERE device = ${device})
           UNION ALL
           SELECT (SELECT min(variable) FROM bucket_records WHERE device = ${device} AND variable > vars.name) FROM vars WHERE vars.name IS NOT NULL
         )`;
  return `WITH RECURSIVE ${vars}
    SELECT r.* FROM vars CROSS JOIN LATERAL (
      SELECT ${RECORD_COLUMNS} FROM bucket_records
      WHERE ${where} AND variable = vars.name${extra === null ? '' : ` AND ${extra}`}
      ORDER BY ${order} LIMIT 1
    ) r
    ORDER BY r.variable COLLATE "C"`;
}

const AGGREGATES: Record<AggregateFunction, string> = {
  avg: 'avg(value_num)',
  sum: 'sum(value_num)',
  min: 'min(value_num)',
  max: 'max(value_num)',
  count: 'count(*)',
};

/**
 * Interval buckets per variable: a time's bucket is its floor to a multiple of the interval since the
 * epoch (times before 1970 floor downwards too), in exact bigint arithmetic. `count` counts every record,
 * the other functions only numeric ones (buckets with none are left out). Ordered by variable, then time.
 */
export function aggregateSql(where: string, fn: AggregateFunction, intervalMs: number, params: SqlParams): string {
  const numericOnly = fn === 'count' ? '' : ` AND value_type = 'number'`;
  const interval = `${params.add(intervalMs)}::int8`;
  return `SELECT variable, time - (((time % ${interval}) + ${interval}) % ${interval}) AS time, (${AGGREGATES[fn]})::float8 AS value
    FROM bucket_records WHERE ${where}${numericOnly}
    GROUP BY 1, 2 ORDER BY variable COLLATE "C", 2`;
}

/**
 * A page of a stream: keyset pagination on (time, seq), oldest first. `time >= last` is the indexed
 * range; the OR only re-checks rows sharing the previous page's final time.
 */
export function streamPageSql(where: string, after: { time: number; seq: number } | null, params: SqlParams, page: number): string {
  let condition = where;
  if (after !== null) {
    const time = `${params.add(after.time)}::int8`;
    condition += ` AND time >= ${time} AND (time > ${time} OR seq > ${params.add(after.seq)}::int8)`;
  }
  return `SELECT ${RECORD_COLUMNS} FROM bucket_records WHERE ${condition} ORDER BY ${OLDEST} LIMIT ${params.add(page)}`;
}
