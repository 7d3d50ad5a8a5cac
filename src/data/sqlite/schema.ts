import { MetadataJson } from '../metadata-json.ts';
import type { DataRecord, RecordValue } from '../record.ts';

/**
 * The `records` table of component 'buckets' (SPEC §3). One row per record, every device in one table.
 *
 * - `seq` is the rowid (INTEGER PRIMARY KEY): insertion order, so `last_insert`/`first_insert` and
 *   tie-breaks between equal times are well defined. Being the rowid, it is also the tail of every
 *   index, so `ORDER BY time, seq` is served by an index on `time`. Not AUTOINCREMENT: that writes
 *   the sqlite_sequence table on every insert (measured: ~1.5x slower ingest); a rowid is only
 *   reused after the highest one is deleted, and a new insert still gets the highest seq.
 * - `id` is the public 24-hex id, unique.
 * - Values keep their JSON type: `value_type` is 'number' | 'string' | 'boolean' | 'null'; numbers
 *   live in `value_num` (REAL, exact for any JS number), strings in `value_text`, booleans in
 *   `value_text` as 'true'/'false'.
 * - `time` and `created_at` are epoch milliseconds; `lat`/`lng` are null when there is no location.
 *
 * - `device` is a small integer key from `bucket_devices`, not the 24-character device id: it leads
 *   every index entry, so a short key means fewer pages written per commit.
 *
 * Indexes: (device, variable, time) for per-variable queries (the common `variable=x` read and
 * `last_value`), (device, time) for whole-device reads, group filters, retention and the cap. Each
 * index costs every insert a b-tree write, so there are no more than these. Measured on raw inserts
 * (8 devices, 2,000-row transactions): 81k rows/s with text device ids and a (device, grp) index,
 * 114k rows/s with integer keys and without it.
 */
export const BUCKET_MIGRATIONS = [
  `CREATE TABLE bucket_devices (
     key    INTEGER PRIMARY KEY,
     device TEXT    NOT NULL UNIQUE
   );
   CREATE TABLE records (
     seq        INTEGER PRIMARY KEY,
     id         TEXT    NOT NULL UNIQUE,
     device     INTEGER NOT NULL,
     variable   TEXT    NOT NULL,
     value_type TEXT    NOT NULL,
     value_num  REAL,
     value_text TEXT,
     unit       TEXT,
     time       INTEGER NOT NULL,
     grp        TEXT    NOT NULL,
     lat        REAL,
     lng        REAL,
     metadata   TEXT,
     created_at INTEGER NOT NULL
   );
   CREATE INDEX records_device_variable_time ON records (device, variable, time);
   CREATE INDEX records_device_time ON records (device, time);`,
] as const;

/** Columns read back into a DataRecord, in this order (plus `seq` where a query pages on it). */
export const RECORD_COLUMNS = 'id, device, variable, value_type, value_num, value_text, unit, time, grp, lat, lng, metadata, created_at';

export const INSERT_SQL = `INSERT INTO records (${RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

export type ValueType = 'number' | 'string' | 'boolean' | 'null';

export interface RecordRow {
  id: string;
  /** The device's key in bucket_devices. */
  device: number;
  variable: string;
  value_type: ValueType;
  value_num: number | null;
  value_text: string | null;
  unit: string | null;
  time: number;
  grp: string;
  lat: number | null;
  lng: number | null;
  metadata: string | null;
  created_at: number;
}

/** The three value columns for a value. */
export function valueColumns(value: RecordValue): [ValueType, number | null, string | null] {
  switch (typeof value) {
    case 'number': return ['number', value, null];
    case 'string': return ['string', null, value];
    case 'boolean': return ['boolean', null, value ? 'true' : 'false'];
    default: return ['null', null, null];
  }
}

/** Columns per record in a flat row list (`appendRows`): INSERT_SQL's parameters, device id in the key's place. */
export const ROW_WIDTH = 13;

/**
 * Appends each record's INSERT_SQL parameters to `rows`, flat, with the device *id* where the key goes
 * (the writer maps it to the key). Flat arrays of primitives are what crosses to the writer thread:
 * structured clone copies them far faster than one object or array per record.
 */
export function appendRows(records: readonly DataRecord[], rows: unknown[]): void {
  const metadata = new MetadataJson();
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    const [valueType, valueNum, valueText] = valueColumns(r.value);
    rows.push(
      r.id, r.device, r.variable, valueType, valueNum, valueText, r.unit, r.time, r.group,
      r.location === null ? null : r.location.coordinates[1],
      r.location === null ? null : r.location.coordinates[0],
      metadata.of(r.metadata),
      r.created_at,
    );
  }
}

export function recordFromRow(row: RecordRow, deviceId: string): DataRecord {
  return {
    id: row.id,
    device: deviceId,
    variable: row.variable,
    value: rowValue(row),
    unit: row.unit,
    time: row.time,
    group: row.grp,
    location: row.lat === null || row.lng === null ? null : { type: 'Point', coordinates: [row.lng, row.lat] },
    metadata: row.metadata === null ? null : (JSON.parse(row.metadata) as Record<string, unknown>),
    created_at: row.created_at,
  };
}

function rowValue(row: RecordRow): RecordValue {
  switch (row.value_type) {
    case 'number': return row.value_num;
    case 'string': return row.value_text;
    case 'boolean': return row.value_text === 'true';
    default: return null;
  }
}
