/**
 * Least-recently-used cache of parser isolates, one per key. A key's isolate is recreated when its
 * code changes or after it was lost (memory limit). Isolates are leased for the duration of a call;
 * a leased isolate is never evicted or disposed under its caller: eviction skips it (the cache may
 * briefly hold more than its cap) and invalidation defers the dispose to the release.
 */
import type { ParserIsolate } from './parser-isolate.ts';

interface Slot {
  isolate: ParserIsolate;
  leased: boolean;
}

export type IsolateFactory = (code: string) => Promise<ParserIsolate>;

export class IsolateCache {
  // Map iteration order is insertion order: re-inserting on use keeps the least recent first.
  #slots = new Map<string, Slot>();
  #max: number;
  #create: IsolateFactory;
  #closed = false;

  constructor(max: number, create: IsolateFactory) {
    this.#max = max;
    this.#create = create;
  }

  /** The isolate for `key` running `code`, leased to the caller until `release`. One lease per key at a time. */
  async acquire(key: string, code: string): Promise<ParserIsolate> {
    if (this.#closed) throw new Error('parser sandbox is disposed');
    let slot = this.#slots.get(key);
    if (slot !== undefined) {
      this.#slots.delete(key);
      if (slot.isolate.code !== code || !slot.isolate.alive) {
        slot.isolate.dispose();
        slot = undefined;
      }
    }
    if (slot === undefined) {
      const isolate = await this.#create(code);
      if (this.#closed) {
        isolate.dispose();
        throw new Error('parser sandbox is disposed');
      }
      slot = { isolate, leased: false };
    }
    slot.leased = true;
    this.#slots.set(key, slot);
    this.#evict();
    return slot.isolate;
  }

  release(key: string, isolate: ParserIsolate): void {
    const slot = this.#slots.get(key);
    if (slot?.isolate === isolate) {
      slot.leased = false;
      this.#evict();
    } else {
      // Invalidated or evicted while in use.
      isolate.dispose();
    }
  }

  invalidate(key: string): void {
    const slot = this.#slots.get(key);
    if (slot === undefined) return;
    this.#slots.delete(key);
    if (!slot.leased) slot.isolate.dispose();
  }

  /** Disposes every isolate, leased or not (calls in flight reject), and refuses new ones. */
  close(): void {
    this.#closed = true;
    for (const slot of this.#slots.values()) slot.isolate.dispose();
    this.#slots.clear();
  }

  #evict(): void {
    if (this.#slots.size <= this.#max) return;
    for (const [key, slot] of this.#slots) {
      if (slot.leased) continue;
      this.#slots.delete(key);
      slot.isolate.dispose();
      if (this.#slots.size <= this.#max) return;
    }
  }
}
