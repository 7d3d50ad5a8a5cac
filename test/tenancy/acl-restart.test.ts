/**
 * A persistent session's delivery checks are rebuilt for the client that owns it (issue 14): after a
 * restart (the checks of a wildcard grant live in memory only) and when another device resumes the
 * session. Two brokers over one session store and one registry stand for the process before and
 * after a restart; each test ends with a marker from the same publisher, so the received set is final
 * once the marker is in (MQTT 5 §4.6).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { Broker } from '../../src/broker/broker.ts';
import { MemorySessionStore } from '../../src/broker/session/memory-session-store.ts';
import { openDatabase } from '../../src/storage/sqlite-database.ts';
import type { AclRule } from '../../src/tenancy/acl.ts';
import { createMqttAccess } from '../../src/tenancy/mqtt-access.ts';
import { Registry } from '../../src/tenancy/registry.ts';
import { HOST, endAll, login, loginRecording, newAccount, newDevice, waitUntil, type Received, type TestDevice } from './helpers.ts';

const MARKER = 'marker/done';
const PERSISTENT = { clean: false, properties: { sessionExpiryInterval: 3600 } };

describe('delivery checks of persistent sessions', () => {
  const db = openDatabase(':memory:');
  const registry = new Registry(db);
  const sessions = new MemorySessionStore();
  let accountId: string;
  let watcher: TestDevice;
  let restricted: TestDevice;
  let publisher: TestDevice;
  let broker: Broker;
  let port: number;
  const clients: MqttClient[] = [];
  /** `message.dropped` as "clientId topic reason". */
  const drops: string[] = [];

  async function startBroker(): Promise<void> {
    const acl: AclRule[] = [
      { action: 'subscribe', permission: 'deny', topic: 'secret/#' },
      { device: restricted.deviceId, action: 'subscribe', permission: 'deny', topic: 'devonly/#' },
    ];
    broker = new Broker({ hooks: createMqttAccess(registry, { anonymousAccountId: null, acl, aclDefault: 'allow' }), sessionStore: sessions });
    broker.on('message.dropped', (client, message, reason) => drops.push(`${client.clientId} ${message.topic} ${reason}`));
    await broker.start();
    port = (await broker.listenTcp({ host: HOST, port: 0 })).port;
  }

  async function restart(): Promise<void> {
    await endAll(clients.splice(0));
    await broker.close();
    await startBroker();
  }

  async function publishThenMarker(messages: string[]): Promise<void> {
    const pub = await login(port, publisher.token);
    clients.push(pub);
    for (const topic of messages) await pub.publishAsync(topic, topic, { qos: 1 });
    await pub.publishAsync(MARKER, 'end', { qos: 1 });
  }

  async function beforeMarker(got: Received[]): Promise<string[]> {
    await waitUntil(() => got.some((m) => m.topic === MARKER), 'the marker message');
    return got.filter((m) => m.topic !== MARKER).map((m) => m.topic);
  }

  /** Subscribes `#` at QoS 1 in a persistent session, then leaves it offline. */
  async function subscribeAllAndLeave(device: TestDevice, clientId: string): Promise<void> {
    const client = await login(port, device.token, { clientId, ...PERSISTENT });
    await client.subscribeAsync('#', { qos: 1 });
    await client.endAsync();
  }

  before(async () => {
    registry.installPlans();
    accountId = newAccount(registry, 'acct');
    watcher = newDevice(registry, accountId, 'watcher');
    restricted = newDevice(registry, accountId, 'restricted');
    publisher = newDevice(registry, accountId, 'publisher');
    await startBroker();
  });
  after(async () => {
    await endAll(clients);
    await broker.close();
    db.close();
  });

  test('after a restart, an offline session subscribed to # still has the denied topic withheld', async () => {
    await subscribeAllAndLeave(watcher, 'watch-restart');
    await restart();
    drops.length = 0;
    await publishThenMarker(['secret/plans', 'open/news']);
    const again = await loginRecording(port, watcher.token, { clientId: 'watch-restart', ...PERSISTENT });
    clients.push(again.client);
    assert.equal(again.sessionPresent, true);
    assert.deepEqual(await beforeMarker(again.got), ['open/news']);
    assert.deepEqual(drops, ['watch-restart secret/plans acl']);
  });

  test('a session resumed by another device of the account gets that device\'s rules', async () => {
    await subscribeAllAndLeave(watcher, 'shared-id');
    const resumed = await loginRecording(port, restricted.token, { clientId: 'shared-id', ...PERSISTENT });
    clients.push(resumed.client);
    assert.equal(resumed.sessionPresent, true);
    drops.length = 0;
    await publishThenMarker(['devonly/x', 'secret/y', 'open/z']);
    assert.deepEqual(await beforeMarker(resumed.got), ['open/z']);
    assert.deepEqual(drops.filter((d) => d.startsWith('shared-id ')).sort(), ['shared-id devonly/x acl', 'shared-id secret/y acl']);
  });

  test('a session whose token was revoked while the broker was down withholds everything after the restart', async () => {
    const revoked = newDevice(registry, accountId, 'revoked');
    await subscribeAllAndLeave(revoked, 'watch-revoked');
    await broker.close();
    registry.deleteDeviceToken(accountId, revoked.deviceId, revoked.tokenId);
    await startBroker();
    drops.length = 0;
    await publishThenMarker(['open/after']);
    assert.deepEqual(drops.filter((d) => d.startsWith('watch-revoked ')), ['watch-revoked open/after not authorized', 'watch-revoked marker/done not authorized']);
  });
});
