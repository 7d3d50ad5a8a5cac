/**
 * Session expiry and will delay across a broker restart (SPEC §2; MQTT 5 §3.1.2.11.2, §3.1.3.2.2),
 * in-process over a real SQLite file: the broker is closed and a new one is started on the same
 * database, as a restart would. (Crashes at random moments: crash.test.ts.)
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Broker } from '../../src/broker/broker.ts';
import type { BrokerHooks } from '../../src/broker/hooks.ts';
import { ReasonCode } from '../../src/broker/reason-codes.ts';
import { SqliteRetainedStore } from '../../src/broker/retained/sqlite-retained-store.ts';
import { SqliteSessionStore } from '../../src/broker/session/sqlite-session-store.ts';
import { tempDatabases } from '../storage/temp-database.ts';
import { HOST, connect, connectCollecting, delay, endClient } from './helpers.ts';

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

async function until(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(20);
  }
}

describe('timers across a restart', () => {
  test('a session whose expiry passed while the broker was down is gone at start; one still pending expires on time', async () => {
    const file = await databases.file();
    const first = await startOn(file);
    for (const [clientId, sessionExpiryInterval] of [['short', 1], ['long', 3]] as const) {
      const c = await connect(first.port, { clientId, protocolVersion: 5, properties: { sessionExpiryInterval } });
      await c.subscribeAsync('t', { qos: 1 });
      await endClient(c, false);
    }
    const disconnectedAt = Date.now();
    await first.stop();
    await delay(1_200);

    const second = await startOn(file);
    assert.equal(second.broker.sessionCount, 1, 'the 1 s session ended while the broker was down');
    assert.deepEqual((await second.sessions.loadAll()).map((s) => s.clientId), ['long'], 'and it is gone from the store');
    await until(() => second.broker.sessionCount === 0, 4_000, 'the 3 s session to expire');
    const expiredAfter = Date.now() - disconnectedAt;
    assert.ok(expiredAfter >= 2_900 && expiredAfter < 3_900, `expired ${expiredAfter} ms after its disconnect, expected about 3000`);
    assert.deepEqual(await second.sessions.loadAll(), []);
    await second.stop();
  });

  test('delayed wills: a pending one is published when its delay ends, one whose session expired is published at start, restoreClient rebuilds or drops', async () => {
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
    await until(() => [...first.broker.clients()].length === 0, 2_000, 'the broker to see the closes');
    const closedAt = Date.now();
    await first.stop();
    assert.deepEqual(authorized, [], 'no will was published before the restart');
    await delay(1_200);

    const second = await startOn(file, {
      ...hooks,
      restoreClient: (client) => (client.clientId === 'dropped' ? null : { ...client, data: { ...(client.data as object), restored: true } }),
    });
    const seen = await connectCollecting(second.port, watcher);
    const arrivals = new Map<string, number>();
    seen.client.on('message', (topic) => arrivals.set(topic, Date.now() - closedAt));
    await until(() => seen.messages.messages.some((m) => m.topic === 'will/expired'), 2_000, 'the will of the expired session');
    await until(() => arrivals.has('will/pending'), 3_000, 'the pending will');
    const pendingAt = arrivals.get('will/pending')!;
    assert.ok(pendingAt >= 1_900 && pendingAt < 2_900, `pending will published ${pendingAt} ms after its client left, expected about 2000`);
    await delay(Math.max(0, closedAt + 2_600 - Date.now()));
    assert.deepEqual(seen.messages.messages.map((m) => m.topic).sort(), ['will/expired', 'will/pending'], 'each once; the dropped one never');
    assert.deepEqual(authorized, [{ device: 'dev-1', restored: true }, { device: 'dev-1', restored: true }], 'authorized as the client restoreClient returned');
    assert.equal((await second.sessions.loadAll()).find((s) => s.clientId === 'dropped')?.will, null, 'a dropped will leaves the store');
    seen.messages.stop();
    await endClient(seen.client, false);
    await second.stop();
  });
});
