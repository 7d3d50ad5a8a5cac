import type { BucketStore } from './bucket-store.ts';
import type { CommitWaiter } from './group-commit.ts';
import type { ParserInput } from '../parser/types.ts';
import { parsedParserPayload, parserInput, payloadToRecordInput } from './payload-records.ts';
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
  /**
   * Records inserted by an action: its run's depth + 1, so the variable triggers they set off carry
   * it and the action runner can stop a loop (src/actions/runner.ts). Default 0: a device's own message.
   */
  depth?: number;
}

/** Options of a message that arrived as bytes: the bytes are the message. */
export type BytesOptions = Omit<IngestOptions, 'raw'>;

/** Where stored records came from, as `onStored` listeners see it. */
export interface StoredSource {
  readonly via: string | undefined;
  /** See IngestOptions.depth. */
  readonly depth: number;
}

/**
 * Called after records are durable (e.g. to update the device's last_input, or to run variable
 * actions). Synchronous, inside the commit's completion: a listener that throws refuses the message.
 */
export type StoredListener = (deviceId: string, records: DataRecord[], source: StoredSource) => void;

/** A message on its way through the payload-parser step. */
export interface ParseJob {
  readonly deviceId: string;
  /** Where the message came from, for the inspector. */
  readonly via: string | undefined;
  /** The parser's result: record input, still to be validated. */
  parsed(result: unknown): void;
  /** A RejectedMessageError (the message's fault) or another error (overload, sandbox failure). */
  failed(error: Error): void;
}

/**
 * The payload-parser step (SPEC §4), implemented by src/parser/payload-parsers.ts. `has` is a cheap
 * synchronous check, so devices without a parser pay nothing more on the hot path.
 */
export interface ParseStep {
  has(deviceId: string): boolean;
  /** Runs the device's parser on one message; calls `job.parsed` or `job.failed` once, possibly before returning. */
  submit(job: ParseJob, input: ParserInput): void;
  /** A parser's result failed validation: report it where the parser's other errors go. */
  rejected(deviceId: string, error: RecordError, via: string | undefined): void;
}

/**
 * Hears how messages handed to `Ingestor.submit` ended. One receiver serves a whole kind of caller
 * (MQTT publishes, HTTP requests); `tag` is the caller's own per-message object.
 */
export interface IngestReceiver<T> {
  /** The message's records are durable. */
  stored(tag: T, count: number): void;
  /** A RejectedMessageError (the sender's fault: RecordError, ParserError) or a store or sandbox error. */
  refused(tag: T, error: Error): void;
}

/**
 * The one path by which data enters a bucket, from MQTT (actions, `tago/data/post`) and HTTP alike:
 * record input → the device's payload parser, if it has one → validation (SPEC §3) → group-committed
 * insert. `ingest` resolves with the number of records once they are durable; `submit` is the same
 * path for callers that take the answer through a receiver.
 *
 * Each message travels as one IngestJob, which is at once the parser step's job and the group
 * commit's waiter: between arrival and acknowledgement a message holds no promise or closure (under
 * ingest thousands of messages wait in the sandbox or for a commit, and what each holds is what the
 * garbage collector copies at every scavenge).
 */
export class Ingestor {
  readonly #path: IngestPath;

  constructor(store: BucketStore) {
    this.#path = { store, parsers: null, listeners: [] };
  }

  onStored(listener: StoredListener): void {
    this.#path.listeners.push(listener);
  }

  /** Runs `step` on the messages of devices that have a parser. */
  useParsers(step: ParseStep): void {
    this.#path.parsers = step;
  }

  ingest(deviceId: string, input: unknown, options: IngestOptions = {}): Promise<number> {
    return new Promise<number>((resolve, reject) => this.submit(deviceId, input, options, PROMISE_RECEIVER, { resolve, reject }));
  }

  /** `ingest` for a caller that hears the result through `receiver` (called once, possibly before this returns). */
  submit<T>(deviceId: string, input: unknown, options: IngestOptions, receiver: IngestReceiver<T>, tag: T): void {
    const job = this.#job(deviceId, options, receiver, tag);
    const parsers = this.#path.parsers;
    if (parsers === null || !parsers.has(deviceId)) {
      job.store(input, false);
      return;
    }
    let parse: ParserInput;
    try {
      const raw = options.raw ?? Buffer.from(JSON.stringify(input));
      // SPEC §4: parsed JSON reaches the parser as it would from the bytes; a JSON scalar as the
      // `payload` record of its text.
      const payload = parsedParserPayload(input, options.metadata);
      parse = payload === null ? parserInput(raw, options.metadata) : { payload, raw };
    } catch (error) {
      job.failed(asError(error));
      return;
    }
    parsers.submit(job, parse);
  }

  /**
   * A message that arrived as bytes (an MQTT publish, a raw HTTP body): its JSON records, or one
   * `payload` record of its text or hex; a parser sees other JSON parsed (payload-records.ts `parserInput`).
   */
  ingestBytes(deviceId: string, bytes: Buffer, options: BytesOptions = {}): Promise<number> {
    return new Promise<number>((resolve, reject) => this.submitBytes(deviceId, bytes, options, PROMISE_RECEIVER, { resolve, reject }));
  }

  /** `ingestBytes` for a caller that hears the result through `receiver` (called once, possibly before this returns). */
  submitBytes<T>(deviceId: string, bytes: Buffer, options: BytesOptions, receiver: IngestReceiver<T>, tag: T): void {
    const job = this.#job(deviceId, options, receiver, tag);
    const parsers = this.#path.parsers;
    if (parsers === null || !parsers.has(deviceId)) job.store(payloadToRecordInput(bytes, options.metadata), false);
    else parsers.submit(job, parserInput(bytes, options.metadata));
  }

  #job<T>(deviceId: string, options: BytesOptions, receiver: IngestReceiver<T>, tag: T): IngestJob {
    return new IngestJob(this.#path, deviceId, options.now ?? Date.now(), options.metadata, options.via, options.depth ?? 0, receiver as IngestReceiver<unknown>, tag);
  }
}

/** What every job of one Ingestor shares. */
interface IngestPath {
  readonly store: BucketStore;
  parsers: ParseStep | null;
  readonly listeners: StoredListener[];
}

const NO_RECORDS: DataRecord[] = [];

/** One message from arrival to durable records (or refusal). */
class IngestJob implements ParseJob, CommitWaiter<DataRecord>, StoredSource {
  readonly deviceId: string;
  readonly via: string | undefined;
  readonly depth: number;
  /** The validated records, once there are some. */
  items: DataRecord[] = NO_RECORDS;
  readonly #path: IngestPath;
  readonly #now: number;
  readonly #metadata: Record<string, unknown> | undefined;
  readonly #receiver: IngestReceiver<unknown>;
  readonly #tag: unknown;

  constructor(path: IngestPath, deviceId: string, now: number, metadata: Record<string, unknown> | undefined, via: string | undefined, depth: number, receiver: IngestReceiver<unknown>, tag: unknown) {
    this.#path = path;
    this.deviceId = deviceId;
    this.#now = now;
    this.#metadata = metadata;
    this.via = via;
    this.depth = depth;
    this.#receiver = receiver;
    this.#tag = tag;
  }

  parsed(result: unknown): void {
    this.store(result, true);
  }

  failed(error: Error): void {
    this.#receiver.refused(this.#tag, error);
  }

  /** Validates record input and hands the records to the store; `parsed`: it came out of a payload parser. */
  store(input: unknown, parsed: boolean): void {
    try {
      this.items = validateRecords(input, { deviceId: this.deviceId, now: this.#now, metadata: this.#metadata });
    } catch (error) {
      if (parsed && error instanceof RecordError) this.#path.parsers?.rejected(this.deviceId, error, this.via);
      this.failed(asError(error));
      return;
    }
    this.#path.store.submit(this);
  }

  committed(error: Error | null): void {
    if (error !== null) {
      this.failed(error);
      return;
    }
    const listeners = this.#path.listeners;
    try {
      for (let i = 0; i < listeners.length; i++) listeners[i]!(this.deviceId, this.items, this);
    } catch (listenerError) {
      this.failed(asError(listenerError));
      return;
    }
    this.#receiver.stored(this.#tag, this.items.length);
  }
}

interface PromiseCallbacks {
  resolve(count: number): void;
  reject(error: Error): void;
}

/** `ingest`'s receiver: settles the promise whose resolving functions are the tag. */
const PROMISE_RECEIVER: IngestReceiver<PromiseCallbacks> = {
  stored(tag, count) {
    tag.resolve(count);
  },
  refused(tag, error) {
    tag.reject(error);
  },
};

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
