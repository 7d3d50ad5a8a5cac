import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '../../src/broker/message.ts';
import type { RetainedStore } from '../../src/broker/retained/retained-store.ts';

export interface RetainedStoreFixture {
  store: RetainedStore;
  /** Closes the store and opens a new one over the same storage, as a broker restart would. */
  reopen: () => Promise<RetainedStore>;
}

function retained(topic: string, payload: string | Buffer, overrides: Partial<Message> = {}): Message {
  return {
    topic,
    payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
    qos: 1,
    retain: true,
    properties: null,
    expiresAt: 0,
    origin: 'acct-1\u0000publisher',
    ...overrides,
  };
}

/** namespace -> topic -> payload text of the namespaces asked for (empty ones left out), for compact assertions. */
function contents(store: RetainedStore, ...namespaces: string[]): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const namespace of namespaces) {
    for (const message of store.load(namespace)) (out[namespace] ??= {})[message.topic] = message.payload.toString();
  }
  return out;
}

/** One suite for every RetainedStore (STYLE.md habit 8). */
export function runRetainedStoreContract(name: string, makeStore: () => Promise<RetainedStoreFixture>): void {
  describe(`RetainedStore contract: ${name}`, () => {
    test('a new store holds nothing', async () => {
      const { store } = await makeStore();
      assert.deepEqual(store.load(''), []);
      assert.deepEqual(store.load('ns'), []);
    });

    test('set stores, a second set replaces, delete clears; all survive a restart', async () => {
      const { store, reopen } = await makeStore();
      store.set('a', retained('t/1', 'first'));
      store.set('a', retained('t/2', 'two'));
      store.set('a', retained('t/3', 'three'));
      await store.flush();
      store.set('a', retained('t/1', 'second'));
      store.delete('a', 't/2');
      store.delete('a', 'never/set');
      assert.deepEqual(contents(await reopen(), 'a'), { a: { 't/1': 'second', 't/3': 'three' } });
    });

    test('count: per namespace and in all, once committed', async () => {
      const { store } = await makeStore();
      store.set('a', retained('t/1', 'one'));
      store.set('a', retained('t/2', 'two'));
      store.set('b', retained('t/1', 'one'));
      await store.flush();
      assert.deepEqual([store.count('a'), store.count('b'), store.count('c'), store.count()], [2, 1, 0, 3]);
      store.delete('a', 't/1');
      await store.flush();
      assert.deepEqual([store.count('a'), store.count()], [1, 2]);
    });

    test('the same topic in two namespaces is two slots', async () => {
      const { store, reopen } = await makeStore();
      store.set('acct-1', retained('status', 'one'));
      store.set('acct-2', retained('status', 'two'));
      store.set('', retained('status', 'anonymous'));
      let reopened = await reopen();
      assert.deepEqual(contents(reopened, 'acct-1', 'acct-2', '', 'acct-3'), { 'acct-1': { status: 'one' }, 'acct-2': { status: 'two' }, '': { status: 'anonymous' } });

      reopened.delete('acct-1', 'status');
      reopened.set('acct-2', retained('status', 'two again'));
      reopened = await reopen();
      assert.deepEqual(contents(reopened, 'acct-1', 'acct-2', ''), { 'acct-2': { status: 'two again' }, '': { status: 'anonymous' } });
    });

    // The broker loads a namespace on its first subscription, possibly in the tick of a retained
    // publish to it: a write not yet committed must be neither lost nor shadowed by its older row.
    test('load includes writes not yet committed: a set replaces or adds, a delete removes; namespaces stay apart', async () => {
      const { store, reopen } = await makeStore();
      store.set('ns', retained('kept', 'k'));
      store.set('ns', retained('replaced', 'old'));
      store.set('ns', retained('deleted', 'd'));
      store.set('other', retained('x', 'x'));
      await store.flush();
      store.set('ns', retained('replaced', 'new'));
      store.delete('ns', 'deleted');
      store.delete('ns', 'never/set');
      store.set('ns', retained('added', 'a'));
      store.set('other', retained('y', 'y'));
      store.set('fresh', retained('only/pending', 'p'));
      const expected = { ns: { kept: 'k', replaced: 'new', added: 'a' }, other: { x: 'x', y: 'y' }, fresh: { 'only/pending': 'p' } };
      assert.deepEqual(contents(store, 'ns', 'other', 'fresh'), expected);
      assert.equal(store.load('ns').length, 3, 'one message per topic');
      assert.deepEqual(contents(store, 'ns', 'other', 'fresh'), expected, 'loading twice changes nothing');
      assert.deepEqual(contents(await reopen(), 'ns', 'other', 'fresh'), expected, 'and the writes still reach storage');
    });

    test('load returns expired messages as stored: expiry is the broker\'s to judge', async () => {
      const { store, reopen } = await makeStore();
      store.set('ns', retained('expired', 'e', { expiresAt: 1 }));
      assert.equal(store.load('ns')[0]?.expiresAt, 1);
      assert.equal((await reopen()).load('ns')[0]?.expiresAt, 1);
    });

    test('messages round-trip exactly: bytes, every property, user property order, expiry, origin', async () => {
      const { store, reopen } = await makeStore();
      const full = retained('ünïcode/☃', Buffer.from([0x00, 0xff, 0xfe, 0xc3, 0x28, 0x80]), {
        qos: 2,
        expiresAt: 1_900_000_000_456,
        origin: '',
        properties: {
          payloadFormatIndicator: 0,
          messageExpiryInterval: 60,
          contentType: 'application/cbor',
          responseTopic: 'replies/1',
          correlationData: Buffer.from([0x00, 0x01, 0xff]),
          userProperties: [['a', '1'], ['b', '2'], ['a', '3']],
        },
      });
      const empty = retained('empty', Buffer.alloc(0), { qos: 0 });
      store.set('ns', full);
      store.set('ns', empty);

      const loaded = new Map((await reopen()).load('ns').map((message) => [message.topic, message]));
      assert.deepEqual(loaded.get('ünïcode/☃'), full);
      assert.deepEqual(loaded.get('empty'), empty);
      assert.deepEqual(loaded.get('ünïcode/☃')?.properties?.userProperties, [['a', '1'], ['b', '2'], ['a', '3']]);
    });

    test('repeated writes to one topic in a tick keep only the last', async () => {
      const { store, reopen } = await makeStore();
      for (let i = 0; i < 500; i++) store.set('ns', retained('hot', `v${i}`));
      store.set('ns', retained('set-then-deleted', 'x'));
      store.delete('ns', 'set-then-deleted');
      store.delete('ns', 'deleted-then-set');
      store.set('ns', retained('deleted-then-set', 'back'));
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(contents(await reopen(), 'ns'), { ns: { hot: 'v499', 'deleted-then-set': 'back' } });
    });

    // SPEC §2: the PUBACK/PUBREC of a retained QoS 1/2 publish waits on whenDurable.
    test('whenDurable tells a waiter once, with true, after the writes issued before it', async () => {
      const { store, reopen } = await makeStore();
      const calls: boolean[] = [];
      store.set('ns', retained('w/1', 'one'));
      store.delete('ns', 'w/none');
      store.whenDurable({ durable: (ok) => calls.push(ok) });
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(calls, [true]);
      await store.flush();
      store.whenDurable({ durable: (ok) => calls.push(ok) });
      assert.deepEqual(calls, [true, true], 'with nothing pending the waiter is told at once');
      assert.deepEqual(contents(await reopen(), 'ns'), { ns: { 'w/1': 'one' } });
    });

    test('many topics written in one tick are all durable after the next tick', async () => {
      const { store, reopen } = await makeStore();
      for (let i = 0; i < 1_000; i++) store.set(`ns-${i % 3}`, retained(`devices/${i}/state`, `s${i}`));
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      const reopened = await reopen();
      assert.deepEqual([0, 1, 2].map((n) => reopened.load(`ns-${n}`).length), [334, 333, 333]);
      assert.equal(contents(reopened, 'ns-1')['ns-1']?.['devices/4/state'], 's4');
    });
  });
}
