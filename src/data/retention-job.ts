/**
 * Keeps buckets within their limits (SPEC §1): immutable devices with `retention_days` lose records
 * older than that many days; mutable devices keep their newest `record_cap` records. Runs every
 * `intervalMs` in the background; a pass never overlaps the previous one, and a failure on one
 * device is reported and does not stop the others.
 */
import type { Logger } from '../log.ts';
import type { Registry } from '../tenancy/registry.ts';
import type { BucketStore } from './bucket-store.ts';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface RetentionJobOptions {
  /** Milliseconds between passes. Default 60,000. */
  intervalMs?: number;
  /** Clock, epoch ms. Default Date.now. */
  now?: () => number;
  log?: Logger;
}

export interface RetentionPass {
  /** Records removed for being older than their device's retention. */
  expired: number;
  /** Records removed to bring mutable devices within their cap. */
  capped: number;
  /** Devices whose clean-up failed (reported to the log). */
  failed: number;
}

export class RetentionJob {
  readonly #registry: Registry;
  readonly #store: BucketStore;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #log: Logger | undefined;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<RetentionPass> | null = null;
  /** Passes completed, for tests and metrics. */
  passes = 0;

  constructor(registry: Registry, store: BucketStore, options: RetentionJobOptions = {}) {
    this.#registry = registry;
    this.#store = store;
    this.#intervalMs = options.intervalMs ?? 60_000;
    this.#now = options.now ?? Date.now;
    this.#log = options.log;
  }

  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => {
      if (this.#running === null) void this.runOnce();
    }, this.#intervalMs);
    this.#timer.unref();
  }

  /** Stops the timer and waits for a pass in progress. */
  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#running !== null) await this.#running;
  }

  /** One pass over every device now (or the pass already running). */
  runOnce(): Promise<RetentionPass> {
    this.#running ??= this.#pass().finally(() => {
      this.#running = null;
      this.passes++;
    });
    return this.#running;
  }

  async #pass(): Promise<RetentionPass> {
    const result: RetentionPass = { expired: 0, capped: 0, failed: 0 };
    const now = this.#now();
    for (const account of this.#registry.accounts()) {
      for (const device of this.#registry.devices(account.id, { amount: Number.MAX_SAFE_INTEGER })) {
        try {
          if (device.type === 'immutable' && device.retention_days !== null) {
            result.expired += await this.#store.deleteOlderThan(device.id, now - device.retention_days * DAY_MS);
          } else if (device.type === 'mutable' && device.record_cap !== null) {
            result.capped += await this.#store.enforceCap(device.id, device.record_cap);
          }
        } catch (error) {
          result.failed++;
          this.#log?.error({ err: error, deviceId: device.id }, 'retention: could not clean up the bucket');
        }
      }
    }
    if (result.expired + result.capped > 0) this.#log?.info(result, 'retention: old records removed');
    return result;
  }
}
