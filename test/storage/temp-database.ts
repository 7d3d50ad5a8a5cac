import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { openDatabase, type Database } from '../../src/storage/sqlite-database.ts';

/**
 * Temporary SQLite database files for a test file: `file()` makes a fresh path in its own temp
 * directory, `open(path)` opens it (reopening the same path shows what survived). Everything is
 * closed and removed after the file's tests.
 */
export function tempDatabases(prefix: string): { file(): Promise<string>; open(file: string): Database } {
  const dirs: string[] = [];
  const databases: Database[] = [];
  after(async () => {
    for (const db of databases) if (db.open) db.close();
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });
  return {
    async file() {
      const dir = await mkdtemp(join(tmpdir(), prefix));
      dirs.push(dir);
      return join(dir, 'data', 'bucketmq.db');
    },
    open(file) {
      const db = openDatabase(file);
      databases.push(db);
      return db;
    },
  };
}
