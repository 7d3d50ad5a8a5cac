import type { DeliveryFilter } from '../hooks.ts';
import type { Message } from '../message.ts';
import type { Session, SessionObserver } from '../session/session.ts';
import type { SubscriptionOptions } from '../session/session-store.ts';
import { RetainedIndex } from './retained-index.ts';
import type { RetainedStore } from './retained-store.ts';

/**
 * The retainer (MQTT 5 §3.3.1.3): the last retained message of each topic, per namespace, held in
 * memory (RetainedIndex, a tree over topic levels) and written through to the RetainedStore.
 *
 * Rules: an empty payload clears the topic; every message a new subscription matches is sent with
 * the retain flag, passing its delivery filter; an expired one is removed when a subscription meets it.
 *
 * Cost: nothing for a publish without the retain flag. With it, one walk down the topic's levels
 * and one store write (write-behind: the publisher's ack waits for its commit). On subscribe, only
 * the branches the filter can match are visited.
 */
export class Retainer {
  readonly #indexes = new Map<string, RetainedIndex>();
  readonly #store: RetainedStore;
  readonly #observer: SessionObserver;

  constructor(store: RetainedStore, observer: SessionObserver) {
    this.#store = store;
    this.#observer = observer;
  }

  /** Loads the persisted retained messages; call once before listening. */
  async load(): Promise<void> {
    for (const { namespace, message } of await this.#store.loadAll()) this.#index(namespace).set(message);
  }

  /** Keeps (or, with an empty payload, clears) a topic's retained message; true when the store was written. */
  store(namespace: string, message: Message): boolean {
    const index = this.#index(namespace);
    if (message.payload.length === 0) {
      if (!index.delete(message.topic)) return false;
      this.#store.delete(namespace, message.topic);
      return true;
    }
    index.set(message);
    this.#store.set(namespace, message);
    return true;
  }

  /**
   * Sends the retained messages matching a new subscription (always with the retain flag), each
   * passing the subscription's delivery filter when it has one.
   */
  sendOnSubscribe(session: Session, topicFilter: string, options: SubscriptionOptions, deliver: DeliveryFilter | null = null): void {
    const index = this.#indexes.get(session.namespace);
    if (index === undefined) return;
    const now = this.#observer.clock.now();
    const subscriptionIds = options.subscriptionId !== 0 ? [options.subscriptionId] : null;
    for (const message of index.match(topicFilter)) {
      if (message.expiresAt !== 0 && message.expiresAt <= now) {
        index.delete(message.topic);
        this.#store.delete(session.namespace, message.topic);
        continue;
      }
      if (deliver !== null && !deliver.allows(message.topic)) {
        this.#observer.messageDropped(session, message, deliver.reason);
        continue;
      }
      session.offer(message, Math.min(message.qos, options.qos) as 0 | 1 | 2, true, subscriptionIds, null);
    }
  }

  #index(namespace: string): RetainedIndex {
    let index = this.#indexes.get(namespace);
    if (index === undefined) this.#indexes.set(namespace, (index = new RetainedIndex()));
    return index;
  }
}
