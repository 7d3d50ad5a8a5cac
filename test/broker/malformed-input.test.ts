/**
 * Malformed input named right and as strict as the spec (issue 14; the fuzzer's findings). Each
 * packet below is sent as raw bytes after a good CONNECT. v5 clients get DISCONNECT with Malformed
 * Packet (0x81) or Protocol Error (0x82), as MQTT 5 §2.2.2.2, §1.5.4, §3.4-3.10 assign them, and a
 * reason string naming what was wrong; v3 clients are closed (3.1.1 §4.8). Only the offending client
 * is closed. 0x83 is left for the broker's own faults, which are reported with the error itself.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientInfo } from '../../src/broker/client-info.ts';
import { startBroker, type TestBroker } from './helpers.ts';
import { DISCONNECT, UNSUBACK, WireClient, connectMqttJs, disconnectOf, endAll, withTimeout } from './v5-helpers.ts';
import { str, varint } from './wire-bytes.ts';

const MALFORMED = 0x81;
const PROTOCOL_ERROR = 0x82;

/** A packet: first byte, then the body with its remaining length in front. */
function packet(first: number, body: number[]): Buffer {
  return Buffer.from([first, ...varint(body.length), ...body]);
}

/** A property section: its length, then the bytes. */
function props(bytes: number[]): number[] {
  return [...varint(bytes.length), ...bytes];
}

const REASON_STRING = 0x1f;
const USER_PROPERTY = 0x26;
const TOPIC_ALIAS = 0x23;
const BAD_UTF8_FILTER = [0x00, 0x04, 0x66, 0x7a, 0x2f, 0xff]; // "fz/" and a lone 0xFF

interface Case {
  name: string;
  version: 4 | 5;
  bytes: Buffer;
  code: number;
  /** What the reason string must say. */
  says: RegExp;
}

const cases: Case[] = [
  // The fuzzer's v5 UNSUBSCRIBE `a202dd7c` ends after the packet identifier: its property length
  // (required in v5, §3.10.2.1) is missing, so it is malformed; with the length and no filter it is
  // a Protocol Error (§3.10.3).
  { name: 'v5 UNSUBSCRIBE a202dd7c (no property length, no filter)', version: 5, bytes: Buffer.from('a202dd7c', 'hex'), code: MALFORMED, says: /UNSUBSCRIBE without its property length/ },
  { name: 'v5 UNSUBSCRIBE with properties and no filter', version: 5, bytes: packet(0xa2, [0xdd, 0x7c, 0]), code: PROTOCOL_ERROR, says: /UNSUBSCRIBE without topic filters/ },
  { name: 'v3.1.1 UNSUBSCRIBE a2020001 (no filter, MQTT-3.10.3-2)', version: 4, bytes: Buffer.from('a2020001', 'hex'), code: PROTOCOL_ERROR, says: /UNSUBSCRIBE without topic filters/ },
  { name: 'v5 SUBSCRIBE with no filter', version: 5, bytes: packet(0x82, [0, 1, 0]), code: PROTOCOL_ERROR, says: /SUBSCRIBE without topic filters/ },

  { name: 'v3.1.1 PUBLISH 30070004667a2fff78 (topic not UTF-8, MQTT-1.5.4-1)', version: 4, bytes: Buffer.from('30070004667a2fff78', 'hex'), code: MALFORMED, says: /PUBLISH topic name is not valid UTF-8/ },
  { name: 'v5 PUBLISH with a topic that is not UTF-8', version: 5, bytes: Buffer.from('30080004667a2fff0078', 'hex'), code: MALFORMED, says: /PUBLISH topic name is not valid UTF-8/ },
  { name: 'v5 PUBLISH with an encoded surrogate (U+D800) in the topic', version: 5, bytes: packet(0x30, [0, 5, 0x61, 0x2f, 0xed, 0xa0, 0x80, 0, 0x78]), code: MALFORMED, says: /not valid UTF-8/ },
  { name: 'v5 PUBLISH with a user property that is not UTF-8', version: 5, bytes: packet(0x30, [...str('a/b'), ...props([USER_PROPERTY, 0, 1, 0xc3, 0, 1, 0x61]), 0x78]), code: MALFORMED, says: /PUBLISH user property name is not valid UTF-8/ },
  { name: 'v5 SUBSCRIBE filter that is not UTF-8', version: 5, bytes: packet(0x82, [0, 1, 0, ...BAD_UTF8_FILTER, 1]), code: MALFORMED, says: /SUBSCRIBE topic filter is not valid UTF-8/ },
  { name: 'v3.1.1 SUBSCRIBE filter that is not UTF-8', version: 4, bytes: packet(0x82, [0, 1, ...BAD_UTF8_FILTER, 1]), code: MALFORMED, says: /SUBSCRIBE topic filter is not valid UTF-8/ },
  { name: 'v5 UNSUBSCRIBE filter that is not UTF-8', version: 5, bytes: packet(0xa2, [0, 1, 0, ...BAD_UTF8_FILTER]), code: MALFORMED, says: /UNSUBSCRIBE topic filter is not valid UTF-8/ },
  { name: 'v3.1.1 UNSUBSCRIBE filter that is not UTF-8', version: 4, bytes: packet(0xa2, [0, 1, ...BAD_UTF8_FILTER]), code: MALFORMED, says: /UNSUBSCRIBE topic filter is not valid UTF-8/ },

  // MQTT-2.2.1-3: SUBSCRIBE and UNSUBSCRIBE carry a non-zero packet identifier.
  { name: 'v5 SUBSCRIBE with packet identifier 0', version: 5, bytes: packet(0x82, [0, 0, 0, ...str('a/b'), 1]), code: PROTOCOL_ERROR, says: /SUBSCRIBE with packet identifier 0/ },
  { name: 'v3.1.1 SUBSCRIBE with packet identifier 0', version: 4, bytes: packet(0x82, [0, 0, ...str('a/b'), 1]), code: PROTOCOL_ERROR, says: /SUBSCRIBE with packet identifier 0/ },
  { name: 'v5 UNSUBSCRIBE with packet identifier 0', version: 5, bytes: packet(0xa2, [0, 0, 0, ...str('a/b')]), code: PROTOCOL_ERROR, says: /UNSUBSCRIBE with packet identifier 0/ },
  { name: 'v3.1.1 UNSUBSCRIBE with packet identifier 0', version: 4, bytes: packet(0xa2, [0, 0, ...str('a/b')]), code: PROTOCOL_ERROR, says: /UNSUBSCRIBE with packet identifier 0/ },

  // §2.2.2.2: a property not valid for the packet type is malformed.
  { name: 'v5 SUBSCRIBE with a topic alias property', version: 5, bytes: packet(0x82, [0, 1, ...props([TOPIC_ALIAS, 0, 1]), ...str('a/b'), 1]), code: MALFORMED, says: /SUBSCRIBE may not carry the topic alias property/ },
  { name: 'v5 SUBSCRIBE with two subscription identifiers', version: 5, bytes: packet(0x82, [0, 1, ...props([0x0b, 1, 0x0b, 2]), ...str('a/b'), 1]), code: PROTOCOL_ERROR, says: /subscription identifier property more than once/ },
  { name: 'v5 SUBSCRIBE with reserved option bits', version: 5, bytes: packet(0x82, [0, 1, 0, ...str('a/b'), 0x41]), code: MALFORMED, says: /reserved bits/ },
  { name: 'v5 SUBSCRIBE with retain handling 3', version: 5, bytes: packet(0x82, [0, 1, 0, ...str('a/b'), 0x31]), code: PROTOCOL_ERROR, says: /retain handling 3/ },
  { name: 'v5 UNSUBSCRIBE with a subscription identifier', version: 5, bytes: packet(0xa2, [0, 1, ...props([0x0b, 1]), ...str('a/b')]), code: MALFORMED, says: /UNSUBSCRIBE may not carry the subscription identifier/ },

  // mqtt-packet's own refusals keep its words, named with the packet.
  { name: 'v5 DISCONNECT with an undefined reason code', version: 5, bytes: packet(0xe0, [0x03, 0]), code: MALFORMED, says: /^DISCONNECT: / },
];

// Acknowledgements (MQTT 5 §3.4-3.7): only a reason string (once) and user properties, filling the packet.
for (const [name, first] of [['PUBACK', 0x40], ['PUBREC', 0x50], ['PUBREL', 0x62], ['PUBCOMP', 0x70]] as const) {
  cases.push(
    { name: `v5 ${name} with an unknown property`, version: 5, bytes: packet(first, [0, 1, 0, ...props([0x7f, 0])]), code: MALFORMED, says: new RegExp(`${name} with unknown property 0x7f`) },
    { name: `v5 ${name} with a property not allowed in it`, version: 5, bytes: packet(first, [0, 1, 0, ...props([TOPIC_ALIAS, 0, 1])]), code: MALFORMED, says: new RegExp(`${name} may not carry the topic alias`) },
    { name: `v5 ${name} with two reason strings`, version: 5, bytes: packet(first, [0, 1, 0, ...props([REASON_STRING, ...str('a'), REASON_STRING, ...str('b')])]), code: PROTOCOL_ERROR, says: new RegExp(`${name} carries the reason string property more than once`) },
    { name: `v5 ${name} whose property length runs past the packet`, version: 5, bytes: packet(first, [0, 1, 0, 10, REASON_STRING, ...str('a')]), code: MALFORMED, says: new RegExp(`${name} properties run past the packet`) },
    { name: `v5 ${name} whose reason string runs past its properties`, version: 5, bytes: packet(first, [0, 1, 0, 3, REASON_STRING, 0, 9, 0x61, 0x62]), code: MALFORMED, says: /truncated string/ },
    { name: `v5 ${name} with bytes after its properties`, version: 5, bytes: packet(first, [0, 1, 0, 0, 0x61]), code: MALFORMED, says: new RegExp(`${name} has bytes after its properties`) },
  );
}

interface ErrorEvent {
  client: ClientInfo | null;
  reasonCode: number;
  message: string;
  fault?: unknown;
}

const V5_CONNECT = Buffer.from('101900044d5154540502003c00000c667a77736675686968357272', 'hex');

describe('malformed input closes only the sender, with the reason code the spec gives', { concurrency: true }, () => {
  let tb: TestBroker;
  const errors = new Map<string, ErrorEvent>();
  before(async () => {
    tb = await startBroker();
    tb.broker.on('client.error', (client, detail) => errors.set(client?.clientId ?? detail.remoteAddress, { client, ...detail }));
  });
  after(() => tb.close());

  test('the fuzzer\'s own CONNECT then a202dd7c: DISCONNECT 0x81 naming the missing property length', async () => {
    const raw = await WireClient.open(tb.port, 5);
    try {
      raw.sendRaw(V5_CONNECT);
      await raw.take((f) => f.type === 2, 3000, 'CONNACK');
      raw.sendRaw(Buffer.from('a202dd7c', 'hex'));
      const { reasonCode, reasonString } = disconnectOf(await raw.take((f) => f.type === DISCONNECT, 3000, 'DISCONNECT'));
      assert.equal(reasonCode, MALFORMED);
      assert.match(reasonString ?? '', /UNSUBSCRIBE without its property length/);
      await raw.waitClosed(2000);
    } finally {
      raw.destroy();
    }
  });

  cases.forEach((c, index) => {
    test(c.name, async () => {
      const clientId = `bad-${index}`;
      const { raw, connack } = await WireClient.connect(tb.port, { clientId }, c.version);
      try {
        assert.equal(c.version === 5 ? connack.reasonCode : connack.returnCode, 0);
        raw.sendRaw(c.bytes);
        await raw.waitClosed(3000);
        const event = errors.get(clientId);
        assert.ok(event !== undefined, 'client.error was emitted');
        assert.equal(event.reasonCode, c.code, `client.error 0x${event.reasonCode.toString(16)} "${event.message}"`);
        assert.match(event.message, c.says);
        assert.equal(event.fault, undefined, 'the client\'s fault, not ours');
        assert.equal(raw.received.some((f) => f.type === UNSUBACK || f.type === 9), false, 'no SUBACK/UNSUBACK for a bad packet');
        const disconnects = raw.received.filter((f) => f.type === DISCONNECT);
        if (c.version === 5) {
          assert.equal(disconnects.length, 1, 'v5: one DISCONNECT before the close');
          const { reasonCode, reasonString } = disconnectOf(disconnects[0]!);
          assert.equal(reasonCode, c.code);
          assert.match(reasonString ?? '', c.says);
        } else {
          assert.equal(disconnects.length, 0, 'v3: closed without DISCONNECT');
        }
      } finally {
        raw.destroy();
      }
    });
  });

  test('well-formed acknowledgement properties and UTF-8 pass; a bystander keeps its connection throughout', async () => {
    const { client: bystander } = await connectMqttJs(tb.port, { clientId: 'bystander' });
    const { raw } = await WireClient.connect(tb.port, { clientId: 'good-props' });
    try {
      await bystander.subscribeAsync('ok/#', { qos: 1 });
      const [granted] = await raw.subscribe([{ topic: 'ok/é/#', qos: 1 }]);
      assert.equal(granted, 1);
      // A PUBACK for an identifier not in flight is ignored; its properties are still checked.
      raw.sendRaw(packet(0x40, [0, 9, 0x10, ...props([REASON_STRING, ...str('fine'), USER_PROPERTY, ...str('k'), ...str('v'), USER_PROPERTY, ...str('k'), ...str('w')])]));
      raw.sendRaw(packet(0x40, [0, 8, 0x00]));
      raw.sendRaw(packet(0xa2, [0, 2, ...props([USER_PROPERTY, ...str('k'), ...str('v')]), ...str('ok/é/#')]));
      const unsuback = await raw.take((f) => f.type === UNSUBACK, 3000, 'UNSUBACK');
      assert.equal(unsuback.raw.readUInt16BE(2), 2);
      const received = new Promise((resolve) => bystander.once('message', (topic) => resolve(topic)));
      await bystander.publishAsync('ok/after', 'x', { qos: 1 });
      assert.equal(await withTimeout(received, 3000, 'the bystander\'s message'), 'ok/after');
      assert.equal(raw.closed, false);
      assert.equal(bystander.connected, true, 'the bystander was never cut off by the bad clients');
    } finally {
      await endAll([raw, bystander]);
    }
  });
});

describe('0x83 is for the broker\'s own faults only', () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startBroker();
    // A bug of ours: a listener that throws while a good UNSUBSCRIBE is handled.
    tb.broker.on('client.unsubscribe', () => {
      throw new Error('listener bug');
    });
  });
  after(() => tb.close());

  test('an error of ours gives 0x83 without internals to the client, and the error itself on client.error', async () => {
    const events: ErrorEvent[] = [];
    tb.broker.on('client.error', (client, detail) => events.push({ client, ...detail }));
    const { raw } = await WireClient.connect(tb.port, { clientId: 'victim' });
    try {
      raw.sendRaw(packet(0xa2, [0, 1, 0, ...str('a/b')]));
      const { reasonCode, reasonString } = disconnectOf(await raw.take((f) => f.type === DISCONNECT, 3000, 'DISCONNECT'));
      assert.equal(reasonCode, 0x83);
      assert.equal(reasonString, 'internal error, logged by the server');
      assert.equal(events.length, 1);
      assert.equal(events[0]!.reasonCode, 0x83);
      assert.ok(events[0]!.fault instanceof Error && events[0]!.fault.message === 'listener bug');
    } finally {
      raw.destroy();
    }
  });
});

describe('a CONNECT whose strings are not well-formed UTF-8 is malformed (MQTT-1.5.4-1, -2)', () => {
  let tb: TestBroker;
  const errors: ErrorEvent[] = [];
  before(async () => {
    tb = await startBroker();
    tb.broker.on('client.error', (client, detail) => errors.push({ client, ...detail }));
  });
  after(() => tb.close());

  const BAD = [0x00, 0x03, 0x61, 0xff, 0x62]; // "a", a lone 0xFF, "b"
  const NUL = [0x00, 0x03, 0x61, 0x00, 0x62];
  /** A CONNECT (v5 or 3.1.1) with the given client id, and optionally a will topic and a user name. */
  function connect(version: 4 | 5, clientId: number[], opts: { willTopic?: number[]; username?: number[] } = {}): Buffer {
    const flags = 0x02 | (opts.willTopic !== undefined ? 0x04 : 0) | (opts.username !== undefined ? 0x80 : 0);
    const v5 = version === 5;
    const body = [...str('MQTT'), version, flags, 0, 60, ...(v5 ? [0] : []), ...clientId];
    if (opts.willTopic !== undefined) body.push(...(v5 ? [0] : []), ...opts.willTopic, 0, 1, 0x78);
    if (opts.username !== undefined) body.push(...opts.username);
    return packet(0x10, body);
  }
  const inputs: Array<[string, 4 | 5, Buffer, RegExp]> = [];
  for (const version of [4, 5] as const) {
    inputs.push(
      [`v${version} client identifier`, version, connect(version, BAD), /CONNECT client identifier is not valid UTF-8/],
      [`v${version} client identifier with U+0000`, version, connect(version, NUL), /CONNECT client identifier contains U\+0000/],
      [`v${version} will topic`, version, connect(version, str('ok'), { willTopic: BAD }), /CONNECT will topic is not valid UTF-8/],
      [`v${version} user name`, version, connect(version, str('ok'), { username: BAD }), /CONNECT user name is not valid UTF-8/],
    );
  }

  for (const [name, version, bytes, says] of inputs) {
    test(`${name}: closed, 0x81 naming the string`, async () => {
      const raw = await WireClient.open(tb.port, version);
      try {
        const before = errors.length;
        raw.sendRaw(bytes);
        await raw.waitClosed(3000);
        const event = errors[before];
        assert.ok(event !== undefined, 'client.error was emitted');
        assert.equal(event.reasonCode, MALFORMED);
        assert.match(event.message, says);
        assert.equal(raw.received.some((f) => f.type === 2 && f.raw[f.raw.length - 1] === 0), false, 'never accepted');
      } finally {
        raw.destroy();
      }
    });
  }

  test('a well-formed CONNECT whose client identifier holds U+FFFD itself is accepted', async () => {
    const raw = await WireClient.open(tb.port, 5);
    try {
      raw.sendRaw(connect(5, [0x00, 0x03, 0xef, 0xbf, 0xbd]));
      const connack = await raw.take((f) => f.type === 2, 3000, 'CONNACK');
      assert.equal(connack.raw[3], 0, 'CONNACK success');
    } finally {
      raw.destroy();
    }
  });
});
