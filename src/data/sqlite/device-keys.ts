import type BetterSqlite3 from 'better-sqlite3';
import type { Database } from '../../storage/sqlite-database.ts';

/**
 * Device id → small integer key in `bucket_devices` (schema.ts). Keys are never reused or changed, so a
 * key once seen is cached for the connection's life.
 */
export class DeviceKeys {
  readonly #keys = new Map<string, number>();
  readonly #select: BetterSqlite3.Statement<[string], number>;
  readonly #insert: BetterSqlite3.Statement<[string]>;

  constructor(db: Database) {
    this.#select = db.prepare<[string], number>('SELECT key FROM bucket_devices WHERE device = ?').pluck();
    this.#insert = db.prepare<[string]>('INSERT OR IGNORE INTO bucket_devices (device) VALUES (?)');
  }

  /** The device's key, or -1 (matches no row) for a device that has never had records. */
  find(deviceId: string): number {
    const cached = this.#keys.get(deviceId);
    if (cached !== undefined) return cached;
    const key = this.#select.get(deviceId);
    if (key === undefined) return -1;
    this.#keys.set(deviceId, key);
    return key;
  }

  /** The device's key, made now if needed (a write: only the bucket writer calls this). */
  obtain(deviceId: string): number {
    const found = this.find(deviceId);
    if (found !== -1) return found;
    this.#insert.run(deviceId);
    return this.find(deviceId);
  }
}
