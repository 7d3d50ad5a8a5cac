import type { Clock } from '../clock.ts';
import { NEVER_EXPIRES, type Session } from '../session/session.ts';
import { KeyedTimers } from './keyed-timers.ts';

/**
 * Session expiry (MQTT 5 §3.1.2.11.2): a disconnected session ends `expiryInterval` seconds after
 * its disconnect, unless a client resumes it first (`cancel`). NEVER_EXPIRES arms nothing. After a
 * restart the interval counts from the stored disconnect time (`expiredBy` for those already over).
 *
 * Cost: one unref'd timer per disconnected persistent session, keyed by session key
 * (keyed-timers.ts, which re-arms waits longer than setTimeout allows); nothing on the publish path.
 */
export class SessionExpiry {
  readonly #timers: KeyedTimers<Session>;
  readonly #clock: Clock;

  /** `due` ends the session; the registry checks that it is still the disconnected one it knows. */
  constructor(clock: Clock, due: (session: Session) => void) {
    this.#clock = clock;
    this.#timers = new KeyedTimers(clock, (_key, session) => due(session));
  }

  /** Arms the expiry of a session disconnected at `disconnectedAt` (epoch ms). */
  schedule(session: Session, disconnectedAt: number): void {
    if (session.expiryInterval === NEVER_EXPIRES) return;
    this.#timers.schedule(session.key, disconnectedAt + session.expiryInterval * 1000 - this.#clock.now(), session);
  }

  cancel(sessionKey: string): void {
    this.#timers.cancel(sessionKey);
  }

  clear(): void {
    this.#timers.clear();
  }
}

/** Whether a session disconnected at `disconnectedAt` (epoch ms) had expired by `now`. */
export function expiredBy(expiryInterval: number, disconnectedAt: number, now: number): boolean {
  return expiryInterval !== NEVER_EXPIRES && disconnectedAt + expiryInterval * 1000 <= now;
}
