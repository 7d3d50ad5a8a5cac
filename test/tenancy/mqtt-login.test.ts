/**
 * MQTT login with device tokens and the token permission matrix (SPEC §2 "Login"; issue 4
 * acceptance: wrong/expired/revoked tokens refused with v3 0x05 / v5 0x87; permission matrix).
 * Real sockets: MQTT.js v3.1.1 and v5, mosquitto_pub/sub, and raw CONNECT packets for exact codes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { rawConnect, spawnProcess } from '../broker/helpers.ts';
import {
  HOST,
  connackCode,
  delay,
  endAll,
  login,
  newAccount,
  newDevice,
  pubackCode,
  record,
  startTenancyBroker,
  subackCodes,
  waitUntil,
  type TenancyBroker,
  type TestDevice,
} from './helpers.ts';

const V3_NOT_AUTHORIZED = 0x05;
const V5_NOT_AUTHORIZED = 0x87;
const V3_SUBACK_FAILURE = 0x80;

/** Raw CONNECT; resolves with the CONNACK code and whether the server then closed the socket. */
async function rawLogin(port: number, version: 4 | 5, creds: { username?: string; password?: Buffer }): Promise<{ code: number; closed: boolean }> {
  const raw = await rawConnect(port, { protocolVersion: version });
  try {
    const connack = await raw.handshake({ clientId: `raw-${randomUUID().slice(0, 8)}`, protocolVersion: version, ...creds });
    const code = version === 5 ? (connack.reasonCode ?? 0) : (connack.returnCode ?? 0);
    let closed = true;
    if (code !== 0) {
      await raw.waitForClose(2000).catch(() => (closed = false));
    } else {
      closed = false;
    }
    return { code, closed };
  } finally {
    raw.destroy();
  }
}

async function mosquittoPub(port: number, args: string[]): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const proc = spawnProcess('mosquitto_pub', ['-h', HOST, '-p', String(port), '-V', 'mqttv311', '-i', `mp-${randomUUID().slice(0, 8)}`, ...args], { timeoutMs: 5000 });
  const result = await proc.done;
  assert.equal(result.timedOut, false, `mosquitto_pub timed out: ${result.stderr}`);
  return result;
}

describe('MQTT login with device tokens', () => {
  let tb: TenancyBroker;
  let account: string;
  let good: TestDevice;

  before(async () => {
    tb = await startTenancyBroker();
    account = newAccount(tb.registry, 'login');
    good = newDevice(tb.registry, account, 'good');
  });
  after(() => tb.close());

  test('password = device token with username "Token" is accepted (v3.1.1 and v5, MQTT.js)', async () => {
    assert.equal(await connackCode(tb.port, { protocolVersion: 4, username: 'Token', password: good.token }), 0);
    assert.equal(await connackCode(tb.port, { protocolVersion: 5, username: 'Token', password: good.token }), 0);
  });

  test('MQTT 3.1 (MQIsdp) client logs in with the token too', async () => {
    assert.equal(await connackCode(tb.port, { protocolId: 'MQIsdp', protocolVersion: 3, username: 'Token', password: good.token }), 0);
  });

  test('the username is not checked: any username with the token as password is accepted', async () => {
    for (const username of ['anything', 'device-42', 'x']) {
      assert.equal(await connackCode(tb.port, { protocolVersion: 5, username, password: good.token }), 0, `username ${username}`);
      assert.equal(await connackCode(tb.port, { protocolVersion: 4, username, password: good.token }), 0, `username ${username} (v3)`);
    }
  });

  test('token in the username with no password field is accepted (v3 and v5, raw CONNECT)', async () => {
    assert.equal((await rawLogin(tb.port, 4, { username: good.token })).code, 0);
    assert.equal((await rawLogin(tb.port, 5, { username: good.token })).code, 0);
  });

  test('token in the username with an empty password is accepted (v3 and v5, raw CONNECT)', async () => {
    assert.equal((await rawLogin(tb.port, 4, { username: good.token, password: Buffer.alloc(0) })).code, 0);
    assert.equal((await rawLogin(tb.port, 5, { username: good.token, password: Buffer.alloc(0) })).code, 0);
  });

  test('a token-logged-in client actually works: it publishes and a device of the same account receives', async () => {
    const other = newDevice(tb.registry, account, 'listener');
    const sub = await login(tb.port, other.token);
    const pub = await login(tb.port, null, { protocolVersion: 4, username: good.token });
    try {
      const got = record(sub);
      await sub.subscribeAsync('login/works', { qos: 1 });
      await pub.publishAsync('login/works', 'hello', { qos: 1 });
      await waitUntil(() => got.length === 1, 'the message');
      assert.equal(got[0]!.payload, 'hello');
    } finally {
      await endAll([sub, pub]);
    }
  });

  test('mosquitto_pub -u Token -P <token> publishes; mosquitto_pub -u <token> (no -P) too', async () => {
    const sub = await login(tb.port, good.token);
    try {
      const got = record(sub);
      await sub.subscribeAsync('mosq/#', { qos: 1 });
      const a = await mosquittoPub(tb.port, ['-u', 'Token', '-P', good.token, '-t', 'mosq/a', '-m', 'from-P', '-q', '1']);
      assert.equal(a.code, 0, a.stderr);
      const b = await mosquittoPub(tb.port, ['-u', good.token, '-t', 'mosq/b', '-m', 'from-u', '-q', '1']);
      assert.equal(b.code, 0, b.stderr);
      await waitUntil(() => got.length === 2, 'both mosquitto_pub messages');
      assert.deepEqual(got.map((m) => `${m.topic}=${m.payload}`).sort(), ['mosq/a=from-P', 'mosq/b=from-u']);
    } finally {
      await endAll([sub]);
    }
  });
});

describe('MQTT login refusals: v3 CONNACK 0x05, v5 0x87, connection closed', () => {
  let tb: TenancyBroker;
  let account: string;
  const cases: Array<{ name: string; token: () => string }> = [];

  before(async () => {
    tb = await startTenancyBroker();
    account = newAccount(tb.registry, 'refusals');
    const reg = tb.registry;

    const wrong = randomUUID(); // same shape and length as a real token
    cases.push({ name: 'wrong token (same shape and length)', token: () => wrong });

    const past = newDevice(reg, account, 'past', { expire_time: new Date(Date.now() - 60_000).toISOString() });
    cases.push({ name: 'expired token (past ISO date)', token: () => past.token });

    const short = newDevice(reg, account, 'short', { expire_time: '1 second' });
    cases.push({ name: 'expired token ("1 second", waited out)', token: () => short.token });

    const revoked = newDevice(reg, account, 'revoked', { permission: 'full' });
    reg.deleteDeviceToken(account, revoked.deviceId, revoked.tokenId);
    cases.push({ name: 'deleted (revoked) token', token: () => revoked.token });

    const deleted = newDevice(reg, account, 'deleted');
    reg.deleteDevice(account, deleted.deviceId);
    cases.push({ name: 'token of a deleted device', token: () => deleted.token });

    const inactive = newDevice(reg, account, 'inactive');
    reg.updateDevice(account, inactive.deviceId, { active: false });
    cases.push({ name: 'token of an inactive device', token: () => inactive.token });

    // Lets the "1 second" token expire before any case runs.
    await delay(1200);
  });
  after(() => tb.close());

  test('each bad token: MQTT.js v3.1.1 gets 0x05, v5 gets 0x87', async () => {
    for (const c of cases) {
      assert.equal(await connackCode(tb.port, { protocolVersion: 4, username: 'Token', password: c.token() }), V3_NOT_AUTHORIZED, `${c.name} (v3)`);
      assert.equal(await connackCode(tb.port, { protocolVersion: 5, username: 'Token', password: c.token() }), V5_NOT_AUTHORIZED, `${c.name} (v5)`);
    }
  });

  test('each bad token: raw CONNACK code is exact and the server closes the socket (password and username forms)', async () => {
    for (const c of cases) {
      const token = c.token();
      for (const [version, expected] of [[4, V3_NOT_AUTHORIZED], [5, V5_NOT_AUTHORIZED]] as const) {
        const asPassword = await rawLogin(tb.port, version, { username: 'Token', password: Buffer.from(token) });
        assert.deepEqual(asPassword, { code: expected, closed: true }, `${c.name}, password form, v${version}`);
        const asUsername = await rawLogin(tb.port, version, { username: token });
        assert.deepEqual(asUsername, { code: expected, closed: true }, `${c.name}, username form, v${version}`);
      }
    }
  });

  test('each bad token: mosquitto_pub fails with "not authorised"', async () => {
    for (const c of cases) {
      const r = await mosquittoPub(tb.port, ['-u', 'Token', '-P', c.token(), '-t', 'x', '-m', 'y']);
      assert.notEqual(r.code, 0, c.name);
      assert.match(r.stderr, /not authori[sz]ed/i, `${c.name}: ${r.stderr}`);
    }
  });

  test('no credentials are refused when anonymous mode is off (v3 0x05, v5 0x87)', async () => {
    assert.equal(await connackCode(tb.port, { protocolVersion: 4 }), V3_NOT_AUTHORIZED);
    assert.equal(await connackCode(tb.port, { protocolVersion: 5 }), V5_NOT_AUTHORIZED);
    assert.deepEqual(await rawLogin(tb.port, 4, {}), { code: V3_NOT_AUTHORIZED, closed: true });
    assert.deepEqual(await rawLogin(tb.port, 5, {}), { code: V5_NOT_AUTHORIZED, closed: true });
    const r = await mosquittoPub(tb.port, ['-t', 'x', '-m', 'y']);
    assert.notEqual(r.code, 0);
  });

  test('a valid token in the username does not rescue a wrong password (the password is the token)', async () => {
    const dev = newDevice(tb.registry, account, 'username-valid');
    assert.equal(await connackCode(tb.port, { protocolVersion: 5, username: dev.token, password: randomUUID() }), V5_NOT_AUTHORIZED);
    assert.equal(await connackCode(tb.port, { protocolVersion: 4, username: dev.token, password: randomUUID() }), V3_NOT_AUTHORIZED);
  });

  test('a refused client leaves no trace: the device of a wrong token is not marked connected', async () => {
    const dev = newDevice(tb.registry, account, 'trace');
    tb.registry.updateDevice(account, dev.deviceId, { active: false });
    assert.equal(await connackCode(tb.port, { protocolVersion: 5, username: 'Token', password: dev.token }), V5_NOT_AUTHORIZED);
    const row = tb.registry.device(account, dev.deviceId)!;
    assert.equal(row.connected, false);
    assert.equal(row.last_connect, null);
  });
});

describe('token permission matrix (write publishes, read subscribes, full both)', () => {
  let tb: TenancyBroker;
  let account: string;
  let full: TestDevice;
  let read: TestDevice;
  let write: TestDevice;
  const clients: MqttClient[] = [];

  before(async () => {
    tb = await startTenancyBroker();
    account = newAccount(tb.registry, 'perm');
    full = newDevice(tb.registry, account, 'full');
    read = newDevice(tb.registry, account, 'read', { permission: 'read' });
    write = newDevice(tb.registry, account, 'write', { permission: 'write' });
  });
  after(async () => {
    await endAll(clients);
    await tb.close();
  });

  async function client(dev: TestDevice, version: 4 | 5): Promise<MqttClient> {
    const c = await login(tb.port, dev.token, { protocolVersion: version });
    clients.push(c);
    return c;
  }

  test('write token: SUBSCRIBE refused (v3 SUBACK 0x80, v5 0x87)', async () => {
    const v3 = await client(write, 4);
    const v5 = await client(write, 5);
    assert.deepEqual(await subackCodes(v3, ['perm/w3']), [V3_SUBACK_FAILURE]);
    assert.deepEqual(await subackCodes(v5, ['perm/w5', '#']), [V5_NOT_AUTHORIZED, V5_NOT_AUTHORIZED]);
    assert.ok(v3.connected && v5.connected, 'a refused subscription does not cost the connection');
  });

  test('write token: publish succeeds (v5 PUBACK 0) and is delivered, from v3 and v5', async () => {
    const sub = await client(full, 5);
    const got = record(sub);
    await sub.subscribeAsync('perm/write/#', { qos: 1 });
    const v5 = await client(write, 5);
    const v3 = await client(write, 4);
    assert.equal(await pubackCode(v5, 'perm/write/5', 'w5'), 0);
    await v3.publishAsync('perm/write/3', 'w3', { qos: 1 });
    await waitUntil(() => got.length === 2, 'both write-token publishes');
    assert.deepEqual(got.map((m) => m.payload).sort(), ['w3', 'w5']);
  });

  test('read token: subscribe granted and it receives what others publish', async () => {
    const v5 = await client(read, 5);
    const v3 = await client(read, 4);
    assert.deepEqual(await subackCodes(v5, ['perm/read/#'], 1), [1]);
    assert.deepEqual(await subackCodes(v3, ['perm/read/#'], 1), [1]);
    const got5 = record(v5);
    const got3 = record(v3);
    const pub = await client(write, 5);
    await pub.publishAsync('perm/read/x', 'to-readers', { qos: 1 });
    await waitUntil(() => got5.length === 1 && got3.length === 1, 'both readers to receive');
    assert.equal(got5[0]!.payload, 'to-readers');
    assert.equal(got3[0]!.payload, 'to-readers');
  });

  test('read token: v5 QoS 1 publish gets PUBACK 0x87 and is not delivered; v3 publishes are not delivered', async () => {
    const watcher = await client(full, 5);
    const got = record(watcher);
    await watcher.subscribeAsync('perm/ro/#', { qos: 1 });
    const v5 = await client(read, 5);
    const v3 = await client(read, 4);
    assert.equal(await pubackCode(v5, 'perm/ro/5', 'nope'), V5_NOT_AUTHORIZED);
    await v5.publishAsync('perm/ro/5q0', 'nope-q0', { qos: 0 });
    await v3.publishAsync('perm/ro/3q0', 'nope-q0', { qos: 0 });
    // v3 has no refusal code; whatever ack it gets, the message must not be routed.
    void v3.publishAsync('perm/ro/3q1', 'nope-q1', { qos: 1 }).catch(() => undefined);
    // A control message published after the refused ones proves the watcher would have seen them.
    const control = await client(full, 5);
    await control.publishAsync('perm/ro/control', 'control', { qos: 1 });
    await waitUntil(() => got.some((m) => m.payload === 'control'), 'the control message');
    await delay(100);
    assert.deepEqual(got.map((m) => m.payload), ['control']);
  });

  test('read token: a retained publish does not set a retained message', async () => {
    const v5 = await client(read, 5);
    assert.equal(await pubackCode(v5, 'perm/ro-retained', 'nope', { retain: true }), V5_NOT_AUTHORIZED);
    const late = await client(full, 5);
    const got = record(late);
    await late.subscribeAsync('perm/ro-retained', { qos: 1 });
    await delay(200);
    assert.deepEqual(got, []);
  });

  test('full token: subscribe and publish both work (v3 and v5)', async () => {
    for (const version of [4, 5] as const) {
      const c = await client(full, version);
      const got = record(c);
      assert.deepEqual(await subackCodes(c, [`perm/full/${version}`], 1), [1]);
      if (version === 5) assert.equal(await pubackCode(c, `perm/full/${version}`, 'self'), 0);
      else await c.publishAsync(`perm/full/${version}`, 'self', { qos: 1 });
      await waitUntil(() => got.length === 1, `own message (v${version})`);
      assert.equal(got[0]!.payload, 'self');
    }
  });

  test('mosquitto_sub with a write token: all subscriptions denied', async () => {
    const proc = spawnProcess('mosquitto_sub', ['-h', HOST, '-p', String(tb.port), '-V', 'mqttv311', '-u', 'Token', '-P', write.token, '-t', 'perm/ms', '-C', '1', '-W', '3'], { timeoutMs: 6000 });
    const r = await proc.done;
    // mosquitto_sub reports "All subscription requests were denied." (and exits 0 by its own choice).
    assert.match(r.stderr + r.stdout, /denied/i, `mosquitto_sub output: ${r.stderr}${r.stdout}`);
    assert.equal(r.timedOut, false);
  });
});
