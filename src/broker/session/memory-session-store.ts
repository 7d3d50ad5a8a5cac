import type { DurableWaiter } from '../durability.ts';
import type { SessionRow, SessionStore, StoredOutbound, StoredSession, StoredWill, SubscriptionOptions } from './session-store.ts';

/** What the store holds per session key; `row` is null until saveSession, as in the SQLite tables. */
interface SessionRecord {
  row: SessionRow | null;
  subscriptions: Map<string, SubscriptionOptions>;
  outbound: Map<number, StoredOutbound>;
  inboundQos2: Set<number>;
  will: StoredWill | null;
}

/**
 * Sessions kept in Maps. Nothing survives the process, but state survives `close()`: a test can stop a
 * broker and start another over the same store object to exercise a restart without a database.
 * Entries are copied in and out so neither side can mutate the other's objects (messages themselves
 * are immutable and shared).
 */
export class MemorySessionStore implements SessionStore {
  #records = new Map<string, SessionRecord>();

  async loadAll(): Promise<StoredSession[]> {
    const sessions: StoredSession[] = [];
    for (const record of this.#records.values()) {
      // Like the SQLite store, subscriptions or messages without a saved session are not a session.
      if (record.row === null) continue;
      sessions.push({
        ...record.row,
        client: record.row.client === null ? null : { ...record.row.client },
        subscriptions: [...record.subscriptions].map(([filter, options]) => [filter, { ...options }]),
        outbound: [...record.outbound.values()].sort((a, b) => a.seq - b.seq).map(copyOutbound),
        inboundQos2: [...record.inboundQos2].sort((a, b) => a - b),
        will: record.will === null ? null : copyWill(record.will),
      });
    }
    return sessions;
  }

  saveSession(session: SessionRow): void {
    const { key, namespace, clientId, expiryInterval, disconnectedAt, client } = session;
    this.#record(key).row = { key, namespace, clientId, expiryInterval, disconnectedAt, client: client === null ? null : { ...client } };
  }

  deleteSession(key: string): void {
    this.#records.delete(key);
  }

  setSubscription(key: string, filter: string, options: SubscriptionOptions): void {
    this.#record(key).subscriptions.set(filter, { ...options });
  }

  deleteSubscription(key: string, filter: string): void {
    this.#records.get(key)?.subscriptions.delete(filter);
  }

  addOutbound(key: string, entry: StoredOutbound): void {
    this.#record(key).outbound.set(entry.seq, copyOutbound(entry));
  }

  updateOutbound(key: string, seq: number, packetId: number, state: StoredOutbound['state']): void {
    const entry = this.#records.get(key)?.outbound.get(seq);
    if (entry === undefined) return;
    entry.packetId = packetId;
    entry.state = state;
  }

  removeOutbound(key: string, seq: number): void {
    this.#records.get(key)?.outbound.delete(seq);
  }

  addInboundQos2(key: string, packetId: number): void {
    this.#record(key).inboundQos2.add(packetId);
  }

  removeInboundQos2(key: string, packetId: number): void {
    this.#records.get(key)?.inboundQos2.delete(packetId);
  }

  setWill(key: string, will: StoredWill | null): void {
    if (will !== null) this.#record(key).will = copyWill(will);
    else {
      const record = this.#records.get(key);
      if (record !== undefined) record.will = null;
    }
  }

  /** Nothing is ever pending here. */
  whenDurable(waiter: DurableWaiter): void {
    waiter.durable(true);
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {}

  #record(key: string): SessionRecord {
    let record = this.#records.get(key);
    if (record === undefined) {
      record = { row: null, subscriptions: new Map(), outbound: new Map(), inboundQos2: new Set(), will: null };
      this.#records.set(key, record);
    }
    return record;
  }
}

function copyOutbound(entry: StoredOutbound): StoredOutbound {
  return { ...entry, subscriptionIds: [...entry.subscriptionIds] };
}

function copyWill(will: StoredWill): StoredWill {
  return { ...will, client: { ...will.client } };
}
