import { randomBytes } from 'node:crypto';
import type { DataRecord, GeoPoint, RecordValue } from './record.ts';
import { RejectedMessageError } from './rejected-message.ts';

/**
 * Record validation exactly per SPEC §3. A message is one record or an array; one bad record
 * rejects the whole message, with an error naming the record index and the field. Unknown fields
 * are ignored (hosted-service clients send extras such as `origin`).
 */

export const LIMITS = {
  variableLength: 100,
  valueBytes: 6 * 1024,
  unitLength: 25,
  groupLength: 100,
  metadataBytes: 10 * 1024,
} as const;

/** Characters a variable may not contain (SPEC §3), besides whitespace. */
const FORBIDDEN = /[*?!<>.\-=$\s]/;

/** Unix times below this are seconds, above it milliseconds (1e11 s is the year 5138; 1e11 ms is 1973). */
const SECONDS_BELOW = 1e11;

export class RecordError extends RejectedMessageError {
  /** Index of the offending record in the message (0 for a single record). */
  readonly index: number;
  readonly field: string;
  constructor(index: number, field: string, problem: string) {
    super(`record ${index}: ${field} ${problem}`);
    this.name = 'RecordError';
    this.index = index;
    this.field = field;
  }
}

export interface RecordContext {
  deviceId: string;
  /** Arrival time, epoch ms: the default `time` and the `created_at`. */
  now: number;
  /** Merged into every record's metadata (e.g. `{ mqtt_topic }`); the record's own keys win. */
  metadata?: Record<string, unknown>;
}

/** Validates a message (one record or an array) and returns the records to store; throws RecordError. */
export function validateRecords(input: unknown, context: RecordContext): DataRecord[] {
  const items = Array.isArray(input) ? input : [input];
  if (items.length === 0) throw new RecordError(0, 'message', 'is an empty array');
  // One generated group shared by the records of one message (SPEC §3).
  const defaultGroup = generateRecordId(context.now);
  // Records without metadata of their own share one copy of the message's metadata, so the stores
  // serialize it once per message (rowBatch in sqlite/schema.ts, postgres-records.ts), not once per
  // record; a frozen one is shared as it is (one per MQTT topic), and serialized once in all.
  const shared = context.metadata === undefined ? null : Object.isFrozen(context.metadata) ? context.metadata : { ...context.metadata };
  const out: DataRecord[] = new Array(items.length);
  for (let i = 0; i < items.length; i++) out[i] = validateOne(items[i], i, defaultGroup, shared, context);
  return out;
}

function validateOne(raw: unknown, index: number, defaultGroup: string, shared: Record<string, unknown> | null, context: RecordContext): DataRecord {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new RecordError(index, 'record', 'must be an object');
  const r = raw as Record<string, unknown>;
  return {
    id: generateRecordId(context.now),
    device: context.deviceId,
    variable: variable(r.variable, index),
    value: value(r.value, index),
    unit: optionalString(r.unit, 'unit', LIMITS.unitLength, index),
    time: time(r.time, index, context.now),
    group: group(r.group ?? r.serie, r.group != null ? 'group' : 'serie', index) ?? defaultGroup,
    location: location(r.location, index),
    // A payload record carries the message's own metadata object (payload-records.ts): nothing to merge.
    metadata: r.metadata === undefined || r.metadata === null || r.metadata === context.metadata ? shared : metadata(r.metadata, index, context.metadata),
    created_at: context.now,
  };
}

function variable(raw: unknown, index: number): string {
  if (raw === undefined || raw === null) throw new RecordError(index, 'variable', 'is required');
  if (typeof raw !== 'string') throw new RecordError(index, 'variable', 'must be a string');
  if (raw.length === 0) throw new RecordError(index, 'variable', 'must not be empty');
  if (raw.length > LIMITS.variableLength) throw new RecordError(index, 'variable', `must be at most ${LIMITS.variableLength} characters`);
  const bad = FORBIDDEN.exec(raw);
  if (bad !== null) {
    const shown = /\s/.test(bad[0]) ? 'whitespace' : `"${bad[0]}"`;
    throw new RecordError(index, 'variable', `must not contain ${shown} (forbidden: * ? ! < > . - = $ and whitespace)`);
  }
  return raw.toLowerCase();
}

function value(raw: unknown, index: number): RecordValue {
  if (raw === undefined || raw === null) return null;
  if (typeof raw === 'number') {
    if (!Number.isFinite(raw)) throw new RecordError(index, 'value', 'must be a finite number');
    return raw;
  }
  if (typeof raw === 'boolean') return raw;
  if (typeof raw === 'string') {
    if (Buffer.byteLength(raw) + 2 > LIMITS.valueBytes) throw new RecordError(index, 'value', `must be at most ${LIMITS.valueBytes} bytes serialised`);
    return raw;
  }
  throw new RecordError(index, 'value', 'must be a string, number, boolean or null');
}

function optionalString(raw: unknown, field: string, max: number, index: number): string | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== 'string') throw new RecordError(index, field, 'must be a string');
  if (raw.length > max) throw new RecordError(index, field, `must be at most ${max} characters`);
  return raw;
}

/**
 * `group` (or its alias `serie`): a string, or a finite number stored as its decimal string, since
 * decoders written for the hosted service set `serie: new Date().getTime()` or `group: Date.now()`.
 */
function group(raw: unknown, field: string, index: number): string | null {
  if (typeof raw !== 'number') return optionalString(raw, field, LIMITS.groupLength, index);
  if (!Number.isFinite(raw)) throw new RecordError(index, field, 'must be a string or a finite number');
  // Decimal digits even where String() would switch to an exponent (integers from 1e21 on).
  return optionalString(Number.isInteger(raw) ? BigInt(raw).toString() : String(raw), field, LIMITS.groupLength, index);
}

function time(raw: unknown, index: number, now: number): number {
  if (raw === undefined || raw === null || raw === '') return now;
  if (raw instanceof Date) {
    const t = raw.getTime();
    if (Number.isNaN(t)) throw new RecordError(index, 'time', 'is an invalid Date');
    return t;
  }
  if (typeof raw === 'number') return unixTime(raw, index);
  if (typeof raw === 'string') {
    if (/^\d+(\.\d+)?$/.test(raw)) return unixTime(Number(raw), index);
    if (/^\d{4}-\d{2}-\d{2}/.test(raw)) {
      const t = Date.parse(raw);
      if (!Number.isNaN(t)) return t;
    }
    throw new RecordError(index, 'time', `"${raw.slice(0, 40)}" is not an ISO-8601 date or a Unix time`);
  }
  throw new RecordError(index, 'time', 'must be an ISO-8601 string or a Unix time in seconds or milliseconds');
}

function unixTime(n: number, index: number): number {
  if (!Number.isFinite(n) || n < 0) throw new RecordError(index, 'time', 'must be a non-negative Unix time');
  return n < SECONDS_BELOW ? Math.round(n * 1000) : Math.round(n);
}

function location(raw: unknown, index: number): GeoPoint | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new RecordError(index, 'location', 'must be {lat, lng} or a GeoJSON Point');
  const l = raw as Record<string, unknown>;
  let lat: unknown;
  let lng: unknown;
  if (l.type === 'Point') {
    const c = l.coordinates;
    if (!Array.isArray(c) || c.length < 2) throw new RecordError(index, 'location', 'GeoJSON Point needs coordinates [lng, lat]');
    [lng, lat] = c;
  } else {
    lat = l.lat;
    lng = l.lng ?? l.lon;
  }
  if (typeof lat !== 'number' || !Number.isFinite(lat) || lat < -90 || lat > 90) throw new RecordError(index, 'location', 'latitude must be a number from -90 to 90');
  if (typeof lng !== 'number' || !Number.isFinite(lng) || lng < -180 || lng > 180) throw new RecordError(index, 'location', 'longitude must be a number from -180 to 180');
  return { type: 'Point', coordinates: [lng, lat] };
}

function metadata(raw: unknown, index: number, extra: Record<string, unknown> | undefined): Record<string, unknown> {
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new RecordError(index, 'metadata', 'must be an object');
  const merged = extra === undefined ? (raw as Record<string, unknown>) : { ...extra, ...(raw as Record<string, unknown>) };
  let serialised: string;
  try {
    serialised = JSON.stringify(merged);
  } catch {
    throw new RecordError(index, 'metadata', 'must be JSON-serialisable');
  }
  if (Buffer.byteLength(serialised) > LIMITS.metadataBytes) throw new RecordError(index, 'metadata', `must be at most ${LIMITS.metadataBytes} bytes serialised`);
  return merged;
}

/**
 * 24-hex-digit ids in the hosted service's (MongoDB ObjectId) shape: 4 bytes of seconds, 5 random
 * bytes chosen once per process, a 3-byte counter. Unique without a random draw per record, which
 * matters at 100k records/s; roughly time-ordered. The seconds-and-process prefix is built once per
 * second and the counter's hex comes from a table: 35 ns an id instead of 250 (4 ids per 3-record
 * message).
 */
const PROCESS_PART = randomBytes(5).toString('hex');
const HEX3 = Array.from({ length: 4096 }, (_, i) => i.toString(16).padStart(3, '0'));
let counter = randomBytes(3).readUIntBE(0, 3);
let prefixSecond = -1;
let prefix = '';

/** A new record id; `now` (epoch ms) is the creation time it carries. */
export function generateRecordId(now: number = Date.now()): string {
  counter = (counter + 1) & 0xffffff;
  const seconds = Math.floor(now / 1000);
  if (seconds !== prefixSecond) {
    prefixSecond = seconds;
    prefix = seconds.toString(16).padStart(8, '0') + PROCESS_PART;
  }
  return prefix + HEX3[counter >>> 12]! + HEX3[counter & 0xfff]!;
}
