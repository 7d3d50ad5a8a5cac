/**
 * What `GET /ready` checks (issue 16): the listeners are bound, and both stores really take a write
 * and give it back: a one-row table in the registry database (bucketmq.db), and one record of the
 * reserved device id `$ready` in the bucket store, written through the same group commit as device
 * data, read back by id, then deleted (`$` never starts a generated device id).
 *
 * Cost per check: one SQLite upsert and select on the event loop (microseconds), one bucket commit,
 * query and delete. The probe record counts in bucketmq_records_stored_total.
 */
import { randomUUID } from 'node:crypto';
import type { BucketStore } from '../data/bucket-store.ts';
import { migrate, type Database } from '../storage/sqlite-database.ts';

/** The device id of the bucket store's probe record. */
export const READY_PROBE_DEVICE = '$ready';

const MIGRATIONS = ['CREATE TABLE ready_probe (id INTEGER PRIMARY KEY CHECK (id = 1), value TEXT NOT NULL);'];

export interface ReadinessParts {
  registryDb: Database;
  buckets: BucketStore;
  /** True once every listener is bound, false again when the server stops. */
  listening(): boolean;
}

export type ReadinessReport = Record<'listeners' | 'registry' | 'buckets', string>;

export class Readiness {
  readonly #parts: ReadinessParts;
  readonly #write;
  readonly #read;

  constructor(parts: ReadinessParts) {
    this.#parts = parts;
    migrate(parts.registryDb, 'ready-probe', MIGRATIONS);
    this.#write = parts.registryDb.prepare<[string]>('INSERT OR REPLACE INTO ready_probe (id, value) VALUES (1, ?)');
    this.#read = parts.registryDb.prepare<[], string>('SELECT value FROM ready_probe WHERE id = 1').pluck();
  }

  /** Each part: 'ok', or what is wrong with it. */
  async check(): Promise<{ ready: boolean; report: ReadinessReport }> {
    const report: ReadinessReport = {
      listeners: this.#parts.listening() ? 'ok' : 'not bound',
      registry: this.#checkRegistry(),
      buckets: await this.#checkBuckets(),
    };
    return { ready: Object.values(report).every((state) => state === 'ok'), report };
  }

  #checkRegistry(): string {
    const value = randomUUID();
    try {
      this.#write.run(value);
      return this.#read.get() === value ? 'ok' : 'the value written was not read back';
    } catch (error) {
      return `not writable: ${messageOf(error)}`;
    }
  }

  async #checkBuckets(): Promise<string> {
    const id = randomUUID();
    const { buckets } = this.#parts;
    try {
      const now = Date.now();
      await buckets.insert([{ id, device: READY_PROBE_DEVICE, variable: 'ready', value: true, unit: null, time: now, group: id, location: null, metadata: null, created_at: now }]);
      const found = await buckets.query(READY_PROBE_DEVICE, { mode: 'default', ids: [id], qty: 1, skip: 0, ordination: 'descending' });
      await buckets.delete(READY_PROBE_DEVICE, {});
      return found.kind === 'records' && found.records.length === 1 ? 'ok' : 'the record written was not read back';
    } catch (error) {
      return `not writable: ${messageOf(error)}`;
    }
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
