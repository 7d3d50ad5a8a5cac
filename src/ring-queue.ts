/** The slots of every queue not pushed to yet: never written (push grows first), frozen to be sure. */
const NO_SLOTS: never[] = Object.freeze([]) as never[];

/**
 * A FIFO queue in a ring of slots that is reused, not reallocated: it doubles only when it is full,
 * and a slot is cleared as its item leaves.
 *
 * Why not an array with push and shift (or splice): under load such queues (held acknowledgements,
 * group-commit waiters, a sandbox lane) see tens of thousands of items a second, and V8 trims an
 * array's start on shift, so pushes keep reallocating its backing store. A discarded backing store
 * that has reached the old generation still points at the young items it held, and the next
 * scavenges treat those pointers as roots: items long gone from the queue are copied and promoted,
 * with everything they reference (see request-table.ts for the case that cost 20-30 MB of promotion
 * per scavenge).
 *
 * The slots are allocated on the first push: every connection has queues (held acks, outbound
 * messages) that an idle connection never uses, and 64 empty slots cost 560 bytes each (issue 15).
 */
export class RingQueue<T> {
  #slots: Array<T | undefined> = NO_SLOTS;
  #head = 0;
  #length = 0;
  /** Slots allocated on the first push. */
  readonly #capacity: number;

  /** `capacity` (the first allocation) is rounded up to a power of two. */
  constructor(capacity = 64) {
    let size = 1;
    while (size < capacity) size *= 2;
    this.#capacity = size;
  }

  get length(): number {
    return this.#length;
  }

  push(item: T): void {
    if (this.#length === this.#slots.length) this.#grow();
    this.#slots[(this.#head + this.#length) & (this.#slots.length - 1)] = item;
    this.#length++;
  }

  /** The item `index` places from the front (0 = the next to leave), or undefined. */
  at(index: number): T | undefined {
    if (index < 0 || index >= this.#length) return undefined;
    return this.#slots[(this.#head + index) & (this.#slots.length - 1)];
  }

  /** Replaces the item `index` places from the front; the index must be in range. */
  set(index: number, item: T): void {
    if (index < 0 || index >= this.#length) throw new RangeError(`index ${index} is outside 0..${this.#length - 1}`);
    this.#slots[(this.#head + index) & (this.#slots.length - 1)] = item;
  }

  /** Removes and returns the front item, or undefined when empty. */
  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const item = this.#slots[this.#head];
    this.#slots[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#slots.length - 1);
    this.#length--;
    return item;
  }

  /** Removes and returns every item, front first. */
  drain(): T[] {
    const items: T[] = new Array<T>(this.#length);
    for (let i = 0; i < items.length; i++) items[i] = this.shift() as T;
    return items;
  }

  #grow(): void {
    const slots = new Array<T | undefined>(this.#slots.length === 0 ? this.#capacity : this.#slots.length * 2).fill(undefined);
    for (let i = 0; i < this.#length; i++) slots[i] = this.#slots[(this.#head + i) & (this.#slots.length - 1)];
    this.#slots = slots;
    this.#head = 0;
  }
}
