/**
 * MQTT 5 flow control and acknowledgements end to end (SPEC §2): receive maximum both ways,
 * shared subscriptions under receive maximum, reason codes on SUBACK/UNSUBACK/PUBCOMP, and the
 * engine hooks (authenticate, authorizeSubscribe, authorizePublish, onPublish holding the ack).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { BrokerHooks, PublishAck } from '../../src/broker/hooks.ts';
import type { Message } from '../../src/broker/message.ts';
import { delay, MessageCollector, startBroker, type TestBroker } from './helpers.ts';
import {
  ackOf,
  connectMqttJs,
  DISCONNECT,
  disconnectOf,
  encodeAck,
  encodeConnectV5,
  encodePublishV5,
  endAll,
  PUBACK,
  PUBCOMP,
  PUBLISH,
  PUBREC,
  PUBREL,
  Prop,
  decodePublishV5,
  UNSUBACK,
  WireClient,
} from './v5-helpers.ts';

function puback(packetId: number): Buffer {
  return encodeAck(PUBACK, packetId);
}

describe('MQTT 5 receive maximum', () => {
  let tb: TestBroker;
  /** Publishes on hold/... are held by onPublish until released, so their acks stay outstanding. */
  const held: Array<() => void> = [];
  const hooks: BrokerHooks = {
    onPublish(_client, message: Message) {
      if (!message.topic.startsWith('hold/')) return undefined;
      return new Promise<void>((resolve) => held.push(resolve));
    },
  };
  before(async () => {
    tb = await startBroker({ hooks, limits: { receiveMaximum: 3 } });
  });
  after(async () => {
    for (const release of held.splice(0)) release();
    await tb.close();
  });

  test('outbound: a subscriber with receive maximum 2 that withholds PUBACKs has at most 2 QoS 1 publishes in flight; acks release more; nothing lost', async () => {
    const { raw: sub } = await WireClient.connect(tb.port, { clientId: 'rm-out-sub', properties: { receiveMaximum: 2 } });
    const { client: pub } = await connectMqttJs(tb.port, { clientId: 'rm-out-pub' });
    try {
      await sub.subscribe([{ topic: 'rm/out', qos: 1 }]);
      for (let i = 0; i < 6; i++) await pub.publishAsync('rm/out', `m${i}`, { qos: 1 });
      const first = await sub.takeN(2, (f) => f.type === PUBLISH, 2000);
      assert.equal((await sub.quiet(300)).length, 0, 'no third publish while two are unacknowledged');
      const got = first.map((f) => decodePublishV5(f));
      sub.sendRaw(puback(got[0]!.packetId));
      got.push(await sub.nextPublish(2000));
      assert.equal((await sub.quiet(200)).length, 0, 'one ack frees exactly one slot');
      // Ack everything as it comes until all six are in.
      let acked = 1;
      while (got.length < 6) {
        sub.sendRaw(puback(got[acked++]!.packetId));
        got.push(await sub.nextPublish(2000));
      }
      while (acked < 6) sub.sendRaw(puback(got[acked++]!.packetId));
      assert.deepEqual(got.map((m) => m.payload.toString()), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
      assert.equal(new Set(got.map((m) => m.packetId)).size >= 2, true);
      assert.equal((await sub.quiet(200)).length, 0, 'nothing sent twice');
    } finally {
      await endAll([sub, pub]);
    }
  });

  test('inbound: CONNACK advertises the server receive maximum', async () => {
    const { raw, connack } = await WireClient.connect(tb.port, { clientId: 'rm-connack' });
    try {
      assert.equal(connack.properties?.receiveMaximum, 3);
    } finally {
      raw.destroy();
    }
  });

  test('inbound: a client exceeding the receive maximum with unacknowledged QoS 1 publishes gets DISCONNECT 0x93', async () => {
    const { raw } = await WireClient.connect(tb.port, { clientId: 'rm-in-q1' });
    try {
      for (let id = 1; id <= 3; id++) raw.sendRaw(encodePublishV5({ topic: 'hold/q1', payload: String(id), qos: 1, packetId: id }));
      // Within the limit: the connection stays up, acks held by the hook.
      assert.equal((await raw.quiet(200, (f) => f.type === DISCONNECT)).length, 0);
      assert.equal(raw.closed, false);
      raw.sendRaw(encodePublishV5({ topic: 'hold/q1', payload: '4', qos: 1, packetId: 4 }));
      const frame = await raw.take((f) => f.type === DISCONNECT, 2000, 'DISCONNECT');
      assert.equal(disconnectOf(frame).reasonCode, 0x93);
      await raw.waitClosed(2000);
    } finally {
      raw.destroy();
    }
  });

  test('inbound: QoS 2 publishes without PUBREL count against the receive maximum (DISCONNECT 0x93); PUBREL frees a slot', async () => {
    const { raw: ok } = await WireClient.connect(tb.port, { clientId: 'rm-in-q2-ok' });
    const { raw } = await WireClient.connect(tb.port, { clientId: 'rm-in-q2' });
    try {
      // Positive control: three outstanding, release one, a fourth is fine.
      for (let id = 1; id <= 3; id++) ok.sendRaw(encodePublishV5({ topic: 'rm/q2', payload: String(id), qos: 2, packetId: id }));
      await ok.takeN(3, (f) => f.type === PUBREC, 2000, 'PUBREC');
      ok.sendRaw(encodeAck(PUBREL, 1));
      await ok.take((f) => f.type === PUBCOMP, 2000, 'PUBCOMP');
      ok.sendRaw(encodePublishV5({ topic: 'rm/q2', payload: '4', qos: 2, packetId: 4 }));
      await ok.take((f) => f.type === PUBREC, 2000, 'PUBREC for the fourth');
      assert.equal((await ok.quiet(100, (f) => f.type === DISCONNECT)).length, 0);

      for (let id = 1; id <= 3; id++) raw.sendRaw(encodePublishV5({ topic: 'rm/q2', payload: String(id), qos: 2, packetId: id }));
      await raw.takeN(3, (f) => f.type === PUBREC, 2000, 'PUBREC');
      raw.sendRaw(encodePublishV5({ topic: 'rm/q2', payload: '4', qos: 2, packetId: 4 }));
      const frame = await raw.take((f) => f.type === DISCONNECT, 2000, 'DISCONNECT');
      assert.equal(disconnectOf(frame).reasonCode, 0x93);
      await raw.waitClosed(2000);
      assert.equal(ok.closed, false);
    } finally {
      await endAll([ok, raw]);
    }
  });

  test('shared subscription: messages go to members with free quota (receive maximum 1 vs 10, no acks)', async () => {
    const { raw: narrow } = await WireClient.connect(tb.port, { clientId: 'sh-narrow', properties: { receiveMaximum: 1 } });
    const { raw: wide } = await WireClient.connect(tb.port, { clientId: 'sh-wide', properties: { receiveMaximum: 10 } });
    const { client: pub } = await connectMqttJs(tb.port, { clientId: 'sh-pub' });
    try {
      await narrow.subscribe([{ topic: '$share/g1/sh/t', qos: 1 }]);
      await wide.subscribe([{ topic: '$share/g1/sh/t', qos: 1 }]);
      for (let i = 0; i < 6; i++) await pub.publishAsync('sh/t', `s${i}`, { qos: 1 });
      await delay(300);
      const n = narrow.pending((f) => f.type === PUBLISH).map((f) => decodePublishV5(f).payload.toString());
      const w = wide.pending((f) => f.type === PUBLISH).map((f) => decodePublishV5(f).payload.toString());
      assert.equal(n.length, 1, `the member with receive maximum 1 holds one unacked message, got ${JSON.stringify(n)}`);
      assert.equal(w.length, 5, `the member with free quota takes the rest, got ${JSON.stringify(w)}`);
      assert.deepEqual([...n, ...w].sort(), ['s0', 's1', 's2', 's3', 's4', 's5'], 'each message to exactly one member, none lost');
    } finally {
      await endAll([narrow, wide, pub]);
    }
  });
});

describe('MQTT 5 reason codes on acknowledgements', () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startBroker();
  });
  after(() => tb.close());

  test('SUBACK carries a reason code per filter: granted QoS, 0x8F for an invalid filter', async () => {
    const { raw } = await WireClient.connect(tb.port, { clientId: 'rc-suback' });
    try {
      const codes = await raw.subscribe([
        { topic: 'rc/a', qos: 1 },
        { topic: 'rc/#/bad', qos: 1 },
        { topic: 'rc/b', qos: 2 },
        { topic: 'rc/c+', qos: 0 },
        { topic: 'rc/d', qos: 0 },
      ]);
      assert.deepEqual(codes, [1, 0x8f, 2, 0x8f, 0]);
      assert.equal(raw.closed, false);
    } finally {
      raw.destroy();
    }
  });

  test('a shared subscription with no-local is a protocol error (DISCONNECT 0x82)', async () => {
    const { raw } = await WireClient.connect(tb.port, { clientId: 'rc-share-nl' });
    try {
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$share/g/rc/t', qos: 1, nl: true }] });
      const frame = await raw.take((f) => f.type === DISCONNECT, 2000, 'DISCONNECT');
      assert.equal(disconnectOf(frame).reasonCode, 0x82);
      await raw.waitClosed(2000);
    } finally {
      raw.destroy();
    }
  });

  test('UNSUBACK: 0x00 for an existing subscription, 0x11 for an unknown filter', async () => {
    const { raw } = await WireClient.connect(tb.port, { clientId: 'rc-unsuback' });
    try {
      await raw.subscribe([{ topic: 'rc/u', qos: 0 }]);
      raw.send({ cmd: 'unsubscribe', messageId: 7, unsubscriptions: ['rc/u', 'rc/never', 'rc/u'] });
      const frame = await raw.take((f) => f.type === UNSUBACK, 2000, 'UNSUBACK');
      const body = frame.raw.subarray(frame.bodyOffset);
      assert.equal(body.readUInt16BE(0), 7);
      // packet id, property length, then one reason code per filter.
      const propsLength = body[2]!;
      assert.deepEqual([...body.subarray(3 + propsLength)], [0x00, 0x11, 0x11]);
    } finally {
      raw.destroy();
    }
  });

  test('PUBREL for an unknown packet identifier gets PUBCOMP 0x92', async () => {
    const { raw } = await WireClient.connect(tb.port, { clientId: 'rc-pubrel' });
    try {
      raw.sendRaw(encodeAck(PUBREL, 4242));
      const frame = await raw.take((f) => f.type === PUBCOMP, 2000, 'PUBCOMP');
      assert.deepEqual(ackOf(frame), { packetId: 4242, reasonCode: 0x92 });
      // A known one completes with success.
      raw.sendRaw(encodePublishV5({ topic: 'rc/q2', payload: 'x', qos: 2, packetId: 5 }));
      assert.deepEqual(ackOf(await raw.take((f) => f.type === PUBREC, 2000, 'PUBREC')), { packetId: 5, reasonCode: 0 });
      raw.sendRaw(encodeAck(PUBREL, 5));
      assert.deepEqual(ackOf(await raw.take((f) => f.type === PUBCOMP, 2000, 'PUBCOMP')), { packetId: 5, reasonCode: 0 });
      assert.equal(raw.closed, false);
    } finally {
      raw.destroy();
    }
  });
});

describe('engine hooks seen through the wire', () => {
  let tb: TestBroker;
  const userPropertiesSeen = new Map<string, unknown>();
  const hooks: BrokerHooks = {
    authenticate(request) {
      userPropertiesSeen.set(request.clientId, request.userProperties);
      if (request.username === 'intruder') return { ok: false, reasonCode: 0x87, reasonString: 'go away' };
      return { ok: true };
    },
    authorizeSubscribe(_client, filter, qos) {
      return filter.startsWith('deny/') ? 0x87 : qos;
    },
    authorizePublish(_client, message) {
      return message.topic.startsWith('deny/') ? 0x87 : 0;
    },
    onPublish(_client, message) {
      if (message.topic.startsWith('slow/')) {
        const ms = Number(message.payload.toString());
        return new Promise<void>((resolve) => setTimeout(resolve, ms));
      }
      if (message.topic.startsWith('bad/')) return Promise.resolve(0x99);
      return undefined;
    },
  };
  before(async () => {
    tb = await startBroker({ hooks });
  });
  after(() => tb.close());

  test('authenticate sees the CONNECT user properties in wire order, repeated names interleaved', async () => {
    const pairs: Array<[string, string]> = [['region', 'eu'], ['model', 'x1'], ['region', 'us'], ['fw', '1.2']];
    const raw = await WireClient.open(tb.port);
    try {
      raw.sendRaw(encodeConnectV5({ clientId: 'auth-props', props: [[Prop.SessionExpiryInterval, 0], ...pairs.map((pair) => [Prop.UserProperty, pair] as [number, [string, string]])] }));
      await raw.take((f) => f.type === 2, 3000, 'CONNACK');
      assert.deepEqual(userPropertiesSeen.get('auth-props'), pairs);
      // v3 has no properties: the hook gets none.
      await endAll([(await WireClient.connect(tb.port, { clientId: 'auth-props-v4' }, 4)).raw]);
      assert.equal(userPropertiesSeen.get('auth-props-v4'), undefined);
      assert.ok(userPropertiesSeen.has('auth-props-v4'));
    } finally {
      raw.destroy();
    }
  });

  test('authenticate refusing: v5 CONNACK 0x87 with the reason string, then close', async () => {
    const { raw, connack } = await WireClient.connect(tb.port, { clientId: 'auth-v5', username: 'intruder' });
    try {
      assert.equal(connack.reasonCode, 0x87);
      assert.equal(connack.properties?.reasonString, 'go away');
      await raw.waitClosed(2000);
    } finally {
      raw.destroy();
    }
  });

  test('authenticate refusing: v3.1.1 CONNACK return code 5, v3.1 return code 5, MQTT.js v5 gets error code 135', async () => {
    const v4 = await WireClient.connect(tb.port, { clientId: 'auth-v4', username: 'intruder' }, 4);
    const v3 = await WireClient.connect(tb.port, { clientId: 'auth-v3', username: 'intruder' }, 3);
    try {
      assert.equal(v4.connack.returnCode, 5);
      assert.equal(v3.connack.returnCode, 5);
      await v4.raw.waitClosed(2000);
      await v3.raw.waitClosed(2000);
      await assert.rejects(connectMqttJs(tb.port, { clientId: 'auth-js', username: 'intruder' }), (err: Error & { code?: number }) => err.code === 135);
      // An allowed client still gets in.
      const { client } = await connectMqttJs(tb.port, { clientId: 'auth-ok', username: 'friend' });
      await endAll([client]);
    } finally {
      await endAll([v4.raw, v3.raw]);
    }
  });

  test('authorizeSubscribe returning 0x87: SUBACK 0x87 for that filter, the others granted, and nothing arrives on it', async () => {
    const { raw } = await WireClient.connect(tb.port, { clientId: 'authz-sub' });
    const { client: pub } = await connectMqttJs(tb.port, { clientId: 'authz-sub-pub' });
    const { raw: v3 } = await WireClient.connect(tb.port, { clientId: 'authz-sub-v3' }, 4);
    try {
      assert.deepEqual(await raw.subscribe([{ topic: 'ok/a', qos: 1 }, { topic: 'deny/x', qos: 1 }, { topic: 'ok/b', qos: 2 }]), [1, 0x87, 2]);
      assert.deepEqual(await v3.subscribe([{ topic: 'ok/c', qos: 1 }, { topic: 'deny/y', qos: 1 }]), [1, 0x80], 'v3.1.1 SUBACK failure is 0x80');
      // Published through the broker API so the publish hook does not stand in the way.
      tb.broker.publish('', { topic: 'deny/x', payload: Buffer.from('secret'), qos: 1, retain: false, properties: null, expiresAt: 0, origin: '' });
      await pub.publishAsync('ok/a', 'open', { qos: 1 });
      const m = await raw.nextPublish(2000);
      assert.equal(m.topic, 'ok/a');
      assert.equal((await raw.quiet(200)).length, 0, 'nothing delivered on the refused filter');
    } finally {
      await endAll([raw, pub, v3]);
    }
  });

  test('authorizePublish returning 0x87: QoS 1 publish gets PUBACK 0x87 and is not delivered', async () => {
    const { raw: sub } = await WireClient.connect(tb.port, { clientId: 'authz-pub-sub' });
    const { raw: pub } = await WireClient.connect(tb.port, { clientId: 'authz-pub' });
    try {
      // The subscription itself is refused for deny/, so subscribe with a wildcard that the hook allows.
      assert.deepEqual(await sub.subscribe([{ topic: '#', qos: 1 }]), [1]);
      pub.sendRaw(encodePublishV5({ topic: 'deny/p', payload: 'no', qos: 1, packetId: 1 }));
      pub.sendRaw(encodePublishV5({ topic: 'allowed/p', payload: 'yes', qos: 1, packetId: 2 }));
      const acks = (await pub.takeN(2, (f) => f.type === PUBACK, 2000)).map(ackOf);
      assert.deepEqual(acks, [{ packetId: 1, reasonCode: 0x87 }, { packetId: 2, reasonCode: 0 }]);
      const m = await sub.nextPublish(2000);
      assert.equal(m.topic, 'allowed/p');
      assert.equal((await sub.quiet(200)).length, 0, 'the refused publish is not delivered');
      assert.equal(pub.closed, false);
    } finally {
      await endAll([sub, pub]);
    }
  });

  test('onPublish returning a promise that resolves after 300 ms holds the PUBACK at least that long', async () => {
    const { raw } = await WireClient.connect(tb.port, { clientId: 'hook-slow' });
    try {
      const sent = Date.now();
      raw.sendRaw(encodePublishV5({ topic: 'slow/one', payload: '300', qos: 1, packetId: 1 }));
      const frame = await raw.take((f) => f.type === PUBACK, 3000, 'PUBACK');
      const waited = Date.now() - sent;
      assert.deepEqual(ackOf(frame), { packetId: 1, reasonCode: 0 });
      assert.ok(waited >= 295, `PUBACK after ${waited} ms, expected >= 300`);
    } finally {
      raw.destroy();
    }
  });

  test('PUBACKs of held publishes leave in publish order even when the hooks resolve in reverse order', async () => {
    const { raw } = await WireClient.connect(tb.port, { clientId: 'hook-order' });
    try {
      const delays = [600, 400, 200, 0];
      delays.forEach((ms, i) => raw.sendRaw(encodePublishV5({ topic: i === 3 ? 'fast/x' : 'slow/x', payload: String(ms), qos: 1, packetId: i + 1 })));
      const acks = (await raw.takeN(4, (f) => f.type === PUBACK, 3000)).map((f) => ackOf(f).packetId);
      assert.deepEqual(acks, [1, 2, 3, 4]);
    } finally {
      raw.destroy();
    }
  });

  test('onPublish resolving 0x99: v5 PUBACK 0x99 (and PUBREC 0x99 for QoS 2)', async () => {
    const { raw } = await WireClient.connect(tb.port, { clientId: 'hook-bad-v5' });
    try {
      raw.sendRaw(encodePublishV5({ topic: 'bad/x', payload: 'junk', qos: 1, packetId: 3 }));
      assert.deepEqual(ackOf(await raw.take((f) => f.type === PUBACK, 2000, 'PUBACK')), { packetId: 3, reasonCode: 0x99 });
      raw.sendRaw(encodePublishV5({ topic: 'bad/y', payload: 'junk', qos: 2, packetId: 4 }));
      assert.deepEqual(ackOf(await raw.take((f) => f.type === PUBREC, 2000, 'PUBREC')), { packetId: 4, reasonCode: 0x99 });
      assert.equal(raw.closed, false);
    } finally {
      raw.destroy();
    }
  });

  test('onPublish resolving 0x99: a v3.1.1 client gets no PUBACK (raw wire, 500 ms) and stays connected', async () => {
    const { raw } = await WireClient.connect(tb.port, { clientId: 'hook-bad-v3' }, 4);
    try {
      raw.send({ cmd: 'publish', topic: 'bad/x', payload: Buffer.from('junk'), qos: 1, messageId: 3, retain: false, dup: false });
      raw.send({ cmd: 'publish', topic: 'fine/x', payload: Buffer.from('ok'), qos: 1, messageId: 4, retain: false, dup: false });
      await new Promise((resolve) => setTimeout(resolve, 500));
      const acks = raw.pending((f) => f.type === PUBACK).map((f) => ackOf(f).packetId);
      assert.deepEqual(acks, [4], 'only the accepted publish is acknowledged');
      assert.equal(raw.closed, false);
    } finally {
      raw.destroy();
    }
  });
});

describe('MQTT 5 flow with MQTT.js end to end', () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startBroker();
  });
  after(() => tb.close());

  test('an MQTT.js subscriber with receive maximum 1 receives a burst of 20 QoS 1 messages in order', async () => {
    const { client: sub } = await connectMqttJs(tb.port, { clientId: 'rm-js', properties: { receiveMaximum: 1 } });
    const { client: pub } = await connectMqttJs(tb.port, { clientId: 'rm-js-pub' });
    const collector = new MessageCollector(sub);
    try {
      await sub.subscribeAsync('rmjs/t', { qos: 1 });
      await Promise.all(Array.from({ length: 20 }, (_v, i) => pub.publishAsync('rmjs/t', String(i), { qos: 1 })));
      const got = await collector.waitFor(20, 4000);
      assert.deepEqual(got.map((m) => Number(m.payload.toString())), Array.from({ length: 20 }, (_v, i) => i));
    } finally {
      collector.stop();
      await endAll([sub, pub]);
    }
  });
});

describe('onPublish taking the acknowledgement with acks.hold()', () => {
  let tb: TestBroker;
  /** Held acks by payload, settled by the tests; what hold() answered outside its call. */
  const held = new Map<string, PublishAck>();
  const late: Array<PublishAck | null> = [];
  const qos0: Array<PublishAck | null> = [];
  const hooks: BrokerHooks = {
    onPublish(_client, message, acks) {
      const payload = message.payload.toString();
      if (message.qos === 0) {
        qos0.push(acks.hold());
        return;
      }
      if (message.topic === 'hold/throw') {
        acks.hold();
        throw new Error('after taking the ack');
      }
      if (message.topic.startsWith('hold/')) {
        const ack = acks.hold();
        if (ack !== null) held.set(payload, ack);
        setTimeout(() => late.push(acks.hold()), 0);
        // Ignored: the hook took the acknowledgement.
        return 0x80;
      }
      return undefined;
    },
  };
  before(async () => {
    tb = await startBroker({ hooks });
  });
  after(async () => {
    for (const ack of held.values()) ack.settle(0);
    await tb.close();
  });

  async function until(payloads: string[]): Promise<void> {
    const end = Date.now() + 3000;
    while (!payloads.every((p) => held.has(p)) && Date.now() < end) await delay(5);
    assert.ok(payloads.every((p) => held.has(p)), `held: ${[...held.keys()].join(', ')}`);
  }

  test('v5: acks leave in publish order whatever order they are settled in; a failure code reaches the client; a second settle is ignored', async () => {
    const { raw } = await WireClient.connect(tb.port, { clientId: 'hold-v5' });
    try {
      for (let i = 1; i <= 4; i++) raw.sendRaw(encodePublishV5({ topic: i === 3 ? 'free/x' : 'hold/x', payload: `v5-${i}`, qos: 1, packetId: i }));
      await until(['v5-1', 'v5-2', 'v5-4']);
      held.get('v5-4')!.settle(0);
      held.get('v5-2')!.settle(0x97);
      assert.equal((await raw.quiet(200)).filter((f) => f.type === PUBACK).length, 0, 'nothing while the first is held');
      held.get('v5-1')!.settle(0);
      held.get('v5-1')!.settle(0x99);
      const acks = (await raw.takeN(4, (f) => f.type === PUBACK, 2000)).map(ackOf);
      assert.deepEqual(acks, [{ packetId: 1, reasonCode: 0 }, { packetId: 2, reasonCode: 0x97 }, { packetId: 3, reasonCode: 0 }, { packetId: 4, reasonCode: 0 }]);
      assert.equal((await raw.quiet(200)).length, 0, 'one ack each');
      assert.ok(late.length > 0 && late.every((ack) => ack === null), 'hold() outside the hook call gives nothing');
    } finally {
      raw.destroy();
    }
  });

  test('v3.1.1: a refused held publish gets no PUBACK (the client resends); QoS 2 gets its PUBREC once settled and a resend is not delivered twice', async () => {
    const { raw } = await WireClient.connect(tb.port, { clientId: 'hold-v3' }, 4);
    const { raw: sub } = await WireClient.connect(tb.port, { clientId: 'hold-v3-sub' });
    try {
      await sub.subscribe([{ topic: 'hold/#', qos: 2 }]);
      raw.send({ cmd: 'publish', topic: 'hold/a', payload: Buffer.from('v3-1'), qos: 1, messageId: 1, retain: false, dup: false });
      raw.send({ cmd: 'publish', topic: 'hold/b', payload: Buffer.from('v3-2'), qos: 2, messageId: 2, retain: false, dup: false });
      await until(['v3-1', 'v3-2']);
      held.get('v3-1')!.settle(0x99);
      held.get('v3-2')!.settle(0);
      const rec = await raw.take((f) => f.type === PUBREC, 2000, 'PUBREC');
      assert.equal(ackOf(rec).packetId, 2);
      assert.deepEqual(raw.pending((f) => f.type === PUBACK), [], 'no PUBACK for the refused QoS 1 publish');
      raw.send({ cmd: 'publish', topic: 'hold/b', payload: Buffer.from('v3-2'), qos: 2, messageId: 2, retain: false, dup: true });
      assert.equal(ackOf(await raw.take((f) => f.type === PUBREC, 2000, 'second PUBREC')).packetId, 2);
      const delivered = (await sub.takeN(2, (f) => f.type === PUBLISH, 2000)).map((f) => decodePublishV5(f).payload.toString());
      assert.deepEqual(delivered, ['v3-1', 'v3-2'], 'routed once each before the hook ran');
      assert.equal((await sub.quiet(300)).filter((f) => f.type === PUBLISH).length, 0, 'the resent QoS 2 publish is not routed again');
      assert.equal(raw.closed, false);
    } finally {
      await endAll([raw, sub]);
    }
  });

  test('QoS 0: hold() gives nothing; a hook that takes the ack and then throws refuses the publish', async () => {
    const { raw } = await WireClient.connect(tb.port, { clientId: 'hold-misc' });
    try {
      raw.sendRaw(encodePublishV5({ topic: 'hold/zero', payload: 'q0', qos: 0 }));
      raw.sendRaw(encodePublishV5({ topic: 'hold/throw', payload: 't', qos: 1, packetId: 9 }));
      assert.deepEqual(ackOf(await raw.take((f) => f.type === PUBACK, 2000, 'PUBACK')), { packetId: 9, reasonCode: 0x80 });
      assert.deepEqual(qos0, [null]);
    } finally {
      raw.destroy();
    }
  });
});
