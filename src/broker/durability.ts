/**
 * Durability barriers of the broker's write-behind stores (SPEC §2: a QoS 1/2 publish is
 * acknowledged only once what it wrote — its retained message, its copies queued for persistent
 * sessions — is durable).
 *
 * Rules: a store calls each waiter exactly once, after the batch that holds every write issued
 * before the wait has committed (true) or failed (false); with nothing pending it may call it before
 * `whenDurable` returns. Cost: one array push per waiter, one call per waiter per batch; nothing for
 * a publish that wrote nothing (the broker asks only the stores a publish wrote to).
 */
export interface DurableWaiter {
  /** Once: the writes issued before the wait are committed (true) or some were lost (false). */
  durable(ok: boolean): void;
}

/** What a store offers for the barrier. */
export interface DurabilityBarrier {
  /** Calls `waiter.durable` once every write issued so far is durable (or lost). */
  whenDurable(waiter: DurableWaiter): void;
}

/** Tells each waiter of a batch its outcome; a throwing waiter does not stop the others. */
export function notifyWaiters(waiters: readonly DurableWaiter[], ok: boolean, report: (error: unknown) => void): void {
  for (let i = 0; i < waiters.length; i++) {
    try {
      waiters[i]!.durable(ok);
    } catch (error) {
      report(error);
    }
  }
}
