/**
 * The shared CONNECT/DISCONNECT decoder (src/broker/codec/control-codec.ts `decodeControl`): one
 * mqtt-packet parser serves every connection, so nothing of one frame may reach the next.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import mqttPacket, { type IConnackPacket, type IConnectPacket, type IDisconnectPacket } from 'mqtt-packet';
import { decodeControl, encodeConnackAccepted } from '../../src/broker/codec/control-codec.ts';
import { ProtocolViolation } from '../../src/broker/errors.ts';

const connect = (protocolVersion: 4 | 5, clientId: string): Buffer =>
  mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion, clientId, clean: true, keepalive: 30 } as IConnectPacket);

test('a refused or unfinished frame leaves nothing behind for the next one', () => {
  for (const bad of [Buffer.from([0xe0, 2, 0x03, 0]), connect(5, 'cut').subarray(0, 9), Buffer.from([0x10, 3, 0, 9, 0])]) {
    assert.throws(() => decodeControl(bad, bad[0] === 0xe0 ? 5 : 0), ProtocolViolation);
    const packet = decodeControl(connect(4, 'next'), 0) as IConnectPacket;
    assert.equal(packet.clientId, 'next');
  }
});

test('the protocol version is the caller\'s, not that of the last CONNECT decoded', () => {
  decodeControl(connect(5, 'v5'), 0);
  // A v5 DISCONNECT's reason code: read under v5, not looked at under v3.1.1.
  const disconnect = Buffer.from([0xe0, 1, 0x8e]);
  assert.equal((decodeControl(disconnect, 4) as IDisconnectPacket).reasonCode, undefined);
  assert.equal((decodeControl(disconnect, 5) as IDisconnectPacket).reasonCode, 0x8e);
});

test('the pre-encoded v3 CONNACKs are the bytes mqtt-packet would write', () => {
  for (const sessionPresent of [false, true]) {
    const expected = mqttPacket.generate({ cmd: 'connack', sessionPresent, returnCode: 0 } as IConnackPacket, { protocolVersion: 4 });
    assert.deepEqual(encodeConnackAccepted(sessionPresent), expected);
  }
});
