/**
 * Detects takeover storms (SPEC §2): two devices sharing a client id, each reconnecting as soon as
 * it is kicked, would otherwise take each other over forever. A client id taken over more than
 * `limit` times within a minute is refused for `backoffMs`.
 */
export interface TakeoverVerdict {
  /** 0 = admit; otherwise epoch ms until which the client id is refused. */
  blockedUntil: number;
  /** True exactly when this takeover started the block (report it once). */
  startedBlock: boolean;
}

const WINDOW_MS = 60_000;

export class TakeoverGuard {
  readonly #limit: number;
  readonly #backoffMs: number;
  readonly #entries = new Map<string, { windowStart: number; count: number; blockedUntil: number }>();

  constructor(limit: number, backoffMs: number) {
    this.#limit = limit;
    this.#backoffMs = backoffMs;
  }

  /** Whether a connect for `key` may proceed right now (refused while blocked). */
  blockedUntil(key: string, now: number): number {
    const entry = this.#entries.get(key);
    if (entry === undefined || entry.blockedUntil <= now) return 0;
    return entry.blockedUntil;
  }

  /** Records one takeover of `key`. */
  record(key: string, now: number): TakeoverVerdict {
    let entry = this.#entries.get(key);
    if (entry === undefined || now - entry.windowStart >= WINDOW_MS) {
      entry = { windowStart: now, count: 0, blockedUntil: 0 };
      this.#entries.set(key, entry);
      this.#sweep(now);
    }
    entry.count++;
    if (entry.count > this.#limit && entry.blockedUntil <= now) {
      entry.blockedUntil = now + this.#backoffMs;
      return { blockedUntil: entry.blockedUntil, startedBlock: true };
    }
    return { blockedUntil: entry.blockedUntil > now ? entry.blockedUntil : 0, startedBlock: false };
  }

  /** Forgets windows that ended, so the map stays as small as the set of busy client ids. */
  #sweep(now: number): void {
    if (this.#entries.size < 1024) return;
    for (const [key, entry] of this.#entries) {
      if (now - entry.windowStart >= WINDOW_MS && entry.blockedUntil <= now) this.#entries.delete(key);
    }
  }
}
