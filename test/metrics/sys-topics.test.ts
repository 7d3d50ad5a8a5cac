/**
 * $SYS per account, on a real server with --sys-interval 1: each account's `$SYS/#` subscriber sees
 * its own figures and never another account's; clients cannot publish there; `#` does not match it;
 * the values are retained in memory, not in the retained store. Waits are for the published messages
 * themselves (a round each second), never sleeps.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { pubackCode, waitUntil } from '../tenancy/helpers.ts';
import { connectDevice, createAccount, removeDataDirs, startTestServer } from './helpers.ts';

after(removeDataDirs);

/** Every $SYS value a client received, per topic, in arrival order. */
function sysValues(client: MqttClient): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  client.on('message', (topic, payload) => {
    if (!seen.has(topic)) seen.set(topic, []);
    seen.get(topic)!.push(payload.toString());
  });
  return seen;
}

const last = (seen: Map<string, string[]>, topic: string): string | undefined => seen.get(topic)?.at(-1);

test('$SYS/broker/...: each account sees its own connected count and message counts, never the other\'s', { timeout: 30_000 }, async () => {
  const { server, stop } = await startTestServer(['--sys-interval', '1']);
  const clients: MqttClient[] = [];
  try {
    const a = createAccount(server, 'a');
    const b = createAccount(server, 'b');
    const watchA = await connectDevice(server, a.device('watch-a'));
    const pubA = await connectDevice(server, a.device('pub-a'));
    const hashA = await connectDevice(server, a.device('hash-a'));
    const watchB = await connectDevice(server, b.device('watch-b'));
    clients.push(watchA, pubA, hashA, watchB);
    const seenA = sysValues(watchA);
    const seenB = sysValues(watchB);
    const hashSeen = sysValues(hashA);
    await watchA.subscribeAsync('$SYS/#', { qos: 0 });
    await watchB.subscribeAsync('$SYS/#', { qos: 0 });
    await hashA.subscribeAsync('#', { qos: 0 });
    for (let i = 0; i < 5; i++) await pubA.publishAsync('a/t', `m${i}`, { qos: 1 });
    await watchB.publishAsync('b/t', 'one', { qos: 1 });

    await waitUntil(() => last(seenA, '$SYS/broker/publish/messages/received') === '5' && last(seenB, '$SYS/broker/publish/messages/received') === '1', 'both accounts\' received counts', 5_000);
    assert.equal(last(seenA, '$SYS/broker/clients/connected'), '3');
    assert.equal(last(seenB, '$SYS/broker/clients/connected'), '1');
    assert.equal(last(seenA, '$SYS/broker/subscriptions/count'), '2');
    assert.equal(last(seenB, '$SYS/broker/subscriptions/count'), '1');
    assert.match(last(seenA, '$SYS/broker/version') ?? '', /^bucketmq version \d+\.\d+\.\d+/);
    assert.match(last(seenA, '$SYS/broker/uptime') ?? '', /^\d+ seconds$/);
    for (const topic of ['$SYS/broker/messages/received', '$SYS/broker/bytes/received', '$SYS/broker/bytes/sent', '$SYS/broker/clients/total', '$SYS/broker/store/messages/count', '$SYS/broker/retained messages/count']) {
      assert.ok(seenA.has(topic) && seenB.has(topic), topic);
    }
    // B's figures only ever counted B's one publish and one client.
    assert.ok(seenB.get('$SYS/broker/publish/messages/received')!.every((v) => Number(v) <= 1), seenB.get('$SYS/broker/publish/messages/received')!.join());
    assert.ok(seenB.get('$SYS/broker/clients/connected')!.every((v) => v === '1'));
    assert.ok(Number(last(seenA, '$SYS/broker/bytes/received')) > Number(last(seenB, '$SYS/broker/bytes/received')));
    // '#' does not match $SYS (MQTT 5 §4.7.2).
    assert.ok(![...hashSeen.keys()].some((topic) => topic.startsWith('$SYS')), [...hashSeen.keys()].join());

    // Only what changed is published again: version is sent once per account.
    await waitUntil(() => (seenA.get('$SYS/broker/uptime')?.length ?? 0) >= 2, 'a second round', 5_000);
    assert.equal(seenA.get('$SYS/broker/version')!.length, 1);

    // Retained in memory, out of the retained store: a late subscriber gets them at once, and the store counts none.
    const late = await connectDevice(server, a.device('late'));
    clients.push(late);
    const lateSeen = sysValues(late);
    await late.subscribeAsync('$SYS/broker/clients/#', { qos: 0 });
    await waitUntil(() => lateSeen.has('$SYS/broker/clients/connected'), 'the retained $SYS value', 2_000);
    assert.equal(server.broker.retainer.count(a.id), 0);
  } finally {
    for (const client of clients) client.end(true);
    await stop();
  }
});

test('a client publishing under $SYS is refused (v5 QoS 1: 0x87) and nothing reaches $SYS subscribers', { timeout: 30_000 }, async () => {
  const { server, stop } = await startTestServer(['--sys-interval', '0']);
  const clients: MqttClient[] = [];
  try {
    const a = createAccount(server, 'a');
    const watcher = await connectDevice(server, a.device('watch'));
    const forger = await connectDevice(server, a.device('forger'));
    clients.push(watcher, forger);
    const seen = sysValues(watcher);
    await watcher.subscribeAsync(['$SYS/#', 'marker'], { qos: 1 });
    assert.equal(await pubackCode(forger, '$SYS/broker/clients/connected', '1000'), 0x87);
    await forger.publishAsync('$SYS/x', 'qos0', { qos: 0 });
    await forger.publishAsync('$SYS/retained', 'kept', { qos: 0, retain: true });
    // The marker goes through the same connection after the forged publishes.
    await forger.publishAsync('marker', 'end', { qos: 1 });
    await waitUntil(() => seen.has('marker'), 'the marker', 3_000);
    assert.deepEqual([...seen.keys()], ['marker']);
    assert.equal(server.broker.retainer.count(a.id), 0);
  } finally {
    for (const client of clients) client.end(true);
    await stop();
  }
});
