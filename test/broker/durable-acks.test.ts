/**
 * A QoS 1/2 publish is acknowledged only once what it wrote is durable (SPEC §2, issue 14): its
 * retained message, and its copies queued for persistent sessions. Checked in-process against real
 * SQLite: when the client reads its PUBACK/PUBREC, a second connection to the file already sees the
 * rows. The ack waits for the stores and for an onPublish hook that holds it, whichever is last; a
 * failure of either refuses it (MQTT 5 §3.4.2.1).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BrokerHooks } from '../../src/broker/hooks.ts';
import { ReasonCode } from '../../src/broker/reason-codes.ts';
import { SqliteRetainedStore } from '../../src/broker/retained/sqlite-retained-store.ts';
import { SqliteSessionStore } from '../../src/broker/session/sqlite-session-store.ts';
import type { Database } from '../../src/storage/sqlite-database.ts';
import { tempDatabases } from '../storage/temp-database.ts';
import { connect, endClient, startBroker, type TestBroker } from './helpers.ts';

const databases = tempDatabases('bucketmq-durable-acks-');
const brokers: TestBroker[] = [];
after(async () => {
  for (const tb of brokers) await tb.close();
});

/** A broker over a fresh SQLite file, and a second connection that sees only what was committed. */
async function brokerOnDisk(hooks: BrokerHooks = {}): Promise<{ tb: TestBroker; peek: Database }> {
  const file = await databases.file();
  const db = databases.open(file);
  const quiet = { reportError: () => undefined };
  const tb = await startBroker({ sessionStore: new SqliteSessionStore(db, quiet), retainedStore: new SqliteRetainedStore(db, quiet), hooks });
  brokers.push(tb);
  return { tb, peek: databases.open(file) };
}

describe('acknowledgements wait for durable writes', () => {
  test('the PUBACK of a retained QoS 1 publish comes after its row is committed, for every publish of a burst', async () => {
    const { tb, peek } = await brokerOnDisk();
    const rowOf = peek.prepare<[string], Buffer>('SELECT payload FROM mqtt_retained WHERE topic = ?').pluck();
    const pub = await connect(tb.port, { protocolVersion: 5 });
    const seen: string[] = [];
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        pub.publishAsync(`retained/${i % 20}`, `v${i}`, { qos: 1, retain: true }).then(() => {
          // Later publishes to the topic may be committed too; never an older value.
          const stored = rowOf.get(`retained/${i % 20}`)?.toString();
          if (stored === undefined || Number(stored.slice(1)) < i) seen.push(`v${i}: found ${stored}`);
        }),
      ),
    );
    assert.deepEqual(seen, []);
    await endClient(pub, false);
  });

  test('the PUBACK of a QoS 1 message queued for an offline persistent session follows the commit of its row, and fails with it', async () => {
    const { tb, peek } = await brokerOnDisk();
    const queued = peek.prepare<[], number>('SELECT COUNT(*) FROM mqtt_outbound').pluck();
    const sub = await connect(tb.port, { clientId: 'offline-sub', protocolVersion: 5, properties: { sessionExpiryInterval: 60 } });
    await sub.subscribeAsync('q/#', { qos: 1 });
    await endClient(sub, false);
    const pub = await connect(tb.port, { protocolVersion: 5 });
    const counts: number[] = [];
    await Promise.all(Array.from({ length: 100 }, (_, i) => pub.publishAsync(`q/${i}`, 'x', { qos: 1 }).then(() => counts.push(queued.get()!))));
    // Each PUBACK saw at least as many queued rows as publishes acknowledged by then.
    assert.ok(counts.every((count, n) => count >= n + 1), `rows seen at each PUBACK: ${counts.join(',')}`);

    // The same ack for a batch that fails: its code can only be known after the commit was tried.
    peek.exec('DROP TABLE mqtt_outbound');
    const refused = await pub.publishAsync('q/lost', 'x', { qos: 1 }).then(() => ReasonCode.Success, (error: { code?: number }) => error.code);
    assert.equal(refused, ReasonCode.UnspecifiedError, 'v5 PUBACK 0x80 when the queued copy could not be stored');
    await endClient(pub, false);
  });

  test('QoS 2: the PUBREC of a retained publish follows the commit, and fails with it', async () => {
    const { tb, peek } = await brokerOnDisk();
    const rowOf = peek.prepare<[string], Buffer>('SELECT payload FROM mqtt_retained WHERE topic = ?').pluck();
    const pub = await connect(tb.port, { protocolVersion: 5 });
    const pubrecs: Array<[code: number, stored: string | undefined]> = [];
    pub.on('packetreceive', (packet) => {
      if (packet.cmd !== 'pubrec') return;
      const code = packet.reasonCode ?? 0;
      pubrecs.push([code, code === 0 ? rowOf.get('qos2/state')?.toString() : undefined]);
    });
    await pub.publishAsync('qos2/state', 'on', { qos: 2, retain: true });
    peek.exec('DROP TABLE mqtt_retained');
    await pub.publishAsync('qos2/state', 'off', { qos: 2, retain: true }).catch(() => undefined);
    assert.deepEqual(pubrecs, [[ReasonCode.Success, 'on'], [ReasonCode.UnspecifiedError, undefined]]);
    await endClient(pub, false);
  });

  test('with an onPublish hook holding the ack too, the ack leaves when both are done; a refusal by either refuses it', async () => {
    let holdMs = 0;
    let verdict: number = ReasonCode.Success;
    const hooks: BrokerHooks = {
      onPublish(_client, message, acks) {
        if (!message.topic.startsWith('hooked/')) return;
        const ack = acks.hold();
        if (holdMs === 0) ack?.settle(verdict); // settled inside the hook: the store still holds it
        else setTimeout(() => ack?.settle(verdict), holdMs);
      },
    };
    const { tb, peek } = await brokerOnDisk(hooks);
    const rowOf = peek.prepare<[string], Buffer>('SELECT payload FROM mqtt_retained WHERE topic = ?').pluck();
    const pub = await connect(tb.port, { protocolVersion: 5 });
    const publish = async (topic: string, payload: string): Promise<{ code: number; stored: string | undefined; ms: number }> => {
      const started = Date.now();
      // MQTT.js rejects on a failure reason code, with the code on the error.
      const packet = await pub.publishAsync(topic, payload, { qos: 1, retain: true }).catch((error: { code?: number }) => ({ reasonCode: error.code }));
      const code = (packet as { reasonCode?: number } | undefined)?.reasonCode ?? 0;
      return { code, stored: code === ReasonCode.UnspecifiedError ? undefined : rowOf.get(topic)?.toString(), ms: Date.now() - started };
    };

    const settledAtOnce = await publish('hooked/a', 'one');
    assert.deepEqual([settledAtOnce.code, settledAtOnce.stored], [ReasonCode.Success, 'one'], 'a hook settling at once still waits for the commit');

    holdMs = 150;
    const slowHook = await publish('hooked/b', 'two');
    assert.equal(slowHook.code, ReasonCode.Success);
    assert.ok(slowHook.ms >= 140, `the ack waited for the hook (${slowHook.ms} ms)`);

    holdMs = 0;
    verdict = ReasonCode.QuotaExceeded;
    const refusedByHook = await publish('hooked/c', 'three');
    assert.equal(refusedByHook.code, ReasonCode.QuotaExceeded, 'the hook refuses: its code, though the row is committed');

    verdict = ReasonCode.Success;
    peek.exec('DROP TABLE mqtt_retained'); // the next batch fails inside its transaction
    const refusedByStore = await publish('hooked/d', 'four');
    assert.equal(refusedByStore.code, ReasonCode.UnspecifiedError, 'the store fails: 0x80 Unspecified error');
    await endClient(pub, false);
  });

  test('a QoS 1 publish that writes nothing does not wait on the stores; a retained QoS 0 publish has no ack to hold', async () => {
    const { tb, peek } = await brokerOnDisk();
    // The retained batch of the QoS 0 publish fails: had the QoS 1 publish waited on it, it would get 0x80.
    peek.exec('DROP TABLE mqtt_retained');
    const pub = await connect(tb.port, { protocolVersion: 5 });
    await pub.publishAsync('plain/retained', 'x', { qos: 0, retain: true });
    const packet = (await pub.publishAsync('plain/t', 'x', { qos: 1 })) as { reasonCode?: number } | undefined;
    assert.equal(packet?.reasonCode ?? 0, ReasonCode.Success);
    assert.equal(tb.broker.publishWrites, 0);
    await endClient(pub, false);
  });
});
