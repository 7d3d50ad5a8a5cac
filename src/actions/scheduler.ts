/**
 * `schedule` triggers (SPEC §5): a cron expression (croner: 5 fields, or 6 with seconds) in an IANA
 * time zone. One timer per active schedule action, through an injected Clock (src/broker/clock.ts),
 * so tests drive it with node:test mock timers.
 *
 * Rules:
 * - Each firing is a *slot* (the cron time it stands for). The last fired slot is written to SQLite
 *   before the run is queued, and a slot not after it never fires: no double firing, also across a
 *   restart inside the same minute (or second).
 * - Missed firings (the server was down, or stopped inside a slot's second): at start, the most
 *   recent slot that is due, not yet fired, after the action was last changed, and at most
 *   MISSED_FIRING_GRACE_MS old fires once, at once. Older missed slots, and every slot but the most
 *   recent, are skipped: a schedule never fires in a burst after a long stop.
 * - A timer that wakes late (a blocked event loop) fires the slot it waited for once, then waits for
 *   the next slot after now.
 * - Timers are at most MAX_TIMER_MS long (Node caps a timer at ~24.8 days; a long wait is re-armed).
 *
 * Cost: one timer and one row per schedule action; one row write per firing.
 */
import { Cron } from 'croner';
import type { Clock, TimerHandle } from '../broker/clock.ts';
import type { Logger } from '../log.ts';
import { migrate, type Database } from '../storage/sqlite-database.ts';
import type { ActionChange, ActionStore } from './action-store.ts';
import type { Action, ScheduleTrigger } from './model.ts';
import type { ActionRunner } from './runner.ts';

export const SCHEDULE_MIGRATIONS: readonly string[] = [
  `CREATE TABLE action_schedule (
    action_id  TEXT    PRIMARY KEY REFERENCES actions(id) ON DELETE CASCADE,
    last_slot  INTEGER NOT NULL
  );`,
];

/** How old a missed slot may be and still fire once at start. */
export const MISSED_FIRING_GRACE_MS = 5 * 60_000;
const MAX_TIMER_MS = 60 * 60_000;

export interface SchedulerDeps {
  db: Database;
  actions: ActionStore;
  runner: Pick<ActionRunner, 'submit'>;
  clock: Clock;
  log: Logger;
}

interface Armed {
  readonly accountId: string;
  readonly action: Action;
  readonly cron: Cron;
  /** The last slot fired (or the time the action was last changed, if later), epoch ms. */
  last: number;
  /** The slot the timer waits for, epoch ms. */
  next: number;
  timer: TimerHandle | null;
}

/** Parses a schedule trigger's cron in its time zone; throws croner's error for a bad one. */
export function parseSchedule(trigger: Pick<ScheduleTrigger, 'cron' | 'timezone'>): Cron {
  return new Cron(trigger.cron, { timezone: trigger.timezone ?? 'UTC', paused: true });
}

export class Scheduler {
  readonly #deps: SchedulerDeps;
  readonly #armed = new Map<string, Armed>();
  readonly #stmt;
  readonly #onChange = (change: ActionChange): void => this.#changed(change);
  readonly #onTimer = (armed: Armed): void => this.#wake(armed);

  constructor(deps: SchedulerDeps) {
    this.#deps = deps;
    migrate(deps.db, 'action-schedule', SCHEDULE_MIGRATIONS);
    this.#stmt = {
      last: deps.db.prepare<[string], number>('SELECT last_slot FROM action_schedule WHERE action_id = ?').pluck(),
      // Nothing when the action is gone (its account was deleted under it): the schedule then stops.
      fired: deps.db.prepare('INSERT INTO action_schedule (action_id, last_slot) SELECT id, ? FROM actions WHERE id = ? ON CONFLICT (action_id) DO UPDATE SET last_slot = excluded.last_slot'),
    };
  }

  /** Arms every active schedule, firing the most recent missed slot (see the module comment). */
  start(): void {
    this.#deps.actions.onChange(this.#onChange);
    for (const { accountId, action } of this.#deps.actions.schedules()) this.#arm(accountId, action, true);
  }

  stop(): void {
    this.#deps.actions.offChange(this.#onChange);
    for (const armed of this.#armed.values()) this.#disarm(armed);
    this.#armed.clear();
  }

  /** The slot each armed schedule waits for (epoch ms), by action id. */
  nextSlots(): Map<string, number> {
    return new Map([...this.#armed].map(([id, armed]) => [id, armed.next]));
  }

  #changed(change: ActionChange): void {
    const armed = this.#armed.get(change.actionId);
    if (armed !== undefined) {
      this.#disarm(armed);
      this.#armed.delete(change.actionId);
    }
    const action = change.action;
    if (action !== null && action.active && action.trigger.type === 'schedule') this.#arm(change.accountId, action, false);
  }

  #arm(accountId: string, action: Action, catchUp: boolean): void {
    let cron: Cron;
    try {
      cron = parseSchedule(action.trigger as ScheduleTrigger);
    } catch (error) {
      this.#deps.log.error({ err: error, actionId: action.id }, 'schedule action not armed: its cron does not parse');
      return;
    }
    const now = this.#deps.clock.now();
    const last = Math.max(this.#stmt.last.get(action.id) ?? -Infinity, Date.parse(action.updated_at));
    const armed: Armed = { accountId, action, cron, last, next: 0, timer: null };
    this.#armed.set(action.id, armed);
    if (catchUp) {
      const missed = cron.previousRuns(1, new Date(now + 1))[0]?.getTime();
      if (missed !== undefined && missed > last && now - missed <= MISSED_FIRING_GRACE_MS) this.#fire(armed, missed);
    }
    this.#waitFrom(armed, now);
  }

  #disarm(armed: Armed): void {
    if (armed.timer !== null) this.#deps.clock.clearTimeout(armed.timer);
    armed.timer = null;
  }

  /** Sets the timer for the first slot after `from`. */
  #waitFrom(armed: Armed, from: number): void {
    const next = armed.cron.nextRun(new Date(from))?.getTime();
    if (next === undefined) return; // a cron with no future time (a past year)
    armed.next = next;
    this.#setTimer(armed);
  }

  #setTimer(armed: Armed): void {
    const delay = Math.min(Math.max(0, armed.next - this.#deps.clock.now()), MAX_TIMER_MS);
    armed.timer = this.#deps.clock.setTimeout(this.#onTimer, delay, armed);
  }

  #wake(armed: Armed): void {
    armed.timer = null;
    if (this.#armed.get(armed.action.id) !== armed) return;
    const now = this.#deps.clock.now();
    if (now < armed.next) {
      this.#setTimer(armed); // a long wait re-armed, or a timer a little early
      return;
    }
    this.#fire(armed, armed.next);
    this.#waitFrom(armed, Math.max(now, armed.next));
  }

  #fire(armed: Armed, slot: number): void {
    if (slot <= armed.last) return;
    armed.last = slot;
    try {
      if (this.#stmt.fired.run(slot, armed.action.id).changes === 0) {
        this.#disarm(armed);
        this.#armed.delete(armed.action.id);
        return;
      }
    } catch (error) {
      // Not recorded, so not run: a restart could otherwise run it twice.
      this.#deps.log.error({ err: error, actionId: armed.action.id }, 'schedule firing skipped: could not record its slot');
      return;
    }
    this.#deps.runner.submit({ accountId: armed.accountId, action: armed.action, trigger: 'schedule', device: null, slot, test: false, depth: 0 });
  }
}
