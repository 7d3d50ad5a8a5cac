import { valuesByType, type AggregateFunction, type DataFilter } from '../query.ts';
import { RECORD_COLUMNS } from './schema.ts';

/**
 * SQL text for the bucket queries of SPEC §8, built from a filter's *shape* (which fields are present,
 * one value or several) so that the store can prepare each distinct text once and reuse it. Values
 * never go into the text: they are named parameters, and lists are bound as one JSON array and
 * expanded with `json_each`, so a list of 2 or of 200 variables is the same statement. A one-element
 * list is written `column = @x` instead, which lets SQLite walk an index in order (`variable=x` with
 * `ORDER BY time` and a LIMIT reads only the rows it returns).
 *
 * Order conventions shared by every mode: "newest" is (time DESC, seq DESC), "oldest" is
 * (time ASC, seq ASC): equal times are broken by insertion order.
 */

export const NEWEST = 'time DESC, seq DESC';
export const OLDEST = 'time ASC, seq ASC';

export type Params = Record<string, unknown>;

export interface CompiledFilter {
  /** `device = @device AND ...`, never empty. */
  where: string;
  params: Params;
  /** How the variables filter was written: absent, `variable = @variables`, or a json_each list. */
  variables: 'none' | 'one' | 'many';
}

/**
 * Compiles a filter into a WHERE clause over bare column names. Empty lists count as absent.
 * `omitVariables` leaves the variables condition out (per-variable queries apply it themselves).
 */
export function compileFilter(deviceKey: number, filter: DataFilter, omitVariables = false): CompiledFilter {
  const params: Params = { device: deviceKey };
  const conditions = ['device = @device'];
  const variables = filter.variables ?? [];
  if (variables.length > 0) {
    const single = variables.length === 1;
    params.variables = single ? variables[0] : JSON.stringify(variables);
    if (!omitVariables) conditions.push(single ? 'variable = @variables' : 'variable IN (SELECT value FROM json_each(@variables))');
  }
  listCondition(conditions, params, 'grp', 'groups', filter.groups);
  listCondition(conditions, params, 'id', 'ids', filter.ids);
  if (filter.startDate !== undefined) {
    conditions.push('time >= @startDate');
    params.startDate = filter.startDate;
  }
  if (filter.endDate !== undefined) {
    conditions.push('time <= @endDate');
    params.endDate = filter.endDate;
  }
  if (filter.values !== undefined && filter.values.length > 0) conditions.push(valuesCondition(filter.values, params));
  return { where: conditions.join(' AND '), params, variables: variables.length === 0 ? 'none' : variables.length === 1 ? 'one' : 'many' };
}

function listCondition(conditions: string[], params: Params, column: string, name: string, list: readonly string[] | undefined): void {
  if (list === undefined || list.length === 0) return;
  if (list.length === 1) {
    params[name] = list[0];
    conditions.push(`${column} = @${name}`);
  } else {
    params[name] = JSON.stringify(list);
    conditions.push(`${column} IN (SELECT value FROM json_each(@${name}))`);
  }
}

/** Values match as stored: see valuesByType (query.ts). */
function valuesCondition(values: ReadonlyArray<string | number | boolean>, params: Params): string {
  const { numbers, strings, booleans } = valuesByType(values);
  const parts: string[] = [];
  if (numbers.length > 0) {
    params.valueNumbers = JSON.stringify(numbers);
    parts.push(`(value_type = 'number' AND value_num IN (SELECT value FROM json_each(@valueNumbers)))`);
  }
  if (strings.length > 0) {
    params.valueStrings = JSON.stringify(strings);
    parts.push(`(value_type = 'string' AND value_text IN (SELECT value FROM json_each(@valueStrings)))`);
  }
  if (booleans.length > 0) {
    params.valueBooleans = JSON.stringify(booleans);
    parts.push(`(value_type = 'boolean' AND value_text IN (SELECT value FROM json_each(@valueBooleans)))`);
  }
  return `(${parts.join(' OR ')})`;
}

/** Records in an order, optionally paged (`@limit`, `@offset`). */
export function recordsSql(where: string, order: string, paged: boolean): string {
  return `SELECT ${RECORD_COLUMNS} FROM records WHERE ${where} ORDER BY ${order}${paged ? ' LIMIT @limit OFFSET @offset' : ''}`;
}

/**
 * One record per variable: for each variable the first record in `order` among the filtered
 * (and `extra`-matching) records; results ordered by variable name.
 *
 * Without a variables filter the device's distinct variables are found by a loose index scan (a
 * recursive CTE that hops from one variable to the next on the (device, variable, time) index), and
 * each variable's pick is an indexed LIMIT 1: the cost grows with the number of variables, not of
 * records, which matters for `last_value` on a bucket with millions of rows.
 */
export function perVariableSql(filter: CompiledFilter, order: string, extra: string | null): string {
  const vars =
    filter.variables === 'one' ? 'vars(name) AS (SELECT @variables)'
    : filter.variables === 'many' ? 'vars(name) AS (SELECT DISTINCT value FROM json_each(@variables))'
    : `vars(name) AS (
         SELECT (SELECT min(variable) FROM records WHERE device = @device)
         UNION ALL
         SELECT (SELECT min(variable) FROM records WHERE device = @device AND variable > vars.name) FROM vars WHERE vars.name IS NOT NULL
       )`;
  const inner = `${filter.where} AND variable = vars.name${extra === null ? '' : ` AND ${extra}`}`;
  const columns = RECORD_COLUMNS.split(', ').map((c) => `r.${c}`).join(', ');
  return `WITH RECURSIVE ${vars}
    SELECT ${columns} FROM vars JOIN records r ON r.seq = (SELECT seq FROM records WHERE ${inner} ORDER BY ${order} LIMIT 1)
    ORDER BY r.variable`;
}

export function countSql(where: string): string {
  return `SELECT count(*) FROM records WHERE ${where}`;
}

/** avg and sum over numeric values; `avg` is null when there are none. */
export function numericSql(where: string): string {
  return `SELECT avg(value_num) AS avg, total(value_num) AS sum FROM records WHERE ${where} AND value_type = 'number'`;
}

const AGGREGATES: Record<AggregateFunction, string> = {
  avg: 'avg(value_num)',
  sum: 'total(value_num)',
  min: 'min(value_num)',
  max: 'max(value_num)',
  count: 'count(*)',
};

/**
 * Interval buckets per variable: the bucket of a time is its floor to a multiple of @interval since
 * the epoch (times before 1970 floor downwards too). `count` counts every record, the other functions
 * only numeric ones (buckets with none are left out).
 */
export function aggregateSql(where: string, fn: AggregateFunction): string {
  const numericOnly = fn === 'count' ? '' : ` AND value_type = 'number'`;
  return `SELECT variable, time - (((time % @interval) + @interval) % @interval) AS bucket, ${AGGREGATES[fn]} AS value
    FROM records WHERE ${where}${numericOnly}
    GROUP BY variable, bucket ORDER BY variable, bucket`;
}

export function deleteSql(where: string): string {
  return `DELETE FROM records WHERE ${where}`;
}

/** Background deletions go in chunks so a million-row purge never holds the event loop for long. */
export function deleteOlderChunkSql(): string {
  return 'DELETE FROM records WHERE seq IN (SELECT seq FROM records WHERE device = @device AND time < @before LIMIT @chunk)';
}

export function deleteBeyondCapChunkSql(): string {
  return `DELETE FROM records WHERE seq IN (SELECT seq FROM records WHERE device = @device ORDER BY ${NEWEST} LIMIT @chunk OFFSET @cap)`;
}

/**
 * A page of a stream: keyset pagination on (time, seq), oldest first. `time >= @afterTime` is the
 * indexed range; the OR only re-checks rows that share the last page's final time.
 */
export function streamPageSql(where: string, first: boolean): string {
  const after = first ? '' : ' AND time >= @afterTime AND (time > @afterTime OR seq > @afterSeq)';
  return `SELECT seq, ${RECORD_COLUMNS} FROM records WHERE ${where}${after} ORDER BY ${OLDEST} LIMIT @page`;
}
