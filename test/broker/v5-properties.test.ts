/**
 * MQTT 5 properties end to end (SPEC §2): message expiry, topic aliases both ways, maximum packet
 * size both ways, user property order, request/response, content type, payload format indicator,
 * subscription identifiers and subscription options. Checked on the raw wire where a client
 * library would hide or reorder what was sent.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { IPublishPacket } from 'mqtt';
import { delay, MessageCollector, startBroker, type TestBroker } from './helpers.ts';
import { MOCK_TIME_TEST, mockTime } from './mock-time.ts';
import {
  connectMqttJs,
  DISCONNECT,
  decodePublishV5,
  disconnectOf,
  encodeConnectV5,
  encodePublishV5,
  endAll,
  nextEvent,
  Prop,
  PUBACK,
  PUBLISH,
  propValues,
  runMosquitto,
  userProps,
  WireClient,
} from './v5-helpers.ts';

/** Waits until the broker has processed a SUBSCRIBE from `clientId` (for mosquitto_sub). */
function subscribed(tb: TestBroker, clientId: string): Promise<unknown> {
  return nextEvent(tb.broker, 'client.subscribe', 4000, (client: { clientId: string }) => client.clientId === clientId);
}

describe('MQTT 5 message expiry, on mock time', () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startBroker();
  });
  after(() => tb.close());

  test('a message queued for an offline session is delivered with its expiry interval decremented by the time waited', MOCK_TIME_TEST, async (t) => {
    const time = mockTime(t);
    const { raw: sub } = await WireClient.connect(tb.port, { clientId: 'exp-dec', clean: false, properties: { sessionExpiryInterval: 60 } });
    const { client: pub } = await connectMqttJs(tb.port, { clientId: 'exp-dec-pub' });
    let again: WireClient | undefined;
    try {
      assert.deepEqual(await sub.subscribe([{ topic: 'exp/dec', qos: 1 }]), [1]);
      sub.disconnect();
      await sub.waitClosed(2000);
      await pub.publishAsync('exp/dec', 'ten seconds', { qos: 1, properties: { messageExpiryInterval: 10 } });
      time.tick(2100);
      const r = await WireClient.connect(tb.port, { clientId: 'exp-dec', clean: false, properties: { sessionExpiryInterval: 60 } });
      again = r.raw;
      assert.equal(r.connack.sessionPresent, true);
      const msg = await again.nextPublish(2000);
      assert.equal(msg.topic, 'exp/dec');
      assert.equal(msg.payload.toString(), 'ten seconds');
      const [expiry] = propValues(msg, Prop.MessageExpiryInterval);
      assert.equal(typeof expiry, 'number', 'the queued message still carries a message expiry interval');
      // 10 s minus the 2.1 s waited, rounded up (MQTT 5 §3.3.2.3.3).
      assert.equal(expiry, 8);
    } finally {
      await endAll([sub, pub, again]);
    }
  });

  test('a message whose expiry interval passes while it is queued is not delivered', MOCK_TIME_TEST, async (t) => {
    const time = mockTime(t);
    const { raw: sub } = await WireClient.connect(tb.port, { clientId: 'exp-gone', clean: false, properties: { sessionExpiryInterval: 60 } });
    const { client: pub } = await connectMqttJs(tb.port, { clientId: 'exp-gone-pub' });
    let again: WireClient | undefined;
    try {
      await sub.subscribe([{ topic: 'exp/gone', qos: 1 }]);
      sub.disconnect();
      await sub.waitClosed(2000);
      await pub.publishAsync('exp/gone', 'short-lived', { qos: 1, properties: { messageExpiryInterval: 1 } });
      await pub.publishAsync('exp/gone', 'lasting', { qos: 1 });
      time.tick(999);
      await pub.publishAsync('exp/gone', 'short-lived too', { qos: 1, properties: { messageExpiryInterval: 1 } });
      time.tick(1);
      again = (await WireClient.connect(tb.port, { clientId: 'exp-gone', clean: false, properties: { sessionExpiryInterval: 60 } })).raw;
      const first = await again.nextPublish(2000);
      assert.equal(first.payload.toString(), 'lasting', 'the expired message must not be delivered');
      // One publisher's messages keep their order (MQTT 5 §4.6): a marker after them shows what else came.
      await pub.publishAsync('exp/gone', 'marker', { qos: 1 });
      const rest = [(await again.nextPublish(2000)).payload.toString(), (await again.nextPublish(2000)).payload.toString()];
      assert.deepEqual(rest, ['short-lived too', 'marker'], 'a message is delivered up to its last millisecond');
    } finally {
      await endAll([sub, pub, again]);
    }
  });

  test('a retained message with an expiry interval is no longer sent to new subscribers once it has expired', MOCK_TIME_TEST, async (t) => {
    const time = mockTime(t);
    const { client: pub } = await connectMqttJs(tb.port, { clientId: 'exp-ret-pub' });
    const subs: WireClient[] = [];
    try {
      await pub.publishAsync('rexp/short', 'expiring', { qos: 1, retain: true, properties: { messageExpiryInterval: 1 } });
      await pub.publishAsync('rexp/long', 'staying', { qos: 1, retain: true });

      const early = (await WireClient.connect(tb.port, { clientId: 'exp-ret-early' })).raw;
      subs.push(early);
      await early.subscribe([{ topic: 'rexp/short', qos: 1 }]);
      const got = await early.nextPublish(2000);
      assert.equal(got.payload.toString(), 'expiring');
      assert.equal(got.retain, true);
      const [left] = propValues(got, Prop.MessageExpiryInterval);
      assert.equal(left, 1);

      time.tick(1000);
      const late = (await WireClient.connect(tb.port, { clientId: 'exp-ret-late' })).raw;
      subs.push(late);
      await late.subscribe([{ topic: 'rexp/+', qos: 1 }]);
      const only = await late.nextPublish(2000);
      assert.equal(only.payload.toString(), 'staying');
      await pub.publishAsync('rexp/marker', 'marker', { qos: 1 });
      assert.equal((await late.nextPublish(2000)).payload.toString(), 'marker', 'the expired retained message must not be sent');
    } finally {
      await pub.publishAsync('rexp/long', '', { qos: 1, retain: true }).catch(() => undefined);
      await endAll([pub, ...subs]);
    }
  });
});

describe('MQTT 5 topic aliases', () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startBroker({ limits: { topicAliasMaximum: 10 } });
  });
  after(() => tb.close());

  test('client to server: alias set with a topic, then used alone with an empty topic', async () => {
    const { client: sub } = await connectMqttJs(tb.port, { clientId: 'alias-in-sub' });
    const collector = new MessageCollector(sub);
    const { raw: pub, connack } = await WireClient.connect(tb.port, { clientId: 'alias-in-pub' });
    try {
      assert.equal(connack.properties?.topicAliasMaximum, 10, 'CONNACK advertises the topic alias maximum');
      await sub.subscribeAsync('alias/in', { qos: 1 });
      pub.sendRaw(encodePublishV5({ topic: 'alias/in', payload: 'first', qos: 1, packetId: 1, props: [[Prop.TopicAlias, 3]] }));
      pub.sendRaw(encodePublishV5({ topic: '', payload: 'second', qos: 1, packetId: 2, props: [[Prop.TopicAlias, 3]] }));
      pub.sendRaw(encodePublishV5({ topic: '', payload: 'third', qos: 0, props: [[Prop.TopicAlias, 3]] }));
      const messages = await collector.waitFor(3, 3000);
      assert.deepEqual(messages.map((m) => [m.topic, m.payload.toString()]), [
        ['alias/in', 'first'],
        ['alias/in', 'second'],
        ['alias/in', 'third'],
      ]);
      const acks = await pub.takeN(2, (f) => f.type === PUBACK, 2000, 'PUBACK');
      assert.equal(acks.length, 2);
      assert.equal(pub.closed, false);
    } finally {
      collector.stop();
      await endAll([sub, pub]);
    }
  });

  test('client to server: alias 0 is a protocol violation (DISCONNECT 0x94)', async () => {
    const { raw } = await WireClient.connect(tb.port, { clientId: 'alias-zero' });
    try {
      raw.sendRaw(encodePublishV5({ topic: 'alias/zero', payload: 'x', qos: 0, props: [[Prop.TopicAlias, 0]] }));
      const frame = await raw.take((f) => f.type === DISCONNECT, 2000, 'DISCONNECT');
      assert.equal(disconnectOf(frame).reasonCode, 0x94);
      await raw.waitClosed(2000);
    } finally {
      raw.destroy();
    }
  });

  test('client to server: alias above the CONNACK topic alias maximum gets DISCONNECT 0x94', async () => {
    const { raw } = await WireClient.connect(tb.port, { clientId: 'alias-high' });
    try {
      raw.sendRaw(encodePublishV5({ topic: 'alias/high', payload: 'x', qos: 0, props: [[Prop.TopicAlias, 11]] }));
      const frame = await raw.take((f) => f.type === DISCONNECT, 2000, 'DISCONNECT');
      assert.equal(disconnectOf(frame).reasonCode, 0x94);
      await raw.waitClosed(2000);
    } finally {
      raw.destroy();
    }
  });

  test('client to server: an alias never set, with an empty topic, gets DISCONNECT 0x82', async () => {
    const { raw } = await WireClient.connect(tb.port, { clientId: 'alias-unknown' });
    try {
      raw.sendRaw(encodePublishV5({ topic: '', payload: 'x', qos: 0, props: [[Prop.TopicAlias, 4]] }));
      const frame = await raw.take((f) => f.type === DISCONNECT, 2000, 'DISCONNECT');
      assert.equal(disconnectOf(frame).reasonCode, 0x82);
      await raw.waitClosed(2000);
    } finally {
      raw.destroy();
    }
  });

  test('server to client: first publish on a topic carries topic + alias, later ones an empty topic and the alias', async () => {
    const { raw: sub } = await WireClient.connect(tb.port, { clientId: 'alias-out-sub', properties: { topicAliasMaximum: 5 } });
    const { raw: plain } = await WireClient.connect(tb.port, { clientId: 'alias-out-plain' });
    const { client: pub } = await connectMqttJs(tb.port, { clientId: 'alias-out-pub' });
    try {
      await sub.subscribe([{ topic: 'alias/out/+', qos: 0 }]);
      await plain.subscribe([{ topic: 'alias/out/+', qos: 0 }]);
      for (const [topic, payload] of [['alias/out/a', 'a1'], ['alias/out/a', 'a2'], ['alias/out/b', 'b1'], ['alias/out/a', 'a3'], ['alias/out/b', 'b2']] as const) {
        await pub.publishAsync(topic, payload, { qos: 0 });
      }
      const got: Array<{ topic: string; alias: unknown; payload: string }> = [];
      for (let i = 0; i < 5; i++) {
        const m = await sub.nextPublish(2000);
        got.push({ topic: m.topic, alias: propValues(m, Prop.TopicAlias)[0], payload: m.payload.toString() });
      }
      const aliasA = got[0]!.alias;
      const aliasB = got[2]!.alias;
      assert.equal(typeof aliasA, 'number');
      assert.equal(typeof aliasB, 'number');
      assert.notEqual(aliasA, aliasB);
      for (const alias of [aliasA, aliasB]) assert.ok((alias as number) >= 1 && (alias as number) <= 5, `alias ${String(alias)} within 1..5`);
      assert.deepEqual(got, [
        { topic: 'alias/out/a', alias: aliasA, payload: 'a1' },
        { topic: '', alias: aliasA, payload: 'a2' },
        { topic: 'alias/out/b', alias: aliasB, payload: 'b1' },
        { topic: '', alias: aliasA, payload: 'a3' },
        { topic: '', alias: aliasB, payload: 'b2' },
      ]);
      // A client that allows no aliases gets full topics and no alias property.
      const plainGot = await plain.takeN(5, (f) => f.type === PUBLISH, 2000);
      for (const f of plainGot) {
        const m = decodePublishV5(f);
        assert.notEqual(m.topic, '');
        assert.deepEqual(propValues(m, Prop.TopicAlias), []);
      }
    } finally {
      await endAll([sub, plain, pub]);
    }
  });

  test('server to client: with more topics than the client allows aliases, every publish still resolves to its topic (QoS 1, alias maximum 1)', async () => {
    const { raw: sub } = await WireClient.connect(tb.port, { clientId: 'alias-few-sub', properties: { topicAliasMaximum: 1 } });
    const { client: pub } = await connectMqttJs(tb.port, { clientId: 'alias-few-pub' });
    try {
      await sub.subscribe([{ topic: 'alias/few/+', qos: 1 }]);
      const topics = ['alias/few/a', 'alias/few/b', 'alias/few/a', 'alias/few/c', 'alias/few/b', 'alias/few/a'];
      for (const [i, t] of topics.entries()) await pub.publishAsync(t, String(i), { qos: 1 });
      // Resolve aliases the way a receiver must (MQTT 5 §3.3.2.3.4).
      const aliases = new Map<number, string>();
      const resolved: string[] = [];
      for (let i = 0; i < topics.length; i++) {
        const m = await sub.nextPublish(2000);
        sub.sendRaw(Buffer.from([0x40, 2, m.packetId >> 8, m.packetId & 0xff]));
        const [alias] = propValues(m, Prop.TopicAlias) as number[];
        if (alias !== undefined) {
          assert.ok(alias >= 1 && alias <= 1, `alias ${alias} above the client's maximum of 1`);
          if (m.topic !== '') aliases.set(alias, m.topic);
          else assert.ok(aliases.has(alias), `alias ${alias} used before it was set`);
        } else {
          assert.notEqual(m.topic, '', 'an empty topic needs an alias');
        }
        resolved.push(m.topic !== '' ? m.topic : aliases.get(alias!)!);
        assert.equal(m.payload.toString(), String(i));
      }
      assert.deepEqual(resolved, topics);
    } finally {
      await endAll([sub, pub]);
    }
  });

  test('server to client: MQTT.js with topicAliasMaximum resolves the aliases the server assigns (QoS 1)', async () => {
    const { client: sub } = await connectMqttJs(tb.port, { clientId: 'alias-out-js', properties: { topicAliasMaximum: 2 } });
    const collector = new MessageCollector(sub);
    const { client: pub } = await connectMqttJs(tb.port, { clientId: 'alias-out-js-pub' });
    try {
      await sub.subscribeAsync('aliasjs/#', { qos: 1 });
      const topics = ['aliasjs/a', 'aliasjs/a', 'aliasjs/b', 'aliasjs/c', 'aliasjs/a', 'aliasjs/c'];
      for (const [i, t] of topics.entries()) await pub.publishAsync(t, String(i), { qos: 1 });
      const messages = await collector.waitFor(topics.length, 3000);
      assert.deepEqual(messages.map((m) => m.topic), topics);
      assert.deepEqual(messages.map((m) => m.payload.toString()), topics.map((_t, i) => String(i)));
    } finally {
      collector.stop();
      await endAll([sub, pub]);
    }
  });
});

describe('MQTT 5 maximum packet size', () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startBroker({ limits: { maximumPacketSize: 1024 } });
  });
  after(() => tb.close());

  test('CONNACK advertises the server maximum packet size', async () => {
    const { raw, connack } = await WireClient.connect(tb.port, { clientId: 'mps-connack' });
    try {
      assert.equal(connack.properties?.maximumPacketSize, 1024);
    } finally {
      raw.destroy();
    }
  });

  test('a client packet above the maximum packet size gets DISCONNECT 0x95 and is closed', async () => {
    const { raw } = await WireClient.connect(tb.port, { clientId: 'mps-big' });
    const { raw: other } = await WireClient.connect(tb.port, { clientId: 'mps-other' });
    try {
      raw.sendRaw(encodePublishV5({ topic: 'mps/big', payload: Buffer.alloc(2000, 0x61), qos: 0 }));
      const frame = await raw.take((f) => f.type === DISCONNECT, 2000, 'DISCONNECT');
      assert.equal(disconnectOf(frame).reasonCode, 0x95);
      await raw.waitClosed(2000);
      assert.equal(other.closed, false, 'only the offending connection is closed');
    } finally {
      await endAll([raw, other]);
    }
  });

  test('the oversize check uses the fixed header: a claimed length above the limit is refused before the body arrives', async () => {
    const { raw } = await WireClient.connect(tb.port, { clientId: 'mps-header' });
    try {
      // PUBLISH QoS 0 claiming 100000 bytes of remaining length; only the header is sent.
      raw.sendRaw(Buffer.from([0x30, 0xa0, 0x8d, 0x06]));
      const frame = await raw.take((f) => f.type === DISCONNECT, 2000, 'DISCONNECT');
      assert.equal(disconnectOf(frame).reasonCode, 0x95);
      await raw.waitClosed(2000);
    } finally {
      raw.destroy();
    }
  });

  test('a message larger than a subscriber\'s CONNECT maximum packet size is dropped for that subscriber only', async () => {
    const { raw: small } = await WireClient.connect(tb.port, { clientId: 'mps-small', properties: { maximumPacketSize: 200 } });
    const { raw: large } = await WireClient.connect(tb.port, { clientId: 'mps-large' });
    const { client: pub } = await connectMqttJs(tb.port, { clientId: 'mps-pub' });
    const dropped: string[] = [];
    const onDrop = (who: { clientId: string }): void => void dropped.push(who.clientId);
    tb.broker.on('message.dropped', onDrop);
    try {
      await small.subscribe([{ topic: 'mps/fan', qos: 1 }]);
      await large.subscribe([{ topic: 'mps/fan', qos: 1 }]);
      await pub.publishAsync('mps/fan', Buffer.alloc(500, 0x62), { qos: 1 });
      await pub.publishAsync('mps/fan', 'small', { qos: 1 });
      // The large subscriber gets both (acknowledging each), the small one only the second.
      const l1 = await large.nextPublish(2000);
      large.sendRaw(Buffer.from([0x40, 2, l1.packetId >> 8, l1.packetId & 0xff]));
      const l2 = await large.nextPublish(2000);
      assert.equal(l1.payload.length, 500);
      assert.equal(l2.payload.toString(), 'small');
      const s1 = await small.nextPublish(2000);
      assert.equal(s1.payload.toString(), 'small', 'the oversized message is not sent to the small client');
      assert.ok(s1.payload.length + 20 < 200);
      for (const f of small.received) assert.ok(f.raw.length <= 200, `a ${f.raw.length}-byte packet was sent to a client that allows 200`);
      assert.equal(small.closed, false);
      assert.deepEqual(dropped, ['mps-small']);
    } finally {
      tb.broker.off('message.dropped', onDrop);
      await endAll([small, large, pub]);
    }
  });
});

describe('MQTT 5 user properties, request/response, content type, payload format', () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startBroker();
  });
  after(() => tb.close());

  const interleaved: Array<[string, string]> = [['a', '1'], ['b', '2'], ['a', '3'], ['c', '4'], ['b', '5']];

  test('user properties keep their order, repeated names interleaved, on the subscriber\'s wire (live, QoS 0 and 1)', async () => {
    const { raw: sub } = await WireClient.connect(tb.port, { clientId: 'up-sub' });
    const { raw: pub } = await WireClient.connect(tb.port, { clientId: 'up-pub' });
    try {
      await sub.subscribe([{ topic: 'up/live', qos: 1 }]);
      const props = interleaved.map((pair) => [Prop.UserProperty, pair] as [number, [string, string]]);
      pub.sendRaw(encodePublishV5({ topic: 'up/live', payload: 'q0', qos: 0, props }));
      pub.sendRaw(encodePublishV5({ topic: 'up/live', payload: 'q1', qos: 1, packetId: 9, props }));
      const m0 = await sub.nextPublish(2000);
      const m1 = await sub.nextPublish(2000);
      assert.equal(m0.payload.toString(), 'q0');
      assert.deepEqual(userProps(m0), interleaved);
      assert.equal(m1.payload.toString(), 'q1');
      assert.deepEqual(userProps(m1), interleaved);
    } finally {
      await endAll([sub, pub]);
    }
  });

  test('user property order is kept for retained messages and for messages queued for an offline session', async () => {
    const { raw: pub } = await WireClient.connect(tb.port, { clientId: 'up-q-pub' });
    const { raw: off } = await WireClient.connect(tb.port, { clientId: 'up-q-sub', clean: false, properties: { sessionExpiryInterval: 30 } });
    let back: WireClient | undefined;
    let fresh: WireClient | undefined;
    try {
      await off.subscribe([{ topic: 'up/queued', qos: 1 }]);
      off.disconnect();
      await off.waitClosed(2000);
      const props = interleaved.map((pair) => [Prop.UserProperty, pair] as [number, [string, string]]);
      pub.sendRaw(encodePublishV5({ topic: 'up/queued', payload: 'kept', qos: 1, packetId: 1, retain: true, props }));
      await pub.take((f) => f.type === PUBACK, 2000, 'PUBACK');
      back = (await WireClient.connect(tb.port, { clientId: 'up-q-sub', clean: false, properties: { sessionExpiryInterval: 30 } })).raw;
      const queued = await back.nextPublish(2000);
      assert.deepEqual(userProps(queued), interleaved, 'queued');
      fresh = (await WireClient.connect(tb.port, { clientId: 'up-q-fresh' })).raw;
      await fresh.subscribe([{ topic: 'up/queued', qos: 1 }]);
      const retained = await fresh.nextPublish(2000);
      assert.equal(retained.retain, true);
      assert.deepEqual(userProps(retained), interleaved, 'retained');
    } finally {
      pub.sendRaw(encodePublishV5({ topic: 'up/queued', payload: '', qos: 0, retain: true }));
      await delay(50);
      await endAll([pub, off, back, fresh]);
    }
  });

  test('mosquitto_pub -D PUBLISH user-property: order kept on the raw wire of the subscriber', async () => {
    const { raw: sub } = await WireClient.connect(tb.port, { clientId: 'up-mosq-sub' });
    try {
      await sub.subscribe([{ topic: 'up/mosq', qos: 0 }]);
      const args = ['-h', '127.0.0.1', '-p', String(tb.port), '-V', 'mqttv5', '-t', 'up/mosq', '-m', 'hello'];
      for (const [k, v] of interleaved) args.push('-D', 'PUBLISH', 'user-property', k, v);
      const result = await runMosquitto('mosquitto_pub', args, 5000);
      assert.equal(result.code, 0, result.stderr);
      const m = await sub.nextPublish(2000);
      assert.deepEqual(userProps(m), interleaved);
    } finally {
      sub.destroy();
    }
  });

  test('a will keeps its user properties in wire order, between other will properties (hand-built CONNECT)', async () => {
    const { raw: sub } = await WireClient.connect(tb.port, { clientId: 'up-will-sub' });
    const dying = await WireClient.open(tb.port);
    try {
      await sub.subscribe([{ topic: 'up/will', qos: 1 }]);
      const user = interleaved.map((pair) => [Prop.UserProperty, pair] as [number, [string, string]]);
      dying.sendRaw(encodeConnectV5({
        clientId: 'up-will-dying',
        props: [[Prop.SessionExpiryInterval, 0], user[0]!, [Prop.ReceiveMaximum, 10], [Prop.UserProperty, ['connect', 'side']]],
        will: {
          topic: 'up/will',
          payload: 'gone',
          qos: 1,
          props: [[Prop.ContentType, 'text/plain'], ...user.slice(0, 2), [Prop.CorrelationData, Buffer.from([0, 1, 2])], ...user.slice(2), [Prop.MessageExpiryInterval, 60]],
        },
      }));
      await dying.take((f) => f.type === 2, 3000, 'CONNACK');
      dying.destroy();
      const will = await sub.nextPublish(3000);
      assert.equal(will.payload.toString(), 'gone');
      assert.deepEqual(userProps(will), interleaved);
      assert.deepEqual(propValues(will, Prop.ContentType), ['text/plain']);
      assert.deepEqual(propValues(will, Prop.CorrelationData), [Buffer.from([0, 1, 2])]);
    } finally {
      await endAll([sub, dying]);
    }
  });

  test('mosquitto_sub -D will user-property: the will keeps their order when the client dies', async () => {
    const { raw: sub } = await WireClient.connect(tb.port, { clientId: 'up-will-mosq-sub' });
    try {
      await sub.subscribe([{ topic: 'up/will-mosq', qos: 0 }]);
      const ready = subscribed(tb, 'up-will-mosq');
      const args = ['-h', '127.0.0.1', '-p', String(tb.port), '-V', 'mqttv5', '-i', 'up-will-mosq', '-t', 'up/idle', '--will-topic', 'up/will-mosq', '--will-payload', 'bye'];
      for (const [k, v] of interleaved) args.push('-D', 'will', 'user-property', k, v);
      // runMosquitto kills the client with SIGKILL after the time given: no DISCONNECT, so the will goes out.
      const run = runMosquitto('mosquitto_sub', args, 1500);
      await ready;
      const result = await run;
      assert.equal(result.code, null, `mosquitto_sub should have been killed; stderr: ${result.stderr}`);
      const will = await sub.nextPublish(3000);
      assert.equal(will.payload.toString(), 'bye');
      assert.deepEqual(userProps(will), interleaved);
    } finally {
      sub.destroy();
    }
  });

  test('MQTT.js to mosquitto_sub: user properties with a repeated name arrive (mosquitto_sub -F %P)', async () => {
    const { client: pub } = await connectMqttJs(tb.port, { clientId: 'up-js-pub' });
    const ready = subscribed(tb, 'up-mosq-sub2');
    const run = runMosquitto('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(tb.port), '-V', 'mqttv5', '-i', 'up-mosq-sub2', '-t', 'up/js', '-C', '1', '-W', '5', '-F', '%P|%p'], 6000);
    try {
      await ready;
      await pub.publishAsync('up/js', 'body', { qos: 0, properties: { userProperties: { a: ['1', '3'], b: '2' } } });
      const result = await run;
      assert.equal(result.code, 0, result.stderr);
      const [props, payload] = result.stdout.trim().split('|');
      assert.equal(payload, 'body');
      // MQTT.js encodes an object, so the order it sends is a=1, a=3, b=2; the broker must keep it.
      assert.equal(props, 'a:1 a:3 b:2');
    } finally {
      await endAll([pub]);
      await run;
    }
  });

  test('request/response: response topic and binary correlation data are forwarded, and the reply reaches the requester', async () => {
    const { client: requester } = await connectMqttJs(tb.port, { clientId: 'rr-req' });
    const { client: responder } = await connectMqttJs(tb.port, { clientId: 'rr-resp' });
    const requests = new MessageCollector(responder);
    const replies = new MessageCollector(requester);
    const correlation = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x00, 0x7f]);
    try {
      await responder.subscribeAsync('rr/request', { qos: 1 });
      await requester.subscribeAsync('rr/reply/req-1', { qos: 1 });
      await requester.publishAsync('rr/request', 'what time is it', { qos: 1, properties: { responseTopic: 'rr/reply/req-1', correlationData: correlation } });
      const [request] = await requests.waitFor(1, 3000);
      const rp = request!.packet.properties!;
      assert.equal(rp.responseTopic, 'rr/reply/req-1');
      assert.ok(Buffer.isBuffer(rp.correlationData));
      assert.deepEqual(Buffer.from(rp.correlationData), correlation);
      await responder.publishAsync(rp.responseTopic!, 'noon', { qos: 1, properties: { correlationData: rp.correlationData } });
      const [reply] = await replies.waitFor(1, 3000);
      assert.equal(reply!.payload.toString(), 'noon');
      assert.deepEqual(Buffer.from(reply!.packet.properties!.correlationData!), correlation);
    } finally {
      requests.stop();
      replies.stop();
      await endAll([requester, responder]);
    }
  });

  test('content type and payload format indicator are forwarded (raw wire and mosquitto_sub -F)', async () => {
    const { raw: sub } = await WireClient.connect(tb.port, { clientId: 'ct-sub' });
    const { client: pub } = await connectMqttJs(tb.port, { clientId: 'ct-pub' });
    const ready = subscribed(tb, 'ct-mosq');
    const run = runMosquitto('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(tb.port), '-V', 'mqttv5', '-i', 'ct-mosq', '-t', 'ct/t', '-C', '2', '-W', '5', '-F', '%C|%F|%R|%p'], 6000);
    try {
      await sub.subscribe([{ topic: 'ct/t', qos: 0 }]);
      await ready;
      await pub.publishAsync('ct/t', '{"t":21.5}', { qos: 0, properties: { contentType: 'application/json', payloadFormatIndicator: true, responseTopic: 'ct/back' } });
      await pub.publishAsync('ct/t', Buffer.from([1, 2, 3]).toString('latin1'), { qos: 0, properties: { contentType: 'application/octet-stream', payloadFormatIndicator: false } });
      const a = await sub.nextPublish(2000);
      assert.deepEqual(propValues(a, Prop.ContentType), ['application/json']);
      assert.deepEqual(propValues(a, Prop.PayloadFormatIndicator), [1]);
      assert.deepEqual(propValues(a, Prop.ResponseTopic), ['ct/back']);
      const b = await sub.nextPublish(2000);
      assert.deepEqual(propValues(b, Prop.ContentType), ['application/octet-stream']);
      // An explicit indicator 0 may be forwarded or left out (0 is the default); never 1.
      assert.ok(!propValues(b, Prop.PayloadFormatIndicator).includes(1));
      const result = await run;
      assert.equal(result.code, 0, result.stderr);
      const lines = result.stdout.trim().split('\n');
      assert.equal(lines[0], 'application/json|1|ct/back|{"t":21.5}');
      assert.match(lines[1] ?? '', /^application\/octet-stream\|0?\|\|/);
    } finally {
      await endAll([sub, pub]);
      await run;
    }
  });
});

describe('MQTT 5 subscription identifiers', () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startBroker();
  });
  after(() => tb.close());

  test('a message is delivered with the identifier of the subscription it matched; none without one', async () => {
    const { raw: sub } = await WireClient.connect(tb.port, { clientId: 'sid-one' });
    const { client: pub } = await connectMqttJs(tb.port, { clientId: 'sid-one-pub' });
    try {
      await sub.subscribe([{ topic: 'sid/a', qos: 1 }], { subscriptionIdentifier: 7 });
      await sub.subscribe([{ topic: 'sid/b', qos: 1 }]);
      await sub.subscribe([{ topic: 'sid/c', qos: 0 }], { subscriptionIdentifier: 268_435_455 });
      await pub.publishAsync('sid/a', 'a', { qos: 1 });
      await pub.publishAsync('sid/b', 'b', { qos: 1 });
      await pub.publishAsync('sid/c', 'c', { qos: 0 });
      const msgs = [await sub.nextPublish(2000), await sub.nextPublish(2000), await sub.nextPublish(2000)];
      assert.deepEqual(msgs.map((m) => [m.topic, propValues(m, Prop.SubscriptionIdentifier)]), [
        ['sid/a', [7]],
        ['sid/b', []],
        ['sid/c', [268_435_455]],
      ]);
    } finally {
      await endAll([sub, pub]);
    }
  });

  test('overlapping subscriptions with different identifiers give one message carrying both identifiers', async () => {
    const { raw: sub } = await WireClient.connect(tb.port, { clientId: 'sid-overlap' });
    const { client: pub } = await connectMqttJs(tb.port, { clientId: 'sid-overlap-pub' });
    try {
      await sub.subscribe([{ topic: 'sid2/+', qos: 1 }], { subscriptionIdentifier: 11 });
      await sub.subscribe([{ topic: 'sid2/#', qos: 0 }], { subscriptionIdentifier: 22 });
      await pub.publishAsync('sid2/x', 'once', { qos: 1 });
      const m = await sub.nextPublish(2000);
      assert.equal(m.payload.toString(), 'once');
      assert.deepEqual((propValues(m, Prop.SubscriptionIdentifier) as number[]).sort((x, y) => x - y), [11, 22]);
      assert.equal(m.qos, 1, 'delivered once at the highest granted QoS');
      const extra = await sub.quiet(300);
      assert.equal(extra.length, 0, 'one message, not one per subscription');
    } finally {
      await endAll([sub, pub]);
    }
  });

  test('MQTT.js sees the subscription identifier in packet.properties', async () => {
    const { client: sub } = await connectMqttJs(tb.port, { clientId: 'sid-js' });
    const collector = new MessageCollector(sub);
    try {
      await sub.subscribeAsync('sid3/t', { qos: 1, properties: { subscriptionIdentifier: 42 } });
      await sub.publishAsync('sid3/t', 'self', { qos: 1 });
      const [m] = await collector.waitFor(1, 3000);
      const ids = (m!.packet as IPublishPacket).properties?.subscriptionIdentifier;
      assert.deepEqual(Array.isArray(ids) ? ids : [ids], [42]);
    } finally {
      collector.stop();
      await endAll([sub]);
    }
  });

  test('SUBSCRIBE with subscription identifier 0 is a protocol error (DISCONNECT 0x82)', async () => {
    const { raw } = await WireClient.connect(tb.port, { clientId: 'sid-zero' });
    try {
      // SUBSCRIBE, packet id 1, properties [0x0B 0x00], filter "sid/z", options QoS 0 — built by hand.
      const body = Buffer.concat([Buffer.from([0, 1, 2, 0x0b, 0x00]), Buffer.from([0, 5]), Buffer.from('sid/z'), Buffer.from([0])]);
      raw.sendRaw(Buffer.concat([Buffer.from([0x82, body.length]), body]));
      const frame = await raw.take((f) => f.type === DISCONNECT, 2000, 'DISCONNECT');
      assert.equal(disconnectOf(frame).reasonCode, 0x82);
      assert.equal(raw.pending((f) => f.type === 9).length, 0, 'no SUBACK');
      await raw.waitClosed(2000);
    } finally {
      raw.destroy();
    }
  });
});

describe('MQTT 5 subscription options', () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startBroker();
  });
  after(() => tb.close());

  test('no-local: a client does not receive its own publishes on a no-local subscription', async () => {
    const { client: self } = await connectMqttJs(tb.port, { clientId: 'nl-self' });
    const { client: other } = await connectMqttJs(tb.port, { clientId: 'nl-other' });
    const mine = new MessageCollector(self);
    const theirs = new MessageCollector(other);
    try {
      await self.subscribeAsync('nl/t', { qos: 1, nl: true });
      await other.subscribeAsync('nl/t', { qos: 1 });
      await self.publishAsync('nl/t', 'from-self', { qos: 1 });
      await other.publishAsync('nl/t', 'from-other', { qos: 1 });
      await theirs.waitFor(2, 3000);
      await mine.waitFor(1, 3000);
      await delay(200);
      assert.deepEqual(mine.messages.map((m) => m.payload.toString()), ['from-other']);
      assert.deepEqual(theirs.messages.map((m) => m.payload.toString()).sort(), ['from-other', 'from-self']);
    } finally {
      mine.stop();
      theirs.stop();
      await endAll([self, other]);
    }
  });

  test('retain-as-published: the retain flag is kept on live delivery when set, cleared when not', async () => {
    const { raw: rap } = await WireClient.connect(tb.port, { clientId: 'rap-on' });
    const { raw: norap } = await WireClient.connect(tb.port, { clientId: 'rap-off' });
    const { client: pub } = await connectMqttJs(tb.port, { clientId: 'rap-pub' });
    try {
      await rap.subscribe([{ topic: 'rap/t', qos: 0, rap: true }]);
      await norap.subscribe([{ topic: 'rap/t', qos: 0, rap: false }]);
      await pub.publishAsync('rap/t', 'live-retained', { qos: 1, retain: true });
      await pub.publishAsync('rap/t', 'live-plain', { qos: 1, retain: false });
      const [r1, r2] = [await rap.nextPublish(2000), await rap.nextPublish(2000)];
      const [n1, n2] = [await norap.nextPublish(2000), await norap.nextPublish(2000)];
      assert.deepEqual([r1.payload.toString(), r1.retain, r2.payload.toString(), r2.retain], ['live-retained', true, 'live-plain', false]);
      assert.deepEqual([n1.payload.toString(), n1.retain, n2.payload.toString(), n2.retain], ['live-retained', false, 'live-plain', false]);
    } finally {
      await pub.publishAsync('rap/t', '', { qos: 1, retain: true }).catch(() => undefined);
      await endAll([rap, norap, pub]);
    }
  });

  test('retain handling 0 sends retained messages on every subscribe, 1 only when the subscription is new, 2 never', async () => {
    const { client: pub } = await connectMqttJs(tb.port, { clientId: 'rh-pub' });
    const { raw: sub } = await WireClient.connect(tb.port, { clientId: 'rh-sub' });
    const retainedOf = async (what: string): Promise<string[]> => {
      const got = await sub.quiet(300);
      const payloads: string[] = [];
      for (const f of got) {
        const m = decodePublishV5(f);
        assert.equal(m.retain, true, `${what}: retained messages carry the retain flag`);
        payloads.push(m.payload.toString());
      }
      // Consume what was counted.
      await sub.takeN(got.length, (f) => f.type === PUBLISH, 100).catch(() => undefined);
      return payloads;
    };
    try {
      await pub.publishAsync('rh/t', 'kept', { qos: 1, retain: true });

      await sub.subscribe([{ topic: 'rh/t', qos: 0, rh: 0 }]);
      assert.deepEqual(await retainedOf('rh 0 first'), ['kept']);
      await sub.subscribe([{ topic: 'rh/t', qos: 0, rh: 0 }]);
      assert.deepEqual(await retainedOf('rh 0 again'), ['kept'], 'retain handling 0 sends again on a repeated subscribe');

      await sub.subscribe([{ topic: 'rh/+', qos: 0, rh: 1 }]);
      assert.deepEqual(await retainedOf('rh 1 new'), ['kept'], 'retain handling 1 sends for a new subscription');
      await sub.subscribe([{ topic: 'rh/+', qos: 0, rh: 1 }]);
      assert.deepEqual(await retainedOf('rh 1 existing'), [], 'retain handling 1 sends nothing for an existing subscription');

      await sub.subscribe([{ topic: 'rh/#', qos: 0, rh: 2 }]);
      assert.deepEqual(await retainedOf('rh 2'), [], 'retain handling 2 never sends retained messages');
    } finally {
      await pub.publishAsync('rh/t', '', { qos: 1, retain: true }).catch(() => undefined);
      await endAll([pub, sub]);
    }
  });
});
