/**
 * Group commit (SPEC §3): callers hand in items and await durability; items from every caller that
 * arrives while a commit is running (or in the same tick) go into the next single transaction. Under
 * load batches grow by themselves, so one fsync/commit serves thousands of records.
 *
 * Failure isolation: when a batch fails, each caller's items are committed on their own, so only the
 * callers whose items really fail are rejected; nothing of a rejected caller is stored.
 */
import { RingQueue } from '../ring-queue.ts';

export type Commit<T> = (items: T[]) => void | Promise<void>;

/** Told after each committed batch: how long its commit took (seconds) and how many items it made durable. For metrics. */
export type CommitObserver = (seconds: number, items: number) => void;

/**
 * One caller's items and how it hears the result: `committed` is called exactly once, with null when
 * the items are durable or with the error that refused them. A data path hands in one long-lived
 * object per message (ingest.ts) instead of awaiting a promise, so a waiting message holds no
 * closures or promise reactions.
 */
export interface CommitWaiter<T> {
  readonly items: T[];
  /** Must not throw: it runs inside the writer's loop. */
  committed(error: Error | null): void;
}

/** `write`'s waiter: settles a promise. */
class PromiseWaiter<T> implements CommitWaiter<T> {
  readonly items: T[];
  readonly #resolve: () => void;
  readonly #reject: (error: Error) => void;

  constructor(items: T[], resolve: () => void, reject: (error: Error) => void) {
    this.items = items;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  committed(error: Error | null): void {
    if (error === null) this.#resolve();
    else this.#reject(error);
  }
}

export interface GroupCommitOptions {
  /** Most items in one commit (a single caller's larger write still goes alone); default 20,000. */
  maxBatch?: number;
  /**
   * Commits running at once; default 1. With more, the next batch is handed to the store while one
   * commits (a writer thread, a connection pool), so store and event loop work side by side.
   */
  inFlight?: number;
  onCommit?: CommitObserver;
}

export class GroupCommitWriter<T> {
  readonly #commit: Commit<T>;
  readonly #maxBatch: number;
  readonly #inFlight: number;
  readonly #onCommit: CommitObserver | undefined;
  #pending = new RingQueue<CommitWaiter<T>>();
  #running = 0;
  #scheduled = false;
  #closed = false;
  /** Batches committed, for tests and metrics. */
  batches = 0;

  constructor(commit: Commit<T>, options: GroupCommitOptions = {}) {
    this.#commit = commit;
    this.#maxBatch = options.maxBatch ?? 20_000;
    this.#inFlight = Math.max(1, options.inFlight ?? 1);
    this.#onCommit = options.onCommit;
  }

  write(items: T[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('writer is closed'));
    if (items.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => this.submit(new PromiseWaiter(items, resolve, reject)));
  }

  /** `write` for a caller that hears the result through its waiter. */
  submit(waiter: CommitWaiter<T>): void {
    if (this.#closed) {
      waiter.committed(new Error('writer is closed'));
      return;
    }
    if (waiter.items.length === 0) {
      waiter.committed(null);
      return;
    }
    this.#pending.push(waiter);
    this.#schedule();
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
  #take(): Array<CommitWaiter<T>> {
    const pending = this.#pending;
    const batch: Array<CommitWaiter<T>> = [];
    let count = 0;
    while (pending.length > 0 && (batch.length === 0 || count + pending.at(0)!.items.length <= this.#maxBatch)) {
      const waiter = pending.shift()!;
      count += waiter.items.length;
      batch.push(waiter);
    }
    return batch;
  }

  async #run(batch: Array<CommitWaiter<T>>): Promise<void> {
    const items = batch.length === 1 ? batch[0]!.items : concat(batch);
    let failure: Error | null = null;
    const started = performance.now();
    try {
      await this.#commit(items);
    } catch (error) {
      failure = asError(error);
    }
    if (failure === null) {
      this.batches++;
      this.#onCommit?.((performance.now() - started) / 1000, items.length);
      for (let i = 0; i < batch.length; i++) batch[i]!.committed(null);
      return;
    }
    if (batch.length === 1) {
      batch[0]!.committed(failure);
      return;
    }
    // Find the callers that fail: each alone, in order.
    for (const w of batch) {
      try {
        await this.#commit(w.items);
        this.batches++;
      } catch (error) {
        w.committed(asError(error));
        continue;
      }
      w.committed(null);
    }
  }
}

/** Every waiter's items in one array (a plain loop: flatMap was measurable here). */
function concat<T>(batch: Array<CommitWaiter<T>>): T[] {
  let count = 0;
  for (let i = 0; i < batch.length; i++) count += batch[i]!.items.length;
  const items = new Array<T>(count);
  for (let i = 0, n = 0; i < batch.length; i++) {
    const part = batch[i]!.items;
    for (let j = 0; j < part.length; j++) items[n++] = part[j]!;
  }
  return items;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
