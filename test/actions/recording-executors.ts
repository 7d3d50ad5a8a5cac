/**
 * A temporary stand-in for the action types (src/actions/types/, built in another branch): an
 * ActionExecutors that records every run it is given and answers ok, so the tests of triggers, the
 * runner, the queue and the run history need no real target. `hold()` makes runs wait (a slow
 * target) until `release()`; `failWith` makes them throw.
 *
 * After the merge the lead can pass `createActionExecutors(...)` instead where a test wants the real
 * types; the tests only read `calls` and wait with `waitFor`.
 */
import type { ActionType } from '../../src/actions/model.ts';
import type { ActionExecutors, RunContext, RunResult } from '../../src/actions/run-context.ts';

export interface RecordedRun {
  readonly type: ActionType['type'];
  readonly context: RunContext;
}

export class RecordingExecutors implements ActionExecutors {
  readonly calls: RecordedRun[] = [];
  /** Set to make every run throw this message. */
  failWith: string | null = null;
  #gate: Promise<void> | null = null;
  #open: (() => void) | null = null;
  readonly #waiters: Array<{ until: () => boolean; resolve: () => void }> = [];

  async run(action: ActionType, context: RunContext): Promise<RunResult> {
    this.calls.push({ type: action.type, context });
    for (const waiter of this.#waiters.slice()) {
      if (waiter.until()) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
    if (this.#gate !== null) await this.#gate;
    if (this.failWith !== null) throw new Error(this.failWith);
    return { ok: true, attempts: 1, result: { recorded: this.calls.length } };
  }

  /** Runs from now on wait until `release`. */
  hold(): void {
    this.#gate = new Promise((resolve) => (this.#open = resolve));
  }

  release(): void {
    this.#open?.();
    this.#gate = null;
    this.#open = null;
  }

  /** The runs of one action. */
  of(actionId: string): RunContext[] {
    return this.calls.filter((call) => call.context.action.id === actionId).map((call) => call.context);
  }

  /** Resolves once `until()` holds (checked now and at every run); rejects after `ms` of real time. */
  waitFor(until: () => boolean, ms = 5_000, what = 'action runs'): Promise<void> {
    if (until()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      this.#waiters.push({ until, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }
}
