/**
 * Requests in flight by id. Ids are handed out in increasing order and settle in nearly that order,
 * so a ring of slots indexed by id holds them: set, take and size without hashing, and a table that is
 * never rebuilt while it runs (a Map with thousands of entries set and deleted per second rebuilds its
 * hash table often, and a discarded table in the old generation keeps the young requests it still
 * points at alive through the next scavenges, which then copy and promote them).
 */
export class RequestTable<T> {
  #slots: Array<T | undefined>;
  #ids: Float64Array;
  #size = 0;

  constructor(capacity = 4096) {
    this.#slots = new Array<T | undefined>(capacity).fill(undefined);
    this.#ids = new Float64Array(capacity).fill(-1);
  }

  get size(): number {
    return this.#size;
  }

  set(id: number, value: T): void {
    let at = id & (this.#slots.length - 1);
    if (this.#ids[at] !== -1) {
      // A request that long outlived its neighbours still holds the slot: double the ring.
      this.#grow();
      at = id & (this.#slots.length - 1);
    }
    this.#slots[at] = value;
    this.#ids[at] = id;
    this.#size++;
  }

  /** Removes and returns request `id`, if present. */
  take(id: number): T | undefined {
    const at = id & (this.#slots.length - 1);
    if (this.#ids[at] !== id) return undefined;
    const value = this.#slots[at];
    this.#slots[at] = undefined;
    this.#ids[at] = -1;
    this.#size--;
    return value;
  }

  /** Removes and returns every request, oldest first. */
  drain(): T[] {
    const entries: Array<[number, T]> = [];
    for (let at = 0; at < this.#slots.length; at++) {
      if (this.#ids[at] !== -1) entries.push([this.#ids[at]!, this.#slots[at] as T]);
    }
    this.#slots.fill(undefined);
    this.#ids.fill(-1);
    this.#size = 0;
    return entries.sort((a, b) => a[0] - b[0]).map((entry) => entry[1]);
  }

  #grow(): void {
    const slots = this.#slots;
    const ids = this.#ids;
    let capacity = slots.length * 2;
    // Every live id must land in a slot of its own.
    for (;;) {
      const next = new Float64Array(capacity).fill(-1);
      let clash = false;
      for (let at = 0; at < ids.length && !clash; at++) {
        if (ids[at] === -1) continue;
        const to = ids[at]! & (capacity - 1);
        if (next[to] !== -1) clash = true;
        else next[to] = ids[at]!;
      }
      if (!clash) break;
      capacity *= 2;
    }
    this.#slots = new Array<T | undefined>(capacity).fill(undefined);
    this.#ids = new Float64Array(capacity).fill(-1);
    for (let at = 0; at < ids.length; at++) {
      if (ids[at] === -1) continue;
      const to = ids[at]! & (capacity - 1);
      this.#slots[to] = slots[at];
      this.#ids[to] = ids[at]!;
    }
  }
}
