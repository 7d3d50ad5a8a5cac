/** setTimeout cannot wait longer than 2^31-1 ms (~24.8 days); longer delays are re-armed in steps. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * Timers by key (session key): at most one per key, re-scheduling replaces. Used for will delay
 * (MQTT 5 §3.1.3.2.2) and session expiry (§3.1.2.11.2). Timers are unref'd: they never keep the
 * process alive on their own.
 */
export class KeyedTimers<V> {
  readonly #timers = new Map<string, { timer: NodeJS.Timeout; due: number; value: V }>();
  readonly #fire: (key: string, value: V) => void;

  constructor(fire: (key: string, value: V) => void) {
    this.#fire = fire;
  }

  schedule(key: string, delayMs: number, value: V): void {
    this.cancel(key);
    const due = Date.now() + delayMs;
    this.#arm(key, due, value);
  }

  #arm(key: string, due: number, value: V): void {
    const wait = Math.max(0, Math.min(due - Date.now(), MAX_TIMEOUT_MS));
    const timer = setTimeout(() => {
      if (Date.now() < due) {
        this.#arm(key, due, value);
        return;
      }
      this.#timers.delete(key);
      this.#fire(key, value);
    }, wait);
    timer.unref();
    this.#timers.set(key, { timer, due, value });
  }

  /** Removes the timer and returns its value, if one was pending. */
  cancel(key: string): V | undefined {
    const entry = this.#timers.get(key);
    if (entry === undefined) return undefined;
    clearTimeout(entry.timer);
    this.#timers.delete(key);
    return entry.value;
  }

  /** Cancels everything, returning the pending values. */
  clear(): V[] {
    const values: V[] = [];
    for (const entry of this.#timers.values()) {
      clearTimeout(entry.timer);
      values.push(entry.value);
    }
    this.#timers.clear();
    return values;
  }
}
