import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { IConnackPacket } from 'mqtt-packet';
import { ReasonCode } from '../../src/broker/reason-codes.ts';
import { rawConnect, startBroker, type RawClient, type TestBroker } from './helpers.ts';
import { MOCK_TIME_TEST, mockTime } from './mock-time.ts';

// SPEC §2: a client id taken over more than N times a minute is refused for a back-off period,
// with an event naming both addresses.
describe('takeover storm', () => {
  let tb: TestBroker;
  const storms: Array<{ clientId: string; addresses: [string, string]; blockedUntil: number }> = [];
  const sockets: RawClient[] = [];

  before(async () => {
    tb = await startBroker({ limits: { takeoverLimit: 3, takeoverBackoffMs: 800 } });
    tb.broker.on('client.takeover-storm', (detail) => storms.push(detail));
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await tb.close();
  });

  async function connectAs(clientId: string, protocolVersion: 4 | 5): Promise<IConnackPacket> {
    const raw = await rawConnect(tb.port);
    sockets.push(raw);
    return raw.handshake({ clientId, protocolVersion });
  }

  test('the fourth takeover within a minute is refused (v5 0x9F with a reason string) and reported once', async () => {
    assert.equal((await connectAs('storm', 5)).reasonCode, ReasonCode.Success);
    for (let i = 0; i < 3; i++) assert.equal((await connectAs('storm', 5)).reasonCode, ReasonCode.Success, `takeover ${i + 1}`);
    assert.equal(storms.length, 0);
    const refused = await connectAs('storm', 5);
    // The takeover that crosses the limit still happens; from then on the id is refused.
    assert.equal(refused.reasonCode, ReasonCode.Success);
    assert.equal(storms.length, 1);
    const blocked = await connectAs('storm', 5);
    assert.equal(blocked.reasonCode, ReasonCode.ConnectionRateExceeded);
    assert.match(String(blocked.properties?.reasonString), /taken over in a loop/);
    const storm = storms[0]!;
    assert.equal(storm.clientId, 'storm');
    assert.match(storm.addresses[0], /^127\.0\.0\.1:\d+$/);
    assert.match(storm.addresses[1], /^127\.0\.0\.1:\d+$/);
    assert.notEqual(storm.addresses[0], storm.addresses[1]);
  });

  test('v3 clients are refused with return code 3 (server unavailable) while blocked, admitted after the back-off', MOCK_TIME_TEST, async (t) => {
    const time = mockTime(t);
    for (let i = 0; i < 5; i++) await connectAs('storm3', 4);
    const blocked = await connectAs('storm3', 4);
    assert.equal(blocked.returnCode, 3);
    time.tick(799);
    assert.equal((await connectAs('storm3', 4)).returnCode, 3, 'still refused 1 ms before the back-off ends');
    time.tick(1);
    const admitted = await connectAs('storm3', 4);
    assert.equal(admitted.returnCode, 0);
  });

  test('other client ids are unaffected', async () => {
    assert.equal((await connectAs('calm', 5)).reasonCode, ReasonCode.Success);
  });
});
