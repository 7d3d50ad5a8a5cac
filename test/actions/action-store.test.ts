/** The action store (SPEC §5): CRUD scoped to the account, persisted, and the per-account index. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ActionStore } from '../../src/actions/action-store.ts';
import { tagKey } from '../../src/actions/action-index.ts';
import { openDatabase } from '../../src/storage/sqlite-database.ts';
import { TenancyError } from '../../src/tenancy/errors.ts';
import { Registry } from '../../src/tenancy/registry.ts';

function device(id: string, tags: Array<{ key: string; value: string }> = []) {
  return { id, tagSet: new Set(tags.map(tagKey)) };
}

test('actions persist and the index is rebuilt from the database', () => {
  const db = openDatabase(':memory:');
  const registry = new Registry(db);
  registry.installPlans();
  const { account } = registry.createAccount({ name: 'acme' });
  const store = new ActionStore(db, registry);
  assert.equal(store.indexOf(account.id), null, 'no action, no index');
  const action = store.create(account.id, { name: 'a', trigger: { type: 'mqtt_topic', topics: ['s/#', 's/+'] }, action: { type: 'insert_bucket' } });
  assert.equal(action.active, true);

  const reopened = new ActionStore(db, registry);
  const index = reopened.indexOf(account.id);
  assert.ok(index !== null);
  assert.equal(index.firstMatch('s/t', device('d1'), 'insert_bucket')?.id, action.id);
  assert.equal(index.matches('s/t', device('d1')).length, 1, 'one action, two matching filters: fires once');
  assert.equal(index.firstMatch('x/t', device('d1'), 'insert_bucket'), null);
  assert.equal(index.firstMatch('$SYS/t', device('d1'), 'insert_bucket'), null, '$ topics are not matched by wildcards');

  reopened.update(account.id, action.id, { active: false });
  assert.equal(reopened.indexOf(account.id), null, 'inactive actions leave the index');
  assert.equal(reopened.get(account.id, action.id).active, false);
  reopened.delete(account.id, action.id);
  assert.deepEqual(reopened.list(account.id), []);
  assert.throws(() => reopened.get(account.id, action.id), (e: unknown) => e instanceof TenancyError && e.statusCode === 404);
  db.close();
});

test('scope: listed devices and required tags (both must hold when both are given)', () => {
  const db = openDatabase(':memory:');
  const registry = new Registry(db);
  registry.installPlans();
  const { account } = registry.createAccount({ name: 'acme' });
  const d1 = registry.createDevice(account.id, { name: 'd1' }).device.id;
  const d2 = registry.createDevice(account.id, { name: 'd2' }).device.id;
  const store = new ActionStore(db, registry);
  const site = { key: 'site', value: 'paris' };
  store.create(account.id, { name: 'a', trigger: { type: 'mqtt_topic', topics: ['t'], devices: [d1], tags: [site] }, action: { type: 'insert_bucket' } });
  const index = store.indexOf(account.id)!;
  assert.ok(index.firstMatch('t', device(d1, [site]), 'insert_bucket') !== null);
  assert.equal(index.firstMatch('t', device(d1), 'insert_bucket'), null);
  assert.equal(index.firstMatch('t', device(d2, [site]), 'insert_bucket'), null);

  const other = registry.createAccount({ name: 'other' }).account;
  assert.throws(
    () => store.create(other.id, { name: 'b', trigger: { type: 'mqtt_topic', topics: ['t'], devices: [d1] }, action: { type: 'insert_bucket' } }),
    /trigger\/devices\/0: device .* not found/,
    'another account\'s device cannot be named',
  );
  db.close();
});

test('the plan caps the number of actions', () => {
  const db = openDatabase(':memory:');
  const registry = new Registry(db);
  registry.installPlans([{ name: 'tiny', limits: { actions: 1 } }]);
  const { account } = registry.createAccount({ name: 'acme', plan: 'tiny' });
  const store = new ActionStore(db, registry);
  const input = { name: 'a', trigger: { type: 'mqtt_topic' as const, topics: ['t'] }, action: { type: 'insert_bucket' as const } };
  store.create(account.id, input);
  assert.throws(() => store.create(account.id, input), /the tiny plan allows 1 actions/);
  db.close();
});
