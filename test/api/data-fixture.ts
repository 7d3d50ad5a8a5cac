/**
 * Data API test fixture: the admin fixture (in-memory registry, one account) plus a real SQLite
 * bucket store and an Ingestor, wired into buildApiServer's `data` option; device helpers; and a
 * raw inject call that sets any headers (the device token forms differ from the admin ones).
 */
import type { FastifyInstance } from 'fastify';
import { SqliteBucketStore } from '../../src/data/sqlite/sqlite-bucket-store.ts';
import { Ingestor } from '../../src/data/ingest.ts';
import type { DataRecord } from '../../src/data/record.ts';
import { validateRecords } from '../../src/data/validate-record.ts';
import { openDatabase, type Database } from '../../src/storage/sqlite-database.ts';
import type { DeviceType, Permission } from '../../src/tenancy/model.ts';
import { apiFixture, type Answer, type ApiFixture } from './helpers.ts';

export interface DataFixture extends ApiFixture {
  store: SqliteBucketStore;
  ingestor: Ingestor;
  storeDb: Database;
  /** A device of the fixture's account and its `full` token. */
  device(type?: DeviceType, name?: string): { id: string; token: string };
  /** Another token of a device. */
  deviceToken(deviceId: string, permission: Permission): string;
  /** Stores records straight into the bucket (bypassing HTTP). */
  seed(deviceId: string, input: unknown): Promise<DataRecord[]>;
  /** One request with exactly these headers (no default token). */
  raw(method: string, url: string, options?: { headers?: Record<string, string>; payload?: string | Buffer | object }): Promise<Answer & { headers: Record<string, unknown>; text: string }>;
}

export function dataFixture(options: { bodyLimit?: number } = {}): DataFixture {
  const storeDb = openDatabase(':memory:');
  const store = new SqliteBucketStore(storeDb);
  const ingestor = new Ingestor(store);
  const base = apiFixture({ data: { store, ingestor, ...(options.bodyLimit === undefined ? {} : { bodyLimit: options.bodyLimit }) } });
  let n = 0;
  return {
    ...base,
    store,
    ingestor,
    storeDb,
    device(type = 'immutable', name = `device-${++n}`) {
      const created = base.registry.createDevice(base.accountId, { name, type });
      return { id: created.device.id, token: created.token };
    },
    deviceToken(deviceId, permission) {
      return base.registry.createDeviceToken(base.accountId, deviceId, { name: `${permission}-token`, permission }).token;
    },
    async seed(deviceId, input) {
      const records = validateRecords(input, { deviceId, now: Date.now() });
      await store.insert(records);
      return records;
    },
    raw: (method, url, rawOptions = {}) => rawCall(base.app, method, url, rawOptions),
    async close() {
      await base.app.close();
      await store.close();
      storeDb.close();
      base.db.close();
    },
  };
}

async function rawCall(
  app: FastifyInstance,
  method: string,
  url: string,
  options: { headers?: Record<string, string>; payload?: string | Buffer | object },
): Promise<Answer & { headers: Record<string, unknown>; text: string }> {
  const response = await app.inject({
    method: method as 'GET',
    url,
    headers: options.headers ?? {},
    ...(options.payload === undefined ? {} : { payload: options.payload }),
  });
  let body: unknown = response.body;
  try {
    body = JSON.parse(response.body);
  } catch {
    // left as text
  }
  return { status: response.statusCode, body, headers: response.headers, text: response.body };
}

/** An ISO time `ms` before now. */
export function ago(ms: number): string {
  return new Date(Date.now() - ms).toISOString();
}

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
