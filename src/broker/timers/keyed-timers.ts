import type { Clock, TimerHandle } from '../clock.ts';

/** setTimeout cannot wait longer than 2^31-1 ms (~24.8 days); longer delays are re-armed in steps. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

interface Entry<V> {
  readonly owner: KeyedTimers<V>;
  readonly key: string;
  /** Clock time (epoch ms) at which it fires. */
  readonly due: number;
  readonly value: V;
  timer: TimerHandle | null;
}

/**
 * Timers by key (session key): at most one per key, re-scheduling replaces. Used for will delay
 * (MQTT 5 §3.1.3.2.2) and session expiry (§3.1.2.11.2), on the broker's clock (clock.ts), whose
 * timers never keep the process alive on their own.
 */
export class KeyedTimers<V> {
  readonly #timers = new Map<string, Entry<V>>();
  readonly #clock: Clock;
  readonly #fire: (key: string, value: V) => void;

  constructor(clock: Clock, fire: (key: string, value: V) => void) {
    this.#clock = clock;
    this.#fire = fire;
  }

  schedule(key: string, delayMs: number, value: V): void {
    this.cancel(key);
    const entry: Entry<V> = { owner: this, key, due: this.#clock.now() + delayMs, value, timer: null };
    this.#arm(entry);
    this.#timers.set(key, entry);
  }

  #arm(entry: Entry<V>): void {
    const wait = Math.max(0, Math.min(entry.due - this.#clock.now(), MAX_TIMEOUT_MS));
    entry.timer = this.#clock.setTimeout(KeyedTimers.#onTimer, wait, entry);
  }

  static #onTimer<V>(entry: Entry<V>): void {
    const self = entry.owner;
    if (self.#timers.get(entry.key) !== entry) return;
    if (self.#clock.now() < entry.due) {
      self.#arm(entry);
      return;
    }
    self.#timers.delete(entry.key);
    self.#fire(entry.key, entry.value);
  }

  /** Removes the timer and returns its value, if one was pending. */
  cancel(key: string): V | undefined {
    const entry = this.#timers.get(key);
    if (entry === undefined) return undefined;
    if (entry.timer !== null) this.#clock.clearTimeout(entry.timer);
    this.#timers.delete(key);
    return entry.value;
  }

  /** Cancels everything, returning the pending values. */
  clear(): V[] {
    const values: V[] = [];
    for (const entry of this.#timers.values()) {
      if (entry.timer !== null) this.#clock.clearTimeout(entry.timer);
      values.push(entry.value);
    }
    this.#timers.clear();
    return values;
  }
}
