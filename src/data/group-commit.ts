/**
 * Group commit (SPEC §3): callers hand in items and await durability; items from every caller that
 * arrives while a commit is running (or in the same tick) go into the next single transaction. Under
 * load batches grow by themselves, so one fsync/commit serves thousands of records.
 *
 * Failure isolation: when a batch fails, each caller's items are committed on their own, so only the
 * callers whose items really fail are rejected; nothing of a rejected caller is stored.
 */
export type Commit<T> = (items: T[]) => void | Promise<void>;

interface Waiter<T> {
  items: T[];
  resolve: () => void;
  reject: (error: Error) => void;
}

export interface GroupCommitOptions {
  /** Most items in one commit (a single caller's larger write still goes alone); default 20,000. */
  maxBatch?: number;
  /**
   * Commits running at once; default 1. With more, the next batch is handed to the store while one
   * commits (a writer thread, a connection pool), so store and event loop work side by side.
   */
  inFlight?: number;
}

export class GroupCommitWriter<T> {
  readonly #commit: Commit<T>;
  readonly #maxBatch: number;
  readonly #inFlight: number;
  #pending: Array<Waiter<T>> = [];
  #pendingItems = 0;
  #running = 0;
  #scheduled = false;
  #closed = false;
  /** Batches committed, for tests and metrics. */
  batches = 0;

  constructor(commit: Commit<T>, options: GroupCommitOptions = {}) {
    this.#commit = commit;
    this.#maxBatch = options.maxBatch ?? 20_000;
    this.#inFlight = Math.max(1, options.inFlight ?? 1);
  }

  write(items: T[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('writer is closed'));
    if (items.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ items, resolve, reject });
      this.#pendingItems += items.length;
      this.#schedule();
    });
  }

  /** Resolves when everything written so far is committed (or rejected). */
  async drain(): Promise<void> {
    while (this.#pending.length > 0 || this.#running > 0) {
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  async close(): Promise<void> {
    await this.drain();
    this.#closed = true;
  }

  #schedule(): void {
    if (this.#running >= this.#inFlight || this.#scheduled) return;
    this.#scheduled = true;
    // setImmediate lets every caller of this tick (e.g. all publishes in one socket read) join in.
    setImmediate(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#running >= this.#inFlight || this.#pending.length === 0) return;
    this.#running++;
    const batch = this.#take();
    try {
      await this.#run(batch);
    } finally {
      this.#running--;
      if (this.#pending.length > 0) this.#schedule();
    }
  }

  /** Takes waiters up to maxBatch items (at least one waiter, however large). */
  #take(): Array<Waiter<T>> {
    let n = 0;
    let count = 0;
    while (n < this.#pending.length && (n === 0 || count + this.#pending[n]!.items.length <= this.#maxBatch)) {
      count += this.#pending[n]!.items.length;
      n++;
    }
    const batch = this.#pending.splice(0, n);
    this.#pendingItems -= count;
    return batch;
  }

  async #run(batch: Array<Waiter<T>>): Promise<void> {
    const items = batch.length === 1 ? batch[0]!.items : batch.flatMap((w) => w.items);
    try {
      await this.#commit(items);
      this.batches++;
      for (const w of batch) w.resolve();
      return;
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(asError(error));
        return;
      }
    }
    // Find the callers that fail: each alone, in order.
    for (const w of batch) {
      try {
        await this.#commit(w.items);
        this.batches++;
        w.resolve();
      } catch (error) {
        w.reject(asError(error));
      }
    }
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
