/**
 * The queue of one key (device). Like a group commit, messages that arrive while the key's call is
 * in flight wait and then go into the isolate together, up to `maxBatch` per call, so a busy device
 * costs one isolate round trip per batch rather than per message.
 *
 * Recovery keeps the limits per message:
 * - time limit: the driver starts messages only early in a call, and the call is interrupted at the
 *   time limit plus that margin (parser-isolate.ts), so the message running then has had its whole
 *   allowance: it fails with 'timeout', the finished ones keep their outcomes, and the rest go into
 *   the next call. (Should it have started late after all, it goes first in the next call.)
 * - memory limit: isolated-vm disposes the isolate and tells nothing about which message did it,
 *   so the unfinished messages are rerun one per call in fresh isolates; the one that loses its
 *   isolate alone gets 'memory'.
 */
import type { IsolateCache } from './isolate-cache.ts';
import type { CallResult, ParserIsolate } from './parser-isolate.ts';
import { timeoutMessage } from './errors.ts';
import { encodeOutcome } from './replies.ts';
import { RingQueue } from '../ring-queue.ts';

export interface PendingMessage {
  code: string;
  /** The device as JSON text (wire.ts `deviceText`): one per isolate call, so a batch has one device. */
  device: string;
  /** This message's element of the wire batch (see prelude/protocol.ts). */
  wire: string;
  /** The outcome in the driver's text form (replies.ts). */
  resolve(outcome: string): void;
  reject(error: unknown): void;
}

/** The isolate a lane is using, replaced when it is lost. */
interface Lease {
  code: string;
  isolate: ParserIsolate;
}

export interface LaneContext {
  cache: IsolateCache;
  timeoutMs: number;
  maxBatch: number;
  stats: { calls: number; messages: number };
  isDisposed(): boolean;
  /** Called once the lane has nothing queued or running, so its owner can drop it. */
  onIdle(key: string): void;
}

export class Lane {
  readonly key: string;
  #context: LaneContext;
  #queue = new RingQueue<PendingMessage>();
  #running = false;

  constructor(key: string, context: LaneContext) {
    this.key = key;
    this.#context = context;
  }

  enqueue(message: PendingMessage): void {
    this.#queue.push(message);
    if (!this.#running) {
      this.#running = true;
      void this.#drain();
    }
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const code = (this.#queue.at(0) as PendingMessage).code;
      let lease: Lease;
      try {
        // Messages queue up during this await too, so the first batch of a burst is full.
        lease = { code, isolate: await this.#context.cache.acquire(this.key, code) };
      } catch (error) {
        this.#rejectAll(error);
        break;
      }
      const batch = this.#take(code);
      try {
        await this.#runBatch(lease, batch);
      } catch (error) {
        for (const message of batch) message.reject(error);
      } finally {
        this.#context.cache.release(this.key, lease.isolate);
      }
    }
    this.#running = false;
    this.#context.onIdle(this.key);
  }

  /** Up to maxBatch queued messages in a row that run the same code for the same device. */
  #take(code: string): PendingMessage[] {
    const batch: PendingMessage[] = [];
    const queue = this.#queue;
    const device = (queue.at(0) as PendingMessage).device;
    while (queue.length > 0 && batch.length < this.#context.maxBatch) {
      const next = queue.at(0) as PendingMessage;
      if (next.code !== code || next.device !== device) break;
      batch.push(next);
      queue.shift();
    }
    return batch;
  }

  async #runBatch(lease: Lease, batch: PendingMessage[]): Promise<void> {
    let start = 0;
    while (start < batch.length) {
      const result = await this.#call(lease, batch, start);
      if (result.status !== 'lost') {
        start = this.#apply(result, batch, start);
        continue;
      }
      if (this.#context.isDisposed()) throw new Error('parser sandbox is disposed');
      if (start === batch.length - 1 && result.error.kind === 'memory') {
        // The only message left lost the isolate by itself.
        this.#settle(batch[start] as PendingMessage, encodeOutcome({ ok: false, error: result.error, logs: [] }));
      } else {
        await this.#runSingly(lease, batch.slice(start));
      }
      return;
    }
  }

  /** Settles what a call finished and returns the index of the first message still to run. */
  #apply(result: CallResult, batch: PendingMessage[], start: number): number {
    if (result.status === 'lost') return start;
    const finished = result.status === 'done' ? result.outcomes : result.done;
    for (let i = 0; i < finished.length; i++) this.#settle(batch[start + i] as PendingMessage, finished[i] as string);
    let next = start + finished.length;
    // The interrupted message fails if it had its whole time limit; if it started late in a call
    // (the driver's budget should prevent that), it goes first in the next call instead.
    if (result.status === 'timeout' && (finished.length === 0 || result.elapsedMs >= this.#context.timeoutMs)) {
      const error = { kind: 'timeout' as const, message: timeoutMessage(this.#context.timeoutMs) };
      this.#settle(batch[next] as PendingMessage, encodeOutcome({ ok: false, error, logs: result.logs }));
      next++;
    }
    return next;
  }

  /** After a lost isolate: one message per call, each in a live isolate, so a failure names its message. */
  async #runSingly(lease: Lease, messages: PendingMessage[]): Promise<void> {
    for (const message of messages) {
      const result = await this.#call(lease, [message], 0);
      if (result.status === 'lost') this.#settle(message, encodeOutcome({ ok: false, error: result.error, logs: [] }));
      else this.#apply(result, [message], 0);
    }
  }

  /**
   * One isolate call for batch[start..]. An isolate that is gone (memory limit, or retired by the
   * driver) is replaced first; a script that does not compile answers without a call.
   */
  async #call(lease: Lease, batch: PendingMessage[], start: number): Promise<CallResult> {
    if (!lease.isolate.alive && lease.isolate.compileError === undefined) {
      const cache = this.#context.cache;
      cache.release(this.key, lease.isolate);
      lease.isolate = await cache.acquire(this.key, lease.code);
    }
    const compileError = lease.isolate.compileError;
    if (compileError !== undefined) {
      const outcome = encodeOutcome({ ok: false, error: compileError, logs: [] });
      return { status: 'done', outcomes: batch.slice(start).map(() => outcome) };
    }
    const first = batch[start] as PendingMessage;
    let json = `{"d":${JSON.stringify(first.device)},"m":[${first.wire}`;
    for (let i = start + 1; i < batch.length; i++) json += `,${(batch[i] as PendingMessage).wire}`;
    this.#context.stats.calls++;
    return lease.isolate.call(`${json}]}`, batch.length - start);
  }

  #settle(message: PendingMessage, outcome: string): void {
    this.#context.stats.messages++;
    message.resolve(outcome);
  }

  #rejectAll(error: unknown): void {
    for (const message of this.#queue.drain()) message.reject(error);
  }
}
