/**
 * `schedule` triggers (issue 17). The rules on node:test mock time (setTimeout and Date), with the
 * real Scheduler, ActionStore and SQLite file, and a recording runner; a "restart" is a new
 * ActionStore and Scheduler over the same database file. Then one real-time test: a per-second
 * schedule on a real server.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test, type TestContext } from 'node:test';
import pino from 'pino';
import { ActionStore } from '../../src/actions/action-store.ts';
import type { RunContext } from '../../src/actions/run-context.ts';
import { MISSED_FIRING_GRACE_MS, Scheduler } from '../../src/actions/scheduler.ts';
import { systemClock } from '../../src/broker/clock.ts';
import { openDatabase, type Database } from '../../src/storage/sqlite-database.ts';
import { Registry } from '../../src/tenancy/registry.ts';
import { ActionFixture } from './action-fixture.ts';

const scratch = mkdtempSync(path.join(tmpdir(), 'bucketmq-schedule-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let files = 0;

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** One node's schedule machinery over a database file; `restart` is a stop and a fresh start on the same file. */
class Node {
  readonly runs: RunContext[] = [];
  readonly file = path.join(scratch, `schedule-${++files}.db`);
  db!: Database;
  registry!: Registry;
  actions!: ActionStore;
  scheduler!: Scheduler;
  accountId = '';

  start(): void {
    this.db = openDatabase(this.file);
    this.registry = new Registry(this.db);
    this.registry.installPlans();
    this.accountId ||= this.registry.createAccount({ name: 'acme' }).account.id;
    this.actions = new ActionStore(this.db, this.registry);
    this.scheduler = new Scheduler({ db: this.db, actions: this.actions, runner: { submit: (context) => this.runs.push(context) > 0 }, clock: systemClock, log: pino({ level: 'silent' }) });
    this.scheduler.start();
  }

  stop(): void {
    this.scheduler.stop();
    this.db.close();
  }

  schedule(cron: string, timezone?: string): string {
    const trigger = timezone === undefined ? { type: 'schedule' as const, cron } : { type: 'schedule' as const, cron, timezone };
    return this.actions.create(this.accountId, { name: cron, trigger, action: { type: 'insert_bucket' } }).id;
  }

  slots(): string[] {
    return this.runs.map((run) => new Date(run.slot!).toISOString());
  }
}

function mockClock(t: TestContext, at: string): (ms: number) => void {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.parse(at) });
  return (ms) => t.mock.timers.tick(ms);
}

describe('schedule rules (mock time)', () => {
  test('fires once per slot, in the trigger\'s time zone, with the slot in the run', (t) => {
    const tick = mockClock(t, '2026-01-05T07:59:00.000Z');
    const node = new Node();
    node.start();
    t.after(() => node.stop());
    node.schedule('0 9 * * *', 'Europe/Paris'); // 09:00 in Paris is 08:00 UTC in winter
    tick(MINUTE - 1);
    assert.deepEqual(node.slots(), []);
    tick(1);
    assert.deepEqual(node.slots(), ['2026-01-05T08:00:00.000Z']);
    assert.equal(node.runs[0]!.trigger, 'schedule');
    assert.equal(node.runs[0]!.device, null);
    tick(24 * HOUR); // past several re-armed long waits
    assert.deepEqual(node.slots(), ['2026-01-05T08:00:00.000Z', '2026-01-06T08:00:00.000Z']);
  });

  test('a restart inside the same minute neither fires a slot twice nor misses one', (t) => {
    const tick = mockClock(t, '2026-01-05T12:00:50.000Z');
    const node = new Node();
    node.start();
    node.schedule('* * * * *');
    tick(10_000);
    assert.deepEqual(node.slots(), ['2026-01-05T12:01:00.000Z']);

    // Restarted 5 s after the firing: the slot is not fired again.
    tick(5_000);
    node.stop();
    node.start();
    assert.deepEqual(node.slots(), ['2026-01-05T12:01:00.000Z']);
    tick(55_000);
    assert.deepEqual(node.slots(), ['2026-01-05T12:01:00.000Z', '2026-01-05T12:02:00.000Z']);

    // Down from 12:02:59.5 to 12:03:00.5: the 12:03 slot fires once, at start.
    tick(59_500);
    node.stop();
    tick(1_000);
    node.start();
    t.after(() => node.stop());
    assert.deepEqual(node.slots().slice(2), ['2026-01-05T12:03:00.000Z']);
    tick(59_500);
    assert.deepEqual(node.slots().slice(2), ['2026-01-05T12:03:00.000Z', '2026-01-05T12:04:00.000Z']);
  });

  test(`firings missed while down: only the latest, and only within ${MISSED_FIRING_GRACE_MS / MINUTE} minutes, fires once at start`, (t) => {
    const tick = mockClock(t, '2026-01-05T11:30:00.000Z');
    const node = new Node();
    node.start();
    node.schedule('0 * * * *');
    tick(30 * MINUTE);
    assert.deepEqual(node.slots(), ['2026-01-05T12:00:00.000Z']);

    node.stop();
    tick(3 * HOUR + 4 * MINUTE); // 13:00, 14:00 and 15:00 missed; 15:00 is 4 minutes old
    node.start();
    assert.deepEqual(node.slots(), ['2026-01-05T12:00:00.000Z', '2026-01-05T15:00:00.000Z']);

    node.stop();
    tick(2 * HOUR + 2 * MINUTE); // 16:00 and 17:00 missed; 17:00 is 6 minutes old
    node.start();
    t.after(() => node.stop());
    assert.equal(node.runs.length, 2, 'nothing fired at start');
    tick(54 * MINUTE);
    assert.deepEqual(node.slots().slice(2), ['2026-01-05T18:00:00.000Z']);
  });

  test('a new or changed schedule never fires a slot from before it; deactivating or deleting disarms it', (t) => {
    const tick = mockClock(t, '2026-01-05T12:00:30.000Z');
    const node = new Node();
    node.start();
    const id = node.schedule('0 * * * *');
    node.stop();
    node.start(); // at start the 12:00 slot is due, missed and recent, but older than the action
    t.after(() => node.stop());
    assert.deepEqual(node.slots(), []);

    node.actions.update(node.accountId, id, { trigger: { type: 'schedule', cron: '*/15 * * * *' } });
    tick(15 * MINUTE);
    assert.deepEqual(node.slots(), ['2026-01-05T12:15:00.000Z']);
    node.actions.update(node.accountId, id, { active: false });
    tick(15 * MINUTE);
    assert.equal(node.runs.length, 1);
    node.actions.update(node.accountId, id, { active: true });
    tick(15 * MINUTE);
    assert.deepEqual(node.slots(), ['2026-01-05T12:15:00.000Z', '2026-01-05T12:45:00.000Z'], 'the 12:30 slot, while inactive, is not caught up');
    node.actions.delete(node.accountId, id);
    tick(HOUR);
    assert.equal(node.runs.length, 2);
    assert.equal(node.scheduler.nextSlots().size, 0);

    // An account deleted under its actions (the registry's cascade, which the action store does not hear):
    // the next slot finds the action gone and the schedule stops.
    const orphan = node.schedule('*/15 * * * *');
    node.registry.deleteAccount(node.accountId);
    tick(15 * MINUTE);
    assert.equal(node.runs.length, 2);
    assert.equal(node.scheduler.nextSlots().has(orphan), false);
  });
});

describe('schedule on real time', () => {
  test('a per-second schedule runs once a second through the runner, recorded in the history', async () => {
    const f = new ActionFixture();
    await f.start();
    try {
      const id = await f.createAction({ trigger: { type: 'schedule', cron: '* * * * * *' } });
      await f.executors.waitFor(() => f.executors.of(id).length >= 3, 6_000, 'three per-second firings');
      const slots = f.executors.of(id).slice(0, 3).map((run) => run.slot!);
      assert.deepEqual([slots[1]! - slots[0]!, slots[2]! - slots[1]!], [1_000, 1_000], 'consecutive seconds, none skipped or doubled');
      for (const slot of slots) assert.equal(slot % 1_000, 0);
      assert.equal((await f.api('PUT', `/actions/${id}`, { active: false })).status, 200);
      const runs = await f.api('GET', `/actions/${id}/runs`);
      assert.ok(runs.body.result.length >= 3);
      assert.ok(runs.body.result.every((r: { trigger: string; ok: boolean; device_id: null }) => r.trigger === 'schedule' && r.ok && r.device_id === null));
    } finally {
      await f.close();
    }
  });
});
