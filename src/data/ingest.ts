import type { BucketStore } from './bucket-store.ts';
import { looksLikeRecords, payloadToRecordInput } from './payload-records.ts';
import type { DataRecord } from './record.ts';
import { RecordError, validateRecords } from './validate-record.ts';

export interface IngestOptions {
  /** Merged into each record's metadata (e.g. `{ mqtt_topic }`). */
  metadata?: Record<string, unknown>;
  /** Arrival time, epoch ms (default now). */
  now?: number;
  /** The message's original bytes, for a payload parser's `raw_payload` (default: the input as JSON). */
  raw?: Buffer;
  /** Where the message came from, for the inspector (e.g. 'mqtt', 'http'). */
  via?: string;
}

/** Called after records are durable (e.g. to update the device's last_input). */
export type StoredListener = (deviceId: string, records: DataRecord[]) => void;

/**
 * The payload-parser step (SPEC §4), implemented by src/parser/payload-parsers.ts. `has` is a cheap
 * synchronous check, so devices without a parser pay nothing more on the hot path.
 */
export interface ParseStep {
  has(deviceId: string): boolean;
  /** The parser's result (record input); throws a RejectedMessageError (the message's fault) or another error (overload, sandbox failure). */
  parse(deviceId: string, payload: unknown[], raw: Buffer, via: string | undefined): Promise<unknown>;
  /** A parser's result failed validation: report it where the parser's other errors go. */
  rejected(deviceId: string, error: RecordError, via: string | undefined): void;
}

/**
 * The one path by which data enters a bucket, from MQTT (actions, `tago/data/post`) and HTTP alike:
 * record input → the device's payload parser, if it has one → validation (SPEC §3) → group-committed
 * insert. Resolves with the number of records once they are durable; rejects with a
 * RejectedMessageError (the sender's fault: RecordError, ParserError) or a store error.
 */
export class Ingestor {
  readonly #store: BucketStore;
  readonly #listeners: StoredListener[] = [];
  #parsers: ParseStep | null = null;

  constructor(store: BucketStore) {
    this.#store = store;
  }

  onStored(listener: StoredListener): void {
    this.#listeners.push(listener);
  }

  /** Runs `step` on the messages of devices that have a parser. */
  useParsers(step: ParseStep): void {
    this.#parsers = step;
  }

  ingest(deviceId: string, input: unknown, options: IngestOptions = {}): Promise<number> {
    const parsers = this.#parsers;
    if (parsers !== null && parsers.has(deviceId)) return this.#parseAndStore(parsers, deviceId, input, options);
    let records: DataRecord[];
    try {
      records = validateRecords(input, { deviceId, now: options.now ?? Date.now(), metadata: options.metadata });
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#insert(deviceId, records);
  }

  async #parseAndStore(parsers: ParseStep, deviceId: string, input: unknown, options: IngestOptions): Promise<number> {
    const now = options.now ?? Date.now();
    const raw = options.raw ?? Buffer.from(JSON.stringify(input));
    // SPEC §4: a message that is not records reaches the parser as one `payload` record holding its
    // text (an HTTP body such as a network server's uplink JSON; MQTT input is wrapped already).
    const records = looksLikeRecords(input) ? input : payloadToRecordInput(raw, options.metadata);
    const parsed = await parsers.parse(deviceId, Array.isArray(records) ? records : [records], raw, options.via);
    let valid: DataRecord[];
    try {
      valid = validateRecords(parsed, { deviceId, now, metadata: options.metadata });
    } catch (error) {
      if (error instanceof RecordError) parsers.rejected(deviceId, error, options.via);
      throw error;
    }
    // Awaited here rather than returned from another async function: returning a promise from an
    // async function costs an extra promise and two more microtask turns per message.
    await this.#store.insert(valid);
    return this.#stored(deviceId, valid);
  }

  async #insert(deviceId: string, records: DataRecord[]): Promise<number> {
    await this.#store.insert(records);
    return this.#stored(deviceId, records);
  }

  #stored(deviceId: string, records: DataRecord[]): number {
    for (const listener of this.#listeners) listener(deviceId, records);
    return records.length;
  }
}
