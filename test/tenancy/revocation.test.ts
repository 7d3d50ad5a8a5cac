/**
 * Revocation cuts live sessions within 1 s (SPEC §2 "Revocation"; issue 4 acceptance: revocation of
 * each kind cutting a live MQTT.js session in < 1 s with the v5 reason): deleting a token, deleting
 * a device, deactivating a device, a token reaching its expire_time. v5 clients get DISCONNECT 0x98
 * (administrative action) with a reason string; v3 clients see the connection closed. Sessions of
 * other devices and other tokens are untouched.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { MqttClient } from 'mqtt';
import { openDatabase } from '../../src/storage/sqlite-database.ts';
import { Registry } from '../../src/tenancy/registry.ts';
import {
  connackCode,
  delay,
  endAll,
  login,
  newAccount,
  newDevice,
  record,
  startTenancyBroker,
  waitUntil,
  watchEnd,
  type EndWatch,
  type TenancyBroker,
} from './helpers.ts';

const ADMINISTRATIVE_ACTION = 0x98;
const NOT_AUTHORIZED = 0x87;
const CUT_WITHIN_MS = 1000;

interface Live {
  client: MqttClient;
  watch: EndWatch;
}

async function live(port: number, token: string, version: 4 | 5, clientId?: string): Promise<Live> {
  const client = await login(port, token, { protocolVersion: version, ...(clientId !== undefined ? { clientId } : {}) });
  return { client, watch: watchEnd(client) };
}

/** Asserts the v5 client got DISCONNECT 0x98 with a reason string and was closed within the limit. */
function assertCutV5(l: Live, since: number, what: string): void {
  assert.ok(l.watch.disconnect !== null, `${what}: v5 client got no DISCONNECT packet`);
  assert.equal(l.watch.disconnect.reasonCode, ADMINISTRATIVE_ACTION, `${what}: DISCONNECT reason code`);
  const reason = l.watch.disconnect.properties?.reasonString;
  assert.equal(typeof reason, 'string', `${what}: DISCONNECT has no reason string`);
  assert.ok(reason!.length > 0, `${what}: empty reason string`);
  assert.ok(l.watch.disconnectAt - since < CUT_WITHIN_MS, `${what}: DISCONNECT after ${l.watch.disconnectAt - since} ms`);
  assert.ok(l.watch.closedAt - since < CUT_WITHIN_MS, `${what}: closed after ${l.watch.closedAt - since} ms`);
}

/** A bystander is still connected and still routes a message to itself. */
async function assertAlive(l: Live, topic: string, what: string): Promise<void> {
  assert.equal(l.watch.closedAt, 0, `${what}: was disconnected`);
  assert.ok(l.client.connected, `${what}: not connected`);
  const got = record(l.client);
  await l.client.subscribeAsync(topic, { qos: 1 });
  await l.client.publishAsync(topic, 'still-here', { qos: 1 });
  await waitUntil(() => got.length === 1, `${what}: its own message`);
}

describe('revocation cuts live sessions within 1 s', () => {
  let tb: TenancyBroker;
  let account: string;
  const clients: MqttClient[] = [];

  before(async () => {
    tb = await startTenancyBroker();
    account = newAccount(tb.registry, 'revocation');
  });
  after(async () => {
    await endAll(clients);
    await tb.close();
  });

  async function track(...ls: Live[]): Promise<Live[]> {
    clients.push(...ls.map((l) => l.client));
    return ls;
  }

  test('deleting a token: its v5 session gets DISCONNECT 0x98 + reason, its v3 session closes; the device\'s other token and other devices stay', async () => {
    const dev = newDevice(tb.registry, account, 'tok-del', { permission: 'full' });
    const otherTokenOfSameDevice = tb.registry.createDeviceToken(account, dev.deviceId, { name: 'keep', permission: 'full' }).token;
    const bystanderDevice = newDevice(tb.registry, account, 'bystander');
    const [v5, v3, keep, bystander] = await track(
      await live(tb.port, dev.token, 5),
      await live(tb.port, dev.token, 4),
      await live(tb.port, otherTokenOfSameDevice, 5),
      await live(tb.port, bystanderDevice.token, 5),
    );
    const t0 = Date.now();
    tb.registry.deleteDeviceToken(account, dev.deviceId, dev.tokenId);
    await Promise.all([v5!.watch.closed(2000), v3!.watch.closed(2000)]);
    assertCutV5(v5!, t0, 'token deleted');
    assert.ok(v3!.watch.closedAt - t0 < CUT_WITHIN_MS, `v3 closed after ${v3!.watch.closedAt - t0} ms`);
    await delay(300);
    await assertAlive(keep!, 'rev/keep', 'other token of the same device');
    await assertAlive(bystander!, 'rev/by1', 'other device');
    assert.equal(await connackCode(tb.port, { protocolVersion: 5, username: 'Token', password: dev.token }), NOT_AUTHORIZED, 'deleted token logs in again');
  });

  test('deleting a device: every session of any of its tokens is cut (v5 0x98 + reason, v3 closed); other devices stay', async () => {
    const dev = newDevice(tb.registry, account, 'dev-del');
    const second = tb.registry.createDeviceToken(account, dev.deviceId, { name: 'second', permission: 'read' }).token;
    const bystanderDevice = newDevice(tb.registry, account, 'bystander2');
    const [a, b, c, bystander] = await track(
      await live(tb.port, dev.token, 5),
      await live(tb.port, second, 5),
      await live(tb.port, dev.token, 4),
      await live(tb.port, bystanderDevice.token, 4),
    );
    const t0 = Date.now();
    tb.registry.deleteDevice(account, dev.deviceId);
    await Promise.all([a!.watch.closed(2000), b!.watch.closed(2000), c!.watch.closed(2000)]);
    assertCutV5(a!, t0, 'device deleted (default token)');
    assertCutV5(b!, t0, 'device deleted (second token)');
    assert.ok(c!.watch.closedAt - t0 < CUT_WITHIN_MS, `v3 closed after ${c!.watch.closedAt - t0} ms`);
    await delay(300);
    await assertAlive(bystander!, 'rev/by2', 'other device (v3)');
  });

  test('deactivating a device: its sessions are cut (v5 0x98 + reason, v3 closed); reactivating lets it log in again', async () => {
    const dev = newDevice(tb.registry, account, 'deact');
    const bystanderDevice = newDevice(tb.registry, account, 'bystander3');
    const [v5, v3, bystander] = await track(await live(tb.port, dev.token, 5), await live(tb.port, dev.token, 4), await live(tb.port, bystanderDevice.token, 5));
    const t0 = Date.now();
    tb.registry.updateDevice(account, dev.deviceId, { active: false });
    await Promise.all([v5!.watch.closed(2000), v3!.watch.closed(2000)]);
    assertCutV5(v5!, t0, 'device deactivated');
    assert.ok(v3!.watch.closedAt - t0 < CUT_WITHIN_MS, `v3 closed after ${v3!.watch.closedAt - t0} ms`);
    assert.equal(await connackCode(tb.port, { protocolVersion: 5, username: 'Token', password: dev.token }), NOT_AUTHORIZED, 'inactive device logs in');
    await assertAlive(bystander!, 'rev/by3', 'other device');

    tb.registry.updateDevice(account, dev.deviceId, { active: true });
    assert.equal(await connackCode(tb.port, { protocolVersion: 5, username: 'Token', password: dev.token }), 0, 'reactivated device cannot log in');
  });

  test('an update that does not deactivate (rename, tags) cuts nothing', async () => {
    const dev = newDevice(tb.registry, account, 'rename');
    const [v5] = await track(await live(tb.port, dev.token, 5));
    tb.registry.updateDevice(account, dev.deviceId, { name: 'renamed', tags: [{ key: 'k', value: 'v' }] });
    tb.registry.updateDevice(account, dev.deviceId, { active: true });
    await delay(400);
    await assertAlive(v5!, 'rev/rename', 'renamed device');
  });

  test('a token reaching its expire_time ("2 seconds") is cut within 1 s of the expiry instant, not before; a never-expiring token stays', async () => {
    const dev = newDevice(tb.registry, account, 'expiring', { permission: 'full', expire_time: '2 seconds' });
    const info = tb.registry.deviceTokens(account, dev.deviceId).find((t) => t.id === dev.tokenId)!;
    const expiresAt = Date.parse(info.expire_time);
    assert.ok(Number.isFinite(expiresAt), `expire_time is not an ISO date: ${info.expire_time}`);
    const forever = tb.registry.createDeviceToken(account, dev.deviceId, { name: 'forever', permission: 'full', expire_time: 'never' }).token;
    const [v5, v3, keep] = await track(await live(tb.port, dev.token, 5), await live(tb.port, dev.token, 4), await live(tb.port, forever, 5));
    await Promise.all([v5!.watch.closed(4000), v3!.watch.closed(4000)]);
    for (const [l, what] of [[v5!, 'v5'], [v3!, 'v3']] as const) {
      const lag = l.watch.closedAt - expiresAt;
      // 50 ms of slack for the two clocks (the registry's Date.now() and ours) read at different moments.
      assert.ok(lag >= -50, `${what}: cut ${-lag} ms before the token expired`);
      assert.ok(lag < CUT_WITHIN_MS, `${what}: cut ${lag} ms after the token expired`);
    }
    assertCutV5(v5!, expiresAt, 'token expired');
    await assertAlive(keep!, 'rev/forever', 'never-expiring token of the same device');
  });

  test('deleting an account cuts the sessions of all its devices, and only those', async () => {
    const doomed = newAccount(tb.registry, 'doomed');
    const d1 = newDevice(tb.registry, doomed, 'd1');
    const d2 = newDevice(tb.registry, doomed, 'd2');
    const survivor = newDevice(tb.registry, account, 'survivor');
    const [a, b, s] = await track(await live(tb.port, d1.token, 5), await live(tb.port, d2.token, 4), await live(tb.port, survivor.token, 5));
    const t0 = Date.now();
    tb.registry.deleteAccount(doomed);
    await Promise.all([a!.watch.closed(2000), b!.watch.closed(2000)]);
    assertCutV5(a!, t0, 'account deleted');
    assert.ok(b!.watch.closedAt - t0 < CUT_WITHIN_MS);
    await delay(200);
    await assertAlive(s!, 'rev/survivor', 'device of another account');
  });

  test('the device records why it dropped (SPEC §1 last_disconnect with its cause)', async () => {
    const dev = newDevice(tb.registry, account, 'cause', { permission: 'full' });
    const [v5] = await track(await live(tb.port, dev.token, 5));
    await waitUntil(() => tb.registry.device(account, dev.deviceId)!.connected, 'device connected');
    tb.registry.deleteDeviceToken(account, dev.deviceId, dev.tokenId);
    await v5!.watch.closed(2000);
    await waitUntil(() => !tb.registry.device(account, dev.deviceId)!.connected, 'device disconnected in the registry');
    const row = tb.registry.device(account, dev.deviceId)!;
    assert.ok(row.last_disconnect !== null);
    assert.match(row.last_disconnect_cause ?? '', /^revoked: token revoked$/);
  });
});

describe('revocation of sessions with the same client id in two accounts', () => {
  let tb: TenancyBroker;
  before(async () => {
    tb = await startTenancyBroker();
  });
  after(() => tb.close());

  test('revoking a device in account A does not cut a session with the same client id in account B', async () => {
    const a = newAccount(tb.registry, 'A');
    const b = newAccount(tb.registry, 'B');
    const da = newDevice(tb.registry, a, 'same');
    const db = newDevice(tb.registry, b, 'same');
    const la = await live(tb.port, da.token, 5, 'shared-id');
    const lb = await live(tb.port, db.token, 5, 'shared-id');
    try {
      const t0 = Date.now();
      tb.registry.deleteDevice(a, da.deviceId);
      await la.watch.closed(2000);
      assertCutV5(la, t0, 'A device deleted');
      await delay(300);
      await assertAlive(lb, 'rev/b', 'B client with the same id');
    } finally {
      await endAll([la.client, lb.client]);
    }
  });
});

describe('revocation made by another process on the same database (the bucketmq CLI)', () => {
  let dir: string;
  let tb: TenancyBroker;
  let cli: Registry;
  let closeCli: () => void;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bucketmq-tenancy-cli-'));
    const file = path.join(dir, 'bucketmq.db');
    tb = await startTenancyBroker(() => ({}), file);
    const db = openDatabase(file);
    cli = new Registry(db);
    closeCli = () => db.close();
  });
  after(async () => {
    closeCli();
    await tb.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a token deleted, a device deactivated and a device deleted through a second Registry cut the sessions within 1 s', async () => {
    const account = newAccount(tb.registry, 'cli');
    const byToken = newDevice(tb.registry, account, 'by-token', { permission: 'full' });
    const byDeactivate = newDevice(tb.registry, account, 'by-deactivate');
    const byDelete = newDevice(tb.registry, account, 'by-delete');
    const bystanderDevice = newDevice(tb.registry, account, 'bystander');
    const lives = [
      await live(tb.port, byToken.token, 5),
      await live(tb.port, byDeactivate.token, 5),
      await live(tb.port, byDelete.token, 4),
      await live(tb.port, bystanderDevice.token, 5),
    ];
    try {
      const [t, d, x, bystander] = lives;
      // The second registry sees the first one's rows (same file).
      assert.equal(cli.device(account, byToken.deviceId)?.name, 'by-token');

      let t0 = Date.now();
      cli.deleteDeviceToken(account, byToken.deviceId, byToken.tokenId);
      await t!.watch.closed(2000);
      assertCutV5(t!, t0, 'token deleted by the CLI');

      t0 = Date.now();
      cli.updateDevice(account, byDeactivate.deviceId, { active: false });
      await d!.watch.closed(2000);
      assertCutV5(d!, t0, 'device deactivated by the CLI');

      t0 = Date.now();
      cli.deleteDevice(account, byDelete.deviceId);
      await x!.watch.closed(2000);
      assert.ok(x!.watch.closedAt - t0 < CUT_WITHIN_MS, `v3 closed after ${x!.watch.closedAt - t0} ms`);

      await delay(300);
      await assertAlive(bystander!, 'cli/bystander', 'other device');
    } finally {
      await endAll(lives.map((l) => l.client));
    }
  });
});
