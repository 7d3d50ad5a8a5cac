/**
 * Unit tests of the PUBLISH codec (src/broker/codec/publish-codec.ts): round trips for v3.1.1 and
 * v5 with every PUBLISH property (MQTT 5 §3.3.2.3), user property order (§3.3.2.3.7), subscription
 * identifiers (§3.3.4), cross-checks against mqtt-packet, and decode errors (§1.5, §2.2.2.2, §3.3.1.2).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqttPacket, { type IPublishPacket } from 'mqtt-packet';
import { decodePublish, encodePublish, packetIdOffset, type PublishEncoding } from '../../src/broker/codec/publish-codec.ts';
import { ProtocolViolation } from '../../src/broker/errors.ts';
import type { MessageProperties } from '../../src/broker/message.ts';
import { ReasonCode } from '../../src/broker/reason-codes.ts';
import { varint, str } from './wire-bytes.ts';

function encoding(overrides: Partial<PublishEncoding>): PublishEncoding {
  return {
    topic: 'sensors/1/temp',
    payload: Buffer.from('21.5'),
    qos: 0,
    retain: false,
    dup: false,
    packetId: 0,
    protocolVersion: 4,
    properties: null,
    messageExpiry: -1,
    subscriptionIds: null,
    topicAlias: 0,
    ...overrides,
  };
}

function bodyOffsetOf(frame: Buffer): number {
  let i = 1;
  while ((frame[i]! & 0x80) !== 0) i++;
  return i + 1;
}

function decode(frame: Buffer, version = 5): ReturnType<typeof decodePublish> {
  return decodePublish(frame, bodyOffsetOf(frame), version);
}

/** Parses bytes with mqtt-packet (an independent implementation) and returns the single packet. */
function parseWithMqttPacket(frame: Buffer, protocolVersion: 4 | 5): IPublishPacket {
  const parser = mqttPacket.parser({ protocolVersion });
  const packets: mqttPacket.Packet[] = [];
  const errors: Error[] = [];
  parser.on('packet', (p: mqttPacket.Packet) => packets.push(p));
  parser.on('error', (e: Error) => errors.push(e));
  parser.parse(frame);
  assert.deepEqual(errors, []);
  assert.equal(packets.length, 1);
  assert.equal(packets[0]!.cmd, 'publish');
  return packets[0] as IPublishPacket;
}

/** Builds a v5 PUBLISH by hand: `props` are the raw property bytes (without their length). */
function rawV5Publish(opts: { flags?: number; topic?: string; packetId?: number; props?: number[]; propsLength?: number; payload?: number[] }): Buffer {
  const flags = opts.flags ?? 0x02; // QoS 1
  const qos = (flags >> 1) & 3;
  const props = opts.props ?? [];
  const body = [
    ...str(opts.topic ?? 't'),
    ...(qos > 0 ? [(opts.packetId ?? 1) >> 8, (opts.packetId ?? 1) & 0xff] : []),
    ...varint(opts.propsLength ?? props.length),
    ...props,
    ...(opts.payload ?? [0x70]),
  ];
  return Buffer.from([0x30 | flags, ...varint(body.length), ...body]);
}

function assertViolation(fn: () => unknown, reasonCode: number, pattern?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ProtocolViolation, `expected a ProtocolViolation, got ${String(err)}`);
    assert.equal(err.reasonCode, reasonCode, `reason code for "${err.message}"`);
    if (pattern !== undefined) assert.match(err.message, pattern);
    return true;
  });
}

describe('PUBLISH codec: round trips', () => {
  test('v3.1.1: every QoS / retain / dup combination survives encode → decode', () => {
    for (const qos of [0, 1, 2] as const) {
      for (const retain of [false, true]) {
        for (const dup of [false, true]) {
          const e = encoding({ qos, retain, dup, packetId: qos > 0 ? 65_535 : 0, payload: Buffer.from([0, 1, 2, 255]) });
          const frame = encodePublish(e);
          const d = decode(frame, 4);
          assert.deepEqual(
            { topic: d.topic, payload: d.payload, qos: d.qos, retain: d.retain, dup: d.dup, packetId: d.packetId, properties: d.properties, topicAlias: d.topicAlias },
            { topic: e.topic, payload: e.payload, qos, retain, dup, packetId: e.packetId, properties: null, topicAlias: 0 },
          );
          // Independent check: mqtt-packet reads the same bytes the same way.
          const p = parseWithMqttPacket(frame, 4);
          assert.equal(p.topic, e.topic);
          assert.equal(p.qos, qos);
          assert.equal(p.retain, retain);
          assert.equal(p.dup, dup);
          if (qos > 0) assert.equal(p.messageId, 65_535);
          assert.deepEqual(Buffer.from(p.payload as Buffer), e.payload);
        }
      }
    }
  });

  test('v3 encodings ignore v5-only fields', () => {
    const frame = encodePublish(encoding({ protocolVersion: 4, properties: { contentType: 'x' }, messageExpiry: 10, subscriptionIds: [1], topicAlias: 3 }));
    const plain = encodePublish(encoding({ protocolVersion: 4 }));
    assert.deepEqual(frame, plain);
    assert.deepEqual(encodePublish(encoding({ protocolVersion: 3 })), plain, 'MQTT 3.1 and 3.1.1 encode identically');
  });

  test('v5: every property round-trips, user properties keep their order (repeated names interleaved)', () => {
    const userProperties: Array<[string, string]> = [
      ['z', '1'],
      ['a', '2'],
      ['z', '3'],
      ['ünï', 'cødé ✓'],
      ['a', ''],
      ['', 'empty name'],
    ];
    const properties: MessageProperties = {
      payloadFormatIndicator: 1,
      contentType: 'application/json; charset=utf-8',
      responseTopic: 'reply/to/me',
      correlationData: Buffer.from([0, 1, 2, 0xfe, 0xff]),
      userProperties,
    };
    const e = encoding({ protocolVersion: 5, qos: 2, packetId: 513, retain: true, properties, messageExpiry: 3600, topicAlias: 7, payload: Buffer.from('{"v":1}') });
    const frame = encodePublish(e);
    const d = decode(frame, 5);
    assert.equal(d.topic, e.topic);
    assert.deepEqual(d.payload, e.payload);
    assert.equal(d.qos, 2);
    assert.equal(d.retain, true);
    assert.equal(d.packetId, 513);
    assert.equal(d.topicAlias, 7);
    assert.deepEqual(d.properties, { ...properties, messageExpiryInterval: 3600 });
    assert.deepEqual(d.properties?.userProperties, userProperties, 'order and duplicates preserved');
    // mqtt-packet agrees on the bytes (it folds user properties into an object, so compare per name).
    const p = parseWithMqttPacket(frame, 5);
    assert.equal(p.properties?.contentType, properties.contentType);
    assert.equal(p.properties?.responseTopic, properties.responseTopic);
    assert.deepEqual(Buffer.from(p.properties!.correlationData!), properties.correlationData);
    assert.equal(p.properties?.messageExpiryInterval, 3600);
    assert.equal(p.properties?.topicAlias, 7);
    assert.equal(Number(p.properties?.payloadFormatIndicator), 1);
    assert.deepEqual(p.properties?.userProperties?.['z'], ['1', '3']);
  });

  test('v5: subscription identifiers (several, multi-byte varints) are encoded; mqtt-packet reads them', () => {
    const ids = [1, 127, 128, 16_383, 16_384, 268_435_455];
    const frame = encodePublish(encoding({ protocolVersion: 5, qos: 1, packetId: 9, subscriptionIds: ids, properties: { userProperties: [['k', 'v']] } }));
    const p = parseWithMqttPacket(frame, 5);
    assert.deepEqual(p.properties?.subscriptionIdentifier, ids);
    assert.deepEqual({ ...p.properties?.userProperties }, { k: 'v' });
    // A client may not send subscription identifiers (§3.3.4): our decoder, which reads client
    // publishes, refuses them as a protocol error.
    assertViolation(() => decode(frame, 5), ReasonCode.ProtocolError, /subscription identifier/);
  });

  test('v5: an empty property set encodes a zero property length and decodes to null properties', () => {
    const frame = encodePublish(encoding({ protocolVersion: 5 }));
    const d = decode(frame, 5);
    assert.equal(d.properties, null);
    assert.equal(d.topicAlias, 0);
    // 1 type + 1 length + 2 + topic + 1 (property length 0) + payload
    assert.equal(frame.length, 2 + 2 + 'sensors/1/temp'.length + 1 + 4);
    assert.equal(frame[2 + 2 + 'sensors/1/temp'.length], 0);
  });

  test('v5: a packet whose only property is a topic alias has no message properties', () => {
    const d = decode(encodePublish(encoding({ protocolVersion: 5, topic: '', topicAlias: 3 })), 5);
    assert.equal(d.topic, '');
    assert.equal(d.topicAlias, 3);
    assert.equal(d.properties, null);
  });

  test('decoding what mqtt-packet generates (v5, all properties)', () => {
    const frame = mqttPacket.generate(
      {
        cmd: 'publish',
        topic: 'x/y',
        payload: Buffer.from('hello'),
        qos: 1,
        messageId: 77,
        retain: false,
        dup: true,
        properties: { payloadFormatIndicator: true, messageExpiryInterval: 60, contentType: 'text/plain', responseTopic: 'r', correlationData: Buffer.from('c'), userProperties: { a: '1', b: ['2', '3'] } },
      },
      { protocolVersion: 5 },
    );
    const d = decode(frame, 5);
    assert.equal(d.topic, 'x/y');
    assert.equal(d.payload.toString(), 'hello');
    assert.equal(d.packetId, 77);
    assert.equal(d.dup, true);
    assert.deepEqual(d.properties, {
      payloadFormatIndicator: 1,
      messageExpiryInterval: 60,
      contentType: 'text/plain',
      responseTopic: 'r',
      correlationData: Buffer.from('c'),
      userProperties: [['a', '1'], ['b', '2'], ['b', '3']],
    });
  });

  test('large payloads and multi-byte remaining lengths', () => {
    for (const size of [0, 127, 128, 16_383, 16_384, 300_000]) {
      const payload = Buffer.alloc(size, size % 251);
      const frame = encodePublish(encoding({ protocolVersion: 5, qos: 1, packetId: 1, payload }));
      const d = decode(frame, 5);
      assert.equal(d.payload.length, size);
      assert.ok(d.payload.equals(payload));
      assert.equal(parseWithMqttPacket(frame, 5).payload.length, size);
    }
  });

  test('the decoded payload is a copy, not a view of the socket chunk', () => {
    const frame = encodePublish(encoding({ payload: Buffer.from('abc') }));
    const d = decode(frame, 4);
    frame.fill(0);
    assert.equal(d.payload.toString(), 'abc');
  });

  test('packetIdOffset points at the packet identifier (for patching shared encodings)', () => {
    for (const version of [4, 5]) {
      for (const size of [1, 200, 20_000]) {
        const frame = encodePublish(encoding({ protocolVersion: version, qos: 1, packetId: 0x1234, payload: Buffer.alloc(size) }));
        const at = packetIdOffset(frame);
        assert.equal(frame.readUInt16BE(at), 0x1234);
        frame.writeUInt16BE(0xbeef, at);
        assert.equal(decode(frame, version).packetId, 0xbeef);
      }
    }
  });
});

describe('PUBLISH codec: decode errors', () => {
  test('QoS 3 is malformed (§3.3.1.2)', () => {
    assertViolation(() => decode(rawV5Publish({ flags: 0x06 }), 5), ReasonCode.MalformedPacket, /QoS 3/);
    assertViolation(() => decode(Buffer.from([0x36, 5, 0, 1, 0x61, 0, 1]), 4), ReasonCode.MalformedPacket);
  });

  test('packet identifier 0 on QoS 1/2 is a protocol error (§2.2.1)', () => {
    assertViolation(() => decode(rawV5Publish({ flags: 0x02, packetId: 0 }), 5), ReasonCode.ProtocolError, /identifier 0/);
    assertViolation(() => decode(Buffer.from([0x34, 5, 0, 1, 0x61, 0, 0]), 4), ReasonCode.ProtocolError);
  });

  test('truncated fixed fields are malformed', () => {
    // Too short for the topic length.
    assertViolation(() => decode(Buffer.from([0x30, 1, 0]), 4), ReasonCode.MalformedPacket);
    // Topic length runs past the packet.
    assertViolation(() => decode(Buffer.from([0x30, 4, 0, 9, 0x61, 0x62]), 4), ReasonCode.MalformedPacket);
    // QoS 1 without room for the packet identifier.
    assertViolation(() => decode(Buffer.from([0x32, 4, 0, 1, 0x61, 0]), 4), ReasonCode.MalformedPacket);
    // v5: no property length at all.
    assertViolation(() => decode(Buffer.from([0x30, 3, 0, 1, 0x61]), 5), ReasonCode.MalformedPacket);
    // v5: property length longer than the packet.
    assertViolation(() => decode(rawV5Publish({ propsLength: 50, props: [], payload: [] }), 5), ReasonCode.MalformedPacket);
    // v5: property length as a 5-byte varint.
    assertViolation(() => decode(Buffer.from([0x30, 8, 0, 1, 0x61, 0x80, 0x80, 0x80, 0x80, 0x01]), 5), ReasonCode.MalformedPacket);
  });

  test('truncated properties are malformed', () => {
    const cases: Array<[string, number[]]> = [
      ['message expiry with 2 of 4 bytes', [0x02, 0, 0]],
      ['content type length past the properties', [0x03, 0, 10, 0x61]],
      ['content type without its length', [0x03, 0]],
      ['response topic cut', [0x08, 0, 5, 0x61]],
      ['correlation data cut', [0x09, 0, 4, 1, 2]],
      ['correlation data without length', [0x09, 0]],
      ['topic alias with 1 of 2 bytes', [0x23, 0]],
      ['user property with the value missing', [0x26, 0, 1, 0x61]],
      ['user property value cut', [0x26, 0, 1, 0x61, 0, 3, 0x62]],
    ];
    for (const [name, props] of cases) {
      // The payload follows the properties, so a decoder that reads past the property length
      // would silently take payload bytes; the packet must be refused instead.
      assert.throws(
        () => decode(rawV5Publish({ props, payload: [0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79] }), 5),
        (err: unknown) => err instanceof ProtocolViolation && err.reasonCode === ReasonCode.MalformedPacket,
        name,
      );
    }
  });

  test('a payload format indicator with no value byte inside the property length is malformed', () => {
    // Property length 1 holds only the identifier 0x01; the next byte (0x01) is the payload.
    // Reading it as the indicator would steal a payload byte.
    assertViolation(() => decode(rawV5Publish({ props: [0x01], payload: [0x01, 0x41] }), 5), ReasonCode.MalformedPacket);
    // Same at the very end of the packet (no payload at all).
    assertViolation(() => decode(rawV5Publish({ props: [0x01], payload: [] }), 5), ReasonCode.MalformedPacket);
  });

  test('a property that appears twice is a protocol error (§2.2.2.2); user properties may repeat', () => {
    const twice: Array<[string, number[]]> = [
      ['payload format indicator', [0x01, 1, 0x01, 0]],
      ['message expiry', [0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2]],
      ['content type', [0x03, ...str('a'), 0x03, ...str('b')]],
      ['response topic', [0x08, ...str('a'), 0x08, ...str('b')]],
      ['correlation data', [0x09, 0, 1, 9, 0x09, 0, 1, 8]],
      ['topic alias', [0x23, 0, 1, 0x23, 0, 2]],
    ];
    for (const [name, props] of twice) {
      assert.throws(
        () => decode(rawV5Publish({ props }), 5),
        (err: unknown) => err instanceof ProtocolViolation && err.reasonCode === ReasonCode.ProtocolError && /twice/.test(err.message),
        name,
      );
    }
    const d = decode(rawV5Publish({ props: [0x26, ...str('k'), ...str('1'), 0x26, ...str('k'), ...str('2')] }), 5);
    assert.deepEqual(d.properties?.userProperties, [['k', '1'], ['k', '2']]);
  });

  test('invalid property values', () => {
    assertViolation(() => decode(rawV5Publish({ props: [0x01, 2] }), 5), ReasonCode.ProtocolError, /payload format/);
    assertViolation(() => decode(rawV5Publish({ props: [0x08, ...str('a/+')] }), 5), ReasonCode.ProtocolError, /response topic/);
    assertViolation(() => decode(rawV5Publish({ props: [0x08, ...str('a/#')] }), 5), ReasonCode.ProtocolError, /response topic/);
    // A property PUBLISH may not carry (0x11 session expiry interval) is malformed.
    assertViolation(() => decode(rawV5Publish({ props: [0x11, 0, 0, 0, 1] }), 5), ReasonCode.MalformedPacket, /unknown/);
    assertViolation(() => decode(rawV5Publish({ props: [0x0b, 5] }), 5), ReasonCode.ProtocolError);
  });

  test('v3 decoding does not look for properties', () => {
    // A v3 packet whose payload happens to start with bytes that would be a bad property block.
    const frame = Buffer.from([0x30, 6, 0, 1, 0x61, 0x05, 0xff, 0xff]);
    const d = decode(frame, 4);
    assert.deepEqual([...d.payload], [0x05, 0xff, 0xff]);
    assert.equal(d.properties, null);
  });
});
