/** Data records (SPEC §3): what a bucket stores, and its JSON shape in the device data API. */

export type RecordValue = string | number | boolean | null;

/** Locations are stored and returned as GeoJSON points: coordinates are [longitude, latitude]. */
export interface GeoPoint {
  type: 'Point';
  coordinates: [lng: number, lat: number];
}

/** A validated record, ready to store. Times are epoch milliseconds. */
export interface DataRecord {
  id: string;
  device: string;
  variable: string;
  value: RecordValue;
  unit: string | null;
  time: number;
  group: string;
  location: GeoPoint | null;
  metadata: Record<string, unknown> | null;
  created_at: number;
}

/** The API shape of a record (the hosted service's): ISO times, absent optional fields left out. */
export interface RecordJson {
  id: string;
  device: string;
  variable: string;
  value: RecordValue;
  unit?: string;
  time: string;
  group: string;
  location?: GeoPoint;
  metadata?: Record<string, unknown>;
  created_at: string;
}

export function toRecordJson(r: DataRecord): RecordJson {
  const out: RecordJson = { id: r.id, device: r.device, variable: r.variable, value: r.value, time: new Date(r.time).toISOString(), group: r.group, created_at: new Date(r.created_at).toISOString() };
  if (r.unit !== null) out.unit = r.unit;
  if (r.location !== null) out.location = r.location;
  if (r.metadata !== null) out.metadata = r.metadata;
  return out;
}
