/**
 * PostgreSQL for tests. The server comes from BUCKETMQ_TEST_PG_URL (`.ci/run` starts the machine's
 * PostgreSQL and sets it; locally see README "Tests"). Unset: PostgreSQL suites skip with a message,
 * except under CI (CI=true), where a missing server is a failure, so CI really runs them.
 *
 * Each store gets its own schema `t_<random>` (dropped on cleanup), so parallel test files and parallel
 * runs on one server never see each other's rows.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PostgresBucketStore, type PostgresBucketStoreOptions } from '../../src/data/postgres/postgres-bucket-store.ts';

export const PG_URL_ENV = 'BUCKETMQ_TEST_PG_URL';

export const pgUrl: string | undefined = process.env[PG_URL_ENV] || undefined;

/**
 * `skip` option for describe/test: false when a server is configured; otherwise a message (locally).
 * In CI a missing server throws here, at load time, so the test file fails.
 */
export function pgSkip(): false | string {
  if (pgUrl !== undefined) return false;
  if (process.env.CI === 'true') {
    throw new Error(`${PG_URL_ENV} is not set, but CI=true: the PostgreSQL suites must run in CI (.ci/run sets it)`);
  }
  return `PostgreSQL tests skipped: set ${PG_URL_ENV}=postgres://user:password@127.0.0.1:5432/db to run them`;
}

export function requirePgUrl(): string {
  if (pgUrl === undefined) throw new Error(`${PG_URL_ENV} is not set`);
  return pgUrl;
}

export function randomSchema(): string {
  return `t_${randomBytes(6).toString('hex')}`;
}

/** A PostgresBucketStore in a fresh schema; cleanup closes it and drops the schema. */
export async function openTestStore(options: Partial<PostgresBucketStoreOptions> = {}): Promise<{ store: PostgresBucketStore; schema: string; cleanup: () => Promise<void> }> {
  const schema = options.schema ?? randomSchema();
  const store = await PostgresBucketStore.open({ connectionString: requirePgUrl(), poolSize: 3, ...options, schema });
  return {
    store,
    schema,
    cleanup: async () => {
      await store.close();
      await dropSchema(schema);
    },
  };
}

/** One plain connection (not the store's pool), searching `schema`. */
export async function freshClient(schema?: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: requirePgUrl(), ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }) });
  await client.connect();
  return client;
}

export async function dropSchema(schema: string): Promise<void> {
  const client = await freshClient();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}
