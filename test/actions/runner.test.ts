/**
 * The runner's own rules on mock time (issue 17): a run that never answers is recorded as timed out
 * and frees its place in the account's lane. Real SQLite (in memory), the real runner and history,
 * the recording stand-in executors held (a target that never answers).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { ActionStore } from '../../src/actions/action-store.ts';
import { RunHistory } from '../../src/actions/run-history.ts';
import { ACCOUNT_CONCURRENCY, ActionRunner, RUN_TIMEOUT_MS } from '../../src/actions/runner.ts';
import { DeviceCache } from '../../src/data/device-cache.ts';
import { InspectorBus } from '../../src/inspector/inspector-bus.ts';
import { openDatabase } from '../../src/storage/sqlite-database.ts';
import { Registry } from '../../src/tenancy/registry.ts';
import { settle } from '../broker/mock-time.ts';
import { RecordingExecutors } from './recording-executors.ts';

test('a run still going after the run timeout is recorded as failed and frees its place in the lane', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.parse('2026-01-05T12:00:00Z') });
  const db = openDatabase(':memory:');
  const registry = new Registry(db);
  registry.installPlans();
  const accountId = registry.createAccount({ name: 'acme' }).account.id;
  const actions = new ActionStore(db, registry);
  const action = actions.create(accountId, { name: 'slow', trigger: { type: 'schedule', cron: '0 0 1 1 *' }, action: { type: 'insert_bucket' } });
  const history = new RunHistory(db);
  const devices = new DeviceCache(registry);
  const executors = new RecordingExecutors();
  const runner = new ActionRunner({ executors, history, inspector: new InspectorBus(), actions, devices, log: pino({ level: 'silent' }) });
  t.after(() => {
    executors.release();
    devices.close();
    history.close();
    db.close();
  });

  executors.hold();
  const context = { accountId, action, trigger: 'schedule', device: null, test: false, depth: 0 } as const;
  for (let i = 0; i <= ACCOUNT_CONCURRENCY; i++) assert.equal(runner.submit(context), true);
  await settle(() => executors.calls.length === ACCOUNT_CONCURRENCY, 5_000, 'the lane to fill');
  assert.deepEqual({ ...runner.stats }, { queued: 1, running: ACCOUNT_CONCURRENCY, dropped: 0, loops: 0 });

  t.mock.timers.tick(RUN_TIMEOUT_MS - 1);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(history.runs(action.id).length, 0, 'not before the timeout');
  t.mock.timers.tick(1);
  await settle(() => executors.calls.length === ACCOUNT_CONCURRENCY + 1, 5_000, 'the waiting run to start');
  const runs = history.runs(action.id);
  assert.equal(runs.length, ACCOUNT_CONCURRENCY);
  assert.deepEqual({ ...runs[0]!, started_at: '', duration_ms: 0 }, { action_id: action.id, trigger: 'schedule', device_id: null, started_at: '', duration_ms: 0, ok: false, error: `timeout: still running after ${RUN_TIMEOUT_MS / 1000} s`, attempts: 1, test: false, depth: 0 });
  assert.equal(runs[0]!.started_at, '2026-01-05T12:00:00.000Z');
});
