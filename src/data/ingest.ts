import type { BucketStore } from './bucket-store.ts';
import type { DataRecord } from './record.ts';
import { validateRecords } from './validate-record.ts';

export interface IngestOptions {
  /** Merged into each record's metadata (e.g. `{ mqtt_topic }`). */
  metadata?: Record<string, unknown>;
  /** Arrival time, epoch ms (default now). */
  now?: number;
}

/** Called after records are durable (e.g. to update the device's last_input). */
export type StoredListener = (deviceId: string, records: DataRecord[]) => void;

/**
 * The one path by which data enters a bucket, from MQTT (actions, `tago/data/post`) and HTTP alike:
 * record input → validation (SPEC §3) → group-committed insert. Resolves with the number of records
 * once they are durable; rejects with a RecordError (the caller's fault) or a store error.
 * Payload parsers (SPEC §4) plug in before validation.
 */
export class Ingestor {
  readonly #store: BucketStore;
  readonly #listeners: StoredListener[] = [];

  constructor(store: BucketStore) {
    this.#store = store;
  }

  onStored(listener: StoredListener): void {
    this.#listeners.push(listener);
  }

  async ingest(deviceId: string, input: unknown, options: IngestOptions = {}): Promise<number> {
    const records = validateRecords(input, { deviceId, now: options.now ?? Date.now(), metadata: options.metadata });
    await this.#store.insert(records);
    for (const listener of this.#listeners) listener(deviceId, records);
    return records.length;
  }
}
