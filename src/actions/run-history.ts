/**
 * Every action run, recorded (SPEC §5, issue 17: "why did my action not fire" has an answer): the
 * last `RUNS_KEPT` per action in the node's SQLite database, so the history survives a restart.
 *
 * Cost: runs are buffered and written in one transaction per event-loop turn (a flood of runs is one
 * write, not thousands), then each written action is trimmed to its last RUNS_KEPT. A read flushes
 * first, so a run that has finished is always listed. A run's `result` is kept up to
 * MAX_RESULT_BYTES of JSON (a bigger one is replaced by a note saying so).
 */
import { migrate, type Database } from '../storage/sqlite-database.ts';
import type { TriggerKind } from './run-context.ts';

export const RUN_MIGRATIONS: readonly string[] = [
  `CREATE TABLE action_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    action_id   TEXT    NOT NULL REFERENCES actions(id) ON DELETE CASCADE,
    trigger     TEXT    NOT NULL,
    device_id   TEXT,
    started_at  INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    ok          INTEGER NOT NULL,
    error       TEXT,
    attempts    INTEGER NOT NULL,
    result      TEXT,
    test        INTEGER NOT NULL,
    depth       INTEGER NOT NULL
  );
  CREATE INDEX action_runs_by_action ON action_runs (action_id, id);`,
];

/** Runs kept per action. */
export const RUNS_KEPT = 100;
const MAX_RESULT_BYTES = 4_096;

/** One run as the API shows it. */
export interface RunRecord {
  action_id: string;
  trigger: TriggerKind;
  /** The device whose message or record set the run off; null for a schedule. */
  device_id: string | null;
  /** ISO-8601 date the run started. */
  started_at: string;
  duration_ms: number;
  ok: boolean;
  error?: string;
  attempts: number;
  result?: unknown;
  /** A test run through the API. */
  test: boolean;
  /** Action publishes or inserts that led to it; 0 for a device's own message or a schedule. */
  depth: number;
}

interface RunRow {
  action_id: string;
  trigger: string;
  device_id: string | null;
  started_at: number;
  duration_ms: number;
  ok: number;
  error: string | null;
  attempts: number;
  result: string | null;
  test: number;
  depth: number;
}

export class RunHistory {
  readonly #pending: RunRow[] = [];
  #flushing: NodeJS.Immediate | null = null;
  #closed = false;
  readonly #flush;
  readonly #stmt;

  /** The actions table must exist first (ActionStore). */
  constructor(db: Database) {
    migrate(db, 'action-runs', RUN_MIGRATIONS);
    this.#stmt = {
      insert: db.prepare('INSERT INTO action_runs (action_id, trigger, device_id, started_at, duration_ms, ok, error, attempts, result, test, depth) VALUES (@action_id, @trigger, @device_id, @started_at, @duration_ms, @ok, @error, @attempts, @result, @test, @depth)'),
      trim: db.prepare(`DELETE FROM action_runs WHERE action_id = ? AND id <= (SELECT id FROM action_runs WHERE action_id = ? ORDER BY id DESC LIMIT 1 OFFSET ${RUNS_KEPT})`),
      ofAction: db.prepare<[string], RunRow>(`SELECT * FROM action_runs WHERE action_id = ? ORDER BY id DESC LIMIT ${RUNS_KEPT}`),
      exists: db.prepare<[string], number>('SELECT 1 FROM actions WHERE id = ?').pluck(),
    };
    this.#flush = db.transaction((rows: RunRow[]) => {
      const actions = new Set<string>();
      for (const row of rows) {
        // The action may have been deleted while it ran: its history went with it.
        if (this.#stmt.exists.get(row.action_id) === undefined) continue;
        this.#stmt.insert.run(row);
        actions.add(row.action_id);
      }
      for (const actionId of actions) this.#stmt.trim.run(actionId, actionId);
    });
  }

  add(run: RunRecord): void {
    if (this.#closed) return; // a run finishing while the server stops
    this.#pending.push(toRow(run));
    this.#flushing ??= setImmediate(() => this.flush());
  }

  /** The action's last runs, newest first. */
  runs(actionId: string): RunRecord[] {
    this.flush();
    return this.#stmt.ofAction.all(actionId).map(toRun);
  }

  /** Writes what is buffered and takes no more: call before the database closes. */
  close(): void {
    this.flush();
    this.#closed = true;
  }

  /** Writes what is buffered. */
  flush(): void {
    if (this.#flushing !== null) clearImmediate(this.#flushing);
    this.#flushing = null;
    if (this.#pending.length === 0) return;
    this.#flush(this.#pending.splice(0));
  }
}

function toRow(run: RunRecord): RunRow {
  let result: string | null = null;
  if (run.result !== undefined) {
    result = JSON.stringify(run.result) ?? null;
    if (result !== null && Buffer.byteLength(result) > MAX_RESULT_BYTES) result = JSON.stringify(`(a result of ${Buffer.byteLength(result)} bytes of JSON, over the ${MAX_RESULT_BYTES} kept)`);
  }
  return {
    action_id: run.action_id,
    trigger: run.trigger,
    device_id: run.device_id,
    started_at: Date.parse(run.started_at),
    duration_ms: Math.round(run.duration_ms),
    ok: run.ok ? 1 : 0,
    error: run.error ?? null,
    attempts: run.attempts,
    result,
    test: run.test ? 1 : 0,
    depth: run.depth,
  };
}

function toRun(row: RunRow): RunRecord {
  const run: RunRecord = {
    action_id: row.action_id,
    trigger: row.trigger as TriggerKind,
    device_id: row.device_id,
    started_at: new Date(row.started_at).toISOString(),
    duration_ms: row.duration_ms,
    ok: row.ok === 1,
    attempts: row.attempts,
    test: row.test === 1,
    depth: row.depth,
  };
  if (row.error !== null) run.error = row.error;
  if (row.result !== null) run.result = JSON.parse(row.result) as unknown;
  return run;
}
