import type { Outbound } from './outbound.ts';

/** FIFO of messages waiting for a send slot. Array with a moving head: O(1) shift without copying. */
export class OutboundQueue {
  #items: Array<Outbound | undefined> = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(entry: Outbound): void {
    this.#items.push(entry);
  }

  peek(): Outbound | undefined {
    return this.#items[this.#head];
  }

  shift(): Outbound | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const entry = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return entry;
  }

  /** Removes and returns the oldest QoS 0 entry, for making room when the queue is full. */
  removeOldestQos0(): Outbound | undefined {
    for (let i = this.#head; i < this.#items.length; i++) {
      const entry = this.#items[i];
      if (entry !== undefined && entry.qos === 0) {
        this.#items.splice(i, 1);
        return entry;
      }
    }
    return undefined;
  }

  *[Symbol.iterator](): IterableIterator<Outbound> {
    for (let i = this.#head; i < this.#items.length; i++) yield this.#items[i]!;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}
