/**
 * The bounded per-account queue of action runs (issue 17: slow targets never block the MQTT path or
 * ingest). Each account has at most `size` runs waiting and `concurrency` running; a run offered to a
 * full queue is dropped and counted, never queued without bound. Accounts do not wait for each
 * other: one account's slow target fills only its own queue.
 *
 * Cost: `offer` is a Map lookup and a ring push; an idle account holds no queue.
 */
import { RingQueue } from '../ring-queue.ts';

export interface QueueStats {
  /** Runs waiting, all accounts. */
  readonly queued: number;
  /** Runs executing, all accounts. */
  readonly running: number;
  /** Runs dropped because their account's queue was full, since start. */
  readonly dropped: number;
}

class AccountLane<T> {
  readonly waiting = new RingQueue<T>(16);
  running = 0;
}

export class ActionQueue<T> {
  readonly #size: number;
  readonly #concurrency: number;
  readonly #start: (job: T) => Promise<void>;
  readonly #lanes = new Map<string, AccountLane<T>>();
  #queued = 0;
  #running = 0;
  #dropped = 0;

  /** `start(job)` runs one job; its promise settles when the job is done (it must not reject). */
  constructor(options: { size: number; concurrency: number; start: (job: T) => Promise<void> }) {
    this.#size = options.size;
    this.#concurrency = options.concurrency;
    this.#start = options.start;
  }

  /** Queues `job` for `accountId`'s lane; false when the lane is full (the job is dropped and counted). */
  offer(accountId: string, job: T): boolean {
    let lane = this.#lanes.get(accountId);
    if (lane === undefined) {
      lane = new AccountLane<T>();
      this.#lanes.set(accountId, lane);
    }
    if (lane.running < this.#concurrency) {
      this.#run(accountId, lane, job);
      return true;
    }
    if (lane.waiting.length >= this.#size) {
      this.#dropped++;
      return false;
    }
    lane.waiting.push(job);
    this.#queued++;
    return true;
  }

  /** Waiting jobs of one account. */
  waiting(accountId: string): number {
    return this.#lanes.get(accountId)?.waiting.length ?? 0;
  }

  get stats(): QueueStats {
    return { queued: this.#queued, running: this.#running, dropped: this.#dropped };
  }

  #run(accountId: string, lane: AccountLane<T>, job: T): void {
    lane.running++;
    this.#running++;
    // Started on a later turn: the publish or commit that offered it finishes its own work first.
    setImmediate(() => void this.#start(job).then(() => this.#done(accountId, lane)));
  }

  #done(accountId: string, lane: AccountLane<T>): void {
    lane.running--;
    this.#running--;
    const next = lane.waiting.shift();
    if (next !== undefined) {
      this.#queued--;
      this.#run(accountId, lane, next);
    } else if (lane.running === 0) {
      this.#lanes.delete(accountId);
    }
  }
}
