import { MetadataJson } from '../metadata-json.ts';
import type { DataRecord, RecordValue } from '../record.ts';
import { valuesByType, type DataFilter } from '../query.ts';

/**
 * How a DataRecord maps to a row of `bucket_records` (the same column idea as the SQLite store) and how
 * a DataFilter becomes a WHERE clause.
 *
 * A value keeps its JSON type, as in src/data/sqlite/schema.ts: value_type 'number' (value_num, float8:
 * exact for any JS number), 'string' (value_text), 'boolean' (value_text 'true'/'false', never counted as
 * a number), 'null'. Times are bigint epoch ms (exact round trip); `seq` is the insertion order, the final
 * tie-breaker of every ordering.
 */

export type ValueType = 'number' | 'string' | 'boolean' | 'null';

/** Column list shared by every SELECT that returns records, in row-decoding order. */
export const RECORD_COLUMNS = 'seq, id, device, variable, value_type, value_num, value_text, unit, time, grp, lng, lat, metadata, created_at';

export interface RecordRow {
  seq: number;
  id: string;
  device: string;
  variable: string;
  value_type: ValueType;
  value_num: number | null;
  value_text: string | null;
  unit: string | null;
  time: number;
  grp: string;
  lng: number | null;
  lat: number | null;
  metadata: Record<string, unknown> | null;
  created_at: number;
}

export function rowToRecord(row: RecordRow): DataRecord {
  return {
    id: row.id,
    device: row.device,
    variable: row.variable,
    value: decodeValue(row.value_type, row.value_num, row.value_text),
    unit: row.unit,
    time: row.time,
    group: row.grp,
    location: row.lng === null || row.lat === null ? null : { type: 'Point', coordinates: [row.lng, row.lat] },
    metadata: row.metadata,
    created_at: row.created_at,
  };
}

export function encodeValue(value: RecordValue): { type: ValueType; num: number | null; text: string | null } {
  if (typeof value === 'number') return { type: 'number', num: value, text: null };
  if (typeof value === 'string') return { type: 'string', num: null, text: value };
  if (typeof value === 'boolean') return { type: 'boolean', num: null, text: value ? 'true' : 'false' };
  return { type: 'null', num: null, text: null };
}

function decodeValue(type: ValueType, num: number | null, text: string | null): RecordValue {
  switch (type) {
    case 'number': return num;
    case 'string': return text;
    case 'boolean': return text === 'true';
    default: return null;
  }
}

/**
 * The column arrays of one multi-row insert: `INSERT ... SELECT * FROM unnest($1::text[], ...)` sends a
 * whole batch as 13 array parameters in one statement, whatever its size (a VALUES list would need 13
 * placeholders per row and hit the 65,535-parameter limit at 5,000 records).
 */
export interface InsertColumns {
  id: string[];
  device: string[];
  variable: string[];
  valueType: string[];
  valueNum: Array<number | null>;
  valueText: Array<string | null>;
  unit: Array<string | null>;
  time: number[];
  grp: string[];
  lng: Array<number | null>;
  lat: Array<number | null>;
  metadata: Array<string | null>;
  createdAt: number[];
}

export const INSERT_SQL = `INSERT INTO bucket_records
  (id, device, variable, value_type, value_num, value_text, unit, time, grp, lng, lat, metadata, created_at)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::text[], $7::text[],
    $8::int8[], $9::text[], $10::float8[], $11::float8[], $12::json[], $13::int8[])`;

export function toInsertColumns(records: readonly DataRecord[]): InsertColumns {
  const n = records.length;
  const c: InsertColumns = {
    id: new Array(n), device: new Array(n), variable: new Array(n), valueType: new Array(n), valueNum: new Array(n),
    valueText: new Array(n), unit: new Array(n), time: new Array(n), grp: new Array(n), lng: new Array(n),
    lat: new Array(n), metadata: new Array(n), createdAt: new Array(n),
  };
  const metadata = new MetadataJson();
  for (let i = 0; i < n; i++) {
    const r = records[i]!;
    const v = encodeValue(r.value);
    c.id[i] = r.id;
    c.device[i] = r.device;
    c.variable[i] = r.variable;
    c.valueType[i] = v.type;
    c.valueNum[i] = v.num;
    c.valueText[i] = v.text;
    c.unit[i] = r.unit;
    c.time[i] = r.time;
    c.grp[i] = r.group;
    c.lng[i] = r.location === null ? null : r.location.coordinates[0];
    c.lat[i] = r.location === null ? null : r.location.coordinates[1];
    c.metadata[i] = metadata.of(r.metadata);
    c.createdAt[i] = r.created_at;
  }
  return c;
}

export function insertParams(c: InsertColumns): unknown[] {
  return [c.id, c.device, c.variable, c.valueType, c.valueNum, c.valueText, c.unit, c.time, c.grp, c.lng, c.lat, c.metadata, c.createdAt];
}

/** Positional parameters for one statement: `add(value)` returns its placeholder. */
export class SqlParams {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/**
 * `device = $1 AND ...` for a filter. List filters that are absent or empty do not filter. `values`
 * matches as stored: a number only a number, a string only a string, a boolean only a boolean.
 * `omitVariables` leaves the variables condition out (per-variable queries apply it themselves).
 */
export function whereClause(deviceId: string, filter: DataFilter, params: SqlParams, omitVariables = false): string {
  const parts = [`device = ${params.add(deviceId)}`];
  if (!omitVariables && filter.variables !== undefined && filter.variables.length > 0) parts.push(`variable = ANY(${params.add(filter.variables)}::text[])`);
  if (filter.groups !== undefined && filter.groups.length > 0) parts.push(`grp = ANY(${params.add(filter.groups)}::text[])`);
  if (filter.ids !== undefined && filter.ids.length > 0) parts.push(`id = ANY(${params.add(filter.ids)}::text[])`);
  if (filter.values !== undefined && filter.values.length > 0) parts.push(valuesClause(filter.values, params));
  if (filter.startDate !== undefined) parts.push(`time >= ${params.add(filter.startDate)}::int8`);
  if (filter.endDate !== undefined) parts.push(`time <= ${params.add(filter.endDate)}::int8`);
  return parts.join(' AND ');
}

function valuesClause(values: ReadonlyArray<string | number | boolean>, params: SqlParams): string {
  const { numbers: nums, strings: texts, booleans: bools } = valuesByType(values);
  const alternatives: string[] = [];
  if (nums.length > 0) alternatives.push(`(value_type = 'number' AND value_num = ANY(${params.add(nums)}::float8[]))`);
  if (texts.length > 0) alternatives.push(`(value_type = 'string' AND value_text = ANY(${params.add(texts)}::text[]))`);
  if (bools.length > 0) alternatives.push(`(value_type = 'boolean' AND value_text = ANY(${params.add(bools)}::text[]))`);
  return `(${alternatives.join(' OR ')})`;
}
