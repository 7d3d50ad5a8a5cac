import { RingQueue } from '../../ring-queue.ts';
import type { Outbound } from './outbound.ts';

/** Slots of a queue's first allocation: most sessions never queue, and a busy one doubles. */
const QUEUE_START = 8;

/**
 * FIFO of messages waiting for a send slot, with the count and payload bytes of what it holds.
 *
 * Every operation is O(1) (amortized): a full queue of an offline session is hit by every publish
 * to it, so making room must not scan. Entries live in a ring in arrival order; dropping the oldest
 * QoS 0 entry leaves a hole (undefined) that `shift` skips, found through a second ring that holds
 * the positions of the QoS 0 entries in the same order. Each QoS 0 entry leaves that ring exactly
 * once, either with `shift` (it was the oldest of all) or with `removeOldestQos0`.
 */
export class OutboundQueue {
  /** Entries and holes, oldest first; `#first` is the position of the front slot. */
  #slots = new RingQueue<Outbound | undefined>(QUEUE_START);
  #first = 0;
  /** Positions of the QoS 0 entries still queued, oldest first. */
  #qos0 = new RingQueue<number>(QUEUE_START);
  #length = 0;
  #bytes = 0;

  get length(): number {
    return this.#length;
  }

  /** Payload and topic bytes of the queued messages (what the per-session byte cap counts). */
  get bytes(): number {
    return this.#bytes;
  }

  push(entry: Outbound): void {
    if (entry.qos === 0) this.#qos0.push(this.#first + this.#slots.length);
    this.#slots.push(entry);
    this.#length++;
    this.#bytes += outboundBytes(entry);
  }

  peek(): Outbound | undefined {
    this.#skipHoles();
    return this.#slots.at(0);
  }

  shift(): Outbound | undefined {
    this.#skipHoles();
    const entry = this.#slots.shift();
    if (entry === undefined) return undefined;
    if (entry.qos === 0) this.#qos0.shift();
    this.#first++;
    this.#left(entry);
    return entry;
  }

  /** Removes and returns the oldest QoS 0 entry, for making room when the queue is full. */
  removeOldestQos0(): Outbound | undefined {
    const position = this.#qos0.shift();
    if (position === undefined) return undefined;
    const index = position - this.#first;
    const entry = this.#slots.at(index)!;
    this.#slots.set(index, undefined);
    this.#left(entry);
    return entry;
  }

  *[Symbol.iterator](): IterableIterator<Outbound> {
    for (let i = 0; i < this.#slots.length; i++) {
      const entry = this.#slots.at(i);
      if (entry !== undefined) yield entry;
    }
  }

  clear(): void {
    this.#slots = new RingQueue(QUEUE_START);
    this.#qos0 = new RingQueue(QUEUE_START);
    this.#first = 0;
    this.#length = 0;
    this.#bytes = 0;
  }

  #skipHoles(): void {
    while (this.#slots.length > 0 && this.#slots.at(0) === undefined) {
      this.#slots.shift();
      this.#first++;
    }
  }

  #left(entry: Outbound): void {
    this.#length--;
    this.#bytes -= outboundBytes(entry);
  }
}

/** What a queued message costs against the byte cap: its payload and topic. */
export function outboundBytes(entry: Outbound): number {
  return entry.message.payload.length + entry.message.topic.length;
}
