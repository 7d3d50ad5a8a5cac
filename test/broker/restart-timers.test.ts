/**
 * Session expiry and will delay across a broker restart (SPEC §2; MQTT 5 §3.1.2.11.2, §3.1.3.2.2),
 * in-process over a real SQLite file: the broker is closed and a new one is started on the same
 * database, as a restart would. On mock time (mock-time.ts): the time the broker is down, and the
 * timers after it, are ticked exactly. (Crashes at random moments, on real time: crash.test.ts.)
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Broker } from '../../src/broker/broker.ts';
import type { BrokerHooks } from '../../src/broker/hooks.ts';
import { ReasonCode } from '../../src/broker/reason-codes.ts';
import { SqliteRetainedStore } from '../../src/broker/retained/sqlite-retained-store.ts';
import { SqliteSessionStore } from '../../src/broker/session/sqlite-session-store.ts';
import { tempDatabases } from '../storage/temp-database.ts';
import { HOST, connect, connectCollecting, endClient } from './helpers.ts';
import { MOCK_TIME_TEST, mockTime, settle } from './mock-time.ts';

const databases = tempDatabases('bucketmq-restart-timers-');
const stops: Array<() => Promise<void>> = [];
after(async () => {
  for (const stop of stops) await stop();
});

interface Running {
  broker: Broker;
  port: number;
  sessions: SqliteSessionStore;
  stop(): Promise<void>;
}

/** A broker over the SQLite file, listening on 127.0.0.1 with a free port. */
async function startOn(file: string, hooks: BrokerHooks = {}): Promise<Running> {
  const db = databases.open(file);
  const sessions = new SqliteSessionStore(db);
  const retained = new SqliteRetainedStore(db);
  const broker = new Broker({ sessionStore: sessions, retainedStore: retained, hooks });
  await broker.start();
  const { port } = await broker.listenTcp({ host: HOST, port: 0 });
  let stopped: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      await broker.close();
      await sessions.close();
      await retained.close();
      db.close();
    })());
  stops.push(stop);
  return { broker, port, sessions, stop };
}

describe('timers across a restart', () => {
  test('a session whose expiry passed while the broker was down is gone at start; one still pending expires on time', MOCK_TIME_TEST, async (t) => {
    const time = mockTime(t);
    const file = await databases.file();
    const first = await startOn(file);
    for (const [clientId, sessionExpiryInterval] of [['short', 1], ['long', 3]] as const) {
      const c = await connect(first.port, { clientId, protocolVersion: 5, properties: { sessionExpiryInterval } });
      await c.subscribeAsync('t', { qos: 1 });
      await endClient(c, false);
    }
    await first.stop();
    time.tick(1_200);

    const second = await startOn(file);
    assert.equal(second.broker.sessionCount, 1, 'the 1 s session ended while the broker was down');
    assert.deepEqual((await second.sessions.loadAll()).map((s) => s.clientId), ['long'], 'and it is gone from the store');
    time.tick(1_799);
    assert.equal(second.broker.sessionCount, 1, 'not before 3 s after its disconnect');
    time.tick(1);
    assert.equal(second.broker.sessionCount, 0, 'expired 3 s after its disconnect');
    await second.sessions.flush();
    assert.deepEqual(await second.sessions.loadAll(), []);
    await second.stop();
  });

  test('delayed wills: a pending one is published when its delay ends, one whose session expired is published at start, restoreClient rebuilds or drops', MOCK_TIME_TEST, async (t) => {
    const time = mockTime(t);
    const file = await databases.file();
    const authorized: unknown[] = [];
    const hooks: BrokerHooks = {
      authenticate: () => ({ ok: true, data: { device: 'dev-1' } }),
      authorizePublish: (client, message) => {
        if (message.topic.startsWith('will/')) authorized.push(client.data);
        return ReasonCode.Success;
      },
    };
    const first = await startOn(file, hooks);
    const watcher = { clientId: 'watcher', protocolVersion: 5 as const, clean: false, properties: { sessionExpiryInterval: 300 } };
    const w = await connect(first.port, { ...watcher, clean: true });
    await w.subscribeAsync('will/#', { qos: 1 });
    await endClient(w, false);
    // [client id, session expiry s, will delay s]: the will waits min(delay, expiry) (MQTT 5 §3.1.3.2.2).
    for (const [clientId, sessionExpiryInterval, willDelayInterval] of [['pending', 60, 2], ['expired', 1, 30], ['dropped', 60, 2]] as const) {
      const c = await connect(first.port, {
        clientId,
        protocolVersion: 5,
        properties: { sessionExpiryInterval },
        will: { topic: `will/${clientId}`, payload: Buffer.from(clientId), qos: 1, retain: false, properties: { willDelayInterval } },
      });
      c.on('error', () => undefined);
      c.stream.destroy();
      await endClient(c);
    }
    await settle(() => [...first.broker.clients()].length === 0, 2_000, 'the broker to see the closes');
    await first.stop();
    assert.deepEqual(authorized, [], 'no will was published before the restart');
    time.tick(1_200);

    const second = await startOn(file, {
      ...hooks,
      restoreClient: (client) => (client.clientId === 'dropped' ? null : { ...client, data: { ...(client.data as object), restored: true } }),
    });
    const seen = await connectCollecting(second.port, watcher);
    await seen.messages.waitFor(1, 2_000);
    assert.equal(seen.messages.messages[0]!.topic, 'will/expired', 'the will of the expired session, at start');
    time.tick(799);
    assert.equal(authorized.length, 1, 'the pending will waits for the rest of its 2 s');
    time.tick(1);
    assert.equal(authorized.length, 2, 'the pending will, 2 s after its client left');
    await seen.messages.waitFor(2, 3_000);
    time.tick(600);
    assert.deepEqual(authorized, [{ device: 'dev-1', restored: true }, { device: 'dev-1', restored: true }], 'authorized as the client restoreClient returned');
    // A marker after the wills (one session's messages keep their order): nothing else was routed.
    await seen.client.publishAsync('will/marker', 'marker', { qos: 1 });
    await seen.messages.waitFor(3, 2_000);
    assert.deepEqual(seen.messages.messages.map((m) => m.topic), ['will/expired', 'will/pending', 'will/marker'], 'each once; the dropped one never');
    assert.equal((await second.sessions.loadAll()).find((s) => s.clientId === 'dropped')?.will, null, 'a dropped will leaves the store');
    seen.messages.stop();
    await endClient(seen.client, false);
    await second.stop();
  });
});
