import type { Database } from '../../storage/sqlite-database.ts';
import { migrate } from '../../storage/sqlite-database.ts';
import { notifyWaiters, type DurableWaiter } from '../durability.ts';
import type { Message } from '../message.ts';
import {
  messageColumnValues,
  messageFromColumns,
  reportToStderr,
  type MessageColumns,
  type MessageColumnValues,
  type SqliteStoreOptions,
  type StoreErrorReporter,
  type WriteBehindStats,
} from '../session/sqlite-session-store.ts';
import type { RetainedStore } from './retained-store.ts';

const MIGRATIONS = [
  `CREATE TABLE mqtt_retained (
     namespace  TEXT    NOT NULL,
     topic      TEXT    NOT NULL,
     payload    BLOB    NOT NULL,
     qos        INTEGER NOT NULL,
     retain     INTEGER NOT NULL,
     properties TEXT,
     expires_at INTEGER NOT NULL,
     origin     TEXT    NOT NULL,
     PRIMARY KEY (namespace, topic)
   );`,
];

/** The latest write for one (namespace, topic) in the current batch; message null = delete. */
interface PendingWrite {
  namespace: string;
  topic: string;
  message: Message | null;
}

/**
 * Retained messages in SQLite (component 'broker-retained', table `mqtt_retained`). Write-behind like
 * SqliteSessionStore, but coalesced: a sensor re-publishing its retained state many times in one tick
 * writes only the last value. One transaction per event-loop turn; the acknowledgements waiting on
 * that batch (`whenDurable`) are told right after its commit, so a retained QoS 1/2 publish is
 * acknowledged in the same turn as before plus one setImmediate, never per message. The database
 * belongs to the caller; `close` flushes and stops writes.
 *
 * `load` reads one namespace (a range of the primary key) and lays the pending batch over it, so a
 * write of this tick is neither lost nor shadowed by its older row, without committing early. Cost:
 * the namespace's rows, plus one pass over the pending writes (one tick's worth) when any exist.
 */
export class SqliteRetainedStore implements RetainedStore {
  #reportError: StoreErrorReporter;
  /** Keyed by namespace + '\u0000' + topic; a later write to the same topic replaces the earlier one. */
  #pending = new Map<string, PendingWrite>();
  /** Acknowledgements waiting for the pending batch (SPEC §2: durable before PUBACK/PUBREC). */
  #waiters: DurableWaiter[] = [];
  #scheduled: NodeJS.Immediate | null = null;
  #closed = false;
  #stats: WriteBehindStats = { batches: 0, ops: 0, failed: 0 };
  #flushOnTimer = (): void => {
    this.#scheduled = null;
    this.#writePending();
  };

  #upsert;
  #delete;
  #selectNamespace;
  #countNamespace;
  #countAll;
  #writeBatch;

  constructor(db: Database, options: SqliteStoreOptions = {}) {
    this.#reportError = options.reportError ?? reportToStderr;
    migrate(db, 'broker-retained', MIGRATIONS);

    this.#upsert = db.prepare<[string, ...MessageColumnValues]>(
      `INSERT OR REPLACE INTO mqtt_retained (namespace, topic, payload, qos, retain, properties, expires_at, origin)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#delete = db.prepare<[string, string]>('DELETE FROM mqtt_retained WHERE namespace = ? AND topic = ?');
    this.#selectNamespace = db.prepare<[string], MessageColumns>('SELECT topic, payload, qos, retain, properties, expires_at, origin FROM mqtt_retained WHERE namespace = ?');
    this.#countNamespace = db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM mqtt_retained WHERE namespace = ?');
    this.#countAll = db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM mqtt_retained');
    this.#writeBatch = db.transaction((writes: Iterable<PendingWrite>) => {
      for (const write of writes) {
        try {
          if (write.message === null) this.#delete.run(write.namespace, write.topic);
          else this.#upsert.run(write.namespace, ...messageColumnValues(write.message));
        } catch (error) {
          // Some errors (disk full, I/O) make SQLite roll the whole transaction back; the batch is lost.
          if (!db.inTransaction) throw error;
          this.#stats.failed++;
          const action = write.message === null ? 'delete' : 'set';
          this.#reportError(`retained store: ${action} failed for ${JSON.stringify(write.namespace)} ${JSON.stringify(write.topic)}`, error);
        }
      }
    });
  }

  /** Copy of the batching counters (ops counts coalesced writes). */
  get stats(): WriteBehindStats {
    return { ...this.#stats };
  }

  load(namespace: string): Message[] {
    const messages = this.#selectNamespace.all(namespace).map(messageFromColumns);
    if (this.#pending.size === 0) return messages;
    let byTopic: Map<string, Message> | null = null;
    for (const write of this.#pending.values()) {
      if (write.namespace !== namespace) continue;
      byTopic ??= new Map(messages.map((message) => [message.topic, message]));
      if (write.message === null) byTopic.delete(write.topic);
      else byTopic.set(write.topic, write.message);
    }
    return byTopic === null ? messages : [...byTopic.values()];
  }

  /** A range of the primary key for one namespace; a full index scan for all. */
  count(namespace?: string): number {
    return (namespace === undefined ? this.#countAll.get() : this.#countNamespace.get(namespace))?.n ?? 0;
  }

  set(namespace: string, message: Message): void {
    this.#enqueue(namespace, message.topic, message);
  }

  delete(namespace: string, topic: string): void {
    this.#enqueue(namespace, topic, null);
  }

  whenDurable(waiter: DurableWaiter): void {
    if (this.#closed) waiter.durable(false);
    else if (this.#pending.size === 0) waiter.durable(true);
    else this.#waiters.push(waiter);
  }

  async flush(): Promise<void> {
    this.#writePending();
  }

  async close(): Promise<void> {
    this.#writePending();
    this.#closed = true;
  }

  #enqueue(namespace: string, topic: string, message: Message | null): void {
    if (this.#closed) {
      this.#stats.failed++;
      this.#reportError(`retained store: write to ${JSON.stringify(namespace)} ${JSON.stringify(topic)} after close, dropped`, new Error('store closed'));
      return;
    }
    const key = namespace + '\u0000' + topic;
    const pending = this.#pending.get(key);
    if (pending === undefined) this.#pending.set(key, { namespace, topic, message });
    else pending.message = message;
    if (this.#scheduled === null) this.#scheduled = setImmediate(this.#flushOnTimer);
  }

  /** Writes the coalesced batch in one transaction. Never throws: it also runs from the timer. */
  #writePending(): void {
    if (this.#scheduled !== null) {
      clearImmediate(this.#scheduled);
      this.#scheduled = null;
    }
    if (this.#pending.size === 0) return;
    const writes = this.#pending;
    this.#pending = new Map();
    const waiters = this.#waiters;
    if (waiters.length > 0) this.#waiters = [];
    const failedBefore = this.#stats.failed;
    try {
      this.#writeBatch(writes.values());
      this.#stats.batches++;
      this.#stats.ops += writes.size - (this.#stats.failed - failedBefore);
    } catch (error) {
      this.#stats.failed = failedBefore + writes.size;
      this.#reportError(`retained store: batch of ${writes.size} writes lost`, error);
    }
    // A write that failed inside the batch fails every waiter of it: the waiters do not say which write is theirs.
    if (waiters.length > 0) notifyWaiters(waiters, this.#stats.failed === failedBefore, (error) => this.#reportError('retained store: a durability waiter threw', error));
  }
}
