import type { DurabilityBarrier } from '../durability.ts';
import type { Message } from '../message.ts';

/**
 * Persistence for retained messages. The broker keeps its own in-memory index for matching
 * (RetainedIndex), filled per namespace on first use (`load`); a store makes the set durable. Writes
 * are fire-and-forget and batched by durable implementations; `flush` forces them out, and
 * `whenDurable` tells a waiter (the PUBACK/PUBREC of a retained QoS 1/2 publish) when what was issued
 * so far is committed. Implementations: `MemoryRetainedStore` and `SqliteRetainedStore`; both pass
 * test/broker/retained-store.contract.ts.
 */
export interface RetainedStore extends DurabilityBarrier {
  /**
   * Every retained message of one namespace, in no particular order, including writes issued but
   * not yet committed (a pending set replaces or adds, a pending delete removes). Expired messages
   * are included: the store knows no clock. Synchronous, so that the broker loads a namespace inside
   * the SUBSCRIBE that needs it, with no publish slipping in between.
   */
  load(namespace: string): Message[];
  /** Stores (or replaces) the retained message of `message.topic` in `namespace`. */
  set(namespace: string, message: Message): void;
  /** Clears the retained message of a topic (nothing happens when it has none). */
  delete(namespace: string, topic: string): void;
  /**
   * Retained messages of one namespace, or of all: what is committed (writes of the current batch
   * may not show yet). For metrics and $SYS, read every few seconds, never per message.
   */
  count(namespace?: string): number;
  flush(): Promise<void>;
  close(): Promise<void>;
}
