import type { DurableWaiter } from '../durability.ts';
import type { Message } from '../message.ts';
import type { RetainedStore } from './retained-store.ts';

/**
 * Retained messages kept in Maps (namespace -> topic -> message). Nothing survives the process, but
 * state survives `close()` so a test can restart a broker in-process over the same store object.
 * Messages are immutable and shared, so they are stored by reference.
 */
export class MemoryRetainedStore implements RetainedStore {
  #namespaces = new Map<string, Map<string, Message>>();

  load(namespace: string): Message[] {
    const topics = this.#namespaces.get(namespace);
    return topics === undefined ? [] : [...topics.values()];
  }

  set(namespace: string, message: Message): void {
    let topics = this.#namespaces.get(namespace);
    if (topics === undefined) {
      topics = new Map();
      this.#namespaces.set(namespace, topics);
    }
    topics.set(message.topic, message);
  }

  delete(namespace: string, topic: string): void {
    const topics = this.#namespaces.get(namespace);
    if (topics === undefined) return;
    topics.delete(topic);
    if (topics.size === 0) this.#namespaces.delete(namespace);
  }

  count(namespace?: string): number {
    if (namespace !== undefined) return this.#namespaces.get(namespace)?.size ?? 0;
    let n = 0;
    for (const topics of this.#namespaces.values()) n += topics.size;
    return n;
  }

  /** Nothing is ever pending here. */
  whenDurable(waiter: DurableWaiter): void {
    waiter.durable(true);
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {}
}
