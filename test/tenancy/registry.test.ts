/**
 * Registry unit tests (SPEC §1 tenancy model; issue 4: tokens random 128-bit+, stored hashed,
 * compared in constant time, never stored in plain text; plans, devices, params, tags).
 * Runs against real SQLite (in memory, or a temp file where the bytes on disk are the point).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openDatabase, type Database } from '../../src/storage/sqlite-database.ts';
import { TenancyError } from '../../src/tenancy/errors.ts';
import { Registry, type Revocation } from '../../src/tenancy/registry.ts';

function memoryRegistry(now?: () => number): { registry: Registry; db: Database } {
  const db = openDatabase(':memory:');
  const registry = new Registry(db, now !== undefined ? { now } : {});
  registry.installPlans();
  return { registry, db };
}

function assertTenancyError(fn: () => unknown, status: number, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof TenancyError, `not a TenancyError: ${String(err)}`);
    assert.equal(err.statusCode, status, `status of "${err.message}"`);
    assert.match(err.message, pattern);
    return true;
  });
}

/** A token with one character changed (same length and shape). */
function flipOne(token: string): string {
  const i = token.length - 1;
  const c = token[i] === 'a' ? 'b' : 'a';
  return token.slice(0, i) + c;
}

describe('tokens: random, hashed at rest, authenticated', () => {
  test('no plain token (device or account) is anywhere in the database file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bucketmq-registry-'));
    try {
      const file = path.join(dir, 'bucketmq.db');
      let db = openDatabase(file);
      let registry = new Registry(db);
      registry.installPlans();
      const { account, token: accountToken } = registry.createAccount({ name: 'hash' });
      const { device, token: deviceToken } = registry.createDevice(account.id, { name: 'dev' });
      const extra = registry.createDeviceToken(account.id, device.id, { name: 'extra', permission: 'read', expire_time: '3 hours', serie_number: 'SN-1' });
      const extraAccount = registry.createAccountToken(account.id, { name: 'api', permission: 'write' });
      const tokens = [accountToken, deviceToken, extra.token, extraAccount.token];
      // Authenticate once so last_authorization and friends are written too.
      assert.ok(registry.authenticateDeviceToken(deviceToken));
      assert.ok(registry.authenticateAccountToken(accountToken));

      // Check the live files (main + WAL) and then again after a checkpointing close.
      const scan = (): void => {
        const bytes = readdirSync(dir)
          .filter((f) => f.startsWith('bucketmq.db'))
          .map((f) => readFileSync(path.join(dir, f)));
        assert.ok(bytes.length >= 1);
        for (const token of tokens) {
          for (const form of [token, token.replaceAll('-', ''), token.toUpperCase()]) {
            for (const b of bytes) {
              assert.equal(b.includes(Buffer.from(form, 'utf8')), false, `token ${form} found in the database files`);
              assert.equal(b.includes(Buffer.from(form, 'utf16le')), false, `token ${form} (UTF-16) found in the database files`);
            }
          }
        }
      };
      scan();
      db.close();
      scan();

      // Reading the tables directly: the stored value is a digest, not the token.
      db = openDatabase(file);
      registry = new Registry(db);
      const rows = db.prepare('SELECT * FROM device_tokens').all() as Array<Record<string, unknown>>;
      assert.equal(rows.length, 2);
      for (const row of rows) {
        for (const [column, value] of Object.entries(row)) {
          const text = Buffer.isBuffer(value) ? value.toString('latin1') : String(value);
          for (const token of tokens) assert.ok(!text.includes(token), `device_tokens.${column} holds a plain token`);
        }
        assert.ok(Buffer.isBuffer(row.digest) && row.digest.length >= 32, 'digest is a 256-bit blob');
      }
      // And after reopening, the tokens still work (digest lookup).
      assert.equal(registry.authenticateDeviceToken(deviceToken)?.deviceId, device.id);
      assert.equal(registry.authenticateAccountToken(accountToken)?.accountId, account.id);
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('tokens carry at least 128 random bits and are all different', () => {
    const { registry } = memoryRegistry();
    const { account } = registry.createAccount({ name: 'rand' });
    const seen = new Set<string>();
    const device = registry.createDevice(account.id, { name: 'd' });
    seen.add(device.token);
    for (let i = 0; i < 50; i++) seen.add(registry.createDeviceToken(account.id, device.device.id, { name: `t${i}`, permission: 'full' }).token);
    assert.equal(seen.size, 51);
    for (const token of seen) {
      const hex = token.replaceAll('-', '');
      assert.match(hex, /^[0-9a-f]+$/i, `token ${token} is not hex`);
      assert.ok(hex.length >= 32, `token ${token} has fewer than 128 bits`);
    }
  });

  test('authenticateDeviceToken: the right token resolves to its device; wrong tokens of the same length fail', () => {
    const { registry } = memoryRegistry();
    const { account } = registry.createAccount({ name: 'auth' });
    const { device, token, tokenInfo } = registry.createDevice(account.id, { name: 'd' });
    const who = registry.authenticateDeviceToken(token);
    assert.deepEqual(
      who && { accountId: who.accountId, deviceId: who.deviceId, tokenId: who.tokenId, permission: who.permission },
      { accountId: account.id, deviceId: device.id, tokenId: tokenInfo.id, permission: 'full' },
    );
    assert.equal(registry.authenticateDeviceToken(flipOne(token)), null);
    assert.equal(registry.authenticateDeviceToken(token.toUpperCase() === token ? token.toLowerCase() : token.toUpperCase()), null, 'tokens are case-sensitive');
    assert.equal(registry.authenticateDeviceToken(token.slice(0, -1)), null);
    assert.equal(registry.authenticateDeviceToken(`${token} `), null);
    assert.equal(registry.authenticateDeviceToken(''), null);
    assert.equal(registry.authenticateDeviceToken('x'.repeat(10_000)), null);
  });

  test('device and account tokens are not interchangeable', () => {
    const { registry } = memoryRegistry();
    const { account, token: accountToken } = registry.createAccount({ name: 'kinds' });
    const { token: deviceToken } = registry.createDevice(account.id, { name: 'd' });
    assert.equal(registry.authenticateDeviceToken(accountToken), null);
    assert.equal(registry.authenticateAccountToken(deviceToken), null);
    assert.equal(registry.authenticateAccountToken(accountToken)?.accountId, account.id);
    assert.equal(registry.authenticateAccountToken(flipOne(accountToken)), null);
  });

  test('a device token records its last authorization', () => {
    let now = Date.parse('2030-01-01T00:00:00.000Z');
    const { registry } = memoryRegistry(() => now);
    const { account } = registry.createAccount({ name: 'touch' });
    const { device, token } = registry.createDevice(account.id, { name: 'd' });
    assert.equal(registry.deviceTokens(account.id, device.id)[0]!.last_authorization, null);
    now += 5_000;
    registry.authenticateDeviceToken(token);
    assert.equal(registry.deviceTokens(account.id, device.id)[0]!.last_authorization, new Date(now).toISOString());
  });

  test('authentication reuses a token row for up to 1 s: changes here apply at once, another process\'s within the second', () => {
    let now = Date.parse('2030-01-01T00:00:00.000Z');
    const dir = mkdtempSync(path.join(tmpdir(), 'bucketmq-token-cache-'));
    try {
      const file = path.join(dir, 'bucketmq.db');
      const db = openDatabase(file);
      const registry = new Registry(db, { now: () => now });
      registry.installPlans();
      const { account } = registry.createAccount({ name: 'cache' });
      const a = registry.createDevice(account.id, { name: 'a' });
      const b = registry.createDevice(account.id, { name: 'b' });
      const extra = registry.createDeviceToken(account.id, a.device.id, { name: 'extra', permission: 'read' });
      assert.equal(registry.authenticateDeviceToken(a.token)?.deviceId, a.device.id);
      assert.equal(registry.authenticateDeviceToken(extra.token)?.permission, 'read');
      assert.equal(registry.authenticateDeviceToken(b.token)?.deviceId, b.device.id);

      // This process: deleting a token or deactivating a device applies to the very next call.
      registry.deleteDeviceToken(account.id, a.device.id, extra.info.id);
      assert.equal(registry.authenticateDeviceToken(extra.token), null);
      registry.updateDevice(account.id, b.device.id, { active: false });
      assert.equal(registry.authenticateDeviceToken(b.token), null);

      // Another process (the CLI) deletes a's device: seen once the cached row is 1 s old.
      const cliDb = openDatabase(file);
      const cli = new Registry(cliDb);
      assert.equal(registry.authenticateDeviceToken(a.token)?.deviceId, a.device.id);
      cli.deleteDevice(account.id, a.device.id);
      now += 999;
      assert.equal(registry.authenticateDeviceToken(a.token)?.deviceId, a.device.id, 'still cached');
      now += 1;
      assert.equal(registry.authenticateDeviceToken(a.token), null);
      cliDb.close();
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('expire_time', () => {
  const NOW = Date.parse('2030-06-01T12:00:00.000Z');

  function setup(): { registry: Registry; accountId: string; deviceId: string; clock: { now: number } } {
    const clock = { now: NOW };
    const { registry } = memoryRegistry(() => clock.now);
    const { account } = registry.createAccount({ name: 'exp' });
    const { device } = registry.createDevice(account.id, { name: 'd' });
    return { registry, accountId: account.id, deviceId: device.id, clock };
  }

  test('"never", ISO dates and relative spans are parsed and shown as "never" or an ISO date', () => {
    const { registry, accountId, deviceId } = setup();
    const cases: Array<[input: string | undefined, expected: string]> = [
      [undefined, 'never'],
      ['never', 'never'],
      ['2031-02-03T04:05:06.000Z', '2031-02-03T04:05:06.000Z'],
      ['2031-02-03T04:05:06+02:00', '2031-02-03T02:05:06.000Z'],
      ['3 hours', new Date(NOW + 3 * 3_600_000).toISOString()],
      ['1 hour', new Date(NOW + 3_600_000).toISOString()],
      ['30 minutes', new Date(NOW + 30 * 60_000).toISOString()],
      ['2 days', new Date(NOW + 2 * 86_400_000).toISOString()],
      ['1 week', new Date(NOW + 7 * 86_400_000).toISOString()],
      ['10 seconds', new Date(NOW + 10_000).toISOString()],
    ];
    for (const [input, expected] of cases) {
      const { info } = registry.createDeviceToken(accountId, deviceId, { name: String(input), permission: 'full', ...(input !== undefined ? { expire_time: input } : {}) });
      assert.equal(info.expire_time, expected, `expire_time ${String(input)}`);
      const listed = registry.deviceTokens(accountId, deviceId).find((t) => t.id === info.id)!;
      assert.equal(listed.expire_time, expected, `listed expire_time ${String(input)}`);
    }
  });

  test('a bad expire_time ("soon", "3 lightyears", "tomorrow-ish") is a 400 TenancyError naming expire_time', () => {
    const { registry, accountId, deviceId } = setup();
    for (const bad of ['soon', '3 lightyears', 'tomorrow-ish', 'hours', '-3 hours', '2031-13-45']) {
      assertTenancyError(() => registry.createDeviceToken(accountId, deviceId, { name: 'bad', permission: 'full', expire_time: bad }), 400, /expire_time/);
      assertTenancyError(() => registry.createAccountToken(accountId, { name: 'bad', permission: 'full', expire_time: bad }), 400, /expire_time/);
    }
    // Nothing was created by the failed calls.
    assert.equal(registry.deviceTokens(accountId, deviceId).length, 1);
  });

  test('a token works until its expire_time and not from that instant on', () => {
    const { registry, accountId, deviceId, clock } = setup();
    const { token } = registry.createDeviceToken(accountId, deviceId, { name: 'short', permission: 'full', expire_time: '3 hours' });
    const { token: iso } = registry.createDeviceToken(accountId, deviceId, { name: 'iso', permission: 'read', expire_time: new Date(NOW + 60_000).toISOString() });
    const { token: accountToken } = registry.createAccountToken(accountId, { name: 'acct', permission: 'full', expire_time: '1 hour' });
    assert.ok(registry.authenticateDeviceToken(token));
    assert.equal(registry.authenticateDeviceToken(token)!.expiresAt, NOW + 3 * 3_600_000);
    clock.now = NOW + 59_999;
    assert.ok(registry.authenticateDeviceToken(iso));
    clock.now = NOW + 60_000;
    assert.equal(registry.authenticateDeviceToken(iso), null);
    clock.now = NOW + 3_600_000 - 1;
    assert.ok(registry.authenticateAccountToken(accountToken));
    clock.now = NOW + 3_600_000;
    assert.equal(registry.authenticateAccountToken(accountToken), null);
    clock.now = NOW + 3 * 3_600_000 - 1;
    assert.ok(registry.authenticateDeviceToken(token));
    clock.now = NOW + 3 * 3_600_000;
    assert.equal(registry.authenticateDeviceToken(token), null);
  });

  test('a past ISO date makes a token that never works', () => {
    const { registry, accountId, deviceId } = setup();
    const { token } = registry.createDeviceToken(accountId, deviceId, { name: 'past', permission: 'full', expire_time: '2020-01-01T00:00:00Z' });
    assert.equal(registry.authenticateDeviceToken(token), null);
  });
});

describe('devices and device tokens', () => {
  test('a new device gets exactly one token, permission full, never expiring', () => {
    const { registry } = memoryRegistry();
    const { account } = registry.createAccount({ name: 'one' });
    const { device, token, tokenInfo } = registry.createDevice(account.id, { name: 'd' });
    const tokens = registry.deviceTokens(account.id, device.id);
    assert.equal(tokens.length, 1);
    assert.equal(tokens[0]!.id, tokenInfo.id);
    assert.equal(tokens[0]!.permission, 'full');
    assert.equal(tokens[0]!.expire_time, 'never');
    assert.equal(tokens[0]!.device_id, device.id);
    assert.equal(registry.authenticateDeviceToken(token)?.tokenId, tokenInfo.id);
    assert.ok(!('token' in tokens[0]!) || (tokens[0] as { token?: unknown }).token !== token, 'listing tokens reveals the plain token');
  });

  test('extra tokens: permission, serie_number, list, revoke; a bad permission is a 400 naming permission', () => {
    const { registry } = memoryRegistry();
    const { account } = registry.createAccount({ name: 'more' });
    const { device } = registry.createDevice(account.id, { name: 'd' });
    const read = registry.createDeviceToken(account.id, device.id, { name: 'ro', permission: 'read', serie_number: 'SN-42' });
    const write = registry.createDeviceToken(account.id, device.id, { name: 'wo', permission: 'write' });
    assert.equal(registry.authenticateDeviceToken(read.token)?.permission, 'read');
    assert.equal(registry.authenticateDeviceToken(write.token)?.permission, 'write');
    const listed = registry.deviceTokens(account.id, device.id);
    assert.deepEqual(listed.map((t) => [t.permission, t.serie_number]), [['full', null], ['read', 'SN-42'], ['write', null]]);
    assert.deepEqual(listed.slice(1).map((t) => t.name), ['ro', 'wo']);
    registry.deleteDeviceToken(account.id, device.id, read.info.id);
    assert.equal(registry.authenticateDeviceToken(read.token), null);
    assert.equal(registry.deviceTokens(account.id, device.id).length, 2);
    assertTenancyError(() => registry.deleteDeviceToken(account.id, device.id, read.info.id), 404, /not found/);
    assertTenancyError(() => registry.createDeviceToken(account.id, device.id, { name: 'x', permission: 'admin' as never }), 400, /permission/);
  });

  test('revocation events: deleting a token, deleting a device, deactivating a device (only on the active→inactive edge)', () => {
    const { registry } = memoryRegistry();
    const events: Revocation[] = [];
    registry.on('revoked', (r) => events.push(r));
    const { account } = registry.createAccount({ name: 'events' });
    const { device, tokenInfo } = registry.createDevice(account.id, { name: 'd' });
    registry.deleteDeviceToken(account.id, device.id, tokenInfo.id);
    registry.updateDevice(account.id, device.id, { active: false });
    registry.updateDevice(account.id, device.id, { active: false });
    registry.updateDevice(account.id, device.id, { name: 'renamed' });
    registry.deleteDevice(account.id, device.id);
    assert.deepEqual(events, [
      { kind: 'token-deleted', tokenIds: [tokenInfo.id] },
      { kind: 'device-deactivated', deviceId: device.id },
      { kind: 'device-deleted', deviceId: device.id },
    ]);
  });

  test('inactive devices: created inactive or deactivated, their tokens do not authenticate; reactivated they do', () => {
    const { registry } = memoryRegistry();
    const { account } = registry.createAccount({ name: 'inactive' });
    const created = registry.createDevice(account.id, { name: 'off', active: false });
    assert.equal(created.device.active, false);
    assert.equal(registry.authenticateDeviceToken(created.token), null);
    registry.updateDevice(account.id, created.device.id, { active: true });
    assert.ok(registry.authenticateDeviceToken(created.token));
    registry.updateDevice(account.id, created.device.id, { active: false });
    assert.equal(registry.authenticateDeviceToken(created.token), null);
  });

  test('the plan\'s device cap is enforced (400 naming devices); deleting a device frees a slot; unknown plan is a 400', () => {
    const { registry } = memoryRegistry();
    registry.installPlans([{ name: 'tiny', limits: { devices: 2 } }]);
    const { account } = registry.createAccount({ name: 'capped', plan: 'tiny' });
    const first = registry.createDevice(account.id, { name: 'd1' });
    registry.createDevice(account.id, { name: 'd2' });
    assertTenancyError(() => registry.createDevice(account.id, { name: 'd3' }), 400, /devices/);
    assert.equal(registry.devices(account.id).length, 2);
    registry.deleteDevice(account.id, first.device.id);
    registry.createDevice(account.id, { name: 'd3' });
    assert.equal(registry.devices(account.id).length, 2);
    // Another account on a bigger plan is not affected by this cap.
    const { account: big } = registry.createAccount({ name: 'big' });
    for (let i = 0; i < 3; i++) registry.createDevice(big.id, { name: `b${i}` });
    assertTenancyError(() => registry.createAccount({ name: 'x', plan: 'no-such-plan' }), 400, /plan/);
  });

  test('params: set at creation, update by key, add, delete by id', () => {
    const { registry } = memoryRegistry();
    const { account } = registry.createAccount({ name: 'params' });
    const { device } = registry.createDevice(account.id, { name: 'd', params: [{ key: 'interval', value: '60' }, { key: 'mode', value: 'eco', sent: true }] });
    assert.deepEqual(device.params.map((p) => [p.key, p.value, p.sent]), [['interval', '60', false], ['mode', 'eco', true]]);
    const ids = new Set(device.params.map((p) => p.id));
    assert.equal(ids.size, 2);

    const updated = registry.setParams(account.id, device.id, [{ key: 'interval', value: '30' }, { key: 'fw', value: '1.2.3' }]);
    assert.deepEqual(updated.map((p) => [p.key, p.value]), [['interval', '30'], ['mode', 'eco'], ['fw', '1.2.3']]);
    assert.equal(updated.find((p) => p.key === 'interval')!.id, device.params[0]!.id, 'updating by key keeps the param id');
    assert.deepEqual(registry.device(account.id, device.id)!.params.map((p) => p.value), ['30', 'eco', '1.2.3']);

    const modeId = updated.find((p) => p.key === 'mode')!.id;
    const after = registry.deleteParam(account.id, device.id, modeId);
    assert.deepEqual(after.map((p) => p.key), ['interval', 'fw']);
    assert.deepEqual(registry.device(account.id, device.id)!.params.map((p) => p.key), ['interval', 'fw']);
    assertTenancyError(() => registry.deleteParam(account.id, device.id, modeId), 404, /not found/);
  });

  test('list devices: tags filter (every listed tag must match), name filter, paging', () => {
    const { registry } = memoryRegistry();
    const { account } = registry.createAccount({ name: 'tags' });
    const mk = (name: string, tags: Array<[string, string]>): string => registry.createDevice(account.id, { name, tags: tags.map(([key, value]) => ({ key, value })) }).device.id;
    mk('kitchen sensor', [['room', 'kitchen'], ['kind', 'sensor']]);
    mk('kitchen lamp', [['room', 'kitchen'], ['kind', 'actuator']]);
    mk('garage sensor', [['room', 'garage'], ['kind', 'sensor']]);
    mk('untagged', []);
    const names = (list: Array<{ name: string }>): string[] => list.map((d) => d.name).sort();
    assert.deepEqual(names(registry.devices(account.id, { tags: [{ key: 'room', value: 'kitchen' }] })), ['kitchen lamp', 'kitchen sensor']);
    assert.deepEqual(names(registry.devices(account.id, { tags: [{ key: 'kind', value: 'sensor' }] })), ['garage sensor', 'kitchen sensor']);
    assert.deepEqual(names(registry.devices(account.id, { tags: [{ key: 'room', value: 'kitchen' }, { key: 'kind', value: 'sensor' }] })), ['kitchen sensor']);
    assert.deepEqual(registry.devices(account.id, { tags: [{ key: 'room', value: 'attic' }] }), []);
    assert.deepEqual(names(registry.devices(account.id, { name: 'SENSOR' })), ['garage sensor', 'kitchen sensor']);
    assert.equal(registry.devices(account.id).length, 4);
    assert.equal(registry.devices(account.id, { amount: 3, page: 1 }).length, 3);
    assert.equal(registry.devices(account.id, { amount: 3, page: 2 }).length, 1);
    // Tags can be replaced by an update, and the filter follows.
    const lamp = registry.devices(account.id, { name: 'lamp' })[0]!;
    registry.updateDevice(account.id, lamp.id, { tags: [{ key: 'room', value: 'garage' }] });
    assert.deepEqual(names(registry.devices(account.id, { tags: [{ key: 'room', value: 'garage' }] })), ['garage sensor', 'kitchen lamp']);
  });

  test('one account cannot see or touch another account\'s devices and tokens (404)', () => {
    const { registry } = memoryRegistry();
    const { account: a } = registry.createAccount({ name: 'A' });
    const { account: b } = registry.createAccount({ name: 'B' });
    const { device, token, tokenInfo } = registry.createDevice(a.id, { name: 'a-dev' });
    assert.equal(registry.device(b.id, device.id), null);
    assert.deepEqual(registry.devices(b.id), []);
    assertTenancyError(() => registry.deviceTokens(b.id, device.id), 404, /not found/);
    assertTenancyError(() => registry.createDeviceToken(b.id, device.id, { name: 'steal', permission: 'full' }), 404, /not found/);
    assertTenancyError(() => registry.deleteDeviceToken(b.id, device.id, tokenInfo.id), 404, /not found/);
    assertTenancyError(() => registry.updateDevice(b.id, device.id, { active: false }), 404, /not found/);
    assertTenancyError(() => registry.setParams(b.id, device.id, [{ key: 'k', value: 'v' }]), 404, /not found/);
    assertTenancyError(() => registry.deleteDevice(b.id, device.id), 404, /not found/);
    assert.ok(registry.authenticateDeviceToken(token), 'the token of A was affected by B\'s attempts');
    assert.equal(registry.device(a.id, device.id)?.active, true);
  });

  test('deleteAccount cascades: devices, device tokens and account tokens are gone; other accounts untouched', () => {
    const { registry, db } = memoryRegistry();
    const events: Revocation[] = [];
    registry.on('revoked', (r) => events.push(r));
    const { account: doomed, token: doomedAccountToken } = registry.createAccount({ name: 'doomed' });
    const { account: keep, token: keepAccountToken } = registry.createAccount({ name: 'keep' });
    const d1 = registry.createDevice(doomed.id, { name: 'd1' });
    const d2 = registry.createDevice(doomed.id, { name: 'd2' });
    const extra = registry.createDeviceToken(doomed.id, d1.device.id, { name: 'x', permission: 'read' });
    const k1 = registry.createDevice(keep.id, { name: 'k1' });

    registry.deleteAccount(doomed.id);

    assert.equal(registry.account(doomed.id), null);
    assert.deepEqual(registry.devices(doomed.id), []);
    for (const t of [d1.token, d2.token, extra.token]) assert.equal(registry.authenticateDeviceToken(t), null);
    assert.equal(registry.authenticateAccountToken(doomedAccountToken), null);
    assert.equal(registry.deviceById(d1.device.id), null);
    const count = (table: string): number => (db.prepare(`SELECT count(*) AS n FROM ${table} WHERE account_id = ?`).get(doomed.id) as { n: number }).n;
    assert.equal(count('devices'), 0);
    assert.equal(count('device_tokens'), 0);
    assert.equal(count('account_tokens'), 0);
    assert.deepEqual(events.map((e) => e.kind === 'device-deleted' && e.deviceId).sort(), [d1.device.id, d2.device.id].sort());

    assert.ok(registry.authenticateDeviceToken(k1.token));
    assert.ok(registry.authenticateAccountToken(keepAccountToken));
    assert.equal(registry.devices(keep.id).length, 1);
    assertTenancyError(() => registry.deleteAccount(doomed.id), 404, /not found/);
  });

  test('account tokens: create with permission and expiry, list without secrets, delete', () => {
    const { registry } = memoryRegistry();
    const { account, token: first } = registry.createAccount({ name: 'acct' });
    const ro = registry.createAccountToken(account.id, { name: 'ro', permission: 'read', expire_time: '1 day' });
    assert.equal(registry.authenticateAccountToken(ro.token)?.permission, 'read');
    assert.equal(registry.authenticateAccountToken(first)?.permission, 'full');
    const listed = registry.accountTokens(account.id);
    assert.equal(listed.length, 2);
    assert.ok(JSON.stringify(listed).includes(ro.token) === false && JSON.stringify(listed).includes(first) === false, 'listing reveals a token');
    registry.deleteAccountToken(account.id, ro.info.id);
    assert.equal(registry.authenticateAccountToken(ro.token), null);
    assertTenancyError(() => registry.deleteAccountToken(account.id, ro.info.id), 404, /not found/);
  });
});
