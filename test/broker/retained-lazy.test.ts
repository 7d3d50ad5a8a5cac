/**
 * Retained messages load per namespace on first use (issue 15: restart time grew with the retained
 * set). In-process brokers restarted over one SQLite file: nothing is read at start-up, a namespace
 * is read on its first subscription that asks for retained messages, and what happened to it before
 * that (a replacing or clearing publish, even one not yet committed, an expired message) is honoured.
 * The process-level restarts, graceful and SIGKILL, are in restart.test.ts and crash.test.ts.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '../../src/broker/message.ts';
import { SqliteRetainedStore } from '../../src/broker/retained/sqlite-retained-store.ts';
import type { Session } from '../../src/broker/session/session.ts';
import type { Database } from '../../src/storage/sqlite-database.ts';
import { tempDatabases } from '../storage/temp-database.ts';
import { connect, connectCollecting, endClient, startBroker, type TestBroker } from './helpers.ts';

const databases = tempDatabases('bucketmq-retained-lazy-');
const running: TestBroker[] = [];
after(async () => {
  for (const tb of running) await tb.close();
});

/** Records which namespaces the broker reads. */
class RecordingStore extends SqliteRetainedStore {
  readonly loads: string[] = [];
  override load(namespace: string): Message[] {
    this.loads.push(namespace);
    return super.load(namespace);
  }
}

interface Run {
  tb: TestBroker;
  store: RecordingStore;
  /** Closes the broker, then its store and database, as a process exit would. */
  stop(): Promise<void>;
}

/** A broker over `file` whose clients live in the namespace named by their username. */
async function startOn(file: string): Promise<Run> {
  const db: Database = databases.open(file);
  const store = new RecordingStore(db);
  const tb = await startBroker({ retainedStore: store, hooks: { authenticate: (request) => ({ ok: true, namespace: request.username ?? '' }) } });
  running.push(tb);
  return {
    tb,
    store,
    stop: async () => {
      await tb.close();
      await store.close();
      db.close();
    },
  };
}

function retained(topic: string, payload: string, expiresAt = 0): Message {
  return { topic, payload: Buffer.from(payload), qos: 1, retain: true, properties: null, expiresAt, origin: '' };
}

/** topic -> payload of the retained messages a new `#` subscription in `namespace` gets, all with the retain flag. */
async function retainedOnSubscribe(port: number, namespace: string, expected: number): Promise<Record<string, string>> {
  const c = await connectCollecting(port, { username: namespace, protocolVersion: 5 });
  await c.client.subscribeAsync('#', { qos: 1 });
  // The retained messages are sent right after the SUBACK, so a message published after it comes last.
  await c.client.publishAsync('ping', 'ping', { qos: 1 });
  const all = await c.messages.waitFor(expected + 1);
  const got = all.slice(0, expected);
  assert.equal(all[expected]!.topic, 'ping', 'nothing else retained');
  assert.ok(got.every((m) => m.packet.retain), 'sent with the retain flag');
  await endClient(c.client);
  return Object.fromEntries(got.map((m) => [m.topic, m.payload.toString()]));
}

async function publishRetained(port: number, namespace: string, topic: string, payload: string): Promise<void> {
  const client = await connect(port, { username: namespace, protocolVersion: 5 });
  await client.publishAsync(topic, payload, { qos: 1, retain: true });
  await endClient(client);
}

describe('retained messages load per namespace on first use', () => {
  test('they survive a restart; start-up reads none; the first subscription reads its namespace once', async () => {
    const file = await databases.file();
    const first = await startOn(file);
    await publishRetained(first.tb.port, 'a', 'sensors/1', 'a1');
    await publishRetained(first.tb.port, 'a', 'sensors/2', 'a2');
    await publishRetained(first.tb.port, 'b', 'sensors/1', 'b1');
    await first.stop();

    const second = await startOn(file);
    assert.deepEqual(second.store.loads, [], 'start-up reads no retained message');
    assert.deepEqual(await retainedOnSubscribe(second.tb.port, 'a', 2), { 'sensors/1': 'a1', 'sensors/2': 'a2' });
    assert.deepEqual(await retainedOnSubscribe(second.tb.port, 'a', 2), { 'sensors/1': 'a1', 'sensors/2': 'a2' });
    assert.deepEqual(second.store.loads, ['a'], 'namespace a read once, b not at all');
    assert.deepEqual(await retainedOnSubscribe(second.tb.port, 'b', 1), { 'sensors/1': 'b1' });
    await second.stop();
  });

  test('a retained publish replacing or clearing a message of a namespace not loaded yet', async () => {
    const file = await databases.file();
    const first = await startOn(file);
    for (const topic of ['kept', 'replaced', 'cleared']) await publishRetained(first.tb.port, 'c', topic, `old ${topic}`);
    await first.stop();

    const second = await startOn(file);
    await publishRetained(second.tb.port, 'c', 'replaced', 'new');
    await publishRetained(second.tb.port, 'c', 'cleared', '');
    await publishRetained(second.tb.port, 'c', 'added', 'added');
    assert.deepEqual(second.store.loads, [], 'publishes write through without reading the namespace');
    const expected = { kept: 'old kept', replaced: 'new', added: 'added' };
    assert.deepEqual(await retainedOnSubscribe(second.tb.port, 'c', 3), expected);
    await second.stop();

    const third = await startOn(file);
    assert.deepEqual(await retainedOnSubscribe(third.tb.port, 'c', 3), expected, 'and so they stay after another restart');
    await third.stop();
  });

  test('a retained publish in the same tick as the first subscription is seen by it, not shadowed by its older row', async () => {
    const file = await databases.file();
    const first = await startOn(file);
    await publishRetained(first.tb.port, 'd', 'replaced', 'old');
    await publishRetained(first.tb.port, 'd', 'cleared', 'old');
    await first.stop();

    const second = await startOn(file);
    second.tb.broker.publish('d', retained('replaced', 'new'));
    second.tb.broker.publish('d', retained('cleared', ''));
    const offered: string[] = [];
    const session = { namespace: 'd', offer: (message: Message) => offered.push(`${message.topic}=${message.payload.toString()}`) } as unknown as Session;
    second.tb.broker.retainer.sendOnSubscribe(session, '#', { qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: 0 });
    assert.deepEqual(offered, ['replaced=new']);
    await second.stop();
  });

  test('an expired message is not sent by the subscription that loads it, and leaves the store', async () => {
    const file = await databases.file();
    const db = databases.open(file);
    const seed = new SqliteRetainedStore(db);
    seed.set('e', retained('expired', 'gone', Date.now() - 1_000));
    seed.set('e', retained('live', 'here', Date.now() + 3_600_000));
    await seed.close();
    db.close();

    const run = await startOn(file);
    assert.deepEqual(await retainedOnSubscribe(run.tb.port, 'e', 1), { live: 'here' });
    await run.store.flush();
    assert.deepEqual(run.store.load('e').map((m) => m.topic), ['live']);
    await run.stop();
  });
});
