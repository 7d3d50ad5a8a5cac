/**
 * MQTT 5 connection and session behaviour end to end (SPEC §2): assigned client identifier, server
 * keep alive, session expiry interval (on CONNECT and DISCONNECT), session present, will delay,
 * server-sent DISCONNECT reason codes and strings (takeover, keep alive), enhanced authentication
 * refused. Keep alive, session expiry and will delay run on mock time (mock-time.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { IDisconnectPacket } from 'mqtt-packet';
import type { MqttClient } from 'mqtt';
import { MessageCollector, startBroker, type TestBroker } from './helpers.ts';
import { isConnected, MOCK_TIME_TEST, mockTime, pingRoundTrip, recordPublishes, tickWhilePinging } from './mock-time.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteRetainedStore } from '../../src/broker/retained/sqlite-retained-store.ts';
import { SqliteSessionStore } from '../../src/broker/session/sqlite-session-store.ts';
import { openDatabase } from '../../src/storage/sqlite-database.ts';
import {
  connectMqttJs,
  DISCONNECT,
  disconnectOf,
  encodePublishV5,
  endAll,
  nextEvent,
  Prop,
  PUBACK,
  propValues,
  userProps,
  withTimeout,
  WireClient,
  type PropList,
} from './v5-helpers.ts';

/** A subscriber that notes when each message arrived. */
async function watch(port: number, clientId: string, filter: string): Promise<{ client: MqttClient; arrivals: Array<{ topic: string; payload: string; at: number; retain: boolean }> }> {
  const { client } = await connectMqttJs(port, { clientId });
  const arrivals: Array<{ topic: string; payload: string; at: number; retain: boolean }> = [];
  client.on('message', (topic, payload, packet) => arrivals.push({ topic, payload: payload.toString(), at: Date.now(), retain: packet.retain }));
  await client.subscribeAsync(filter, { qos: 1 });
  return { client, arrivals };
}

/** Waits for `client`'s messages until `condition` holds (event-driven: works on mock time too). */
async function until(client: MqttClient, condition: () => boolean, ms: number, what: string): Promise<void> {
  if (condition()) return;
  await nextEvent(client, 'message', ms, condition).catch(() => {
    throw new Error(`timed out after ${ms} ms waiting for ${what}`);
  });
}

/** Resolves once the broker has seen the connection of `clientId` end. */
function closedAtBroker(tb: TestBroker, clientId: string): Promise<unknown> {
  return nextEvent(tb.broker, 'client.disconnect', 3000, (c: { clientId: string }) => c.clientId === clientId);
}

describe('MQTT 5 client identifier and keep alive', () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startBroker();
  });
  after(() => tb.close());

  test('an empty client id gets an assigned client identifier that names a usable session', async () => {
    const first = await WireClient.connect(tb.port, { clientId: '', clean: true, properties: { sessionExpiryInterval: 10 } });
    let second: WireClient | undefined;
    const { client: pub } = await connectMqttJs(tb.port, { clientId: 'aci-pub' });
    try {
      assert.equal(first.connack.reasonCode, 0);
      const assigned = first.connack.properties?.assignedClientIdentifier;
      assert.equal(typeof assigned, 'string');
      assert.ok(assigned!.length > 0);
      await first.raw.subscribe([{ topic: 'aci/t', qos: 1 }]);
      first.raw.disconnect();
      await first.raw.waitClosed(2000);
      await pub.publishAsync('aci/t', 'for the assigned id', { qos: 1 });
      const again = await WireClient.connect(tb.port, { clientId: assigned!, clean: false, properties: { sessionExpiryInterval: 10 } });
      second = again.raw;
      assert.equal(again.connack.sessionPresent, true, 'the assigned id names the session');
      assert.equal(again.connack.properties?.assignedClientIdentifier, undefined, 'no identifier assigned when the client sent one');
      assert.equal((await second.nextPublish(2000)).payload.toString(), 'for the assigned id');
      second.disconnect(0, { sessionExpiryInterval: 0 });
    } finally {
      await endAll([first.raw, second, pub]);
    }
  });

  test('two clients with empty ids get different assigned identifiers (MQTT.js sees it in the CONNACK)', async () => {
    const a = await connectMqttJs(tb.port, { clientId: '' });
    const b = await connectMqttJs(tb.port, { clientId: '' });
    try {
      const ida = a.connack.properties?.assignedClientIdentifier;
      const idb = b.connack.properties?.assignedClientIdentifier;
      assert.ok(ida && idb);
      assert.notEqual(ida, idb);
      assert.equal(a.client.connected && b.client.connected, true, 'neither took the other over');
    } finally {
      await endAll([a.client, b.client]);
    }
  });

  test('keep alive timeout: a silent client is sent DISCONNECT 0x8D with a reason string after 1.5 x keep alive', MOCK_TIME_TEST, async (t) => {
    const time = mockTime(t);
    const { raw: silent } = await WireClient.connect(tb.port, { clientId: 'ka-silent', keepalive: 1 });
    const { raw: pinging } = await WireClient.connect(tb.port, { clientId: 'ka-ping', keepalive: 1 });
    try {
      for (let i = 0; i < 2; i++) {
        time.tick(500);
        await pingRoundTrip(pinging);
      }
      time.tick(499);
      assert.equal(isConnected(tb.broker, 'ka-silent'), true, 'not cut before 1.5 x keep alive');
      time.tick(1);
      assert.equal(isConnected(tb.broker, 'ka-silent'), false, 'cut at 1.5 x keep alive');
      const frame = await silent.take((f) => f.type === DISCONNECT, 4000, 'DISCONNECT');
      const { reasonCode, reasonString } = disconnectOf(frame);
      assert.equal(reasonCode, 0x8d);
      assert.equal(typeof reasonString, 'string');
      assert.ok(reasonString!.length > 0);
      await silent.waitClosed(1000);
      for (let i = 0; i < 3; i++) {
        time.tick(500);
        await pingRoundTrip(pinging);
      }
      assert.equal(pinging.closed, false, 'a client that pings stays connected');
      assert.equal(isConnected(tb.broker, 'ka-ping'), true);
    } finally {
      await endAll([silent, pinging]);
    }
  });

  test('takeover: the old MQTT.js client gets a DISCONNECT 0x8E with a reason string', async () => {
    const { client: old } = await connectMqttJs(tb.port, { clientId: 'takeover-id' });
    let fresh: MqttClient | undefined;
    try {
      const kicked = withTimeout(new Promise<IDisconnectPacket>((resolve) => old.once('disconnect', resolve)), 3000, 'the disconnect event');
      fresh = (await connectMqttJs(tb.port, { clientId: 'takeover-id' })).client;
      const packet = await kicked;
      assert.equal(packet.reasonCode, 0x8e);
      assert.equal(typeof packet.properties?.reasonString, 'string');
      assert.ok(packet.properties!.reasonString!.length > 0);
      assert.equal(fresh.connected, true);
    } finally {
      await endAll([old, fresh]);
    }
  });

  test('a CONNECT with an authentication method gets CONNACK 0x8C (enhanced authentication not supported)', async () => {
    const { raw, connack } = await WireClient.connect(tb.port, { clientId: 'auth-method', properties: { authenticationMethod: 'SCRAM-SHA-1', authenticationData: Buffer.from('client-first') } });
    try {
      assert.equal(connack.reasonCode, 0x8c);
      await raw.waitClosed(2000);
    } finally {
      raw.destroy();
    }
  });

  test('every refused CONNECT is reported on client.connack with its own reason code', async () => {
    type Connack = [request: { clientId: string }, detail: { reasonCode: number; sessionPresent: boolean; reasonString?: string }];
    const reported = nextEvent<Connack>(tb.broker, 'client.connack', 2000, (request) => request.clientId === 'auth-method-event');
    const { raw } = await WireClient.connect(tb.port, { clientId: 'auth-method-event', properties: { authenticationMethod: 'SCRAM-SHA-1' } });
    try {
      const [, detail] = await reported;
      assert.equal(detail.reasonCode, 0x8c, 'bad authentication method, not not-authorized');
      assert.equal(detail.sessionPresent, false);
      assert.equal(detail.reasonString, 'enhanced authentication is not supported');
    } finally {
      raw.destroy();
    }
  });
});

describe('MQTT 5 server keep alive', () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startBroker({ limits: { serverKeepAlive: 1 } });
  });
  after(() => tb.close());

  test('CONNACK carries the configured server keep alive and the server enforces it, not the client value', MOCK_TIME_TEST, async (t) => {
    const time = mockTime(t);
    const { raw: v5, connack } = await WireClient.connect(tb.port, { clientId: 'ska-v5', keepalive: 60 });
    const { raw: v4 } = await WireClient.connect(tb.port, { clientId: 'ska-v4', keepalive: 60 }, 4);
    try {
      assert.equal(connack.properties?.serverKeepAlive, 1);
      time.tick(1499);
      assert.equal(isConnected(tb.broker, 'ska-v5'), true, 'not cut before 1.5 x the server keep alive');
      time.tick(1);
      assert.equal(isConnected(tb.broker, 'ska-v5'), false, 'cut at 1.5 x the server keep alive');
      const frame = await v5.take((f) => f.type === DISCONNECT, 4000, 'DISCONNECT');
      assert.equal(disconnectOf(frame).reasonCode, 0x8d);
      // v3.1.1 has no way to be told a server keep alive; its own 60 s applies.
      await pingRoundTrip(v4);
      assert.equal(v4.closed, false);
    } finally {
      await endAll([v5, v4]);
    }
  });

  test('an MQTT.js client adopts the server keep alive and stays connected by pinging', MOCK_TIME_TEST, async (t) => {
    const time = mockTime(t, { intervals: true });
    const { client, connack } = await connectMqttJs(tb.port, { clientId: 'ska-js', keepalive: 60 });
    try {
      assert.equal(connack.properties?.serverKeepAlive, 1);
      assert.ok((await tickWhilePinging(time, client, 2200)) >= 2, 'MQTT.js pinged every second');
      assert.equal(client.connected, true);
      assert.equal(isConnected(tb.broker, 'ska-js'), true);
    } finally {
      await endAll([client]);
    }
  });
});

describe('MQTT 5 session expiry interval', () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startBroker();
  });
  after(() => tb.close());

  test('a session is kept for its expiry interval after disconnect (queued messages delivered), gone after it', MOCK_TIME_TEST, async (t) => {
    const time = mockTime(t);
    const opts = { clientId: 'se-1', clean: false, properties: { sessionExpiryInterval: 1 } };
    const first = await WireClient.connect(tb.port, { ...opts, clean: true });
    const { client: pub } = await connectMqttJs(tb.port, { clientId: 'se-1-pub' });
    const clients: Array<WireClient | MqttClient> = [first.raw, pub];
    try {
      assert.equal(first.connack.sessionPresent, false);
      await first.raw.subscribe([{ topic: 'se/t', qos: 1 }]);
      first.raw.destroy();
      await first.raw.waitClosed(1000);
      await pub.publishAsync('se/t', 'while away', { qos: 1 });
      time.tick(300);
      const back = await WireClient.connect(tb.port, opts);
      clients.push(back.raw);
      assert.equal(back.connack.sessionPresent, true, 'reconnected within the interval');
      assert.equal((await back.raw.nextPublish(2000)).payload.toString(), 'while away');
      back.raw.disconnect();
      await closedAtBroker(tb, 'se-1');
      time.tick(999);
      assert.equal(tb.broker.sessions.size, 2, 'kept until its expiry interval is over');
      time.tick(1);
      assert.equal(tb.broker.sessions.size, 1, 'ended at its expiry interval');
      const late = await WireClient.connect(tb.port, opts);
      clients.push(late.raw);
      assert.equal(late.connack.sessionPresent, false, 'the session expired');
      // A marker after the message: one publisher's messages keep their order (MQTT 5 §4.6).
      await late.raw.subscribe([{ topic: 'se/marker', qos: 1 }]);
      await pub.publishAsync('se/t', 'nobody subscribed', { qos: 1 });
      await pub.publishAsync('se/marker', 'marker', { qos: 1 });
      assert.equal((await late.raw.nextPublish(2000)).topic, 'se/marker', 'the expired session\'s subscription is gone');
    } finally {
      await endAll(clients);
    }
  });

  test('clean start discards an existing session (sessionPresent false, old subscriptions gone)', async () => {
    const first = await WireClient.connect(tb.port, { clientId: 'se-clean', properties: { sessionExpiryInterval: 30 } });
    const { client: pub } = await connectMqttJs(tb.port, { clientId: 'se-clean-pub' });
    let second: WireClient | undefined;
    try {
      await first.raw.subscribe([{ topic: 'se/clean', qos: 1 }]);
      first.raw.disconnect();
      await first.raw.waitClosed(1000);
      const again = await WireClient.connect(tb.port, { clientId: 'se-clean', clean: true, properties: { sessionExpiryInterval: 30 } });
      second = again.raw;
      assert.equal(again.connack.sessionPresent, false);
      await pub.publishAsync('se/clean', 'x', { qos: 1 });
      assert.equal((await second.quiet(300)).length, 0);
      second.disconnect(0, { sessionExpiryInterval: 0 });
    } finally {
      await endAll([first.raw, pub, second]);
    }
  });

  test('DISCONNECT with a session expiry interval changes it: 60 -> 0 ends the session now, 1 -> 3 keeps it longer', MOCK_TIME_TEST, async (t) => {
    const time = mockTime(t);
    const a = await WireClient.connect(tb.port, { clientId: 'se-shorten', properties: { sessionExpiryInterval: 60 } });
    a.raw.disconnect(0, { sessionExpiryInterval: 0 });
    await a.raw.waitClosed(1000);
    const a2 = await WireClient.connect(tb.port, { clientId: 'se-shorten', clean: false, properties: { sessionExpiryInterval: 60 } });
    const b = await WireClient.connect(tb.port, { clientId: 'se-extend', properties: { sessionExpiryInterval: 1 } });
    let b2: WireClient | undefined;
    try {
      assert.equal(a2.connack.sessionPresent, false, 'expiry set to 0 on DISCONNECT ends the session');
      a2.raw.disconnect(0, { sessionExpiryInterval: 0 });
      b.raw.disconnect(0, { sessionExpiryInterval: 3 });
      await closedAtBroker(tb, 'se-extend');
      time.tick(2999);
      const again = await WireClient.connect(tb.port, { clientId: 'se-extend', clean: false, properties: { sessionExpiryInterval: 0 } });
      b2 = again.raw;
      assert.equal(again.connack.sessionPresent, true, 'expiry raised to 3 s on DISCONNECT keeps the session until 3 s');
    } finally {
      await endAll([a.raw, a2.raw, b.raw, b2]);
    }
  });

  test('setting a non-zero session expiry on DISCONNECT after CONNECT had 0 is a protocol error (DISCONNECT 0x82, will published, no session kept)', async () => {
    const { client: watcher, arrivals } = await watch(tb.port, 'se-zero-watch', 'se/zero/will');
    const first = await WireClient.connect(tb.port, { clientId: 'se-zero', will: { topic: 'se/zero/will', payload: Buffer.from('gone'), qos: 1, retain: false } });
    let again: WireClient | undefined;
    try {
      first.raw.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 30 } });
      const frame = await first.raw.take((f) => f.type === DISCONNECT, 2000, 'DISCONNECT');
      assert.equal(disconnectOf(frame).reasonCode, 0x82);
      await first.raw.waitClosed(1000);
      await until(watcher, () => arrivals.length > 0, 2000, 'the will (a protocol error is not a normal disconnect)');
      assert.equal(arrivals[0]!.payload, 'gone');
      const r = await WireClient.connect(tb.port, { clientId: 'se-zero', clean: false, properties: { sessionExpiryInterval: 0 } });
      again = r.raw;
      assert.equal(r.connack.sessionPresent, false);
    } finally {
      await endAll([watcher, first.raw, again]);
    }
  });
});

describe('MQTT 5 will', () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startBroker();
  });
  after(() => tb.close());

  test('will delay 1 s: the will is published 1 s after an ungraceful close', MOCK_TIME_TEST, async (t) => {
    const time = mockTime(t);
    const published = recordPublishes(t, tb.broker, 'wd/1');
    const { client: watcher, arrivals } = await watch(tb.port, 'wd-watch-1', 'wd/1');
    const { raw } = await WireClient.connect(tb.port, {
      clientId: 'wd-1',
      properties: { sessionExpiryInterval: 10 },
      will: { topic: 'wd/1', payload: Buffer.from('late'), qos: 1, retain: false, properties: { willDelayInterval: 1 } },
    });
    try {
      const closed = closedAtBroker(tb, 'wd-1');
      raw.destroy();
      await closed;
      const closedAt = Date.now();
      time.tick(999);
      assert.equal(published.length, 0, 'not published before the delay');
      time.tick(1);
      assert.equal(published.length, 1, 'published when the delay is over');
      await until(watcher, () => arrivals.length > 0, 2500, 'the delayed will');
      assert.equal(arrivals[0]!.payload, 'late');
      assert.equal(arrivals[0]!.at - closedAt, 1000);
    } finally {
      await endAll([watcher, raw]);
      // End the session the will belonged to.
      const r = await WireClient.connect(tb.port, { clientId: 'wd-1', clean: true });
      r.raw.disconnect();
    }
  });

  test('will delay: reconnecting with clean start false within the delay cancels the will', MOCK_TIME_TEST, async (t) => {
    const time = mockTime(t);
    const published = recordPublishes(t, tb.broker, 'wd/2');
    const { client: watcher, arrivals } = await watch(tb.port, 'wd-watch-2', 'wd/2');
    const connectPacket = {
      clientId: 'wd-2',
      clean: false,
      properties: { sessionExpiryInterval: 10 },
      will: { topic: 'wd/2', payload: Buffer.from('should not appear'), qos: 1 as const, retain: false, properties: { willDelayInterval: 1 } },
    };
    const first = await WireClient.connect(tb.port, { ...connectPacket, clean: true });
    let second: WireClient | undefined;
    try {
      const closed = closedAtBroker(tb, 'wd-2');
      first.raw.destroy();
      await closed;
      time.tick(300);
      const r = await WireClient.connect(tb.port, { ...connectPacket, will: undefined });
      second = r.raw;
      assert.equal(r.connack.sessionPresent, true);
      time.tick(1500);
      assert.deepEqual(published, [], 'the will of a resumed session is not published');
      assert.deepEqual(arrivals, []);
      second.disconnect(0, { sessionExpiryInterval: 0 });
    } finally {
      await endAll([watcher, first.raw, second]);
    }
  });

  test('will delay: a new connection with clean start true ends the old session, and its will is published then', MOCK_TIME_TEST, async (t) => {
    const time = mockTime(t);
    const published = recordPublishes(t, tb.broker, 'wd/3');
    const { client: watcher, arrivals } = await watch(tb.port, 'wd-watch-3', 'wd/3');
    const first = await WireClient.connect(tb.port, {
      clientId: 'wd-3',
      properties: { sessionExpiryInterval: 30 },
      will: { topic: 'wd/3', payload: Buffer.from('session ended'), qos: 1, retain: false, properties: { willDelayInterval: 20 } },
    });
    let second: WireClient | undefined;
    try {
      const closed = closedAtBroker(tb, 'wd-3');
      first.raw.destroy();
      await closed;
      time.tick(200);
      assert.equal(published.length, 0);
      second = (await WireClient.connect(tb.port, { clientId: 'wd-3', clean: true })).raw;
      assert.equal(published.length, 1, 'published when the new connection ended the session');
      await until(watcher, () => arrivals.length > 0, 2000, 'the will at session end');
      assert.equal(arrivals[0]!.payload, 'session ended');
    } finally {
      await endAll([watcher, first.raw, second]);
    }
  });

  test('will delay longer than the session expiry: the will is published when the session ends', MOCK_TIME_TEST, async (t) => {
    const time = mockTime(t);
    const published = recordPublishes(t, tb.broker, 'wd/4');
    const { client: watcher, arrivals } = await watch(tb.port, 'wd-watch-4', 'wd/4');
    const { raw } = await WireClient.connect(tb.port, {
      clientId: 'wd-4',
      properties: { sessionExpiryInterval: 1 },
      will: { topic: 'wd/4', payload: Buffer.from('expired'), qos: 1, retain: false, properties: { willDelayInterval: 30 } },
    });
    try {
      const closed = closedAtBroker(tb, 'wd-4');
      raw.destroy();
      await closed;
      const closedAt = Date.now();
      time.tick(999);
      assert.equal(published.length, 0, 'not before the session ends');
      time.tick(1);
      assert.equal(published.length, 1, 'published when the session ends, 1 s after the close');
      await until(watcher, () => arrivals.length > 0, 3000, 'the will at session expiry');
      assert.equal(arrivals[0]!.at - closedAt, 1000);
    } finally {
      await endAll([watcher, raw]);
    }
  });

  test('DISCONNECT with reason 0x04 publishes the will (with its properties); a normal DISCONNECT does not', async () => {
    const { client: watcher } = await connectMqttJs(tb.port, { clientId: 'wd-watch-5' });
    const collector = new MessageCollector(watcher);
    await watcher.subscribeAsync('wd/5/+', { qos: 1 });
    const withWill = await WireClient.connect(tb.port, {
      clientId: 'wd-5a',
      will: { topic: 'wd/5/a', payload: Buffer.from('asked for'), qos: 1, retain: false, properties: { contentType: 'text/plain', userProperties: { why: 'test' } } },
    });
    const normal = await WireClient.connect(tb.port, {
      clientId: 'wd-5b',
      will: { topic: 'wd/5/b', payload: Buffer.from('must not appear'), qos: 1, retain: false },
    });
    const closed = Promise.all([closedAtBroker(tb, 'wd-5a'), closedAtBroker(tb, 'wd-5b')]);
    try {
      normal.raw.disconnect(0);
      withWill.raw.disconnect(0x04);
      const [m] = await collector.waitFor(1, 2000);
      assert.equal(m!.topic, 'wd/5/a');
      assert.equal(m!.payload.toString(), 'asked for');
      assert.equal(m!.packet.properties?.contentType, 'text/plain');
      assert.deepEqual({ ...m!.packet.properties?.userProperties }, { why: 'test' });
      // Both connections are over at the broker, so a will of wd-5b would be routed by now; a marker
      // published after it arrives after it (the session's messages keep their order).
      await closed;
      await watcher.publishAsync('wd/5/marker', 'marker', { qos: 1 });
      await collector.waitFor(2, 2000);
      assert.deepEqual(collector.messages.map((x) => x.topic), ['wd/5/a', 'wd/5/marker'], 'a normal DISCONNECT discards the will');
    } finally {
      collector.stop();
      await endAll([watcher, withWill.raw, normal.raw]);
    }
  });

  test('MQTT.js v5: an ungraceful close publishes the will immediately when no delay is set', async () => {
    const { client: watcher, arrivals } = await watch(tb.port, 'wd-watch-6', 'wd/6');
    const { client } = await connectMqttJs(tb.port, { clientId: 'wd-6', will: { topic: 'wd/6', payload: Buffer.from('bye'), qos: 1, retain: false } });
    try {
      const closed = nextEvent(tb.broker, 'client.disconnect', 2000, (c: { clientId: string }) => c.clientId === 'wd-6');
      (client.stream as unknown as { destroy(): void }).destroy();
      await closed;
      await until(watcher, () => arrivals.length > 0, 1000, 'the will');
      assert.equal(arrivals[0]!.payload, 'bye');
    } finally {
      await endAll([watcher, client]);
    }
  });
});

describe('MQTT 5 properties across a broker restart (SQLite stores)', () => {
  test('a queued message and a retained message keep user property order, correlation data and content type; expiry keeps counting down', MOCK_TIME_TEST, async (t) => {
    const time = mockTime(t);
    const dir = await mkdtemp(join(tmpdir(), 'bucketmq-v5-restart-'));
    const file = join(dir, 'bucketmq.db');
    const clients: WireClient[] = [];
    let db = openDatabase(file);
    let stores = { session: new SqliteSessionStore(db), retained: new SqliteRetainedStore(db) };
    let tb = await startBroker({ sessionStore: stores.session, retainedStore: stores.retained });
    const props: PropList = [
      [Prop.MessageExpiryInterval, 30],
      [Prop.ContentType, 'application/cbor'],
      [Prop.CorrelationData, Buffer.from([0, 1, 254, 255])],
      [Prop.UserProperty, ['a', '1']],
      [Prop.UserProperty, ['b', '2']],
      [Prop.UserProperty, ['a', '3']],
    ];
    const wanted = [['a', '1'], ['b', '2'], ['a', '3']];
    try {
      const sub = await WireClient.connect(tb.port, { clientId: 'restart-sub', properties: { sessionExpiryInterval: 300 } });
      clients.push(sub.raw);
      await sub.raw.subscribe([{ topic: 'restart/t', qos: 1 }]);
      sub.raw.disconnect();
      await sub.raw.waitClosed(1000);
      const pub = await WireClient.connect(tb.port, { clientId: 'restart-pub' });
      clients.push(pub.raw);
      pub.raw.sendRaw(encodePublishV5({ topic: 'restart/t', payload: 'survivor', qos: 1, packetId: 1, retain: true, props }));
      await pub.raw.take((f) => f.type === PUBACK, 2000, 'PUBACK');
      pub.raw.disconnect();
      await tb.close();
      await stores.session.close();
      await stores.retained.close();
      db.close();
      time.tick(1100);

      db = openDatabase(file);
      stores = { session: new SqliteSessionStore(db), retained: new SqliteRetainedStore(db) };
      tb = await startBroker({ sessionStore: stores.session, retainedStore: stores.retained });
      const back = await WireClient.connect(tb.port, { clientId: 'restart-sub', clean: false, properties: { sessionExpiryInterval: 300 } });
      clients.push(back.raw);
      assert.equal(back.connack.sessionPresent, true);
      const queued = await back.raw.nextPublish(2000);
      const fresh = await WireClient.connect(tb.port, { clientId: 'restart-fresh' });
      clients.push(fresh.raw);
      await fresh.raw.subscribe([{ topic: 'restart/t', qos: 1 }]);
      const retained = await fresh.raw.nextPublish(2000);
      for (const [what, m] of [['queued', queued], ['retained', retained]] as const) {
        assert.equal(m.payload.toString(), 'survivor', what);
        assert.deepEqual(userProps(m), wanted, `${what}: user property order`);
        assert.deepEqual(propValues(m, Prop.ContentType), ['application/cbor'], what);
        assert.deepEqual(propValues(m, Prop.CorrelationData), [Buffer.from([0, 1, 254, 255])], what);
        const [expiry] = propValues(m, Prop.MessageExpiryInterval) as number[];
        assert.equal(expiry, 29, `${what}: 30 s less the 1.1 s waited, rounded up (MQTT 5 §3.3.2.3.3)`);
      }
      back.raw.disconnect(0, { sessionExpiryInterval: 0 });
    } finally {
      await endAll(clients);
      await tb.close();
      await stores.session.close();
      await stores.retained.close();
      db.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
