/**
 * The locks of `variable` actions with an unlock condition (SPEC §5 hysteresis): after a firing the
 * action is locked for that device until a record meets the unlock condition. Kept per (action,
 * device) in the node's SQLite database, so a restart neither fires a locked action again nor
 * forgets an unlock; mirrored in memory, because every stored message of a scoped device asks.
 *
 * Cost: `isLocked` is a Set lookup; `lock` and `unlock` write one row (on a state change only).
 * A lock goes with its action (foreign key) and is cleared when the action's trigger changes.
 */
import { migrate, type Database } from '../storage/sqlite-database.ts';

export const LOCK_MIGRATIONS: readonly string[] = [
  `CREATE TABLE action_locks (
    action_id  TEXT    NOT NULL REFERENCES actions(id) ON DELETE CASCADE,
    device_id  TEXT    NOT NULL,
    locked_at  INTEGER NOT NULL,
    PRIMARY KEY (action_id, device_id)
  );`,
];

export interface ActionLock {
  device_id: string;
  /** ISO-8601 date of the firing that locked it. */
  locked_at: string;
}

export class LockStore {
  readonly #locked = new Set<string>();
  readonly #stmt;

  /** The actions table must exist first (ActionStore). */
  constructor(db: Database) {
    migrate(db, 'action-locks', LOCK_MIGRATIONS);
    this.#stmt = {
      lock: db.prepare('INSERT OR REPLACE INTO action_locks (action_id, device_id, locked_at) VALUES (?, ?, ?)'),
      unlock: db.prepare('DELETE FROM action_locks WHERE action_id = ? AND device_id = ?'),
      clear: db.prepare('DELETE FROM action_locks WHERE action_id = ?'),
      forgetDevice: db.prepare('DELETE FROM action_locks WHERE device_id = ?'),
      ofAction: db.prepare<[string], { device_id: string; locked_at: number }>('SELECT device_id, locked_at FROM action_locks WHERE action_id = ? ORDER BY locked_at, device_id'),
      all: db.prepare<[], { action_id: string; device_id: string }>('SELECT action_id, device_id FROM action_locks'),
    };
    for (const row of this.#stmt.all.all()) this.#locked.add(key(row.action_id, row.device_id));
  }

  isLocked(actionId: string, deviceId: string): boolean {
    return this.#locked.has(key(actionId, deviceId));
  }

  lock(actionId: string, deviceId: string, now: number): void {
    this.#stmt.lock.run(actionId, deviceId, now);
    this.#locked.add(key(actionId, deviceId));
  }

  /** Returns whether there was a lock. */
  unlock(actionId: string, deviceId: string): boolean {
    this.#locked.delete(key(actionId, deviceId));
    return this.#stmt.unlock.run(actionId, deviceId).changes > 0;
  }

  /** Forgets every lock of an action (its trigger changed, or it was deleted). */
  clear(actionId: string): void {
    this.#stmt.clear.run(actionId);
    const prefix = `${actionId}\u0000`;
    for (const entry of this.#locked) if (entry.startsWith(prefix)) this.#locked.delete(entry);
  }

  /** Forgets every lock of a device (deleted). */
  forgetDevice(deviceId: string): void {
    this.#stmt.forgetDevice.run(deviceId);
    const suffix = `\u0000${deviceId}`;
    for (const entry of this.#locked) if (entry.endsWith(suffix)) this.#locked.delete(entry);
  }

  locks(actionId: string): ActionLock[] {
    return this.#stmt.ofAction.all(actionId).map((row) => ({ device_id: row.device_id, locked_at: new Date(row.locked_at).toISOString() }));
  }
}

function key(actionId: string, deviceId: string): string {
  return `${actionId}\u0000${deviceId}`;
}
