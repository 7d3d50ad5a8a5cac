import type { DurabilityBarrier } from '../durability.ts';
import type { Message } from '../message.ts';

/**
 * Persistence for retained messages. The broker keeps its own in-memory index for matching
 * (RetainedIndex); a store only makes the set durable. Writes are fire-and-forget and batched by
 * durable implementations; `flush` forces them out, and `whenDurable` tells a waiter (the PUBACK/PUBREC
 * of a retained QoS 1/2 publish) when what was issued so far is committed. Implementations:
 * `MemoryRetainedStore` and `SqliteRetainedStore`; both pass test/broker/retained-store.contract.ts.
 */
export interface RetainedStore extends DurabilityBarrier {
  /** Every retained message, per namespace, for start-up. */
  loadAll(): Promise<Array<{ namespace: string; message: Message }>>;
  /** Stores (or replaces) the retained message of `message.topic` in `namespace`. */
  set(namespace: string, message: Message): void;
  /** Clears the retained message of a topic. */
  delete(namespace: string, topic: string): void;
  flush(): Promise<void>;
  close(): Promise<void>;
}
