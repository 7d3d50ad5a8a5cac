import type { CommitWaiter } from './group-commit.ts';
import type { DataRecord } from './record.ts';
import type { DataFilter, DataQuery } from './query.ts';

/** One bucket of an aggregate query: the interval start (epoch ms) and the function's result. */
export interface AggregatePoint {
  variable: string;
  time: number;
  value: number;
}

export type QueryResult =
  | { kind: 'records'; records: DataRecord[] }
  | { kind: 'number'; value: number }
  | { kind: 'aggregate'; points: AggregatePoint[] };

/**
 * Where records live (SPEC §3). Implementations: SqliteBucketStore (embedded default) and
 * PostgresBucketStore; both pass test/data/bucket-store.contract.ts.
 *
 * `insert` resolves only once the records are durable, and is group-committed: concurrent callers
 * share one transaction, so throughput holds under load; a failed batch rejects exactly its callers.
 */
export interface BucketStore {
  insert(records: DataRecord[]): Promise<void>;
  /** `insert` without a promise: `waiter.committed` is called once the records are durable or refused. */
  submit(waiter: CommitWaiter<DataRecord>): void;
  query(deviceId: string, query: DataQuery): Promise<QueryResult>;
  /** Mutable devices: sets fields of matching records; returns how many changed. */
  update(deviceId: string, filter: DataFilter, patch: Partial<Pick<DataRecord, 'value' | 'unit' | 'time' | 'group' | 'location' | 'metadata'>>): Promise<number>;
  /** Deletes matching records (no filter fields = all of the device's); returns how many. */
  delete(deviceId: string, filter: DataFilter): Promise<number>;
  /** Immutable devices: deletes records older than `before` (epoch ms). */
  deleteOlderThan(deviceId: string, before: number): Promise<number>;
  /** Mutable devices: keeps the newest `cap` records. */
  enforceCap(deviceId: string, cap: number): Promise<number>;
  /** Streams matching records oldest first, in pages (exports of any size). */
  stream(deviceId: string, filter: DataFilter): AsyncIterable<DataRecord>;
  close(): Promise<void>;
}
