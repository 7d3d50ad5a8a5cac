/**
 * The channel on a fake transport (fake-transport.ts): exact bytes in, exact bytes out, no sockets.
 * Timers run on mock time (mock-time.ts), so the keep alive and CONNECT timeouts are checked to the
 * millisecond. The same flows over real sockets: the wire tests (v5-session, limits-and-bad-input).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Broker } from '../../src/broker/broker.ts';
import { fakeConnection } from './fake-transport.ts';
import { MOCK_TIME_TEST, mockTime } from './mock-time.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** CONNECT, MQTT 3.1.1, clean session, keep alive 60, client id "c1". */
const CONNECT_V4 = hex('10 0e  0004 4d515454 04 02 003c  0002 6331');
/** CONNECT, MQTT 5, clean start, keep alive 1, no properties, client id "c5". */
const CONNECT_V5_KEEPALIVE_1 = hex('10 0f  0004 4d515454 05 02 0001 00  0002 6335');

/** DISCONNECT (MQTT 5 §3.14) with a reason code and a reason string property (0x1F). */
function disconnectV5(reasonCode: number, reasonString: string): Buffer {
  const text = Buffer.from(reasonString);
  const properties = Buffer.concat([Buffer.from([0x1f, text.length >> 8, text.length & 0xff]), text]);
  const body = Buffer.concat([Buffer.from([reasonCode, properties.length]), properties]);
  return Buffer.concat([Buffer.from([0xe0, body.length]), body]);
}

describe('channel bytes on a fake transport', () => {
  test('CONNECT (3.1.1) gets CONNACK 20 02 00 00; PINGREQ gets PINGRESP d0 00', () => {
    const { channel, transport } = fakeConnection(new Broker());
    channel.onData(CONNECT_V4);
    assert.deepEqual(transport.take(), hex('20 02 00 00'), 'no session present, accepted (MQTT 3.1.1 §3.2)');
    channel.onData(hex('c0 00'));
    assert.deepEqual(transport.take(), hex('d0 00'));
    assert.equal(transport.ended, null);
    channel.onData(hex('e0 00'));
    assert.equal(transport.ended, 'end', 'DISCONNECT ends the connection');
    assert.deepEqual(transport.take(), Buffer.alloc(0));
  });

  test('CONNECT (5) gets CONNACK with the server\'s limits as properties, in this order', () => {
    const { channel, transport } = fakeConnection(new Broker());
    channel.onData(CONNECT_V5_KEEPALIVE_1);
    // MQTT 5 §3.2.2.3: receive maximum 1000 (0x21), maximum packet size 262144 (0x27), topic alias
    // maximum 65535 (0x22), retain (0x25), wildcard (0x28), subscription id (0x29), shared (0x2A) available.
    assert.deepEqual(transport.take(), hex('20 16 00 00 13  21 03e8  27 00040000  22 ffff  25 01  28 01  29 01  2a 01'));
  });

  test('a frame split anywhere is read the same: CONNECT and PINGREQ a byte at a time', () => {
    const { channel, transport } = fakeConnection(new Broker());
    for (const byte of Buffer.concat([CONNECT_V4, hex('c0 00')])) channel.onData(Buffer.from([byte]));
    assert.deepEqual(transport.take(), hex('20 02 00 00  d0 00'));
  });

  test('a malformed packet (PINGREQ with flags, MQTT 5 §3.12.1) gets DISCONNECT 0x81 with a reason string, then the connection ends', () => {
    const { channel, transport } = fakeConnection(new Broker());
    channel.onData(CONNECT_V5_KEEPALIVE_1);
    transport.take();
    channel.onData(hex('c1 00'));
    assert.deepEqual(transport.take(), disconnectV5(0x81, 'PINGREQ with flags or a body'));
    assert.equal(transport.ended, 'end');
  });

  test('keep alive 1 s: DISCONNECT 0x8D exactly at 1.5 s of silence (MQTT 5 §3.1.2.10), a PINGREQ restarts the count', MOCK_TIME_TEST, (t) => {
    const time = mockTime(t);
    const { channel, transport } = fakeConnection(new Broker());
    channel.onData(CONNECT_V5_KEEPALIVE_1);
    transport.take();
    time.tick(1000);
    channel.onData(hex('c0 00'));
    assert.deepEqual(transport.take(), hex('d0 00'));
    time.tick(1499);
    assert.deepEqual(transport.take(), Buffer.alloc(0), 'nothing 1 ms before 1.5 s after the PINGREQ');
    assert.equal(transport.ended, null);
    time.tick(1);
    assert.deepEqual(transport.take(), disconnectV5(0x8d, 'no packet for 1500 ms (keep alive 1 s)'));
    assert.equal(transport.ended, 'end');
  });

  test('a held channel (input paused for held acks, ack-queue.ts) is not cut for silence: the silence is ours', MOCK_TIME_TEST, async (t) => {
    const time = mockTime(t);
    const held: Array<() => void> = [];
    const broker = new Broker({ limits: { maxHeldAcks: 1 }, hooks: { onPublish: () => new Promise<void>((release) => held.push(release)) } });
    const { channel, transport } = fakeConnection(broker);
    channel.onData(CONNECT_V5_KEEPALIVE_1);
    transport.take();
    channel.onData(hex('32 07  0001 78  0001  00  70')); // PUBLISH QoS 1 "x", packet id 1, payload "p"
    assert.equal(transport.paused, true, 'one held ack is the cap: reading stops');
    time.tick(10_000);
    assert.equal(transport.ended, null);
    held.shift()!();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(transport.take(), hex('40 02 0001'), 'PUBACK once the hook lets it go');
    assert.equal(transport.paused, false);
    time.tick(1499);
    assert.equal(transport.ended, null, 'the silence counts from the resume');
    time.tick(1);
    assert.equal(transport.ended, 'end');
  });

  test('CONNECT timeout: a connection that sends nothing is ended at connectTimeoutMs, with nothing written', MOCK_TIME_TEST, (t) => {
    const time = mockTime(t);
    const { transport } = fakeConnection(new Broker({ limits: { connectTimeoutMs: 300 } }));
    time.tick(299);
    assert.equal(transport.ended, null);
    time.tick(1);
    assert.equal(transport.ended, 'end');
    assert.deepEqual(transport.take(), Buffer.alloc(0));
  });
});
