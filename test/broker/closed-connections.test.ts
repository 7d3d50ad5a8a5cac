/**
 * A closed connection leaves memory at once (issue 15): the timer that destroys a socket whose peer
 * never reads (5 s, transport/socket-transport.ts and ws.ts) used to keep the socket, and through
 * its listeners the Channel and Session, for 5 s after every disconnect. A Channel holds its
 * ClientInfo, so a collected ClientInfo means a collected Channel.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import mqtt, { type MqttClient } from 'mqtt';
import { Broker } from '../../src/broker/broker.ts';
import type { ClientInfo } from '../../src/broker/client-info.ts';
import { HOST, delay } from './helpers.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

let broker: Broker;
let tcpPort: number;
let wsPort: number;
let connected: Array<WeakRef<ClientInfo>> = [];
let disconnected = 0;

before(async () => {
  broker = new Broker();
  broker.on('client.connect', (client) => connected.push(new WeakRef(client)));
  broker.on('client.disconnect', () => disconnected++);
  await broker.start();
  tcpPort = (await broker.listenTcp({ host: HOST, port: 0 })).port;
  wsPort = (await broker.listenWs({ host: HOST, port: 0 })).port;
});

after(() => broker.close());

for (const kind of ['tcp', 'ws'] as const) {
  test(`${kind}: closed connections are collectable well before 5 s, whether the client sent DISCONNECT or dropped`, async () => {
    connected = [];
    disconnected = 0;
    const clients: MqttClient[] = [];
    for (let i = 0; i < 10; i++) {
      const options = { protocolVersion: 4 as const, reconnectPeriod: 0, connectTimeout: 5000, clientId: `closed-${kind}-${i}` };
      clients.push(await (kind === 'tcp' ? mqtt.connectAsync({ ...options, host: HOST, port: tcpPort }) : mqtt.connectAsync(`ws://${HOST}:${wsPort}/mqtt`, options)));
    }
    // Half say DISCONNECT (the broker ends the socket), half just drop it (the socket closes first).
    await Promise.all(clients.map((client, i) => client.endAsync(i % 2 === 1)));
    const started = Date.now();
    let alive = connected.length;
    // Under 5 s (the old timer) with room for a busy CI machine to deliver the closes.
    while (Date.now() - started < 3_500 && (disconnected < 10 || alive > 0)) {
      await delay(50);
      gc();
      alive = connected.filter((ref) => ref.deref() !== undefined).length;
    }
    assert.equal(disconnected, 10);
    assert.equal(alive, 0, `${alive} of 10 closed connections still in memory after ${Date.now() - started} ms`);
  });
}
