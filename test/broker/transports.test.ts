/**
 * Transports (SPEC §2, issue 3): MQTT over TLS with a certificate generated here, MQTT over
 * WebSocket (/mqtt, sub-protocol "mqtt", MQTT 5 §6), and messages crossing between TCP, TLS and WS.
 * Real clients: MQTT.js (v3.1.1 and v5), mosquitto_pub/mosquitto_sub, raw sockets for wire checks.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { WebSocket } from 'ws';
import { Broker } from '../../src/broker/broker.ts';
import type { ClientInfo } from '../../src/broker/client-info.ts';
import { HOST, MessageCollector, delay, endClient } from './helpers.ts';
import { CrashGuard, makeTestCert, run, startMosquittoSub, waitUntil, type TestCert } from './wire-helpers.ts';

let cert: TestCert;
let broker: Broker;
let tcpPort: number;
let tlsPort: number;
let wsPort: number;
const connected: ClientInfo[] = [];
const guard = new CrashGuard();
const clients: MqttClient[] = [];

before(async () => {
  guard.install();
  cert = makeTestCert();
  broker = new Broker();
  broker.on('client.connect', (client) => connected.push(client));
  await broker.start();
  tcpPort = (await broker.listenTcp({ host: HOST, port: 0 })).port;
  tlsPort = (await broker.listenTls({ host: HOST, port: 0, cert: cert.cert, key: cert.key })).port;
  wsPort = (await broker.listenWs({ host: HOST, port: 0 })).port;
});

after(async () => {
  await Promise.all(clients.map((c) => endClient(c)));
  await broker.close();
  cert.remove();
  guard.uninstall();
  assert.deepEqual(guard.errors, [], 'nothing was thrown out of the broker');
});

type Kind = 'tcp' | 'tls' | 'ws';

async function open(kind: Kind, protocolVersion: 4 | 5, extra: IClientOptions = {}): Promise<MqttClient> {
  const common: IClientOptions = { protocolVersion, reconnectPeriod: 0, connectTimeout: 5000, ...extra };
  let client: MqttClient;
  if (kind === 'tcp') client = await mqtt.connectAsync({ ...common, host: HOST, port: tcpPort, protocol: 'mqtt' });
  else if (kind === 'tls') client = await mqtt.connectAsync({ ...common, host: HOST, port: tlsPort, protocol: 'mqtts', ca: cert.cert });
  else client = await mqtt.connectAsync(`ws://${HOST}:${wsPort}/mqtt`, common);
  clients.push(client);
  return client;
}

let topicSeq = 0;
function uniqueTopic(prefix: string): string {
  return `${prefix}/${process.pid}/${++topicSeq}`;
}

/**
 * Subscribes on `sub`, publishes QoS 0, 1 and 2 messages (one with retain) from `pub`, and checks
 * that every message arrives once, in order, with payload and QoS intact.
 */
async function roundTrip(pub: MqttClient, sub: MqttClient, label: string): Promise<void> {
  const topic = uniqueTopic(label);
  await sub.subscribeAsync(`${topic}/#`, { qos: 2 });
  const collector = new MessageCollector(sub);
  try {
    const sent: Array<{ topic: string; payload: string; qos: 0 | 1 | 2 }> = [];
    for (let i = 0; i < 9; i++) {
      const qos = (i % 3) as 0 | 1 | 2;
      const m = { topic: `${topic}/${i}`, payload: `${label}-${i}-${'x'.repeat(i * 37)}`, qos };
      sent.push(m);
      await pub.publishAsync(m.topic, m.payload, { qos });
    }
    // A large message (several TCP/TLS records, one WS frame) too.
    const big = { topic: `${topic}/big`, payload: 'B'.repeat(100_000), qos: 1 as const };
    sent.push(big);
    await pub.publishAsync(big.topic, big.payload, { qos: 1 });
    const got = await collector.waitFor(sent.length, 5000);
    assert.deepEqual(
      got.map((m) => ({ topic: m.topic, payload: m.payload.toString(), qos: m.packet.qos })),
      sent,
      `${label}: every message once, in order`,
    );
    await delay(50);
    assert.equal(collector.messages.length, sent.length, `${label}: no duplicates`);
  } finally {
    collector.stop();
  }
}

function lastConnected(clientId: string): ClientInfo | undefined {
  return connected.filter((c) => c.clientId === clientId).at(-1);
}

describe('TLS', () => {
  for (const version of [4, 5] as const) {
    test(`MQTT.js v${version === 4 ? '3.1.1' : '5'} over mqtts:// with the test CA: publish/subscribe round trip`, async () => {
      const sub = await open('tls', version, { clientId: `tls-sub-v${version}` });
      const pub = await open('tls', version, { clientId: `tls-pub-v${version}` });
      assert.equal(lastConnected(`tls-sub-v${version}`)?.transport, 'tls');
      assert.equal(lastConnected(`tls-sub-v${version}`)?.protocolVersion, version);
      await roundTrip(pub, sub, `tls-v${version}`);
      await endClient(pub);
      await endClient(sub);
    });
  }

  test('the certificate is really checked: a client that does not trust it cannot connect', async () => {
    await assert.rejects(
      mqtt.connectAsync({ host: HOST, port: tlsPort, protocol: 'mqtts', reconnectPeriod: 0, connectTimeout: 3000 }),
      /self[- ]signed|certificate/i,
    );
  });

  for (const [flag, name] of [['mqttv311', 'v3.1.1'], ['mqttv5', 'v5']] as const) {
    test(`mosquitto_sub and mosquitto_pub over TLS with --cafile (${name})`, async () => {
      const topic = uniqueTopic(`mosq-tls-${name}`);
      const sub = await startMosquittoSub(['-h', HOST, '-p', String(tlsPort), '--cafile', cert.certPath, '-V', flag, '-q', '1', '-t', topic, '-C', '3', '-i', `mosq-sub-${name}`]);
      try {
        for (let i = 0; i < 3; i++) {
          const r = await run('mosquitto_pub', ['-h', HOST, '-p', String(tlsPort), '--cafile', cert.certPath, '-V', flag, '-q', String(i % 2), '-t', topic, '-m', `hello-${i}`]);
          assert.equal(r.code, 0, `mosquitto_pub exit code; stderr: ${r.stderr}`);
        }
        const got = await sub.waitFor(3);
        assert.deepEqual(got, [0, 1, 2].map((i) => ({ topic, payload: `hello-${i}` })));
        assert.equal(await sub.exited(), 0, 'mosquitto_sub exits cleanly after -C 3');
      } finally {
        sub.stop();
      }
      assert.equal(lastConnected(`mosq-sub-${name}`)?.transport, 'tls');
    });
  }

  test('mosquitto_pub over TLS reaches an MQTT.js subscriber on plain TCP and vice versa', async () => {
    const topic = uniqueTopic('tls-to-tcp');
    const tcpSub = await open('tcp', 4);
    await tcpSub.subscribeAsync(topic, { qos: 1 });
    const collector = new MessageCollector(tcpSub);
    const r = await run('mosquitto_pub', ['-h', HOST, '-p', String(tlsPort), '--cafile', cert.certPath, '-q', '1', '-t', topic, '-m', 'via-tls']);
    assert.equal(r.code, 0, r.stderr);
    const [m] = await collector.waitFor(1);
    assert.equal(m!.payload.toString(), 'via-tls');
    collector.stop();
    await endClient(tcpSub);
  });

  test('a plain-TCP client on the TLS port fails without affecting a connected TLS client', async () => {
    const topic = uniqueTopic('tls-survivor');
    const sub = await open('tls', 5, { clientId: 'tls-survivor-sub' });
    const pub = await open('tls', 4, { clientId: 'tls-survivor-pub' });
    await sub.subscribeAsync(topic, { qos: 1 });
    const collector = new MessageCollector(sub);
    await pub.publishAsync(topic, 'before', { qos: 1 });

    // Plain MQTT bytes on the TLS port: the TLS handshake fails and only that socket is closed.
    const plain = net.connect({ host: HOST, port: tlsPort });
    const received: Buffer[] = [];
    let closed = false;
    plain.on('data', (d: Buffer) => received.push(d));
    plain.on('error', () => undefined);
    plain.on('close', () => (closed = true));
    await new Promise<void>((resolve, reject) => {
      plain.once('connect', () => resolve());
      plain.once('error', reject);
    });
    plain.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId: 'plain-on-tls' }));
    plain.write(mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.from('from-plain'), qos: 0, retain: false, dup: false }));
    await waitUntil(() => closed, 'the plain socket to be closed', 3000);
    const bytes = Buffer.concat(received);
    // No CONNACK (0x20) can have come back: the server can only have spoken TLS (an alert, 0x15) or nothing.
    assert.ok(bytes.length === 0 || bytes[0] !== 0x20, `unexpected reply ${bytes.toString('hex')}`);
    assert.equal(lastConnected('plain-on-tls'), undefined, 'the plain client never became an MQTT client');

    await pub.publishAsync(topic, 'after', { qos: 1 });
    const got = await collector.waitFor(2);
    assert.deepEqual(got.map((m) => m.payload.toString()), ['before', 'after']);
    await delay(50);
    assert.equal(collector.messages.length, 2, 'the plain client published nothing');
    assert.ok(sub.connected && pub.connected, 'the TLS clients are still connected');
    collector.stop();
    await endClient(pub);
    await endClient(sub);
  });
});

describe('WebSocket', () => {
  for (const version of [4, 5] as const) {
    test(`MQTT.js v${version === 4 ? '3.1.1' : '5'} over ws://…/mqtt: publish/subscribe round trip`, async () => {
      const sub = await open('ws', version, { clientId: `ws-sub-v${version}` });
      const pub = await open('ws', version, { clientId: `ws-pub-v${version}` });
      assert.equal(lastConnected(`ws-sub-v${version}`)?.transport, 'ws');
      await roundTrip(pub, sub, `ws-v${version}`);
      await endClient(pub);
      await endClient(sub);
    });
  }

  const crossings: Array<[Kind, Kind, 4 | 5]> = [
    ['ws', 'tcp', 4],
    ['tcp', 'ws', 5],
    ['ws', 'tls', 5],
    ['tls', 'ws', 4],
  ];
  for (const [from, to, version] of crossings) {
    test(`cross-transport: ${from.toUpperCase()} publisher → ${to.toUpperCase()} subscriber (v${version === 4 ? '3.1.1' : '5'})`, async () => {
      const sub = await open(to, version);
      const pub = await open(from, version);
      await roundTrip(pub, sub, `${from}-${to}`);
      await endClient(pub);
      await endClient(sub);
    });
  }

  test('mosquitto_pub on TCP reaches an MQTT.js subscriber on WebSocket', async () => {
    const topic = uniqueTopic('mosq-to-ws');
    const sub = await open('ws', 5);
    await sub.subscribeAsync(topic, { qos: 1 });
    const collector = new MessageCollector(sub);
    const r = await run('mosquitto_pub', ['-h', HOST, '-p', String(tcpPort), '-V', 'mqttv5', '-q', '1', '-t', topic, '-m', 'hi-ws']);
    assert.equal(r.code, 0, r.stderr);
    const [m] = await collector.waitFor(1);
    assert.equal(m!.payload.toString(), 'hi-ws');
    collector.stop();
    await endClient(sub);
  });

  test('a WebSocket client sending a text frame is closed; other clients keep working', async () => {
    const topic = uniqueTopic('ws-text');
    const good = await open('ws', 4);
    await good.subscribeAsync(topic, { qos: 0 });
    const collector = new MessageCollector(good);

    const ws = await openRawWs();
    ws.socket.send(mqttPacket.generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clean: true, keepalive: 30, clientId: "ws-text" }));
    const connack = await ws.nextPacket();
    assert.equal(connack.cmd, 'connack');
    // The same PUBLISH as a text frame: MQTT 5 §6 says the connection must be closed.
    const publish = mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.from('as-text'), qos: 0, retain: false, dup: false });
    ws.socket.send(publish.toString('latin1'), { binary: false });
    await ws.closed(3000);

    const pub = await open('tcp', 4);
    await pub.publishAsync(topic, 'ok', { qos: 0 });
    const got = await collector.waitFor(1);
    assert.equal(got[0]!.payload.toString(), 'ok');
    await delay(50);
    assert.deepEqual(collector.messages.map((m) => m.payload.toString()), ['ok'], 'the text frame was not routed');
    collector.stop();
    await endClient(pub);
    await endClient(good);
  });

  test('many small packets in one WebSocket frame are all processed', async () => {
    const topic = uniqueTopic('ws-batch');
    const ws = await openRawWs();
    const n0 = 300;
    const n1 = 100;
    const packets: Buffer[] = [
      mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId: 'ws-batch' }),
      mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `${topic}/+`, qos: 1 }] }),
    ];
    for (let i = 0; i < n0; i++) packets.push(mqttPacket.generate({ cmd: 'publish', topic: `${topic}/q0`, payload: Buffer.from(String(i)), qos: 0, retain: false, dup: false }));
    for (let i = 0; i < n1; i++) packets.push(mqttPacket.generate({ cmd: 'publish', topic: `${topic}/q1`, payload: Buffer.from(String(i)), qos: 1, messageId: 100 + i, retain: false, dup: false }));
    packets.push(mqttPacket.generate({ cmd: 'pingreq' }));
    const frame = Buffer.concat(packets);
    ws.socket.send(frame, { binary: true });

    const expected = 1 + 1 + n0 + n1 /* publishes back */ + n1 /* pubacks */ + 1;
    await waitUntil(() => ws.packets.length >= expected, `${expected} packets back (got ${ws.packets.length})`, 5000);
    const byCmd = (cmd: Packet['cmd']): Packet[] => ws.packets.filter((p) => p.cmd === cmd);
    assert.equal(ws.packets[0]!.cmd, 'connack');
    assert.equal(byCmd('suback').length, 1);
    assert.equal(byCmd('pingresp').length, 1);
    const pubacks = byCmd('puback') as mqttPacket.IPubackPacket[];
    assert.deepEqual(pubacks.map((p) => p.messageId), [...Array(n1).keys()].map((i) => 100 + i), 'every QoS 1 publish acknowledged in order');
    const publishes = byCmd('publish') as mqttPacket.IPublishPacket[];
    assert.deepEqual(
      publishes.filter((p) => p.topic.endsWith('/q0')).map((p) => p.payload.toString()),
      [...Array(n0).keys()].map(String),
    );
    assert.deepEqual(
      publishes.filter((p) => p.topic.endsWith('/q1')).map((p) => p.payload.toString()),
      [...Array(n1).keys()].map(String),
    );
    assert.deepEqual(ws.parseErrors, []);
    ws.socket.close();
  });

  test('a packet split across WebSocket frames is reassembled', async () => {
    const topic = uniqueTopic('ws-split');
    const sub = await open('tcp', 4);
    await sub.subscribeAsync(topic, { qos: 0 });
    const collector = new MessageCollector(sub);
    const ws = await openRawWs();
    const bytes = Buffer.concat([
      mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId: 'ws-split' }),
      mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.from('pieces'.repeat(50)), qos: 0, retain: false, dup: false }),
    ]);
    for (let i = 0; i < bytes.length; i += 7) ws.socket.send(bytes.subarray(i, i + 7), { binary: true });
    const [m] = await collector.waitFor(1);
    assert.equal(m!.payload.toString(), 'pieces'.repeat(50));
    collector.stop();
    ws.socket.close();
    await endClient(sub);
  });

  test('the WebSocket server speaks sub-protocol "mqtt"', async () => {
    const ws = await openRawWs();
    assert.equal(ws.socket.protocol, 'mqtt');
    ws.socket.close();
  });

  test('the stand-alone WebSocket listener refuses an upgrade on another path instead of leaving it hanging', async () => {
    const other = new WebSocket(`ws://${HOST}:${wsPort}/elsewhere`, 'mqtt');
    const outcome = await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve('no answer within 1 s'), 1000);
      other.on('open', () => {
        clearTimeout(timer);
        resolve('open');
      });
      other.on('error', () => {
        clearTimeout(timer);
        resolve('refused');
      });
    });
    other.terminate();
    assert.equal(outcome, 'refused', 'an upgrade on a path other than /mqtt is answered with an HTTP error');
  });
});

interface RawWs {
  socket: WebSocket;
  packets: Packet[];
  parseErrors: Error[];
  nextPacket(timeoutMs?: number): Promise<Packet>;
  closed(timeoutMs: number): Promise<void>;
}

/** A WebSocket speaking raw MQTT bytes: what it receives is parsed with mqtt-packet. */
async function openRawWs(): Promise<RawWs> {
  const socket = new WebSocket(`ws://${HOST}:${wsPort}/mqtt`, 'mqtt');
  const packets: Packet[] = [];
  const parseErrors: Error[] = [];
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  parser.on('packet', (p: Packet) => packets.push(p));
  parser.on('error', (e: Error) => parseErrors.push(e));
  let isClosed = false;
  socket.on('message', (data: Buffer) => parser.parse(data));
  socket.on('close', () => (isClosed = true));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('WebSocket did not open')), 3000);
    socket.once('open', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  let cursor = 0;
  return {
    socket,
    packets,
    parseErrors,
    nextPacket: async (timeoutMs = 3000) => {
      await waitUntil(() => packets.length > cursor, 'a packet over WebSocket', timeoutMs);
      return packets[cursor++]!;
    },
    closed: (timeoutMs) => waitUntil(() => isClosed, 'the WebSocket to be closed by the server', timeoutMs),
  };
}
