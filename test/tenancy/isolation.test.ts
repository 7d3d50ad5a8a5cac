/**
 * Cross-tenant isolation (SPEC §1 "Topic namespace = account"; issue 4 acceptance: `#` subscriber
 * of account B receives nothing from account A, retained/will/`$share` isolated, same client id in
 * two accounts do not take each other over) and the shared topic space inside one account.
 *
 * "Receives nothing" is bounded by a control message: after the probes, a message is published in
 * the subscriber's own account; once it arrives, anything from the other account would have too
 * (one broker, in-order delivery per connection), and we assert only the control came.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import type { Message } from '../../src/broker/message.ts';
import { spawnProcess } from '../broker/helpers.ts';
import { startMosquittoSub } from '../broker/wire-helpers.ts';
import {
  HOST,
  delay,
  endAll,
  login,
  loginRecording,
  newAccount,
  newDevice,
  pubackCode,
  record,
  startTenancyBroker,
  waitUntil,
  watchEnd,
  type TenancyBroker,
  type TestDevice,
} from './helpers.ts';

describe('cross-tenant isolation', () => {
  let tb: TenancyBroker;
  let A: string;
  let B: string;
  let a1: TestDevice, a2: TestDevice, a3: TestDevice, b1: TestDevice, b2: TestDevice, b3: TestDevice;
  const clients: MqttClient[] = [];

  before(async () => {
    tb = await startTenancyBroker();
    A = newAccount(tb.registry, 'A');
    B = newAccount(tb.registry, 'B');
    a1 = newDevice(tb.registry, A, 'a1');
    a2 = newDevice(tb.registry, A, 'a2');
    a3 = newDevice(tb.registry, A, 'a3');
    b1 = newDevice(tb.registry, B, 'b1');
    b2 = newDevice(tb.registry, B, 'b2');
    b3 = newDevice(tb.registry, B, 'b3');
  });
  after(async () => {
    await endAll(clients);
    await tb.close();
  });

  async function c(dev: TestDevice, version: 4 | 5 = 5, opts: Parameters<typeof login>[2] = {}): Promise<MqttClient> {
    const client = await login(tb.port, dev.token, { protocolVersion: version, ...opts });
    clients.push(client);
    return client;
  }

  /** Waits for `payload` on `got` (the control), then returns everything received. */
  async function untilControl(got: Array<{ payload: string }>, payload: string): Promise<string[]> {
    await waitUntil(() => got.some((m) => m.payload === payload), `control message ${payload}`);
    await delay(50);
    return got.map((m) => m.payload);
  }

  test('a "#" subscriber of B (v3 and v5) receives nothing from A, and vice versa', async () => {
    const subB5 = await c(b1, 5);
    const subB3 = await c(b2, 4);
    const subA5 = await c(a2, 5);
    const gotB5 = record(subB5);
    const gotB3 = record(subB3);
    const gotA5 = record(subA5);
    for (const s of [subB5, subB3, subA5]) await s.subscribeAsync(['#', '+/#', '+'], { qos: 1 });
    const pubA = await c(a1, 5);
    const pubB = await c(b3, 4);
    const topics = ['temperature', 'a/b/c', `${B}/temperature`, `/${B}/x`, 'x/y/z/w'];
    for (const t of topics) await pubA.publishAsync(t, `A:${t}`, { qos: 1 });
    for (const t of topics) await pubB.publishAsync(t, `B:${t}`, { qos: 1 });
    await pubB.publishAsync('control', 'control-B', { qos: 1 });
    await pubA.publishAsync('control', 'control-A', { qos: 1 });
    for (const [got, own, ctl] of [[gotB5, 'B:', 'control-B'], [gotB3, 'B:', 'control-B'], [gotA5, 'A:', 'control-A']] as const) {
      const payloads = await untilControl(got, ctl);
      const foreign = payloads.filter((p) => !p.startsWith(own) && p !== ctl);
      assert.deepEqual(foreign, [], `messages from the other account crossed over`);
      // Overlapping filters may deliver a message more than once; every own topic arrived.
      for (const t of topics) assert.ok(payloads.includes(`${own}${t}`), `own message ${own}${t} missing`);
    }
  });

  test('the same topic name in both accounts: each side sees only its own value', async () => {
    const subA = await c(a2);
    const subB = await c(b2);
    const gotA = record(subA);
    const gotB = record(subB);
    await subA.subscribeAsync('temperature', { qos: 1 });
    await subB.subscribeAsync('temperature', { qos: 1 });
    const pubA = await c(a1);
    const pubB = await c(b1);
    await pubA.publishAsync('temperature', '21', { qos: 1 });
    await pubB.publishAsync('temperature', '35', { qos: 1 });
    await waitUntil(() => gotA.length >= 1 && gotB.length >= 1, 'one message each');
    await pubA.publishAsync('temperature', 'end-A', { qos: 1 });
    await pubB.publishAsync('temperature', 'end-B', { qos: 1 });
    assert.deepEqual(await untilControl(gotA, 'end-A'), ['21', 'end-A']);
    assert.deepEqual(await untilControl(gotB, 'end-B'), ['35', 'end-B']);
  });

  test('retained messages are per account: B sees none of A\'s, B\'s retain does not overwrite A\'s, A\'s clear does not clear B\'s', async () => {
    const pubA = await c(a1);
    const pubB = await c(b1);
    await pubA.publishAsync('status/door', 'A-open', { qos: 1, retain: true });
    await pubA.publishAsync('status/only-in-A', 'A-only', { qos: 1, retain: true });

    // B: a fresh '#' subscriber gets no retained message of A.
    const subB = await c(b2, 4);
    const gotB = record(subB);
    await subB.subscribeAsync(['#', 'status/door'], { qos: 1 });
    await delay(200);
    assert.deepEqual(gotB, [], 'B received A\'s retained messages');

    await pubB.publishAsync('status/door', 'B-closed', { qos: 1, retain: true });
    const subA = await c(a2);
    const gotA = record(subA);
    await subA.subscribeAsync('status/#', { qos: 1 });
    await waitUntil(() => gotA.length >= 2, 'A\'s two retained messages');
    await delay(100);
    assert.deepEqual(gotA.map((m) => `${m.topic}=${m.payload}`).sort(), ['status/door=A-open', 'status/only-in-A=A-only']);
    assert.ok(gotA.every((m) => m.retain));

    // A clears its retained door; B's stays.
    await pubA.publishAsync('status/door', '', { qos: 1, retain: true });
    const subB2 = await c(b3);
    const gotB2 = record(subB2);
    await subB2.subscribeAsync('status/#', { qos: 1 });
    await waitUntil(() => gotB2.length >= 1, 'B\'s retained message');
    await delay(100);
    assert.deepEqual(gotB2.map((m) => `${m.topic}=${m.payload}`), ['status/door=B-closed']);
  });

  test('$SYS topics are per account: A\'s $SYS/# subscriber sees A\'s, B\'s sees none of them; a client may not publish there', async () => {
    const subA = await c(a2);
    const subB = await c(b2);
    const gotA = record(subA);
    const gotB = record(subB);
    await subA.subscribeAsync('$SYS/#', { qos: 1 });
    await subB.subscribeAsync('$SYS/#', { qos: 1 });
    // $SYS is the broker's own (sys-topics.ts publishes there per namespace); a client is refused.
    const pubA = await c(a1);
    assert.equal(await pubackCode(pubA, '$SYS/broker/forged', 'A-forged'), 0x87);
    tb.broker.publish(A, sysMessage('$SYS/broker/info', 'A-sys', true));
    await waitUntil(() => gotA.length >= 1, 'A\'s $SYS message');
    const lateB = await c(b3);
    const gotLateB = record(lateB);
    await lateB.subscribeAsync('$SYS/#', { qos: 1 });
    tb.broker.publish(B, sysMessage('$SYS/control', 'B-sys', false));
    await waitUntil(() => gotB.length >= 1 && gotLateB.length >= 1, 'B\'s own $SYS message');
    assert.deepEqual(gotA.map((m) => m.payload), ['A-sys']);
    assert.deepEqual(gotB.map((m) => m.payload), ['B-sys']);
    assert.deepEqual(gotLateB.map((m) => m.payload), ['B-sys'], 'B must not get A\'s retained $SYS message');
  });

  test('wills are per account: A\'s device dies, only A\'s subscribers get its will', async () => {
    const subA = await c(a2);
    const subB = await c(b2);
    const subB3 = await c(b3, 4);
    const gotA = record(subA);
    const gotB = record(subB);
    const gotB3 = record(subB3);
    await subA.subscribeAsync('lwt/#', { qos: 1 });
    await subB.subscribeAsync(['lwt/#', '#'], { qos: 1 });
    await subB3.subscribeAsync('#', { qos: 1 });
    const dying = await c(a1, 5, { clientId: 'dying-a1', will: { topic: 'lwt/a1', payload: Buffer.from('A-died'), qos: 1, retain: false } });
    const watch = watchEnd(dying);
    dying.stream.destroy(); // ungraceful: the will fires
    await watch.closed(2000);
    await waitUntil(() => gotA.length === 1, 'A subscriber to get the will');
    assert.equal(gotA[0]!.payload, 'A-died');
    const pubB = await c(b1);
    await pubB.publishAsync('lwt/control', 'control-B', { qos: 1 });
    // Overlapping filters (lwt/# and #) may deliver the control once or twice; B's own retained
    // messages from the earlier test arrive on '#' too. Nothing else may come.
    await untilControl(gotB, 'control-B');
    await untilControl(gotB3, 'control-B');
    const live = (got: typeof gotB): string[] => got.filter((m) => !m.retain && m.payload !== 'control-B').map((m) => `${m.topic}=${m.payload}`);
    assert.deepEqual(live(gotB), [], 'B (v5) got A\'s will');
    assert.deepEqual(live(gotB3), [], 'B (v3) got A\'s will');
  });

  test('$share groups of the same name are per account: each account\'s messages go only to its own members', async () => {
    const memA1 = await c(a2);
    const memA2 = await c(a3, 4);
    const memB1 = await c(b2);
    const memB2 = await c(b3, 4);
    const got = { a1: record(memA1), a2: record(memA2), b1: record(memB1), b2: record(memB2) };
    for (const m of [memA1, memA2, memB1, memB2]) await m.subscribeAsync('$share/g/shared/t', { qos: 1 });
    const pubA = await c(a1);
    const pubB = await c(b1);
    for (let i = 0; i < 10; i++) await pubA.publishAsync('shared/t', `A${i}`, { qos: 1 });
    await waitUntil(() => got.a1.length + got.a2.length === 10, 'A\'s 10 messages at A\'s members');
    for (let i = 0; i < 6; i++) await pubB.publishAsync('shared/t', `B${i}`, { qos: 1 });
    await waitUntil(() => got.b1.length + got.b2.length === 6, 'B\'s 6 messages at B\'s members');
    await delay(150);
    const aPayloads = [...got.a1, ...got.a2].map((m) => m.payload).sort();
    const bPayloads = [...got.b1, ...got.b2].map((m) => m.payload).sort();
    assert.deepEqual(aPayloads, Array.from({ length: 10 }, (_, i) => `A${i}`).sort());
    assert.deepEqual(bPayloads, Array.from({ length: 6 }, (_, i) => `B${i}`).sort());
  });

  test('the same client id in two accounts: neither takes the other over; both stay connected and work', async () => {
    const ca = await c(a1, 5, { clientId: 'same-id' });
    const wa = watchEnd(ca);
    const cb = await c(b1, 4, { clientId: 'same-id' });
    const wb = watchEnd(cb);
    const ca2 = await c(a2, 5, { clientId: 'same-id-2' });
    const cb2 = await c(b2, 5, { clientId: 'same-id-2' });
    const wa2 = watchEnd(ca2);
    const wb2 = watchEnd(cb2);
    await delay(400);
    for (const [w, what] of [[wa, 'A same-id'], [wb, 'B same-id'], [wa2, 'A same-id-2'], [wb2, 'B same-id-2']] as const) {
      assert.equal(w.closedAt, 0, `${what} was disconnected`);
      assert.equal(w.disconnect, null, `${what} got DISCONNECT`);
    }
    const gotA = record(ca);
    const gotB = record(cb);
    await ca.subscribeAsync('id/t', { qos: 1 });
    await cb.subscribeAsync('id/t', { qos: 1 });
    await ca.publishAsync('id/t', 'from-A', { qos: 1 });
    await cb.publishAsync('id/t', 'from-B', { qos: 1 });
    await waitUntil(() => gotA.length === 1 && gotB.length === 1, 'one message each');
    await delay(100);
    assert.deepEqual(gotA.map((m) => m.payload), ['from-A']);
    assert.deepEqual(gotB.map((m) => m.payload), ['from-B']);
  });

  test('a persistent session is per account: B connecting with A\'s client id does not resume A\'s session', async () => {
    const clientId = 'persistent-shared-id';
    const first = await c(a1, 5, { clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
    await first.subscribeAsync('persist/t', { qos: 1 });
    await endAll([first]);
    const intruding = await loginRecording(tb.port, b1.token, { protocolVersion: 5, clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
    const intruder = intruding.client;
    clients.push(intruder);
    const gotIntruder = intruding.got;
    assert.equal(intruding.sessionPresent, false, 'B resumed a session A created');
    // What A's session would have subscribed: published in A while A's session is offline, and in B.
    const pubA = await c(a2);
    await pubA.publishAsync('persist/t', 'queued-for-A', { qos: 1 });
    const pubB = await c(b2);
    await pubB.publishAsync('persist/t', 'B-not-subscribed', { qos: 1 });
    await pubB.publishAsync('persist/ctl', 'ctl', { qos: 1 });
    await delay(300);
    assert.deepEqual(gotIntruder, [], 'B\'s client received messages of A\'s session');

    // A's session is still there with its queued message.
    const back = await loginRecording(tb.port, a1.token, { protocolVersion: 5, clientId, clean: false, properties: { sessionExpiryInterval: 0 } });
    clients.push(back.client);
    assert.equal(back.sessionPresent, true, 'A\'s own session is gone');
    const gotBack = back.got;
    await waitUntil(() => gotBack.length === 1, 'A\'s queued message on resume', 2000);
    assert.equal(gotBack[0]!.payload, 'queued-for-A');
  });

  test('mosquitto_sub -t "#" in B sees nothing from mosquitto_pub in A', async () => {
    const sub = await startMosquittoSub(['-h', HOST, '-p', String(tb.port), '-V', 'mqttv311', '-u', 'Token', '-P', b1.token, '-t', '#', '-q', '1']);
    try {
      const pubA = spawnProcess('mosquitto_pub', ['-h', HOST, '-p', String(tb.port), '-u', 'Token', '-P', a1.token, '-t', 'mosq/x', '-m', 'A-secret', '-q', '1']);
      assert.equal((await pubA.done).code, 0);
      const pubB = spawnProcess('mosquitto_pub', ['-h', HOST, '-p', String(tb.port), '-u', 'Token', '-P', b2.token, '-t', 'mosq/x', '-m', 'B-own', '-q', '1']);
      assert.equal((await pubB.done).code, 0);
      await sub.waitFor(1, 3000);
      await delay(100);
      assert.deepEqual(sub.messages.map((m) => m.payload).filter((p) => p.startsWith('A-') || p.startsWith('B-own')), ['B-own']);
    } finally {
      sub.stop();
    }
  });
});

describe('one account shares one topic space (SPEC §1)', () => {
  let tb: TenancyBroker;
  before(async () => {
    tb = await startTenancyBroker();
  });
  after(() => tb.close());

  test('device A publishes "temperature"; devices B and C of the same account subscribed to it receive it', async () => {
    const acct = newAccount(tb.registry, 'home');
    const [devA, devB, devC] = [newDevice(tb.registry, acct, 'A'), newDevice(tb.registry, acct, 'B'), newDevice(tb.registry, acct, 'C')];
    const b = await login(tb.port, devB.token, { protocolVersion: 5 });
    const cc = await login(tb.port, devC.token, { protocolVersion: 4 });
    const a = await login(tb.port, devA.token, { protocolVersion: 4 });
    try {
      const gotB = record(b);
      const gotC = record(cc);
      await b.subscribeAsync('temperature', { qos: 1 });
      await cc.subscribeAsync('temperature', { qos: 0 });
      await a.publishAsync('temperature', '22.5', { qos: 1 });
      await waitUntil(() => gotB.length === 1 && gotC.length === 1, 'B and C to receive');
      assert.equal(gotB[0]!.payload, '22.5');
      assert.equal(gotC[0]!.payload, '22.5');
      // Retained messages are shared inside the account too.
      await a.publishAsync('state', 'on', { qos: 1, retain: true });
      const late = await login(tb.port, devC.token, { protocolVersion: 5 });
      try {
        const gotLate = record(late);
        await late.subscribeAsync('state', { qos: 1 });
        await waitUntil(() => gotLate.length === 1, 'the retained message of a sibling device');
        assert.equal(gotLate[0]!.payload, 'on');
      } finally {
        await endAll([late]);
      }
    } finally {
      await endAll([a, b, cc]);
    }
  });
});

function sysMessage(topic: string, payload: string, retain: boolean): Message {
  return { topic, payload: Buffer.from(payload), qos: 1, retain, properties: null, expiresAt: 0, origin: '' };
}
