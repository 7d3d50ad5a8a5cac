/**
 * Limits and bad input (SPEC §2 "Limits", issue 3 "Bad input"): the maximum packet size is checked
 * from the fixed header before the body is buffered; malformed or protocol-violating packets close
 * only the offending connection (v5: DISCONNECT with the right reason code, MQTT 5 §4.13) and are
 * reported on the event stream, while other clients keep receiving; the CONNECT timeout; caps on
 * queued and in-flight messages, subscriptions, topic length and depth.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import v8 from 'node:v8';
import vm from 'node:vm';
import mqtt, { type IClientOptions } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import type { BrokerLimits } from '../../src/broker/broker-options.ts';
import type { ClientInfo } from '../../src/broker/client-info.ts';
import type { Message } from '../../src/broker/message.ts';
import { HOST, connectCollecting, delay, endClient, rawConnect, startBroker, type RawClient, type TestBroker } from './helpers.ts';
import { CrashGuard, waitUntil } from './wire-helpers.ts';
import { MOCK_TIME_TEST, isConnected, mockTime, settle, type MockTime } from './mock-time.ts';
import { varint, str } from './wire-bytes.ts';
import { PUBACK, WireClient, ackOf } from './v5-helpers.ts';

/** A real GC between measurements (the flag can be set at run time; `gc` is then read from a fresh context). */
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const guard = new CrashGuard();
before(() => {
  guard.install();
});
after(() => {
  guard.uninstall();
  assert.deepEqual(guard.errors, [], 'the process never threw (uncaughtException / unhandledRejection)');
});

/** A PUBLISH built by hand (`props` = v5 property bytes, or undefined for v3). */
function rawPublish(opts: { flags?: number; topic: string; packetId?: number; props?: number[]; payload?: Buffer }): Buffer {
  const flags = opts.flags ?? 0;
  const qos = (flags >> 1) & 3;
  const body = Buffer.concat([
    Buffer.from(str(opts.topic)),
    Buffer.from(qos > 0 ? [(opts.packetId ?? 1) >> 8, (opts.packetId ?? 1) & 0xff] : []),
    Buffer.from(opts.props === undefined ? [] : [...varint(opts.props.length), ...opts.props]),
    opts.payload ?? Buffer.from('p'),
  ]);
  return Buffer.concat([Buffer.from([0x30 | flags, ...varint(body.length)]), body]);
}

const addresses = new WeakMap<RawClient, string>();

/** Opens a raw client and remembers its local address (a closed socket no longer reports it). */
async function openRaw(port: number, protocolVersion: 4 | 5 = 4): Promise<RawClient> {
  const raw = await rawConnect(port, { protocolVersion });
  addresses.set(raw, `${HOST}:${raw.socket.localPort}`);
  return raw;
}

/** Address the broker sees for a raw client (matches ClientInfo.remoteAddress / client.error). */
function addressOf(raw: RawClient): string {
  const address = addresses.get(raw);
  assert.ok(address !== undefined, 'raw client opened with openRaw');
  return address;
}

async function rawV5(port: number, clientId: string): Promise<RawClient> {
  const raw = await openRaw(port, 5);
  const connack = await raw.handshake({ clientId, protocolVersion: 5 });
  assert.equal(connack.reasonCode, 0);
  return raw;
}

async function rawV4(port: number, clientId: string): Promise<RawClient> {
  const raw = await openRaw(port);
  const connack = await raw.handshake({ clientId });
  assert.equal(connack.returnCode, 0);
  return raw;
}

/** Waits for the server to close a raw socket; returns the DISCONNECT it sent first, if any. */
async function closedWith(raw: RawClient, timeoutMs = 2000): Promise<mqttPacket.IDisconnectPacket | undefined> {
  await raw.waitForClose(timeoutMs);
  return raw.packets.find((p): p is mqttPacket.IDisconnectPacket => p.cmd === 'disconnect');
}


interface ErrorEvent {
  client: ClientInfo | null;
  remoteAddress: string;
  reasonCode: number;
  message: string;
}

function recordErrors(tb: TestBroker): ErrorEvent[] {
  const errors: ErrorEvent[] = [];
  tb.broker.on('client.error', (client, detail) => errors.push({ client, ...detail }));
  return errors;
}

// ---------------------------------------------------------------------------------------------------

describe('maximum packet size (checked from the fixed header)', () => {
  let tb: TestBroker;
  let errors: ErrorEvent[];
  const disconnects: Array<{ clientId: string; cause: string; reasonCode?: number }> = [];
  before(async () => {
    tb = await startBroker();
    errors = recordErrors(tb);
    tb.broker.on('client.disconnect', (client, d) => disconnects.push({ clientId: client.clientId, cause: d.cause, reasonCode: d.reasonCode }));
  });
  after(() => tb.close());

  /**
   * Sends the fixed header of a PUBLISH claiming 100 MB, then keeps streaming body bytes (one reused
   * 64 KiB buffer, so the test itself allocates nothing) until the server closes the socket or 2 MB
   * went out, while sampling this process's memory (the broker runs in it). Returns the peak growth
   * (which includes socket read chunks not yet collected) and the growth still held after a GC.
   */
  async function sendOversized(raw: RawClient): Promise<{ closedAfterMs: number; sentBytes: number; peakGrowth: number; retainedGrowth: number; rssGrowth: number }> {
    gc();
    const base = process.memoryUsage();
    let peakArrayBuffers = base.arrayBuffers;
    let peakRss = base.rss;
    const sample = (): void => {
      const m = process.memoryUsage();
      if (m.arrayBuffers > peakArrayBuffers) peakArrayBuffers = m.arrayBuffers;
      if (m.rss > peakRss) peakRss = m.rss;
    };
    const sampler = setInterval(sample, 2);
    const started = Date.now();
    raw.send(Buffer.from([0x32, ...varint(100_000_000)]));
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    let sentBytes = 0;
    try {
      while (!raw.closed && sentBytes < 2 * 1024 * 1024 && Date.now() - started < 3000) {
        const ok = raw.socket.write(chunk);
        sentBytes += chunk.length;
        sample();
        if (!ok) await Promise.race([new Promise((r) => raw.socket.once('drain', r)), delay(50)]);
      }
      await raw.waitForClose(3000);
    } finally {
      clearInterval(sampler);
    }
    sample();
    gc();
    const retained = process.memoryUsage().arrayBuffers - base.arrayBuffers;
    return { closedAfterMs: raw.closedAt - started, sentBytes, peakGrowth: peakArrayBuffers - base.arrayBuffers, retainedGrowth: retained, rssGrowth: peakRss - base.rss };
  }

  function assertFlat(r: { peakGrowth: number; retainedGrowth: number; rssGrowth: number }): void {
    // Buffering the claimed 100 MB would show here at once; 16 MB leaves room for read chunks in flight.
    assert.ok(r.peakGrowth < 16 * 1024 * 1024, `arrayBuffers peaked ${r.peakGrowth} bytes above the baseline`);
    // Other tests' sockets run in the same process and leave a few MB in flight; 8 MB is still far
    // below what holding even a tenth of the claimed body would leave.
    assert.ok(r.retainedGrowth < 8 * 1024 * 1024, `arrayBuffers still ${r.retainedGrowth} bytes above the baseline after GC`);
    assert.ok(r.rssGrowth < 48 * 1024 * 1024, `rss grew by ${r.rssGrowth} bytes`);
  }

  test('v5 client: a PUBLISH header claiming 100 MB gets DISCONNECT 0x95 and a prompt close, memory stays flat', async () => {
    const raw = await rawV5(tb.port, 'big-v5');
    const r = await sendOversized(raw);
    const disconnect = raw.packets.find((p): p is mqttPacket.IDisconnectPacket => p.cmd === 'disconnect');
    assert.ok(disconnect !== undefined, 'a DISCONNECT came before the close');
    assert.equal(disconnect.reasonCode, 0x95, 'Packet too large');
    assert.ok(r.closedAfterMs < 1000, `closed after ${r.closedAfterMs} ms`);
    assertFlat(r);
    const err = errors.find((e) => e.remoteAddress === addressOf(raw));
    assert.equal(err?.reasonCode, 0x95);
    assert.equal(err?.client?.clientId, 'big-v5');
    await waitUntil(() => disconnects.some((d) => d.clientId === 'big-v5'), 'the disconnect event');
    assert.deepEqual(disconnects.find((d) => d.clientId === 'big-v5'), { clientId: 'big-v5', cause: 'packet-too-large', reasonCode: 0x95 });
  });

  test('v3.1.1 client: the same header closes the connection (no DISCONNECT in v3)', async () => {
    const raw = await rawV4(tb.port, 'big-v4');
    const r = await sendOversized(raw);
    assert.ok(r.closedAfterMs < 1000, `closed after ${r.closedAfterMs} ms`);
    assertFlat(r);
    assert.equal(raw.packets.filter((p) => p.cmd === 'disconnect').length, 0);
    assert.equal(errors.find((e) => e.remoteAddress === addressOf(raw))?.reasonCode, 0x95);
  });

  test('before CONNECT: an oversized first packet closes the socket at once', async () => {
    const raw = await openRaw(tb.port);
    const r = await sendOversized(raw);
    assert.ok(r.closedAfterMs < 1000, `closed after ${r.closedAfterMs} ms`);
    assertFlat(r);
    assert.deepEqual(raw.packets, [], 'nothing sent before CONNECT was accepted');
    const err = errors.find((e) => e.remoteAddress === addressOf(raw));
    assert.equal(err?.reasonCode, 0x95);
    assert.equal(err?.client, null);
  });

  test('a packet of exactly the maximum (256 KiB) is accepted and delivered; one byte more is refused', async () => {
    const limit = 256 * 1024;
    const sub = await connectCollecting(tb.port, { clientId: 'max-sub' });
    await sub.client.subscribeAsync('max/#', { qos: 1 });
    const pub = await rawV4(tb.port, 'max-pub');
    // QoS 1, topic "max/a": 1 type byte + 3 length bytes + 2 + 5 + 2 packet id + payload.
    const payloadAt = limit - (1 + 3 + 2 + 5 + 2);
    const atLimit = rawPublish({ flags: 0x02, topic: 'max/a', packetId: 1, payload: Buffer.alloc(payloadAt, 0x61) });
    assert.equal(atLimit.length, limit);
    pub.send(atLimit);
    const puback = (await pub.next('puback')) as mqttPacket.IPubackPacket;
    assert.equal(puback.messageId, 1);
    const [m] = await sub.messages.waitFor(1, 5000);
    assert.equal(m!.payload.length, payloadAt);
    assert.equal(m!.topic, 'max/a');

    const over = rawPublish({ flags: 0x02, topic: 'max/b', packetId: 2, payload: Buffer.alloc(payloadAt + 1, 0x62) });
    assert.equal(over.length, limit + 1);
    pub.send(over);
    await pub.waitForClose(2000);
    assert.equal(pub.packets.filter((p) => p.cmd === 'puback').length, 1, 'the oversized publish was not acknowledged');
    await delay(100);
    assert.equal(sub.messages.messages.length, 1, 'the oversized publish was not delivered');
    assert.ok(sub.client.connected, 'the subscriber is unaffected');
    sub.messages.stop();
    await endClient(sub.client);
  });
});

// ---------------------------------------------------------------------------------------------------

describe('garbage and protocol violations close only the offending client', () => {
  let tb: TestBroker;
  let errors: ErrorEvent[];
  before(async () => {
    tb = await startBroker();
    errors = recordErrors(tb);
  });
  after(() => tb.close());

  interface Attack {
    name: string;
    version: 4 | 5 | null; // null = before CONNECT
    bytes: () => Buffer;
    /** Reason codes accepted in the v5 DISCONNECT and in the client.error event. */
    codes: number[];
  }

  /** Random bytes framed as one complete packet of a type other than CONNECT (`type` nibble). */
  function framedGarbage(type: number, length: number): Buffer {
    return Buffer.concat([Buffer.from([(type << 4) | (randomBytes(1)[0]! & 0x0f), length]), randomBytes(length)]);
  }

  const attacks: Attack[] = [
    { name: 'random garbage before CONNECT', version: null, bytes: () => framedGarbage([0, 2, 3, 4, 8, 12, 14, 15][randomBytes(1)[0]! % 8]!, 100), codes: [0x81, 0x82] },
    // 1 MB of unframed random bytes: whatever the first "header" says, the connection must end.
    { name: '1 MB of random bytes before CONNECT', version: null, bytes: () => randomBytes(1024 * 1024), codes: [0x81, 0x82, 0x95] },
    { name: 'PUBLISH before CONNECT', version: null, bytes: () => rawPublish({ topic: 'stream/x' }), codes: [0x82] },
    { name: 'v5: random garbage after CONNECT (reserved packet type 0)', version: 5, bytes: () => framedGarbage(0, 60), codes: [0x81, 0x82] },
    { name: 'v5: remaining length with 5 continuation bytes', version: 5, bytes: () => Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0]), codes: [0x81] },
    { name: 'v5: PUBLISH with QoS 3', version: 5, bytes: () => rawPublish({ flags: 0x06, topic: 'stream/x', packetId: 1, props: [] }), codes: [0x81] },
    { name: 'v5: a second CONNECT', version: 5, bytes: () => mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 30, clientId: 'again' }), codes: [0x82] },
    { name: 'v5: wildcard in a PUBLISH topic', version: 5, bytes: () => rawPublish({ topic: 'stream/+', props: [] }), codes: [0x90] },
    { name: 'v5: # in a PUBLISH topic', version: 5, bytes: () => rawPublish({ flags: 0x02, topic: 'stream/#', packetId: 3, props: [] }), codes: [0x90] },
    // SUBSCRIBE must have header flags 0b0010 (MQTT 5 §3.8.1); 0x80 has them cleared.
    { name: 'v5: SUBSCRIBE with bad header flags', version: 5, bytes: () => Buffer.from([0x80, 9, 0, 1, 0, ...str('a/b'), 1]), codes: [0x81] },
    { name: 'v3.1.1: remaining length with 5 continuation bytes', version: 4, bytes: () => Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]), codes: [0x81] },
    { name: 'v3.1.1: PUBLISH with QoS 3', version: 4, bytes: () => rawPublish({ flags: 0x06, topic: 'stream/x', packetId: 1 }), codes: [0x81] },
    { name: 'v3.1.1: a second CONNECT', version: 4, bytes: () => mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId: 'again4' }), codes: [0x82] },
    { name: 'v3.1.1: wildcard in a PUBLISH topic', version: 4, bytes: () => rawPublish({ topic: 'a/+/b' }), codes: [0x90] },
    { name: 'v3.1.1: SUBSCRIBE with bad header flags', version: 4, bytes: () => Buffer.from([0x80, 8, 0, 1, ...str('a/b'), 1]), codes: [0x81] },
  ];

  test('a stream of QoS 0/1 messages reaches its subscriber in full while attackers are cut off', async () => {
    const TOTAL = 600;
    const sub = await connectCollecting(tb.port, { clientId: 'stream-sub', protocolVersion: 5 });
    await sub.client.subscribeAsync('stream/data', { qos: 1 });
    const pub = await mqtt.connectAsync({ host: HOST, port: tb.port, protocolVersion: 4, reconnectPeriod: 0, clientId: 'stream-pub' });
    let publishing = true;
    const stream = (async () => {
      for (let i = 0; i < TOTAL; i++) {
        const qos = (i % 2) as 0 | 1;
        if (qos === 1) await pub.publishAsync('stream/data', String(i), { qos });
        else pub.publish('stream/data', String(i), { qos });
        if (i % 20 === 0) await delay(2);
      }
      publishing = false;
    })();

    const outcomes = await Promise.all(
      attacks.map(async (attack, index) => {
        await delay(index * 8);
        const raw = attack.version === null
          ? await openRaw(tb.port)
          : attack.version === 5
            ? await rawV5(tb.port, `attacker-${index}`)
            : await rawV4(tb.port, `attacker-${index}`);
        raw.send(attack.bytes());
        let disconnect: mqttPacket.IDisconnectPacket | undefined;
        let closeError: unknown = null;
        try {
          disconnect = await closedWith(raw, 3000);
        } catch (err) {
          closeError = err;
          raw.destroy();
        }
        return { attack, raw, disconnect, closeError, stillPublishing: publishing };
      }),
    );
    await stream;
    const got = await sub.messages.waitFor(TOTAL, 10_000).catch(() => sub.messages.messages);

    for (const { attack, raw, disconnect, closeError } of outcomes) {
      assert.equal(closeError, null, `${attack.name}: the server closed the connection`);
      const event = errors.find((e) => e.remoteAddress === addressOf(raw));
      assert.ok(event !== undefined, `${attack.name}: a client.error event was emitted`);
      assert.ok(attack.codes.includes(event.reasonCode), `${attack.name}: client.error reason 0x${event.reasonCode.toString(16)} (${event.message}), expected one of ${attack.codes.map((c) => '0x' + c.toString(16)).join(', ')}`);
      if (attack.version === 5) {
        assert.ok(disconnect !== undefined, `${attack.name}: v5 gets a DISCONNECT before the close`);
        assert.ok(attack.codes.includes(disconnect.reasonCode ?? 0), `${attack.name}: DISCONNECT reason 0x${(disconnect.reasonCode ?? 0).toString(16)}`);
      } else {
        assert.equal(disconnect, undefined, `${attack.name}: no DISCONNECT for v3 or before CONNECT`);
      }
      if (attack.version === null) {
        assert.equal(event.client, null, `${attack.name}: no client before CONNECT`);
        assert.deepEqual(raw.packets, [], `${attack.name}: nothing is sent to a client that never connected`);
      } else {
        assert.match(event.client?.clientId ?? '', /^attacker-/);
      }
    }
    assert.ok(outcomes.some((o) => o.stillPublishing), 'the attacks overlapped the stream');

    assert.equal(got.length, TOTAL, `the subscriber received every message (${got.length}/${TOTAL})`);
    assert.deepEqual(got.map((m) => m.payload.toString()), [...Array(TOTAL).keys()].map(String), 'in order, none lost or duplicated');
    await delay(100);
    assert.equal(sub.messages.messages.length, TOTAL, 'nothing extra (no attacker publish got through)');
    assert.ok(sub.client.connected && pub.connected, 'the good clients are still connected');
    sub.messages.stop();
    await endClient(pub);
    await endClient(sub.client);
  });

  test('a client may keep publishing normally after another client on the same topic was cut', async () => {
    const sub = await connectCollecting(tb.port, { clientId: 'after-sub' });
    await sub.client.subscribeAsync('after/#', { qos: 0 });
    const bad = await rawV4(tb.port, 'after-bad');
    bad.send(rawPublish({ topic: 'after/#' }));
    await bad.waitForClose(2000);
    const good = await rawV4(tb.port, 'after-good');
    good.send(rawPublish({ topic: 'after/ok', payload: Buffer.from('fine') }));
    const [m] = await sub.messages.waitFor(1);
    assert.equal(m!.payload.toString(), 'fine');
    good.disconnect();
    sub.messages.stop();
    await endClient(sub.client);
  });
});

// ---------------------------------------------------------------------------------------------------

describe('PUBLISH field errors (v5)', () => {
  test('v5 PUBLISH field errors: topic alias 0, topic alias above the maximum, packet identifier 0', async () => {
    const cases: Array<[string, Buffer, number[]]> = [
      // MQTT 5 §3.3.2.3.4: a Topic Alias of 0 is not permitted; the server answers DISCONNECT 0x94.
      ['topic alias 0', rawPublish({ topic: 'fields/x', props: [0x23, 0, 0] }), [0x94, 0x82]],
      ['topic alias above the maximum (10)', rawPublish({ topic: 'fields/x', props: [0x23, 0, 11] }), [0x94]],
      ['packet identifier 0', rawPublish({ flags: 0x02, topic: 'fields/x', packetId: 0, props: [] }), [0x82, 0x81]],
    ];
    const tb = await startBroker({ limits: { topicAliasMaximum: 10 } });
    const errors = recordErrors(tb);
    const sub = await connectCollecting(tb.port, { clientId: 'fields-sub' });
    await sub.client.subscribeAsync('fields/#', { qos: 1 });
    for (const [name, bytes, codes] of cases) {
      const raw = await rawV5(tb.port, `fields-${name}`);
      raw.send(bytes);
      const disconnect = await closedWith(raw, 2000).catch(() => null);
      raw.destroy();
      assert.ok(disconnect !== null, `${name}: the connection is closed`);
      assert.ok(disconnect !== undefined && codes.includes(disconnect.reasonCode ?? 0), `${name}: DISCONNECT reason 0x${(disconnect?.reasonCode ?? 0).toString(16)}, expected ${codes.map((c) => '0x' + c.toString(16)).join(' or ')}`);
      assert.ok(errors.some((e) => e.remoteAddress === addressOf(raw) && codes.includes(e.reasonCode)), `${name}: client.error`);
    }
    await delay(100);
    assert.deepEqual(sub.messages.messages.map((m) => m.topic), [], 'none of them was routed');
    sub.messages.stop();
    await endClient(sub.client);
    await tb.close();
  });

});

// ---------------------------------------------------------------------------------------------------

describe('CONNECT timeout, on mock time', () => {
  let tb: TestBroker;
  let probes = 0;
  before(async () => {
    tb = await startBroker({ limits: { connectTimeoutMs: 300 } });
  });
  after(() => tb.close());

  /**
   * A round trip through the broker on a new connection: the listener accepts connections in the
   * order they arrive, so once the probe's CONNACK is back, the connections opened before it are
   * accepted (their CONNECT timer armed) and what the broker did to them at the current time is done.
   */
  async function probe(): Promise<void> {
    const r = await rawConnect(tb.port);
    assert.equal((await r.handshake({ clientId: `probe-${++probes}`, keepalive: 0 })).returnCode, 0);
    r.destroy();
  }

  /** Not closed 1 ms before connectTimeoutMs (300), closed at it. */
  async function closedAtTimeout(time: MockTime, raw: RawClient): Promise<void> {
    await probe();
    time.tick(299);
    await probe();
    assert.equal(raw.closed, false, 'not closed before the timeout');
    time.tick(1);
    await raw.waitForClose(2000);
  }

  test('a socket that sends nothing is closed at connectTimeoutMs', MOCK_TIME_TEST, async (t) => {
    const time = mockTime(t);
    const raw = await rawConnect(tb.port);
    await closedAtTimeout(time, raw);
    assert.deepEqual(raw.packets, []);
  });

  test('a socket that sends half a CONNECT is closed too', MOCK_TIME_TEST, async (t) => {
    const time = mockTime(t);
    const raw = await rawConnect(tb.port);
    const connect = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId: 'half' });
    raw.send(connect.subarray(0, 8));
    await closedAtTimeout(time, raw);
  });

  test('a client that connects in time is not affected by the timer', MOCK_TIME_TEST, async (t) => {
    const time = mockTime(t);
    const raw = await rawConnect(tb.port);
    time.tick(150);
    const connack = await raw.handshake({ clientId: 'in-time', keepalive: 0 });
    assert.equal(connack.returnCode, 0);
    time.tick(500);
    assert.equal(isConnected(tb.broker, 'in-time'), true);
    raw.send({ cmd: 'pingreq' });
    assert.equal((await raw.next('pingresp')).cmd, 'pingresp');
    assert.equal(raw.closed, false);
    raw.disconnect();
  });
});

// ---------------------------------------------------------------------------------------------------

describe('caps', () => {
  const limits: Partial<BrokerLimits> = { maxQueued: 5, maxInflight: 3, maxSubscriptions: 3, maxTopicLength: 32, maxTopicDepth: 4 };
  let tb: TestBroker;
  let errors: ErrorEvent[];
  const dropped: Array<{ clientId: string; message: Message; reason: string }> = [];
  before(async () => {
    tb = await startBroker({ limits });
    errors = recordErrors(tb);
    tb.broker.on('message.dropped', (client, message, reason) => dropped.push({ clientId: client.clientId, message, reason }));
  });
  after(() => tb.close());

  async function publishAll(items: Array<{ topic: string; payload: string; qos: 0 | 1 }>): Promise<void> {
    const pub = await mqtt.connectAsync({ host: HOST, port: tb.port, protocolVersion: 4, reconnectPeriod: 0 });
    for (const m of items) await pub.publishAsync(m.topic, m.payload, { qos: m.qos });
    // A QoS 1 publish is acknowledged after routing; QoS 0 ones need a round trip to be sure.
    await pub.publishAsync('flush/marker', '', { qos: 1 });
    await endClient(pub, false);
  }

  for (const version of [4, 5] as const) {
    test(`maxQueued (v${version === 4 ? '3.1.1 clean=false' : '5 session expiry'}): exactly the cap is delivered on reconnect, the rest counted as dropped`, async () => {
      const clientId = `queued-v${version}`;
      const sessionOpts: IClientOptions = version === 5
        ? { clientId, protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 3600 } }
        : { clientId, protocolVersion: 4, clean: false };
      const first = await connectCollecting(tb.port, { ...sessionOpts, clean: version === 5 ? true : false });
      await first.client.subscribeAsync(`queued/${version}`, { qos: 1 });
      first.messages.stop();
      await endClient(first.client, false);

      const droppedBefore = tb.broker.counters.dropped;
      const eventsBefore = dropped.length;
      const items = [...Array(8).keys()].map((i) => ({ topic: `queued/${version}`, payload: `m${i}`, qos: 1 as const }));
      await publishAll(items);

      const again = await connectCollecting(tb.port, sessionOpts);
      assert.equal(again.connack.sessionPresent, true);
      const got = await again.messages.waitFor(5);
      assert.deepEqual(got.map((m) => m.payload.toString()), ['m0', 'm1', 'm2', 'm3', 'm4'], 'the first five (the cap), in order');
      await delay(300);
      assert.equal(again.messages.messages.length, 5, 'no more than the cap');
      assert.equal(tb.broker.counters.dropped - droppedBefore, 3, 'counters.dropped counts the other three');
      const events = dropped.slice(eventsBefore);
      assert.deepEqual(events.map((e) => [e.clientId, e.message.payload.toString()]), [[clientId, 'm5'], [clientId, 'm6'], [clientId, 'm7']]);
      assert.ok(events.every((e) => /queue full/.test(e.reason)), events.map((e) => e.reason).join('; '));
      again.messages.stop();
      // Clean up the persistent session.
      await endClient(again.client, false);
      const cleaner = await connectCollecting(tb.port, { clientId, protocolVersion: version, clean: true });
      await endClient(cleaner.client, false);
    });
  }

  test('maxQueued with mixed QoS: the oldest QoS 0 messages are dropped first', async () => {
    const clientId = 'queued-mixed';
    const sessionOpts: IClientOptions = { clientId, protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 3600 } };
    const first = await connectCollecting(tb.port, { ...sessionOpts, clean: true });
    await first.client.subscribeAsync('mixed/t', { qos: 1 });
    first.messages.stop();
    await endClient(first.client, false);

    const droppedBefore = tb.broker.counters.dropped;
    const eventsBefore = dropped.length;
    const qos = [0, 1, 0, 1, 1, 1, 1, 1] as const;
    await publishAll(qos.map((q, i) => ({ topic: 'mixed/t', payload: `m${i}q${q}`, qos: q })));

    const again = await connectCollecting(tb.port, sessionOpts);
    assert.equal(again.connack.sessionPresent, true);
    const got = await again.messages.waitFor(5);
    // Queue of 5 filled by m0..m4; m5 pushes out m0 (oldest QoS 0), m6 pushes out m2, m7 finds no QoS 0 and is dropped.
    assert.deepEqual(got.map((m) => m.payload.toString()), ['m1q1', 'm3q1', 'm4q1', 'm5q1', 'm6q1']);
    await delay(300);
    assert.equal(again.messages.messages.length, 5);
    assert.equal(tb.broker.counters.dropped - droppedBefore, 3);
    assert.deepEqual(dropped.slice(eventsBefore).map((e) => e.message.payload.toString()), ['m0q0', 'm2q0', 'm7q1']);
    again.messages.stop();
    await endClient(again.client, false);
    const cleaner = await connectCollecting(tb.port, { clientId, protocolVersion: 5, clean: true });
    await endClient(cleaner.client, false);
  });

  test('maxInflight: a v3.1.1 client that never acknowledges has only maxInflight QoS 1 messages in flight', async () => {
    const raw = await rawV4(tb.port, 'no-acks');
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'inflight/t', qos: 1 }] });
    await raw.next('suback');
    // 8 = 3 in flight + 5 queued (maxQueued), so nothing is dropped.
    await publishAll([...Array(8).keys()].map((i) => ({ topic: 'inflight/t', payload: `m${i}`, qos: 1 as const })));
    await delay(200);
    const publishes = (): mqttPacket.IPublishPacket[] => raw.packets.filter((p): p is mqttPacket.IPublishPacket => p.cmd === 'publish');
    assert.equal(publishes().length, 3, 'exactly maxInflight (3) sent without acknowledgement');
    assert.deepEqual(publishes().map((p) => p.payload.toString()), ['m0', 'm1', 'm2']);
    const ids = publishes().map((p) => p.messageId);
    assert.equal(new Set(ids).size, 3, 'distinct packet identifiers');

    raw.send({ cmd: 'puback', messageId: ids[0]! });
    await waitUntil(() => publishes().length >= 4, 'one more after one PUBACK');
    await delay(150);
    assert.equal(publishes().length, 4, 'one acknowledgement frees exactly one slot');

    // Acknowledge everything as it comes: the remaining messages all arrive, in order.
    for (let acked = 1; acked < 8; acked++) {
      await waitUntil(() => publishes().length > acked, `message ${acked}`);
      raw.send({ cmd: 'puback', messageId: publishes()[acked]!.messageId! });
    }
    assert.deepEqual(publishes().map((p) => p.payload.toString()), [...Array(8).keys()].map((i) => `m${i}`));
    raw.disconnect();
  });

  for (const version of [4, 5] as const) {
    test(`maxSubscriptions (v${version === 4 ? '3.1.1' : '5'}): subscriptions beyond the cap get a SUBACK failure`, async () => {
      const raw = version === 5 ? await rawV5(tb.port, `subs-v${version}`) : await rawV4(tb.port, `subs-v${version}`);
      const topic = `subs${version}`;
      const subscribe = async (messageId: number, filters: Array<[string, 0 | 1]>): Promise<number[]> => {
        raw.send({ cmd: 'subscribe', messageId, subscriptions: filters.map(([t, qos]) => ({ topic: t, qos })) });
        const suback = (await raw.next('suback')) as mqttPacket.ISubackPacket;
        assert.equal(suback.messageId, messageId);
        return suback.granted as number[];
      };
      const failure = version === 5 ? 0x97 : 0x80;
      // Four filters in one SUBSCRIBE with a cap of 3.
      assert.deepEqual(await subscribe(1, [[`${topic}/a`, 1], [`${topic}/b`, 1], [`${topic}/c`, 0], [`${topic}/d`, 1]]), [1, 1, 0, failure]);
      // One more in a later SUBSCRIBE is refused too.
      assert.deepEqual(await subscribe(2, [[`${topic}/e`, 1]]), [failure]);
      // Re-subscribing to an existing filter is not a new subscription and is allowed at the cap.
      assert.deepEqual(await subscribe(3, [[`${topic}/a`, 0]]), [0]);
      // The refused filters deliver nothing; the granted ones do.
      await publishAll([{ topic: `${topic}/d`, payload: 'no', qos: 1 }, { topic: `${topic}/e`, payload: 'no', qos: 1 }, { topic: `${topic}/b`, payload: 'yes', qos: 1 }]);
      const first = (await raw.next('publish')) as mqttPacket.IPublishPacket;
      assert.equal(first.topic, `${topic}/b`);
      if (first.messageId !== undefined) raw.send({ cmd: 'puback', messageId: first.messageId });
      await delay(100);
      assert.equal(raw.packets.filter((p) => p.cmd === 'publish').length, 1);
      // Unsubscribing frees a slot.
      raw.send({ cmd: 'unsubscribe', messageId: 4, unsubscriptions: [`${topic}/c`] });
      await raw.next('unsuback');
      assert.deepEqual(await subscribe(5, [[`${topic}/d`, 1]]), [1]);
      raw.disconnect();
    });
  }

  test('maxTopicLength / maxTopicDepth on SUBSCRIBE: filters over the limits get a SUBACK failure', async () => {
    for (const version of [4, 5] as const) {
      const raw = version === 5 ? await rawV5(tb.port, `topic-limits-sub-v${version}`) : await rawV4(tb.port, `topic-limits-sub-v${version}`);
      raw.send({ cmd: 'subscribe', messageId: 9, subscriptions: [{ topic: 'a/b/c/d', qos: 1 }, { topic: 'a/b/c/d/e', qos: 1 }, { topic: 'x'.repeat(33), qos: 1 }] });
      const suback = (await raw.next('suback')) as mqttPacket.ISubackPacket;
      const failure = version === 5 ? 0x8f : 0x80;
      assert.deepEqual(suback.granted, [1, failure, failure], `v${version}`);
      raw.disconnect();
    }
  });

  test('maxTopicLength / maxTopicDepth on PUBLISH: topics at the limit pass, beyond it are refused (v5 reason 0x90)', async () => {
    const sub = await connectCollecting(tb.port, { clientId: 'topic-limits-watch' });
    await sub.client.subscribeAsync('#', { qos: 0 });
    const ok32 = 'y'.repeat(32);
    const pub = await rawV5(tb.port, 'topic-limits-ok');
    pub.send(rawPublish({ topic: ok32, props: [] }));
    pub.send(rawPublish({ topic: 'a/b/c/d', props: [] }));
    const got = await sub.messages.waitFor(2);
    assert.deepEqual(got.map((m) => m.topic).sort(), ['a/b/c/d', ok32].sort());
    pub.disconnect();

    for (const [name, topic] of [['33 bytes', 'z'.repeat(33)], ['5 levels', 'a/b/c/d/e']] as const) {
      const bad = await rawV5(tb.port, `topic-limits-${name}`);
      bad.send(rawPublish({ flags: 0x02, topic, packetId: 5, props: [] }));
      // MQTT 5 allows either a PUBACK 0x90 or a DISCONNECT 0x90 (§3.3.2.1, §4.13).
      await Promise.race([bad.waitForClose(2000).catch(() => undefined), bad.next('puback', 2000).catch(() => undefined)]);
      const reply = bad.packets.find((p) => p.cmd === 'puback' || p.cmd === 'disconnect') as mqttPacket.IPubackPacket | mqttPacket.IDisconnectPacket | undefined;
      assert.ok(reply !== undefined, `${name}: the client is told`);
      assert.equal(reply.reasonCode, 0x90, `${name}: Topic Name invalid`);
      bad.destroy();
      const v3 = await rawV4(tb.port, `topic-limits-v3-${name}`);
      v3.send(rawPublish({ topic }));
      await v3.waitForClose(2000);
    }
    await delay(100);
    assert.equal(sub.messages.messages.length, 2, 'no over-limit topic was delivered');
    assert.ok(errors.some((e) => e.reasonCode === 0x90 && e.client?.clientId === 'topic-limits-v3-33 bytes'), 'the v3 refusal is reported as client.error 0x90');
    sub.messages.stop();
    await endClient(sub.client);
  });
});

describe('maxHeldAcks: input flow control while the platform holds acknowledgements', () => {
  const HELD = 8;
  let tb: TestBroker;
  /** Publishes the onPublish hook has seen and not yet released. */
  const seen: Array<{ payload: string; release: () => void }> = [];
  before(async () => {
    tb = await startBroker({
      limits: { maxHeldAcks: HELD },
      hooks: {
        onPublish(_client, message) {
          return new Promise<void>((release) => seen.push({ payload: message.payload.toString(), release }));
        },
      },
    });
  });
  after(async () => {
    for (const held of seen.splice(0)) held.release();
    await tb.close();
  });

  test('a v3.1.1 client sending 40 QoS 1 publishes at once: the broker stops reading at the cap, reads again as acks go out, loses nothing, keeps the connection past its keepalive', MOCK_TIME_TEST, async (t) => {
    const time = mockTime(t);
    const { raw } = await WireClient.connect(tb.port, { clientId: 'held-v3', keepalive: 1 }, 4);
    try {
      for (let i = 1; i <= 40; i++) raw.send({ cmd: 'publish', topic: 'held/x', payload: Buffer.from(`m${i}`), qos: 1, messageId: i, retain: false, dup: false });
      await settle(() => seen.length >= HELD, 3000, 'the hook to hold the cap');
      // Well past 1.5 x keepalive without reading anything from the client: no keepalive kick.
      time.tick(2_000);
      assert.equal(seen.length, HELD, 'nothing more is read while the cap is held');
      assert.equal(isConnected(tb.broker, 'held-v3'), true, 'held input is the broker\'s doing, not a keepalive lapse');
      assert.equal(raw.closed, false);

      const released: string[] = [];
      while (released.length < 40) {
        await settle(() => seen.length > 0, 3000, `publish ${released.length + 1} to reach the hook`);
        const next = seen.shift()!;
        released.push(next.payload);
        next.release();
        assert.ok(seen.length < HELD, `at most ${HELD} held at once`);
      }
      assert.deepEqual(released, Array.from({ length: 40 }, (_, i) => `m${i + 1}`), 'every publish reaches the hook once, in order');
      const acks = (await raw.takeN(40, (f) => f.type === PUBACK, 3000)).map((f) => ackOf(f).packetId);
      assert.deepEqual(acks, Array.from({ length: 40 }, (_, i) => i + 1));
    } finally {
      raw.destroy();
    }
  });
});
