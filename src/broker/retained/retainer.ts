import type { DeliveryFilter } from '../hooks.ts';
import type { Message } from '../message.ts';
import { isSysTopic } from '../routing/topic.ts';
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
 * A namespace is read from the store on its first subscription that asks for retained messages, not
 * at start-up (issue 15: restart time grew with the retained set); until then its retained publishes
 * only write through, and the store's `load` includes those not yet committed.
 *
 * `$SYS/...` messages (sys-topics.ts) are kept in memory only, never written to the store: they are
 * the running process's figures, replaced every interval, meaningless after a restart (Mosquitto does
 * not persist them either), and writing them would add a store batch per namespace per interval.
 *
 * Cost: nothing for a publish without the retain flag. With it, one store write (write-behind: the
 * publisher's ack waits for its commit), plus one walk down the topic's levels once the namespace is
 * loaded. On subscribe, only the branches the filter can match are visited; the first one of a
 * namespace reads its rows synchronously first, blocking the event loop for it (~3–6 µs a message
 * here, most of it SQLite copying payloads: 60–120 ms for 20k messages; bench/restart.ts).
 */
export class Retainer {
  readonly #indexes = new Map<string, RetainedIndex>();
  /** `$SYS` messages per namespace, in memory only (see above). */
  readonly #sys = new Map<string, RetainedIndex>();
  readonly #store: RetainedStore;
  readonly #observer: SessionObserver;

  constructor(store: RetainedStore, observer: SessionObserver) {
    this.#store = store;
    this.#observer = observer;
  }

  /** Keeps (or, with an empty payload, clears) a topic's retained message; true when the store was written. */
  store(namespace: string, message: Message): boolean {
    if (isSysTopic(message.topic)) {
      this.#storeSys(namespace, message);
      return false;
    }
    const index = this.#indexes.get(namespace);
    if (message.payload.length === 0) {
      // Not loaded: whether the topic holds a message is unknown here, and a delete of nothing is harmless.
      if (index !== undefined && !index.delete(message.topic)) return false;
      this.#store.delete(namespace, message.topic);
      return true;
    }
    index?.set(message);
    this.#store.set(namespace, message);
    return true;
  }

  /**
   * Sends the retained messages matching a new subscription (always with the retain flag), each
   * passing the subscription's delivery filter when it has one.
   */
  sendOnSubscribe(session: Session, topicFilter: string, options: SubscriptionOptions, deliver: DeliveryFilter | null = null): void {
    const index = this.#loaded(session.namespace);
    const now = this.#observer.clock.now();
    const subscriptionIds = options.subscriptionId !== 0 ? [options.subscriptionId] : null;
    const sys = this.#sys.get(session.namespace);
    // '#' and '+' never match '$SYS' (MQTT 5 §4.7.2), so only a filter starting with '$' looks there.
    if (sys !== undefined && topicFilter.startsWith('$')) {
      for (const message of sys.match(topicFilter)) session.offer(message, Math.min(message.qos, options.qos) as 0 | 1 | 2, true, subscriptionIds, null);
    }
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

  /** Retained messages of a namespace, or of all (the store's count: `$SYS` ones are not included). */
  count(namespace?: string): number {
    return this.#store.count(namespace);
  }

  #storeSys(namespace: string, message: Message): void {
    let index = this.#sys.get(namespace);
    if (message.payload.length === 0) {
      index?.delete(message.topic);
      return;
    }
    if (index === undefined) this.#sys.set(namespace, (index = new RetainedIndex()));
    index.set(message);
  }

  #loaded(namespace: string): RetainedIndex {
    let index = this.#indexes.get(namespace);
    if (index === undefined) {
      index = new RetainedIndex();
      for (const message of this.#store.load(namespace)) index.set(message);
      this.#indexes.set(namespace, index);
    }
    return index;
  }
}
