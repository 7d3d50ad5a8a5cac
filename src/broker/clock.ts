/** What a clock's setTimeout returns; only its own clearTimeout reads it. */
export type TimerHandle = object;

/**
 * The engine's one source of time: the channel timers (connect timeout, keep alive), the keyed
 * timers (will delay, session expiry), the takeover guard and message expiry all read it, so a test
 * or an embedder that swaps it moves all of them together.
 *
 * Timers take their argument explicitly (`fn(arg)`) so that callers pass a module-level function and
 * allocate no closure per timer. A timer never keeps the process alive on its own: the sockets and
 * listeners it serves do.
 */
export interface Clock {
  /** Epoch ms. Message expiry and disconnect times are stored as epoch ms, so this is wall time. */
  now(): number;
  /** Calls `fn(arg)` once, `ms` from now. */
  setTimeout<A>(fn: (arg: A) => void, ms: number, arg: A): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/**
 * Date.now and the global timers, looked up at each call: `node:test` mock timers
 * (`mock.timers.enable({ apis: ['setTimeout', 'Date'] })`, Node ≥ 20.11) drive it as they replace
 * the globals, which is how the tests advance the engine's time.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: <A>(fn: (arg: A) => void, ms: number, arg: A): TimerHandle => setTimeout(fn, ms, arg).unref(),
  clearTimeout: (handle: TimerHandle) => clearTimeout(handle as NodeJS.Timeout),
};
