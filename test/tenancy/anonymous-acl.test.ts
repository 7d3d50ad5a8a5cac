/**
 * Anonymous mode and ACL rules over real connections (SPEC §2 "Anonymous mode"; issue 4
 * acceptance: anonymous mode + ACL). A denied SUBSCRIBE gets SUBACK 0x80 (v5 0x87); a denied
 * PUBLISH is dropped (v5 QoS>0: PUBACK 0x87). Rules: per account and per device, allow/deny,
 * publish/subscribe/all, filters with wildcards, %c = client id, %d = device id.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { startMosquittoSub } from '../broker/wire-helpers.ts';
import { spawnProcess } from '../broker/helpers.ts';
import type { AclRule } from '../../src/tenancy/acl.ts';
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
  watchEnd,
  type Received,
  type TenancyBroker,
  type TestDevice,
} from './helpers.ts';

const NOT_AUTHORIZED = 0x87;
const V3_SUBACK_FAILURE = 0x80;

/** Publishes a control message and waits for it, then returns the payloads `got` received besides it. */
async function othersBeforeControl(pub: MqttClient, got: Received[], topic: string): Promise<string[]> {
  const control = `control-${Math.random().toString(36).slice(2, 8)}`;
  await pub.publishAsync(topic, control, { qos: 1 });
  await waitUntil(() => got.some((m) => m.payload === control), `control message on ${topic}`);
  await delay(30);
  return got.filter((m) => !m.payload.startsWith('control-')).map((m) => m.payload);
}

describe('anonymous mode', () => {
  let tb: TenancyBroker;
  let anon: string;
  let other: string;
  let anonDevice: TestDevice;
  let otherDevice: TestDevice;
  const clients: MqttClient[] = [];

  before(async () => {
    tb = await startTenancyBroker((registry) => {
      anon = registry.createAccount({ name: 'anonymous' }).account.id;
      return { anonymousAccountId: anon };
    });
    other = newAccount(tb.registry, 'other');
    anonDevice = newDevice(tb.registry, anon, 'anon-device');
    otherDevice = newDevice(tb.registry, other, 'other-device');
  });
  after(async () => {
    await endAll(clients);
    await tb.close();
  });

  async function anonClient(version: 3 | 4 | 5): Promise<MqttClient> {
    const c = await login(tb.port, null, { protocolVersion: version, ...(version === 3 ? { protocolId: 'MQIsdp' } : {}) });
    clients.push(c);
    return c;
  }

  test('a client with no credentials connects (v3.1, v3.1.1, v5)', async () => {
    assert.equal(await connackCode(tb.port, { protocolVersion: 5 }), 0);
    assert.equal(await connackCode(tb.port, { protocolVersion: 4 }), 0);
    assert.equal(await connackCode(tb.port, { protocolVersion: 3, protocolId: 'MQIsdp' }), 0);
  });

  test('a bad token is still refused in anonymous mode (credentials given = they must be valid)', async () => {
    assert.equal(await connackCode(tb.port, { protocolVersion: 5, username: 'Token', password: 'not-a-token' }), NOT_AUTHORIZED);
    assert.equal(await connackCode(tb.port, { protocolVersion: 4, username: 'Token', password: 'not-a-token' }), 0x05);
  });

  test('anonymous clients share the anonymous account with its devices (both directions)', async () => {
    const sub = await anonClient(4);
    const got = record(sub);
    await sub.subscribeAsync('plain/#', { qos: 1 });
    const pub = await anonClient(5);
    await pub.publishAsync('plain/a', 'from-anonymous', { qos: 1 });
    const dev = await login(tb.port, anonDevice.token);
    clients.push(dev);
    const gotDev = record(dev);
    await dev.subscribeAsync('plain/#', { qos: 1 });
    await dev.publishAsync('plain/b', 'from-device', { qos: 1 });
    await pub.publishAsync('plain/c', 'anon-to-device', { qos: 1 });
    await waitUntil(() => got.length === 3, 'anonymous subscriber to get 3 messages');
    assert.deepEqual(got.map((m) => m.payload), ['from-anonymous', 'from-device', 'anon-to-device']);
    await waitUntil(() => gotDev.some((m) => m.payload === 'anon-to-device'), 'the device to get the anonymous publish');
  });

  test('anonymous clients are isolated from other accounts (both directions)', async () => {
    const anonSub = await anonClient(5);
    const gotAnon = record(anonSub);
    await anonSub.subscribeAsync('#', { qos: 1 });
    const otherSub = await login(tb.port, otherDevice.token, { protocolVersion: 4 });
    clients.push(otherSub);
    const gotOther = record(otherSub);
    await otherSub.subscribeAsync('#', { qos: 1 });

    const anonPub = await anonClient(4);
    const otherPub = await login(tb.port, newDevice(tb.registry, other, 'other-pub').token);
    clients.push(otherPub);
    await anonPub.publishAsync('iso/x', 'anon-secret', { qos: 1 });
    await otherPub.publishAsync('iso/x', 'other-secret', { qos: 1 });
    await anonPub.publishAsync('iso/r', 'anon-retained', { qos: 1, retain: true });
    assert.deepEqual(await othersBeforeControl(otherPub, gotOther, 'iso/ctl'), ['other-secret']);
    assert.deepEqual(await othersBeforeControl(anonPub, gotAnon, 'iso/ctl'), ['anon-secret', 'anon-retained']);

    // The other account does not see the anonymous account's retained message.
    const late = await login(tb.port, otherDevice.token);
    clients.push(late);
    const gotLate = record(late);
    await late.subscribeAsync('iso/#', { qos: 1 });
    await delay(200);
    assert.deepEqual(gotLate, []);
  });

  test('mosquitto_sub and mosquitto_pub without credentials work in anonymous mode', async () => {
    const sub = await startMosquittoSub(['-h', HOST, '-p', String(tb.port), '-V', 'mqttv311', '-t', 'mosq/anon', '-q', '1']);
    try {
      const pub = spawnProcess('mosquitto_pub', ['-h', HOST, '-p', String(tb.port), '-V', 'mqttv5', '-t', 'mosq/anon', '-m', 'hi', '-q', '1']);
      const r = await pub.done;
      assert.equal(r.code, 0, r.stderr);
      const got = await sub.waitFor(1, 3000);
      assert.deepEqual(got, [{ topic: 'mosq/anon', payload: 'hi' }]);
    } finally {
      sub.stop();
    }
  });
});

describe('ACL rules, default allow', () => {
  let tb: TenancyBroker;
  let A: string;
  let B: string;
  let anon: string;
  let a1: TestDevice;
  let a2: TestDevice;
  let b1: TestDevice;
  const clients: MqttClient[] = [];

  before(async () => {
    // Ids are needed inside the rules, so the accounts and devices are created in `configure`.
    tb = await startTenancyBroker((registry) => {
      anon = registry.createAccount({ name: 'anonymous' }).account.id;
      A = registry.createAccount({ name: 'A' }).account.id;
      B = registry.createAccount({ name: 'B' }).account.id;
      a1 = newDevice(registry, A, 'a1');
      a2 = newDevice(registry, A, 'a2');
      b1 = newDevice(registry, B, 'b1');
      const acl: AclRule[] = [
        { action: 'publish', permission: 'deny', topic: 'secret/#' },
        { action: 'subscribe', permission: 'deny', topic: 'private/#' },
        { action: 'all', permission: 'deny', topic: 'frozen/+' },
        { account: A, action: 'publish', permission: 'deny', topic: 'a-denied/#' },
        { device: a1.deviceId, action: 'all', permission: 'deny', topic: 'a1-denied/#' },
        { action: 'publish', permission: 'deny', topic: 'wills/forbidden' },
      ];
      return { anonymousAccountId: anon, acl, aclDefault: 'allow' };
    });
  });
  after(async () => {
    await endAll(clients);
    await tb.close();
  });

  async function c(dev: TestDevice | null, version: 4 | 5 = 5, extra: Parameters<typeof login>[2] = {}): Promise<MqttClient> {
    const client = await login(tb.port, dev === null ? null : dev.token, { protocolVersion: version, ...extra });
    clients.push(client);
    return client;
  }

  test('deny publish: v5 QoS 1 gets PUBACK 0x87 and nothing is delivered; v3 publish is dropped; other topics pass', async () => {
    const sub = await c(a2);
    const got = record(sub);
    await sub.subscribeAsync(['secret/#', 'open/#'], { qos: 1 });
    const v5 = await c(a1, 5);
    const v3 = await c(a1, 4);
    const anonV5 = await c(null, 5);
    assert.equal(await pubackCode(v5, 'secret/x', 'v5-q1'), NOT_AUTHORIZED);
    assert.equal(await pubackCode(anonV5, 'secret/x', 'anon-q1'), NOT_AUTHORIZED, 'rules without subject apply to anonymous clients too');
    await v5.publishAsync('secret/y', 'v5-q0', { qos: 0 });
    await v3.publishAsync('secret/z', 'v3-q0', { qos: 0 });
    await v3.publishAsync('secret/z', 'v3-q1', { qos: 1 }).catch(() => undefined);
    assert.equal(await pubackCode(v5, 'open/x', 'allowed'), 0);
    assert.deepEqual(await othersBeforeControl(v5, got, 'open/ctl'), ['allowed']);
  });

  test('deny publish also stops retained messages on that topic', async () => {
    const v5 = await c(a1);
    assert.equal(await pubackCode(v5, 'secret/retained', 'r', { retain: true }), NOT_AUTHORIZED);
    const late = await c(a2);
    const got = record(late);
    await late.subscribeAsync('secret/#', { qos: 1 });
    await delay(200);
    assert.deepEqual(got, []);
  });

  test('deny subscribe: v5 SUBACK 0x87, v3 0x80; only the denied filter in a multi-filter SUBSCRIBE fails', async () => {
    const v5 = await c(a1);
    const v3 = await c(b1, 4);
    assert.deepEqual(await subackCodes(v5, ['private/x', 'public/x', 'private/#'], 1), [NOT_AUTHORIZED, 1, NOT_AUTHORIZED]);
    assert.deepEqual(await subackCodes(v3, ['private/x', 'public/x'], 1), [V3_SUBACK_FAILURE, 1]);
    // A refused subscription receives nothing.
    const got = record(v5);
    const pub = await c(a2);
    await pub.publishAsync('private/x', 'p', { qos: 1 });
    assert.deepEqual(await othersBeforeControl(pub, got, 'public/x'), []);
  });

  test('a wildcard subscription that only overlaps a denied topic is granted (#, +/x, +/#); one inside it is refused (private/+/y)', async () => {
    const v5 = await c(a1);
    const v3 = await c(a2, 4);
    assert.deepEqual(await subackCodes(v5, ['#', '+/x', 'private/+/y', '+/#', 'pub/#'], 0), [0, 0, NOT_AUTHORIZED, 0, 0]);
    assert.deepEqual(await subackCodes(v3, ['#', '+/+', 'private/+'], 0), [0, 0, V3_SUBACK_FAILURE]);
    // What they receive is checked per message: test/tenancy/acl-wildcard.test.ts.
  });

  test('a denied filter cannot be subscribed through a shared subscription ($share/g/private/#); $share/g/# is granted', async () => {
    const v5 = await c(a1);
    const v3 = await c(a2, 4);
    assert.deepEqual(await subackCodes(v5, ['$share/g/private/x', '$share/g/private/#', '$share/g/#', '$share/g/public/x'], 1), [NOT_AUTHORIZED, NOT_AUTHORIZED, 1, 1]);
    assert.deepEqual(await subackCodes(v3, ['$share/g/private/#'], 1), [V3_SUBACK_FAILURE]);
  });

  test('action "all" denies both publish and subscribe on its filter (frozen/+)', async () => {
    const v5 = await c(b1);
    assert.equal(await pubackCode(v5, 'frozen/a', 'x'), NOT_AUTHORIZED);
    assert.deepEqual(await subackCodes(v5, ['frozen/a', 'frozen/a/b'], 1), [NOT_AUTHORIZED, 1]);
    assert.equal(await pubackCode(v5, 'frozen/a/b', 'deeper is fine'), 0);
  });

  test('a per-account rule applies only to that account', async () => {
    assert.equal(await pubackCode(await c(a1), 'a-denied/x', 'A'), NOT_AUTHORIZED);
    assert.equal(await pubackCode(await c(a2), 'a-denied/x', 'A2'), NOT_AUTHORIZED);
    assert.equal(await pubackCode(await c(b1), 'a-denied/x', 'B'), 0);
    assert.equal(await pubackCode(await c(null), 'a-denied/x', 'anon'), 0);
  });

  test('a per-device rule applies only to that device, not to its account\'s other devices', async () => {
    const d1 = await c(a1);
    const d2 = await c(a2);
    assert.equal(await pubackCode(d1, 'a1-denied/x', 'd1'), NOT_AUTHORIZED);
    assert.deepEqual(await subackCodes(d1, ['a1-denied/x'], 1), [NOT_AUTHORIZED]);
    assert.equal(await pubackCode(d2, 'a1-denied/x', 'd2'), 0);
    assert.deepEqual(await subackCodes(d2, ['a1-denied/x'], 1), [1]);
  });

  test('a will on a denied topic is not published (it goes through the same ACL)', async () => {
    const sub = await c(a2);
    const got = record(sub);
    await sub.subscribeAsync('wills/#', { qos: 1 });
    for (const [topic, payload] of [['wills/forbidden', 'denied-will'], ['wills/ok', 'allowed-will']] as const) {
      const dying = await c(a1, 5, { will: { topic, payload: Buffer.from(payload), qos: 1, retain: false } });
      const w = watchEnd(dying);
      dying.stream.destroy();
      await w.closed(2000);
    }
    await waitUntil(() => got.some((m) => m.payload === 'allowed-will'), 'the allowed will');
    await delay(100);
    assert.deepEqual(got.map((m) => m.payload), ['allowed-will']);
  });
});

describe('ACL rules, default deny, %c and %d substitution', () => {
  let tb: TenancyBroker;
  let A: string;
  let anon: string;
  let d1: TestDevice;
  let d2: TestDevice;
  const clients: MqttClient[] = [];

  before(async () => {
    tb = await startTenancyBroker((registry) => {
      anon = registry.createAccount({ name: 'anonymous' }).account.id;
      A = registry.createAccount({ name: 'A' }).account.id;
      d1 = newDevice(registry, A, 'd1');
      d2 = newDevice(registry, A, 'd2');
      const acl: AclRule[] = [
        { action: 'all', permission: 'allow', topic: 'devices/%d/#' },
        { action: 'all', permission: 'allow', topic: 'clients/%c/#' },
        { action: 'subscribe', permission: 'allow', topic: 'broadcast/#' },
        { action: 'publish', permission: 'deny', topic: 'x/secret' },
        { action: 'publish', permission: 'allow', topic: 'x/#' },
      ];
      return { anonymousAccountId: anon, acl, aclDefault: 'deny' };
    });
  });
  after(async () => {
    await endAll(clients);
    await tb.close();
  });

  async function c(dev: TestDevice | null, extra: Parameters<typeof login>[2] = {}): Promise<MqttClient> {
    const client = await login(tb.port, dev === null ? null : dev.token, { protocolVersion: 5, ...extra });
    clients.push(client);
    return client;
  }

  test('devices/%d/#: a device publishes only under its own id', async () => {
    const c1 = await c(d1);
    assert.equal(await pubackCode(c1, `devices/${d1.deviceId}/temp`, 'own'), 0);
    // "devices/ID/#" also matches the parent level devices/ID (MQTT 5 §4.7.1.2).
    assert.equal(await pubackCode(c1, `devices/${d1.deviceId}`, 'own-root'), 0);
    assert.equal(await pubackCode(c1, `devices/${d2.deviceId}/temp`, 'foreign'), NOT_AUTHORIZED);
    assert.equal(await pubackCode(c1, 'devices/%d/temp', 'literal'), NOT_AUTHORIZED);
    const c2 = await c(d2, { protocolVersion: 4 });
    const got = record(c2);
    assert.deepEqual(await subackCodes(c2, [`devices/${d2.deviceId}/#`], 1), [1]);
    await c2.publishAsync(`devices/${d2.deviceId}/self`, 'self', { qos: 1 });
    await waitUntil(() => got.length === 1, 'd2 to receive its own message');
    assert.equal(got[0]!.payload, 'self');
  });

  test('devices/%d/#: other ids refused; + and # across ids granted but receive only the own id', async () => {
    const c1 = await c(d1);
    assert.deepEqual(
      await subackCodes(c1, [`devices/${d1.deviceId}/#`, `devices/${d1.deviceId}/+/x`, `devices/${d2.deviceId}/#`, 'devices/+/temp', 'devices/#', '#'], 1),
      [1, 1, NOT_AUTHORIZED, 1, 1, 1],
    );
    const got = record(c1);
    const c2 = await c(d2);
    // d2's PUBACK follows the routing of its message, so 'foreign' was withheld (or not) before
    // 'own' is published: once 'own' arrived the received list is final.
    await c2.publishAsync(`devices/${d2.deviceId}/temp`, 'foreign', { qos: 1 });
    await c1.publishAsync(`devices/${d1.deviceId}/temp`, 'own', { qos: 1 });
    await waitUntil(() => got.some((m) => m.payload === 'own'), 'the own message');
    assert.deepEqual(got.map((m) => m.payload), ['own'], 'one copy, through the overlapping subscriptions, and nothing foreign');
  });

  test('a shared subscription under the own device id is allowed; under another id it is not; $share/g/# is granted with the per-message check', async () => {
    const c1 = await c(d1);
    assert.deepEqual(await subackCodes(c1, [`$share/g/devices/${d1.deviceId}/#`, `$share/g/devices/${d2.deviceId}/#`, '$share/g/#'], 1), [1, NOT_AUTHORIZED, 1]);
  });

  test('clients/%c/#: a client publishes only under its own client id; a client id with wildcard characters gains nothing', async () => {
    const mine = await c(d1, { clientId: 'cid-1' });
    assert.equal(await pubackCode(mine, 'clients/cid-1/x', 'own'), 0);
    assert.equal(await pubackCode(mine, 'clients/cid-2/x', 'foreign'), NOT_AUTHORIZED);
    const anonClient = await c(null, { clientId: 'anon-7' });
    assert.equal(await pubackCode(anonClient, 'clients/anon-7/x', 'anon own'), 0, '%c applies to anonymous clients');
    assert.equal(await pubackCode(anonClient, `devices/${d1.deviceId}/x`, 'anon as device'), NOT_AUTHORIZED, 'an anonymous client has no device id');
    for (const evil of ['+', '#', 'a/b']) {
      const e = await c(d2, { clientId: evil });
      assert.equal(await pubackCode(e, 'clients/anyone/x', 'escalate'), NOT_AUTHORIZED, `client id "${evil}" escalated`);
      assert.deepEqual(await subackCodes(e, ['clients/anyone/#'], 0), [NOT_AUTHORIZED], `client id "${evil}" escalated (subscribe)`);
      await endAll([e]);
    }
  });

  test('default deny: everything no rule allows is refused (publish and subscribe); subscribe-only rules do not allow publish', async () => {
    const c1 = await c(d1);
    assert.equal(await pubackCode(c1, 'anything', 'x'), NOT_AUTHORIZED);
    assert.deepEqual(await subackCodes(c1, ['anything', 'broadcast/#', 'broadcast/news'], 1), [NOT_AUTHORIZED, 1, 1]);
    assert.equal(await pubackCode(c1, 'broadcast/news', 'x'), NOT_AUTHORIZED);
    const anonClient = await c(null);
    assert.equal(await pubackCode(anonClient, 'anything', 'x'), NOT_AUTHORIZED);
    const v3 = await c(d1, { protocolVersion: 4 });
    assert.deepEqual(await subackCodes(v3, ['anything'], 0), [V3_SUBACK_FAILURE]);
  });

  test('rule order: a deny listed before a broader allow wins for its topic', async () => {
    const c1 = await c(d1);
    assert.equal(await pubackCode(c1, 'x/secret', 'no'), NOT_AUTHORIZED);
    assert.equal(await pubackCode(c1, 'x/other', 'yes'), 0);
  });
});
