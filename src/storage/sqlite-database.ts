import BetterSqlite3 from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * One SQLite file holds every durable component of a node (broker sessions, retained messages, and
 * later the registry and buckets). Each component owns its tables and its own migration list.
 */
export type Database = BetterSqlite3.Database;

/** WAL pages (4 KiB) between automatic checkpoints; SQLite's default is 1000. */
const WAL_AUTOCHECKPOINT_PAGES = 10_000;

/** Milliseconds a statement waits for a lock held by another connection before failing with SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5_000;

/**
 * Opens (creating if needed, parent directory included) a database file, or ':memory:'.
 *
 * - WAL: readers never block the single writer, and a commit is one sequential append.
 * - synchronous=NORMAL: in WAL mode this fsyncs at checkpoints instead of on every commit. A process
 *   crash loses nothing committed; a power cut or OS crash may lose the last few commits but never
 *   corrupts the file. Acknowledgements wait for the commit (held acks), so a process crash loses
 *   nothing acknowledged; an fsync per commit (FULL) would extend that to power cuts at a large cost
 *   in throughput.
 * - wal_autocheckpoint=10000: fewer, larger checkpoints (see below); the WAL may reach ~40 MB.
 * - busy_timeout: another connection (a CLI, a second process during a restart) may hold the write
 *   lock briefly; wait rather than fail.
 * - foreign_keys: off by default in SQLite for compatibility; components that declare them mean them.
 */
export function openDatabase(path: string): Database {
  const inMemory = path === ':memory:';
  if (!inMemory) mkdirSync(dirname(path), { recursive: true });
  const db = new BetterSqlite3(path);
  try {
    const journalMode = db.pragma('journal_mode = WAL', { simple: true });
    if (!inMemory && journalMode !== 'wal') {
      throw new Error(`could not enable WAL on ${path} (journal_mode is ${String(journalMode)}); is it on a network filesystem?`);
    }
    db.pragma('synchronous = NORMAL');
    // Checkpoint every ~40 MB of WAL instead of ~4 MB: pages rewritten by many commits (index
    // leaves under steady ingest) are copied back once, not once per small checkpoint.
    db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.pragma('foreign_keys = ON');
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/**
 * Brings one component's schema up to date. `migrations[i]` is version i + 1; a list is append-only:
 * never edit or reorder a migration that has shipped, add a new one. Each migration runs in its own
 * IMMEDIATE transaction (SQLite DDL is transactional), so a failure leaves the previous version intact
 * and two processes starting together cannot both apply the same step. Returns the schema version.
 */
export function migrate(db: Database, component: string, migrations: readonly string[]): number {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    component  TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    applied_at TEXT    NOT NULL,
    PRIMARY KEY (component, version)
  )`);
  const selectApplied = db.prepare<[string], number>('SELECT version FROM schema_migrations WHERE component = ?').pluck();
  const insertApplied = db.prepare<[string, number, string]>(
    'INSERT INTO schema_migrations (component, version, applied_at) VALUES (?, ?, ?)',
  );

  const applied = new Set(selectApplied.all(component));
  const newest = Math.max(0, ...applied);
  if (newest > migrations.length) {
    throw new Error(
      `database schema for '${component}' is at version ${newest} but this build knows only ${migrations.length}; refusing to run an older build against a newer schema`,
    );
  }

  const applyOne = db.transaction((version: number, sql: string) => {
    // Re-read inside the write lock: another process may have applied it since we looked.
    if (selectApplied.all(component).includes(version)) return;
    db.exec(sql);
    insertApplied.run(component, version, new Date().toISOString());
  });
  for (let index = 0; index < migrations.length; index++) {
    if (!applied.has(index + 1)) applyOne.immediate(index + 1, migrations[index] as string);
  }
  return migrations.length;
}
