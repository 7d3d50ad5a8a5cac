/**
 * --max-keepalive (issue 14, Mosquitto's `max_keepalive`): a cap on the keep alive a client may use.
 * v5 clients asking for more, or for 0, are told the cap as Server Keep Alive (MQTT 5 §3.2.2.3.14)
 * and disconnected after 1.5x it (§3.1.2.10); v3 clients, who cannot be told, are refused with
 * CONNACK 0x02 as Mosquitto 2 does. The keep alive timeouts run on mock time (mock-time.ts); only
 * mosquitto_sub, a separate process, waits 3 s of real time for its own pings.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBroker, type TestBroker } from './helpers.ts';
import { MOCK_TIME_TEST, isConnected, mockTime, tickWhilePinging } from './mock-time.ts';
import { DISCONNECT, WireClient, connectMqttJs, disconnectOf, endAll, runMosquitto } from './v5-helpers.ts';

const CAP = 1;

describe('--max-keepalive, on mock time', () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startBroker({ limits: { maxKeepalive: CAP } });
  });
  after(() => tb.close());

  for (const asked of [60, 0]) {
    test(`a silent v5 client asking for keep alive ${asked} is told ${CAP} s and cut after 1.5x that, not after its own`, MOCK_TIME_TEST, async (t) => {
      const time = mockTime(t);
      const clientId = `cap-v5-${asked}`;
      const { raw, connack } = await WireClient.connect(tb.port, { clientId, keepalive: asked });
      try {
        assert.equal(connack.reasonCode, 0);
        assert.equal(connack.properties?.serverKeepAlive, CAP);
        time.tick(CAP * 1500 - 1);
        assert.equal(isConnected(tb.broker, clientId), true, 'still connected 1 ms before 1.5x the cap');
        time.tick(1);
        assert.equal(isConnected(tb.broker, clientId), false, 'cut at 1.5x the cap');
        const frame = await raw.take((f) => f.type === DISCONNECT, 4000, 'DISCONNECT');
        assert.equal(disconnectOf(frame).reasonCode, 0x8d, 'keep alive timeout');
        await raw.waitClosed(1000);
      } finally {
        raw.destroy();
      }
    });
  }

  test('MQTT.js (v5) adopts the cap from CONNACK and stays connected by pinging', MOCK_TIME_TEST, async (t) => {
    const time = mockTime(t, { intervals: true });
    const { client, connack } = await connectMqttJs(tb.port, { clientId: 'cap-js', keepalive: 60 });
    try {
      assert.equal(connack.properties?.serverKeepAlive, CAP);
      const pings = await tickWhilePinging(time, client, 2200);
      assert.ok(pings >= 2, `MQTT.js pinged ${pings} times in 2.2 s with a ${CAP} s keep alive`);
      assert.equal(client.connected, true);
      assert.equal(isConnected(tb.broker, 'cap-js'), true);
    } finally {
      await endAll([client]);
    }
  });
});

describe('--max-keepalive', { concurrency: true }, () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startBroker({ limits: { maxKeepalive: CAP } });
  });
  after(() => tb.close());

  test('a v5 client within the cap keeps its own keep alive (no Server Keep Alive in CONNACK)', async () => {
    const { raw, connack } = await WireClient.connect(tb.port, { clientId: 'cap-v5-within', keepalive: CAP });
    try {
      assert.equal(connack.reasonCode, 0);
      assert.equal(connack.properties?.serverKeepAlive, undefined);
    } finally {
      raw.destroy();
    }
  });

  for (const [version, asked] of [[4, 60], [4, 0], [3, 60]] as const) {
    test(`v3 (level ${version}) asking for keep alive ${asked}: CONNACK 0x02 and closed, as Mosquitto 2 does`, async () => {
      const { raw, connack } = await WireClient.connect(tb.port, { clientId: `cap-v${version}-${asked}`, keepalive: asked }, version);
      try {
        assert.equal(connack.returnCode, 2, 'identifier rejected');
        await raw.waitClosed(1000);
      } finally {
        raw.destroy();
      }
    });
  }

  test('a v3.1.1 client within the cap is accepted', async () => {
    const { raw, connack } = await WireClient.connect(tb.port, { clientId: 'cap-v4-within', keepalive: CAP }, 4);
    try {
      assert.equal(connack.returnCode, 0);
    } finally {
      raw.destroy();
    }
  });

  test('mosquitto_sub over v3.1.1 with -k 60 is refused; over v5 it is told the cap and runs', async () => {
    const port = String(tb.port);
    const v311 = await runMosquitto('mosquitto_sub', ['-h', '127.0.0.1', '-p', port, '-V', 'mqttv311', '-k', '60', '-t', 'cap/t', '-C', '1', '-W', '3'], 5000);
    assert.notEqual(v311.code, 0);
    assert.match(v311.stderr, /identifier rejected/i);
    // -W 3: with a 1 s cap, staying connected for 3 s means mosquitto_sub pinged as told.
    const v5 = await runMosquitto('mosquitto_sub', ['-h', '127.0.0.1', '-p', port, '-V', 'mqttv5', '-k', '60', '-t', 'cap/t', '-C', '1', '-W', '3'], 6000);
    assert.equal(v5.stderr.includes('Connection Refused'), false, v5.stderr);
    assert.match(v5.stderr, /^Timed out\s*$/, 'ended by its own -W timeout, not by the broker');
  });
});

describe('without --max-keepalive', () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startBroker();
  });
  after(() => tb.close());

  test('keep alive 0 and 65535 are accepted from v3.1.1 and v5 clients as they are', async () => {
    const clients: WireClient[] = [];
    try {
      for (const keepalive of [0, 65_535]) {
        const v4 = await WireClient.connect(tb.port, { clientId: `nocap-v4-${keepalive}`, keepalive }, 4);
        const v5 = await WireClient.connect(tb.port, { clientId: `nocap-v5-${keepalive}`, keepalive });
        clients.push(v4.raw, v5.raw);
        assert.equal(v4.connack.returnCode, 0);
        assert.equal(v5.connack.reasonCode, 0);
        assert.equal(v5.connack.properties?.serverKeepAlive, undefined);
      }
    } finally {
      await endAll(clients);
    }
  });
});
