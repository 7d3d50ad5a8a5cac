import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readConnectUserProperties } from '../../src/broker/codec/connect-user-properties.ts';
import { ProtocolViolation } from '../../src/broker/errors.ts';
import { encodeConnectV5, Prop } from './v5-helpers.ts';

/** The fixed header of the frames below: one type byte and a one-byte remaining length. */
const BODY = 2;

describe('readConnectUserProperties', () => {
  const connectPairs: Array<[string, string]> = [['a', '1'], ['b', '2'], ['a', '3']];
  const willPairs: Array<[string, string]> = [['x', 'é'], ['y', ''], ['x', 'z']];
  const frame = encodeConnectV5({
    clientId: 'c1',
    props: [[Prop.SessionExpiryInterval, 60], ...connectPairs.map((p) => [Prop.UserProperty, p] as [number, [string, string]]), [Prop.ReceiveMaximum, 5]],
    will: { topic: 't', payload: 'p', props: [[Prop.WillDelayInterval, 1], [Prop.ContentType, 'text/plain'], ...willPairs.map((p) => [Prop.UserProperty, p] as [number, [string, string]]), [Prop.CorrelationData, Buffer.from('cd')]] },
  });

  test('reads the CONNECT and will user properties in wire order, skipping every other property', () => {
    assert.equal(frame[1], frame.length - BODY, 'the test frame has a one-byte remaining length');
    assert.deepEqual(readConnectUserProperties(frame, BODY), { connect: connectPairs, will: willPairs });
  });

  test('a frame with a two-byte remaining length', () => {
    const long = encodeConnectV5({ clientId: 'c'.repeat(200), props: [[Prop.UserProperty, ['k', 'v']]], will: { topic: 't', payload: 'p'.repeat(300), props: [[Prop.UserProperty, ['w', '1']]] } });
    assert.ok(long[1]! & 0x80, 'the remaining length takes two bytes');
    assert.deepEqual(readConnectUserProperties(long, 3), { connect: [['k', 'v']], will: [['w', '1']] });
  });

  test('none when there are none, and no will list without a will', () => {
    assert.deepEqual(readConnectUserProperties(encodeConnectV5({ clientId: 'c2' }), BODY), { connect: undefined, will: undefined });
    assert.deepEqual(readConnectUserProperties(encodeConnectV5({ clientId: 'c3', props: [[Prop.UserProperty, ['k', 'v']]] }), BODY), { connect: [['k', 'v']], will: undefined });
    assert.deepEqual(readConnectUserProperties(encodeConnectV5({ clientId: 'c4', will: { topic: 't', payload: '' } }), BODY), { connect: undefined, will: undefined });
  });

  test('a frame cut anywhere is refused as malformed, never read past its end', () => {
    for (let length = BODY; length < frame.length; length++) {
      const cut = frame.subarray(0, length);
      try {
        readConnectUserProperties(cut, BODY);
      } catch (error) {
        assert.ok(error instanceof ProtocolViolation, `cut at ${length}: ${String(error)}`);
        assert.equal(error.reasonCode, 0x81);
        continue;
      }
      // Only a cut inside the will's topic or payload can pass: those are not read here.
      assert.ok(length >= frame.length - 'p'.length - 2 - 't'.length - 2, `cut at ${length} was accepted`);
    }
  });

  test('an unknown property identifier is refused as malformed', () => {
    const bad = Buffer.from(frame);
    const propsAt = BODY + 2 + 4 + 4; // protocol name "MQTT", level, flags, keep alive
    assert.equal(bad[propsAt + 1], Prop.SessionExpiryInterval);
    bad[propsAt + 1] = 0x7f;
    assert.throws(() => readConnectUserProperties(bad, BODY), /unknown CONNECT property 0x7f/);
  });
});
