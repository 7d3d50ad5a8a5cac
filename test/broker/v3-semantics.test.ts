/**
 * MQTT 3.1.1 (protocol level 4) and MQTT 3.1 (level 3, 'MQIsdp') broker semantics over real
 * sockets: MQTT.js clients for behaviour, a raw socket client where the wire matters (packet ids,
 * DUP, keepalive, refused CONNECTs). Every suite runs once per protocol version.
 *
 * Spec references: "3.1.1 §x" is OASIS MQTT 3.1.1; "3.1" is the IBM MQTT V3.1 specification.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IClientOptions, MqttClient } from 'mqtt';
import type { IConnackPacket, IPublishPacket } from 'mqtt-packet';
import {
  type RawClient,
  type TestBroker,
  MessageCollector,
  connect,
  connectCollecting,
  connectFrame,
  delay,
  endClient,
  rawConnect,
  startBroker,
  waitForClose,
  waitForMessages,
} from './helpers.ts';
import { isConnected, mockTime, recordPublishes } from './mock-time.ts';

interface Version {
  name: string;
  protocolVersion: 3 | 4;
  protocolId: 'MQTT' | 'MQIsdp';
}

const VERSIONS: Version[] = [
  { name: 'MQTT 3.1.1', protocolVersion: 4, protocolId: 'MQTT' },
  { name: 'MQTT 3.1', protocolVersion: 3, protocolId: 'MQIsdp' },
];

const T = { timeout: 20_000 };

for (const V of VERSIONS) {
  const P: IClientOptions = { protocolVersion: V.protocolVersion, protocolId: V.protocolId };
  const tag = V.protocolVersion === 4 ? 'v4' : 'v3';
  let seq = 0;
  /** Unique, short (MQTT 3.1 allows 23-character client ids) names per test. */
  const uid = (what: string): string => `${tag}${what}${++seq}`;

  describe(`${V.name} semantics`, () => {
    let tb: TestBroker;
    let port: number;
    const clients: MqttClient[] = [];
    const raws: RawClient[] = [];

    before(async () => {
      tb = await startBroker();
      port = tb.port;
    });
    after(async () => {
      await tb.close();
    });
    afterEach(async () => {
      for (const raw of raws.splice(0)) raw.destroy();
      await Promise.all(clients.splice(0).map((c) => endClient(c)));
    });

    async function client(opts: IClientOptions = {}): Promise<MqttClient> {
      const c = await connect(port, { ...P, ...opts });
      clients.push(c);
      return c;
    }
    async function collecting(opts: IClientOptions = {}): Promise<{ client: MqttClient; messages: MessageCollector; connack: { sessionPresent: boolean } }> {
      const c = await connectCollecting(port, { ...P, ...opts });
      clients.push(c.client);
      return c;
    }
    async function raw(): Promise<RawClient> {
      const r = await rawConnect(port, { protocolVersion: V.protocolVersion });
      raws.push(r);
      return r;
    }
    /** Raw client that has completed the CONNECT/CONNACK handshake in this protocol version. */
    async function rawSession(clientId: string, extra: Partial<{ clean: boolean; keepalive: number; will: { topic: string; payload: Buffer; qos: 0 | 1 | 2; retain: boolean } }> = {}): Promise<{ r: RawClient; connack: IConnackPacket }> {
      const r = await raw();
      const connack = await r.handshake({ clientId, protocolId: V.protocolId, protocolVersion: V.protocolVersion, clean: true, keepalive: 60, ...extra });
      assert.equal(connack.returnCode, 0, 'CONNACK accepted');
      return { r, connack };
    }
    function publishPacket(topic: string, payload: string, qos: 0 | 1 | 2, messageId?: number, extra: Partial<IPublishPacket> = {}): IPublishPacket {
      return { cmd: 'publish', topic, payload: Buffer.from(payload), qos, retain: false, dup: false, ...(qos > 0 ? { messageId } : {}), ...extra };
    }

    // ---- QoS ------------------------------------------------------------------------------------

    describe('QoS 0/1/2', () => {
      test('granted QoS equals the requested QoS and delivery QoS is min(subscription, publish)', T, async () => {
        const base = uid('qos');
        const sub = await client();
        const granted = await sub.subscribeAsync({ [`${base}/s0`]: { qos: 0 }, [`${base}/s1`]: { qos: 1 }, [`${base}/s2`]: { qos: 2 } });
        assert.deepEqual(
          granted.map((g) => [g.topic, g.qos]),
          [[`${base}/s0`, 0], [`${base}/s1`, 1], [`${base}/s2`, 2]],
        );
        const collector = new MessageCollector(sub);
        const pub = await client();
        for (const s of [0, 1, 2] as const) {
          for (const p of [0, 1, 2] as const) await pub.publishAsync(`${base}/s${s}`, `p${p}`, { qos: p });
        }
        const got = await collector.waitFor(9, 5000);
        const seen = new Map(got.map((m) => [`${m.topic} ${m.payload.toString()}`, m.packet]));
        assert.equal(seen.size, 9, 'nine distinct deliveries');
        for (const s of [0, 1, 2]) {
          for (const p of [0, 1, 2]) {
            const packet = seen.get(`${base}/s${s} p${p}`);
            assert.ok(packet, `message p${p} on s${s} delivered`);
            assert.equal(packet.qos, Math.min(s, p), `subscription QoS ${s}, publish QoS ${p}`);
            assert.equal(packet.retain, false);
            if (packet.qos > 0) assert.ok(typeof packet.messageId === 'number' && packet.messageId > 0, 'QoS>0 carries a non-zero packet id');
          }
        }
        // Nothing more than the nine.
        await delay(200);
        assert.equal(collector.messages.length, 9);
        collector.stop();
      });

      test('inbound QoS 1 and 2 are acknowledged with the client packet id (PUBACK; PUBREC/PUBREL/PUBCOMP)', T, async () => {
        const topic = uid('in');
        const sub = await client();
        await sub.subscribeAsync(topic, { qos: 2 });
        const collector = new MessageCollector(sub);
        const { r } = await rawSession(uid('rp'));

        r.send(publishPacket(topic, 'one', 1, 0x1234));
        const puback = await r.next('puback');
        assert.equal(puback.messageId, 0x1234);

        r.send(publishPacket(topic, 'two', 2, 0xbeef));
        const pubrec = await r.next('pubrec');
        assert.equal(pubrec.messageId, 0xbeef);
        // The sender resends the same QoS 2 publish (DUP) before PUBREL: it must not be delivered twice (3.1.1 §4.3.3).
        r.send(publishPacket(topic, 'two', 2, 0xbeef, { dup: true }));
        const pubrec2 = await r.next('pubrec');
        assert.equal(pubrec2.messageId, 0xbeef);
        r.send({ cmd: 'pubrel', messageId: 0xbeef });
        const pubcomp = await r.next('pubcomp');
        assert.equal(pubcomp.messageId, 0xbeef);

        // The same packet id may be reused once the flow completed: a new message.
        r.send(publishPacket(topic, 'three', 2, 0xbeef));
        assert.equal((await r.next('pubrec')).messageId, 0xbeef);
        r.send({ cmd: 'pubrel', messageId: 0xbeef });
        assert.equal((await r.next('pubcomp')).messageId, 0xbeef);

        const got = await collector.waitFor(3, 3000);
        await delay(200);
        assert.deepEqual(collector.messages.map((m) => m.payload.toString()), ['one', 'two', 'three']);
        assert.deepEqual(got.map((m) => m.packet.qos), [1, 2, 2]);
        collector.stop();
      });

      test('outbound QoS 1 and 2 use distinct packet ids and complete the QoS 2 handshake', T, async () => {
        const topic = uid('out');
        const { r } = await rawSession(uid('rs'));
        r.send({ cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: `${topic}/+`, qos: 2 }] });
        const suback = await r.next('suback');
        assert.equal(suback.messageId, 7);
        assert.deepEqual((suback as { granted: number[] }).granted, [2]);

        const pub = await client();
        await Promise.all([
          pub.publishAsync(`${topic}/a`, 'a1', { qos: 1 }),
          pub.publishAsync(`${topic}/a`, 'a2', { qos: 1 }),
          pub.publishAsync(`${topic}/b`, 'b1', { qos: 2 }),
          pub.publishAsync(`${topic}/b`, 'b2', { qos: 2 }),
        ]);
        const publishes: IPublishPacket[] = [];
        for (let i = 0; i < 4; i++) publishes.push((await r.next('publish')) as IPublishPacket);
        assert.deepEqual(publishes.map((p) => [p.payload.toString(), p.qos, p.dup]), [['a1', 1, false], ['a2', 1, false], ['b1', 2, false], ['b2', 2, false]]);
        const ids = publishes.map((p) => p.messageId!);
        for (const id of ids) assert.ok(id >= 1 && id <= 65535, `packet id ${id} in 1..65535`);
        assert.equal(new Set(ids).size, 4, `in-flight packet ids are distinct: ${ids.join(',')}`);

        for (const p of publishes.slice(0, 2)) r.send({ cmd: 'puback', messageId: p.messageId! });
        for (const p of publishes.slice(2)) {
          r.send({ cmd: 'pubrec', messageId: p.messageId! });
          const pubrel = await r.next('pubrel');
          assert.equal(pubrel.messageId, p.messageId, 'PUBREL carries the PUBREC packet id');
          r.send({ cmd: 'pubcomp', messageId: p.messageId! });
        }
        // Fully acknowledged: nothing is resent.
        await delay(300);
        assert.equal(r.packets.filter((p) => p.cmd === 'publish').length, 4);
        assert.equal(r.closed, false);
      });

      test('1000 QoS 1 messages arrive in order, none lost, none duplicated', T, async () => {
        const topic = uid('bulk');
        const sub = await client();
        await sub.subscribeAsync(topic, { qos: 1 });
        const collector = new MessageCollector(sub);
        const pub = await client();
        const acks: Array<Promise<unknown>> = [];
        for (let i = 0; i < 1000; i++) acks.push(pub.publishAsync(topic, String(i), { qos: 1 }));
        await Promise.all(acks);
        const got = await collector.waitFor(1000, 10_000);
        await delay(300);
        assert.equal(collector.messages.length, 1000, 'no duplicates');
        for (let i = 0; i < 1000; i++) {
          assert.equal(got[i]!.payload.toString(), String(i), `message ${i} in order`);
          assert.equal(got[i]!.packet.qos, 1);
        }
        collector.stop();
      });

      test('300 QoS 2 messages arrive in order exactly once', T, async () => {
        const topic = uid('bulk2');
        const sub = await client();
        await sub.subscribeAsync(topic, { qos: 2 });
        const collector = new MessageCollector(sub);
        const pub = await client();
        await Promise.all(Array.from({ length: 300 }, (_, i) => pub.publishAsync(topic, String(i), { qos: 2 })));
        await collector.waitFor(300, 10_000);
        await delay(300);
        assert.deepEqual(collector.messages.map((m) => m.payload.toString()), Array.from({ length: 300 }, (_, i) => String(i)));
        assert.ok(collector.messages.every((m) => m.packet.qos === 2));
        collector.stop();
      });
    });

    // ---- retained -------------------------------------------------------------------------------

    describe('retained messages', () => {
      test('delivered on subscribe with the retain flag, at min(QoS)', T, async () => {
        const topic = uid('ret');
        const pub = await client();
        await pub.publishAsync(topic, 'kept', { qos: 2, retain: true });
        const sub = await client();
        const waiting = waitForMessages(sub, 1, 3000);
        await sub.subscribeAsync(topic, { qos: 1 });
        const [m] = await waiting;
        assert.equal(m!.topic, topic);
        assert.equal(m!.payload.toString(), 'kept');
        assert.equal(m!.packet.retain, true, 'retain flag set on a retained message sent for a new subscription (3.1.1 §3.3.1.3)');
        assert.equal(m!.packet.qos, 1);
        await pub.publishAsync(topic, '', { qos: 1, retain: true });
      });

      test('a new retained message replaces the old one; an empty retained payload clears it', T, async () => {
        const topic = uid('rep');
        const pub = await client();
        await pub.publishAsync(topic, 'first', { qos: 1, retain: true });
        await pub.publishAsync(topic, 'second', { qos: 1, retain: true });

        const s1 = await client();
        const c1 = new MessageCollector(s1);
        await s1.subscribeAsync(topic, { qos: 1 });
        await c1.waitFor(1, 3000);
        await delay(200);
        assert.deepEqual(c1.messages.map((m) => [m.payload.toString(), m.packet.retain]), [['second', true]], 'only the latest retained message');
        c1.stop();

        await pub.publishAsync(topic, '', { qos: 1, retain: true });
        const s2 = await client();
        const c2 = new MessageCollector(s2);
        await s2.subscribeAsync(topic, { qos: 1 });
        await delay(400);
        assert.deepEqual(c2.messages.map((m) => m.payload.toString()), [], 'cleared: nothing retained (3.1.1 §3.3.1.3)');
        c2.stop();
      });

      test('a wildcard subscription receives every matching retained topic', T, async () => {
        const base = uid('wr');
        const pub = await client();
        const topics = [`${base}/a`, `${base}/b`, `${base}/c/d`];
        for (const t of topics) await pub.publishAsync(t, `v-${t}`, { qos: 1, retain: true });
        await pub.publishAsync(`${base}x/a`, 'not-matched', { qos: 1, retain: true });

        const sub = await client();
        const collector = new MessageCollector(sub);
        await sub.subscribeAsync(`${base}/#`, { qos: 1 });
        await collector.waitFor(3, 3000);
        await delay(200);
        const got = collector.messages.map((m) => [m.topic, m.payload.toString(), m.packet.retain]).sort();
        assert.deepEqual(got, topics.map((t) => [t, `v-${t}`, true]).sort());
        collector.stop();

        const plus = await client();
        const c2 = new MessageCollector(plus);
        await plus.subscribeAsync(`${base}/+`, { qos: 0 });
        await c2.waitFor(2, 3000);
        await delay(200);
        assert.deepEqual(c2.messages.map((m) => m.topic).sort(), [`${base}/a`, `${base}/b`]);
        c2.stop();
        for (const t of [...topics, `${base}x/a`]) await pub.publishAsync(t, '', { qos: 1, retain: true });
      });

      test('live delivery to an existing subscription has retain flag 0', T, async () => {
        const topic = uid('live');
        const sub = await client();
        await sub.subscribeAsync(topic, { qos: 1 });
        const waiting = waitForMessages(sub, 1, 3000);
        const pub = await client();
        await pub.publishAsync(topic, 'now', { qos: 1, retain: true });
        const [m] = await waiting;
        assert.equal(m!.payload.toString(), 'now');
        assert.equal(m!.packet.retain, false, '3.1.1 §3.3.1.3: RETAIN is 0 when the message matches an established subscription');
        // ...but it was stored: a new subscriber gets it with the flag.
        const late = await client();
        const w2 = waitForMessages(late, 1, 3000);
        await late.subscribeAsync(topic, { qos: 1 });
        const [r] = await w2;
        assert.equal(r!.packet.retain, true);
        await pub.publishAsync(topic, '', { qos: 1, retain: true });
      });
    });

    // ---- last will ------------------------------------------------------------------------------

    describe('last will', () => {
      test('published when the socket is destroyed without DISCONNECT', T, async () => {
        const willTopic = uid('will');
        const watcher = await client();
        await watcher.subscribeAsync(willTopic, { qos: 1 });
        const waiting = waitForMessages(watcher, 1, 3000);
        const { r } = await rawSession(uid('wc'), { will: { topic: willTopic, payload: Buffer.from('gone'), qos: 1, retain: false } });
        r.destroy();
        const [m] = await waiting;
        assert.equal(m!.topic, willTopic);
        assert.equal(m!.payload.toString(), 'gone');
        assert.equal(m!.packet.qos, 1);
      });

      test('not published after a clean DISCONNECT', T, async () => {
        const willTopic = uid('nowill');
        const watcher = await client();
        await watcher.subscribeAsync(willTopic, { qos: 1 });
        const collector = new MessageCollector(watcher);
        const { r } = await rawSession(uid('wd'), { will: { topic: willTopic, payload: Buffer.from('should-not'), qos: 1, retain: true } });
        r.disconnect();
        await r.waitForClose(3000);
        await delay(500);
        assert.deepEqual(collector.messages.map((m) => m.payload.toString()), [], '3.1.1 §3.1.2.5: the will is deleted on DISCONNECT');
        collector.stop();
        // Nor was it retained.
        const late = await client();
        const got = new MessageCollector(late);
        await late.subscribeAsync(willTopic, { qos: 1 });
        await delay(300);
        assert.equal(got.messages.length, 0);
        got.stop();
      });

      test('will QoS and retain are honoured', T, async () => {
        const willTopic = uid('wq');
        const watcher = await client();
        await watcher.subscribeAsync(willTopic, { qos: 2 });
        const waiting = waitForMessages(watcher, 1, 3000);
        const { r } = await rawSession(uid('wr'), { will: { topic: willTopic, payload: Buffer.from('last'), qos: 2, retain: true } });
        r.destroy();
        const [live] = await waiting;
        assert.equal(live!.payload.toString(), 'last');
        assert.equal(live!.packet.qos, 2, 'will QoS 2 delivered at QoS 2 to a QoS 2 subscriber');
        assert.equal(live!.packet.retain, false, 'live delivery: retain flag 0');

        const late = await client();
        const w2 = waitForMessages(late, 1, 3000);
        await late.subscribeAsync(willTopic, { qos: 2 });
        const [kept] = await w2;
        assert.equal(kept!.payload.toString(), 'last');
        assert.equal(kept!.packet.retain, true, 'a retained will is stored as the retained message');
        assert.equal(kept!.packet.qos, 2);
        const cleaner = await client();
        await cleaner.publishAsync(willTopic, '', { qos: 1, retain: true });
      });

      test('will QoS 1 is downgraded to a QoS 0 subscription', T, async () => {
        const willTopic = uid('wd0');
        const watcher = await client();
        await watcher.subscribeAsync(willTopic, { qos: 0 });
        const waiting = waitForMessages(watcher, 1, 3000);
        const { r } = await rawSession(uid('w0'), { will: { topic: willTopic, payload: Buffer.from('x'), qos: 1, retain: false } });
        r.destroy();
        const [m] = await waiting;
        assert.equal(m!.packet.qos, 0);
      });

      test('published when the keepalive expires', T, async (t) => {
        const time = mockTime(t);
        const willTopic = uid('wk');
        const published = recordPublishes(t, tb.broker, willTopic);
        const watcher = await client();
        await watcher.subscribeAsync(willTopic, { qos: 1 });
        const waiting = waitForMessages(watcher, 1, 4000);
        const { r } = await rawSession(uid('wk'), { keepalive: 1, will: { topic: willTopic, payload: Buffer.from('timeout'), qos: 1, retain: false } });
        time.tick(1499);
        assert.equal(published.length, 0, 'not before the 1.5 s keepalive grace');
        time.tick(1);
        assert.equal(published.length, 1, 'at the end of the 1.5 s keepalive grace');
        const [m] = await waiting;
        assert.equal(m!.payload.toString(), 'timeout');
        await r.waitForClose(1000);
      });
    });

    // ---- sessions -------------------------------------------------------------------------------

    describe('clean and persistent sessions', () => {
      test('clean=false: subscriptions survive reconnect and offline messages are queued', T, async () => {
        const id = uid('ps');
        const topic = uid('pst');
        const first = await collecting({ clientId: id, clean: false });
        if (V.protocolVersion === 4) assert.equal(first.connack.sessionPresent, false, 'no session existed');
        await first.client.subscribeAsync(topic, { qos: 2 });
        await endClient(first.client, false);

        const pub = await client();
        await pub.publishAsync(topic, 'offline-q0', { qos: 0 });
        await pub.publishAsync(topic, 'offline-q1', { qos: 1 });
        await pub.publishAsync(topic, 'offline-q2', { qos: 2 });

        const second = await collecting({ clientId: id, clean: false });
        if (V.protocolVersion === 4) assert.equal(second.connack.sessionPresent, true, '3.1.1 §3.2.2.2: session present');
        // QoS 1/2 must be queued (3.1.1 §3.1.2.4). QoS 0 queueing is optional in the standard; this
        // broker queues QoS 0 too (dropping the oldest QoS 0 first when the queue is full), in order.
        const got = await second.messages.waitFor(3, 3000);
        assert.deepEqual(got.map((m) => [m.payload.toString(), m.packet.qos]), [['offline-q0', 0], ['offline-q1', 1], ['offline-q2', 2]]);

        // The subscription is still there: live messages flow without subscribing again.
        await pub.publishAsync(topic, 'live', { qos: 1 });
        const [live] = (await second.messages.waitFor(4, 3000)).slice(3);
        assert.equal(live!.payload.toString(), 'live');
        await delay(200);
        assert.equal(second.messages.messages.length, 4, 'nothing delivered twice');
        second.messages.stop();
        await endClient(second.client, false);

        // Clean up the persistent session.
        const wipe = await collecting({ clientId: id, clean: true });
        await endClient(wipe.client, false);
      });

      test('clean=true discards the stored session, its subscriptions and its queue', T, async () => {
        const id = uid('cs');
        const topic = uid('cst');
        const first = await collecting({ clientId: id, clean: false });
        await first.client.subscribeAsync(topic, { qos: 1 });
        await endClient(first.client, false);
        const pub = await client();
        await pub.publishAsync(topic, 'queued', { qos: 1 });

        const clean = await collecting({ clientId: id, clean: true });
        if (V.protocolVersion === 4) assert.equal(clean.connack.sessionPresent, false, '3.1.1 §3.2.2.2: clean session → session present 0');
        await pub.publishAsync(topic, 'after-clean', { qos: 1 });
        await delay(400);
        assert.deepEqual(clean.messages.messages.map((m) => m.payload.toString()), [], 'neither the queued message nor the old subscription survived');
        clean.messages.stop();
        await endClient(clean.client, false);

        // The clean session ended with its connection: a later clean=false finds nothing.
        const again = await collecting({ clientId: id, clean: false });
        if (V.protocolVersion === 4) assert.equal(again.connack.sessionPresent, false);
        await pub.publishAsync(topic, 'still-nothing', { qos: 1 });
        await delay(300);
        assert.equal(again.messages.messages.length, 0);
        again.messages.stop();
        await endClient(again.client, false);
        const wipe = await collecting({ clientId: id, clean: true });
        await endClient(wipe.client, false);
      });

      test('a clean=true session is not kept after disconnect', T, async () => {
        const id = uid('ct');
        const topic = uid('ctt');
        const first = await collecting({ clientId: id, clean: true });
        await first.client.subscribeAsync(topic, { qos: 1 });
        await endClient(first.client, false);
        const pub = await client();
        await pub.publishAsync(topic, 'lost', { qos: 1 });
        const second = await collecting({ clientId: id, clean: false });
        if (V.protocolVersion === 4) assert.equal(second.connack.sessionPresent, false);
        await delay(300);
        assert.equal(second.messages.messages.length, 0);
        second.messages.stop();
        await endClient(second.client, false);
        const wipe = await collecting({ clientId: id, clean: true });
        await endClient(wipe.client, false);
      });

      if (V.protocolVersion === 3) {
        test('MQTT 3.1 CONNACK keeps the reserved first byte 0 (no session-present flag in 3.1)', T, async () => {
          const id = uid('sp');
          const a = await rawSession(id, { clean: false });
          a.r.disconnect();
          await a.r.waitForClose(3000);
          // Resume the stored session, capturing the CONNACK bytes as they come off the socket.
          const r = await raw();
          const bytes: Buffer[] = [];
          r.socket.on('data', (chunk: Buffer) => bytes.push(chunk));
          r.send(connectFrame({ name: 'MQIsdp', level: 3, flags: 0x00, keepalive: 60, clientId: id }));
          await r.next('connack');
          const first = Buffer.concat(bytes).subarray(0, 4);
          assert.deepEqual([...first], [0x20, 0x02, 0x00, 0x00], 'MQTT 3.1: CONNACK byte 1 is reserved ("not used"); session present exists only from 3.1.1');
          r.disconnect();
          await r.waitForClose(3000);
          const wipe = await rawSession(id, { clean: true });
          wipe.r.disconnect();
        });
      }
    });

    // ---- redelivery ---------------------------------------------------------------------------

    describe('redelivery on reconnect', () => {
      for (const how of ['socket destroyed', 'DISCONNECT sent'] as const) {
        test(`an unacknowledged QoS 1 message is resent with DUP=1 and the same packet id (${how})`, T, async () => {
          const id = uid('dup');
          const topic = uid('dupt');
          const a = await rawSession(id, { clean: false });
          a.r.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
          await a.r.next('suback');
          const pub = await client();
          await pub.publishAsync(topic, 'unacked', { qos: 1 });
          const first = (await a.r.next('publish')) as IPublishPacket;
          assert.equal(first.dup, false);
          assert.equal(first.qos, 1);
          // No PUBACK; the connection ends.
          if (how === 'socket destroyed') a.r.destroy();
          else a.r.disconnect();
          await a.r.waitForClose(1000);

          const b = await rawSession(id, { clean: false });
          if (V.protocolVersion === 4) assert.equal(b.connack.sessionPresent, true);
          const again = (await b.r.next('publish')) as IPublishPacket;
          assert.equal(again.payload.toString(), 'unacked');
          assert.equal(again.dup, true, '3.1.1 §4.4: resent with DUP=1');
          assert.equal(again.messageId, first.messageId, 'same packet identifier');
          assert.equal(again.qos, 1);
          b.r.send({ cmd: 'puback', messageId: again.messageId! });
          await delay(100);
          b.r.disconnect();
          await b.r.waitForClose(3000);

          // Acknowledged now: a further reconnect gets nothing.
          const c = await rawSession(id, { clean: false });
          await delay(300);
          assert.equal(c.r.packets.filter((p) => p.cmd === 'publish').length, 0, 'not resent after PUBACK');
          c.r.disconnect();
          const wipe = await rawSession(id, { clean: true });
          wipe.r.disconnect();
        });
      }

      test('a QoS 2 message resent with DUP; after PUBREC the PUBREL is resent on reconnect', T, async () => {
        const id = uid('dq2');
        const topic = uid('dq2t');
        const a = await rawSession(id, { clean: false });
        a.r.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 2 }] });
        await a.r.next('suback');
        const pub = await client();
        await pub.publishAsync(topic, 'exactly-once', { qos: 2 });
        const first = (await a.r.next('publish')) as IPublishPacket;
        assert.equal(first.qos, 2);
        a.r.destroy();

        const b = await rawSession(id, { clean: false });
        const again = (await b.r.next('publish')) as IPublishPacket;
        assert.equal(again.dup, true);
        assert.equal(again.messageId, first.messageId);
        b.r.send({ cmd: 'pubrec', messageId: again.messageId! });
        const pubrel = await b.r.next('pubrel');
        assert.equal(pubrel.messageId, first.messageId);
        b.r.destroy(); // before PUBCOMP

        const c = await rawSession(id, { clean: false });
        const rel = await c.r.next(undefined, 3000);
        assert.equal(rel.cmd, 'pubrel', '3.1.1 §4.4: PUBREL (not the PUBLISH) is resent once PUBREC was received');
        assert.equal(rel.messageId, first.messageId);
        c.r.send({ cmd: 'pubcomp', messageId: first.messageId! });
        await delay(200);
        c.r.disconnect();
        await c.r.waitForClose(3000);
        const d = await rawSession(id, { clean: false });
        await delay(300);
        assert.deepEqual(d.r.packets.filter((p) => p.cmd !== 'connack').map((p) => p.cmd), [], 'flow complete: nothing resent');
        d.r.disconnect();
        const wipe = await rawSession(id, { clean: true });
        wipe.r.disconnect();
      });
    });

    // ---- takeover ------------------------------------------------------------------------------

    test('client takeover: the second connection closes the first, which publishes its will', T, async () => {
      const id = uid('tk');
      const willTopic = uid('tkw');
      const topic = uid('tkt');
      const watcher = await client();
      await watcher.subscribeAsync(willTopic, { qos: 1 });
      const willWait = waitForMessages(watcher, 1, 3000);
      const first = await client({ clientId: id, will: { topic: willTopic, payload: Buffer.from('taken-over'), qos: 1, retain: false } });
      const closed = waitForClose(first, 3000);
      const second = await client({ clientId: id });
      await closed;
      assert.equal(first.connected, false, 'first connection closed (3.1.1 §3.1.4)');
      const [will] = await willWait;
      assert.equal(will!.payload.toString(), 'taken-over');

      assert.equal(second.connected, true);
      await second.subscribeAsync(topic, { qos: 1 });
      const waiting = waitForMessages(second, 1, 3000);
      await second.publishAsync(topic, 'still-works', { qos: 1 });
      const [m] = await waiting;
      assert.equal(m!.payload.toString(), 'still-works');
      await delay(200);
      assert.equal(second.connected, true, 'the new connection is not kicked back');
    });

    test('client takeover on the wire: the old socket is closed with no packet after CONNACK (v3 has no server DISCONNECT)', T, async () => {
      const id = uid('tw');
      const topic = uid('twt');
      const a = await rawSession(id, { clean: false });
      a.r.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
      await a.r.next('suback');
      const before = a.r.packets.length;
      const b = await rawSession(id, { clean: false });
      await a.r.waitForClose(2000);
      assert.deepEqual(a.r.packets.slice(before).map((p) => p.cmd), [], 'nothing sent to the old connection');
      if (V.protocolVersion === 4) assert.equal(b.connack.sessionPresent, true, 'the new connection resumes the session');
      // The subscription made on the old connection now delivers to the new one.
      const pub = await client();
      await pub.publishAsync(topic, 'to-new', { qos: 1 });
      const m = (await b.r.next('publish')) as IPublishPacket;
      assert.equal(m.payload.toString(), 'to-new');
      b.r.send({ cmd: 'puback', messageId: m.messageId! });
      b.r.disconnect();
      const wipe = await rawSession(id, { clean: true });
      wipe.r.disconnect();
    });

    // ---- keepalive ------------------------------------------------------------------------------

    describe('keepalive', () => {
      test('a silent client with keepalive 1 is disconnected at 1.5 s', T, async (t) => {
        const time = mockTime(t);
        const r = await raw();
        const clientId = uid('ka');
        const connack = await r.handshake({ clientId, protocolId: V.protocolId, protocolVersion: V.protocolVersion, keepalive: 1 });
        assert.equal(connack.returnCode, 0);
        time.tick(1499);
        assert.equal(isConnected(tb.broker, clientId), true, 'not before 1.5 × keepalive (3.1.1 §3.1.2.10)');
        time.tick(1);
        assert.equal(isConnected(tb.broker, clientId), false, 'at 1.5 × keepalive');
        await r.waitForClose(4000);
      });

      test('a client that sends PINGREQ stays connected and gets PINGRESP', T, async (t) => {
        const time = mockTime(t);
        const r = await raw();
        const clientId = uid('kp');
        await r.handshake({ clientId, protocolId: V.protocolId, protocolVersion: V.protocolVersion, keepalive: 1 });
        for (let i = 0; i < 6; i++) {
          r.send({ cmd: 'pingreq' });
          const resp = await r.next('pingresp', 1000);
          assert.equal(resp.cmd, 'pingresp');
          time.tick(450);
        }
        assert.equal(isConnected(tb.broker, clientId), true, 'still connected after 2.7 s of pings with keepalive 1');
        assert.equal(r.closed, false);
        r.disconnect();
      });
    });

    // ---- $-topics -------------------------------------------------------------------------------

    test('$-topics are not matched by # or + at the first level; explicit $ filters match', T, async () => {
      // A broker of its own: '#' would otherwise pick up other tests' retained messages.
      const own = await startBroker();
      const local: MqttClient[] = [];
      try {
        const open = async (filter: string): Promise<MessageCollector> => {
          const c = await connect(own.port, P);
          local.push(c);
          const collector = new MessageCollector(c);
          await c.subscribeAsync(filter, { qos: 1 });
          return collector;
        };
        const wild = { '#': await open('#'), '+/x': await open('+/x'), '+/+': await open('+/+'), '+/#': await open('+/#'), '+': await open('+') };
        const sys = await open('$SYS/#');
        const sysPlus = await open('$SYS/+');
        const foo = await open('$foo');
        const pub = await connect(own.port, P);
        local.push(pub);
        // $SYS is the broker's own: clients may not publish there (handle-publish.ts), so the broker does.
        own.broker.publish('', { topic: '$SYS/x', payload: Buffer.from('sys'), qos: 1, retain: false, properties: null, expiresAt: 0, origin: '' });
        await pub.publishAsync('$foo', 'foo', { qos: 1 });
        await pub.publishAsync('$foo/x', 'foox', { qos: 1 });
        // Sentinels published after: when they arrive, the $ messages would have arrived too.
        await pub.publishAsync('plain/x', 'p2', { qos: 1 });
        await pub.publishAsync('plain', 'p1', { qos: 1 });
        const expected: Record<keyof typeof wild, string[]> = { '#': ['plain/x', 'plain'], '+/x': ['plain/x'], '+/+': ['plain/x'], '+/#': ['plain/x', 'plain'], '+': ['plain'] };
        for (const [filter, collector] of Object.entries(wild) as Array<[keyof typeof wild, MessageCollector]>) {
          await collector.waitFor(expected[filter].length, 3000);
        }
        await Promise.all([sys.waitFor(1, 3000), sysPlus.waitFor(1, 3000), foo.waitFor(1, 3000)]);
        await delay(200);
        for (const [filter, collector] of Object.entries(wild) as Array<[keyof typeof wild, MessageCollector]>) {
          assert.deepEqual(collector.messages.map((m) => m.topic), expected[filter], `'${filter}' must not match $-topics (3.1.1 §4.7.2)`);
        }
        assert.deepEqual(sys.messages.map((m) => [m.topic, m.payload.toString()]), [['$SYS/x', 'sys']]);
        assert.deepEqual(sysPlus.messages.map((m) => m.topic), ['$SYS/x']);
        assert.deepEqual(foo.messages.map((m) => m.topic), ['$foo']);
      } finally {
        await Promise.all(local.map((c) => endClient(c)));
        await own.close();
      }
    });

    // ---- shared subscriptions -------------------------------------------------------------------

    test('shared subscriptions: one member per message per group, spread; plain subscribers get all', T, async () => {
      const topic = uid('sh');
      const N = 30;
      const join = async (filter: string): Promise<MessageCollector> => {
        const c = await client();
        const collector = new MessageCollector(c);
        const [grant] = await c.subscribeAsync(filter, { qos: 1 });
        assert.equal(grant!.qos, 1, `granted ${filter}`);
        return collector;
      };
      const groupA = [await join(`$share/ga/${topic}`), await join(`$share/ga/${topic}`), await join(`$share/ga/${topic}`)];
      const groupB = [await join(`$share/gb/${topic}`), await join(`$share/gb/${topic}`)];
      const plain = await join(topic);
      const pub = await client();
      for (let i = 0; i < N; i++) await pub.publishAsync(topic, String(i), { qos: 1 });

      const deadline = Date.now() + 5000;
      const total = (group: MessageCollector[]): number => group.reduce((n, c) => n + c.messages.length, 0);
      while ((total(groupA) < N || total(groupB) < N || plain.messages.length < N) && Date.now() < deadline) await delay(20);
      await delay(300); // room for duplicates to show up
      const all = Array.from({ length: N }, (_, i) => String(i));
      for (const [name, group] of [['ga', groupA], ['gb', groupB]] as const) {
        const payloads = group.flatMap((c) => c.messages.map((m) => m.payload.toString()));
        assert.equal(payloads.length, N, `group ${name}: each message exactly once in total (got ${payloads.length})`);
        assert.deepEqual([...payloads].sort(), [...all].sort(), `group ${name}: every message`);
        group.forEach((c, i) => assert.ok(c.messages.length > 0, `group ${name} member ${i} received some (${group.map((g) => g.messages.length).join('/')})`));
        for (const c of group) assert.ok(c.messages.every((m) => m.topic === topic && m.packet.qos === 1));
      }
      assert.deepEqual(plain.messages.map((m) => m.payload.toString()), all, 'the plain subscriber gets every message, in order');
    });

    // ---- overlapping subscriptions -------------------------------------------------------------

    test('overlapping subscriptions deliver one copy at the highest granted QoS', T, async () => {
      const base = uid('ov');
      const c = await client();
      await c.subscribeAsync(`${base}/#`, { qos: 1 });
      await c.subscribeAsync(`${base}/+`, { qos: 2 });
      const collector = new MessageCollector(c);
      const pub = await client();
      await pub.publishAsync(`${base}/x`, 'both-q2', { qos: 2 });
      await pub.publishAsync(`${base}/x`, 'both-q1', { qos: 1 });
      await pub.publishAsync(`${base}/x/y`, 'hash-only-q2', { qos: 2 });
      await collector.waitFor(3, 3000);
      await delay(300);
      assert.deepEqual(
        collector.messages.map((m) => [m.payload.toString(), m.packet.qos]),
        [['both-q2', 2], ['both-q1', 1], ['hash-only-q2', 1]],
        'one copy each (3.1.1 §3.3.5), at max QoS of the matching subscriptions, capped by the publish QoS',
      );
      collector.stop();
    });

    // ---- client identifiers ---------------------------------------------------------------------

    describe('client identifiers', () => {
      if (V.protocolVersion === 4) {
        test('an empty client id with clean=true is accepted and works', T, async () => {
          const r = await raw();
          r.send(connectFrame({ name: 'MQTT', level: 4, flags: 0x02, keepalive: 30, clientId: '' }));
          const connack = (await r.next('connack')) as IConnackPacket;
          assert.equal(connack.returnCode, 0, '3.1.1 §3.1.3.1: the server assigns an id');
          assert.equal(connack.sessionPresent, false);
          const topic = uid('anon');
          r.send({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic, qos: 0 }] });
          await r.next('suback');
          r.send(publishPacket(topic, 'self', 0));
          const m = (await r.next('publish')) as IPublishPacket;
          assert.equal(m.payload.toString(), 'self');

          // Two anonymous clients get different ids: the second does not take over the first.
          const r2 = await raw();
          r2.send(connectFrame({ name: 'MQTT', level: 4, flags: 0x02, keepalive: 30, clientId: '' }));
          assert.equal(((await r2.next('connack')) as IConnackPacket).returnCode, 0);
          await delay(200);
          assert.equal(r.closed, false, 'the first anonymous client is still connected');
          r.disconnect();
          r2.disconnect();
        });
      }

      test('an empty client id with clean=false gets CONNACK 2 (identifier rejected) and is closed', T, async () => {
        const r = await raw();
        r.send(connectFrame({ name: V.protocolId, level: V.protocolVersion, flags: 0x00, keepalive: 30, clientId: '' }));
        const connack = (await r.next('connack')) as IConnackPacket;
        assert.equal(connack.returnCode, 2, '3.1.1 §3.1.3.1 / 3.1: identifier rejected');
        assert.equal(connack.sessionPresent, false);
        await r.waitForClose(2000);
      });
    });
  });
}

describe('CONNECT protocol level', () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startBroker();
  });
  after(async () => {
    await tb.close();
  });

  for (const [name, level] of [['MQTT', 6], ['MQTT', 2], ['MQIsdp', 6]] as const) {
    test(`protocol name ${name} level ${level} gets CONNACK 1 (unacceptable protocol version) and is closed`, T, async () => {
      const r = await rawConnect(tb.port);
      try {
        const bytes: Buffer[] = [];
        r.socket.on('data', (chunk: Buffer) => bytes.push(chunk));
        r.send(connectFrame({ name, level, flags: 0x02, keepalive: 30, clientId: 'lvl' }));
        const connack = (await r.next('connack')) as IConnackPacket;
        assert.equal(connack.returnCode, 1);
        await r.waitForClose(2000);
        assert.deepEqual([...Buffer.concat(bytes)], [0x20, 0x02, 0x00, 0x01], '3.1.1 §3.1.2.2: CONNACK 0x01 then close, nothing else');
      } finally {
        r.destroy();
      }
    });
  }

  test('a refused CONNECT does not disturb other clients', T, async () => {
    const c = await connect(tb.port, { protocolVersion: 4 });
    try {
      await c.subscribeAsync('lvl/ok', { qos: 1 });
      const r = await rawConnect(tb.port);
      r.send(connectFrame({ name: 'MQTT', level: 6, flags: 0x02, keepalive: 30, clientId: 'bad' }));
      await r.waitForClose(2000);
      const waiting = waitForMessages(c, 1, 2000);
      await c.publishAsync('lvl/ok', 'fine', { qos: 1 });
      const [m] = await waiting;
      assert.equal(m!.payload.toString(), 'fine');
    } finally {
      await endClient(c);
    }
  });
});
