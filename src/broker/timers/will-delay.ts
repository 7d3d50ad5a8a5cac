import type { Will } from '../channel/will.ts';
import type { Clock } from '../clock.ts';
import { KeyedTimers } from './keyed-timers.ts';

/**
 * Delayed wills (MQTT 5 §3.1.3.2.2). A will waits `willDelaySeconds` after its connection ends:
 * a client that resumes the session first cancels it (`cancel`), a session that ends first
 * publishes it at once (the registry takes it back with `cancel`). After a restart the wait counts
 * from the stored disconnect time, so a will whose moment passed while we were down is due now.
 *
 * Cost: one unref'd timer per waiting will, keyed by session key (keyed-timers.ts); O(1) to arm or
 * cancel, and nothing on the publish path.
 */
export class WillDelay {
  readonly #timers: KeyedTimers<Will>;

  /** `due` publishes the will; it is called once per will, when its wait is over. */
  constructor(clock: Clock, due: (sessionKey: string, will: Will) => void) {
    this.#timers = new KeyedTimers(clock, due);
  }

  /**
   * Arms the will of a session whose connection ended at `disconnectedAt` (epoch ms). Returns false,
   * arming nothing, when its wait is already over: the caller publishes it now.
   */
  wait(sessionKey: string, will: Will, expiryInterval: number, disconnectedAt: number, now: number): boolean {
    const left = disconnectedAt + willDelaySeconds(will, expiryInterval) * 1000 - now;
    if (left <= 0) return false;
    this.#timers.schedule(sessionKey, left, will);
    return true;
  }

  /** Disarms a session's will and returns it, if one was waiting. */
  cancel(sessionKey: string): Will | undefined {
    return this.#timers.cancel(sessionKey);
  }

  /** Disarms every will (shutdown: stored ones come back with the sessions on start-up). */
  clear(): void {
    this.#timers.clear();
  }
}

/** Seconds a will waits after its connection ends: its delay, but never past the session's end. */
export function willDelaySeconds(will: Pick<Will, 'delay'>, expiryInterval: number): number {
  return Math.min(will.delay, expiryInterval);
}
