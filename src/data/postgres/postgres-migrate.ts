import type { Pool } from 'pg';

/**
 * PostgreSQL counterpart of src/storage/sqlite-database.ts `migrate`: each component owns an
 * append-only list of migrations (`migrations[i]` is version i + 1; never edit a shipped one, add a new
 * one). Applied versions live in `bucketmq_schema_migrations`.
 *
 * Each migration runs in its own transaction (PostgreSQL DDL is transactional), under a transaction-scoped
 * advisory lock keyed by the component, so two processes starting together apply each step once and a
 * failure leaves the previous version intact. Returns the schema version.
 */
export async function migratePostgres(pool: Pool, component: string, migrations: readonly string[]): Promise<number> {
  await pool.query(`CREATE TABLE IF NOT EXISTS bucketmq_schema_migrations (
    component  text        NOT NULL,
    version    integer     NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
  )`).catch((error: unknown) => {
    // Two processes creating the table at once: one loses the race on the catalog's unique index.
    if (!isUniqueViolation(error)) throw error;
  });

  const newest = await appliedVersions(pool, component).then((v) => Math.max(0, ...v));
  if (newest > migrations.length) {
    throw new Error(
      `database schema for '${component}' is at version ${newest} but this build knows only ${migrations.length}; refusing to run an older build against a newer schema`,
    );
  }

  for (let index = 0; index < migrations.length; index++) {
    const version = index + 1;
    if (version <= newest) continue;
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`bucketmq_schema_migrations:${component}`]);
      // Re-read under the lock: another process may have applied it since we looked.
      const done = await client.query('SELECT 1 FROM bucketmq_schema_migrations WHERE component = $1 AND version = $2', [component, version]);
      if (done.rowCount === 0) {
        await client.query(migrations[index] as string);
        await client.query('INSERT INTO bucketmq_schema_migrations (component, version) VALUES ($1, $2)', [component, version]);
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }
  return migrations.length;
}

async function appliedVersions(pool: Pool, component: string): Promise<number[]> {
  const result = await pool.query<{ version: number }>('SELECT version FROM bucketmq_schema_migrations WHERE component = $1', [component]);
  return result.rows.map((r) => r.version);
}

function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '23505';
}
