import { Worker } from 'node:worker_threads';
import type { Database } from '../../storage/sqlite-database.ts';
import { BucketWrites, type WriteRequest } from './bucket-writes.ts';

/** Applies WriteRequests to a SQLite bucket database; resolves with the rows inserted or changed. */
export interface BucketWriter {
  apply(request: WriteRequest): Promise<number>;
  /** Finishes requests already handed in, then releases the writer. */
  close(): Promise<void>;
}

/** A worker's answer to one request. */
export type WriterReply = { id: number; changes: number } | { id: number; error: string; code: string | undefined };

/**
 * A file database gets a writer thread with its own connection: inserting and committing (about half
 * the CPU of ingest, measured with bench:ingest) then runs beside the event loop instead of on it.
 * WAL keeps the store's reads on the main connection unblocked by the writer, and a resolved write is
 * committed, so the next read sees it. An in-memory database cannot be opened twice, so it is written
 * inline, on the caller's connection.
 */
export function createBucketWriter(db: Database): BucketWriter {
  return db.memory ? new InlineBucketWriter(db) : new WorkerBucketWriter(db.name);
}

/**
 * The thread's entry. Node 20 does not apply loaders registered with module.register() (how tsx runs
 * our TypeScript) to worker threads, so the thread registers tsx itself before importing the module.
 */
const WORKER_BOOTSTRAP = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then((tsx) => { tsx.register(); return import(${JSON.stringify(new URL('./bucket-writer-worker.ts', import.meta.url).href)}); })`;

class InlineBucketWriter implements BucketWriter {
  readonly #writes: BucketWrites;

  constructor(db: Database) {
    this.#writes = new BucketWrites(db);
  }

  async apply(request: WriteRequest): Promise<number> {
    return this.#writes.apply(request);
  }

  async close(): Promise<void> {}
}

interface Pending {
  resolve: (changes: number) => void;
  reject: (error: Error) => void;
}

class WorkerBucketWriter implements BucketWriter {
  readonly #path: string;
  readonly #pending = new Map<number, Pending>();
  #worker: Worker | null = null;
  #nextId = 0;

  constructor(path: string) {
    this.#path = path;
  }

  apply(request: WriteRequest): Promise<number> {
    const worker = this.#worker ?? this.#start();
    const id = this.#nextId++;
    return new Promise<number>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      // Referenced only while something waits, so an idle writer never keeps the process alive.
      if (this.#pending.size === 1) worker.ref();
      worker.postMessage({ id, request });
    });
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    if (worker === null) return;
    this.#worker = null;
    // Requests are answered in order, so 'close' is handled after every pending one.
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.ref();
    worker.postMessage('close');
    await exited;
  }

  #start(): Worker {
    const worker = new Worker(WORKER_BOOTSTRAP, { eval: true, workerData: { path: this.#path } });
    worker.unref();
    worker.on('message', (reply: WriterReply) => {
      const pending = this.#pending.get(reply.id);
      if (pending === undefined) return;
      this.#pending.delete(reply.id);
      if (this.#pending.size === 0) worker.unref();
      if ('changes' in reply) pending.resolve(reply.changes);
      else pending.reject(Object.assign(new Error(reply.error), { code: reply.code }));
    });
    // A crashed writer fails what it held; the next request starts a new one.
    const fail = (error: Error): void => {
      if (this.#worker === worker) this.#worker = null;
      for (const pending of this.#pending.values()) pending.reject(error);
      this.#pending.clear();
    };
    worker.on('error', (error) => fail(new Error(`bucket writer thread failed: ${error.message}`, { cause: error })));
    worker.on('exit', (code) => fail(new Error(`bucket writer thread exited (code ${code})`)));
    this.#worker = worker;
    return worker;
  }
}
