import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '../../src/broker/message.ts';
import type { SessionRow, SessionStore, StoredOutbound, StoredSession, StoredWill, SubscriptionOptions } from '../../src/broker/session/session-store.ts';

export interface SessionStoreFixture {
  store: SessionStore;
  /** Closes the store and opens a new one over the same storage, as a broker restart would. */
  reopen: () => Promise<SessionStore>;
}

const KEY = 'acct-1\u0000sensor-1';
const NEVER_EXPIRES = 0xffffffff;

function sessionRow(key = KEY, overrides: Partial<Pick<SessionRow, 'expiryInterval' | 'disconnectedAt' | 'client'>> = {}): SessionRow {
  const [namespace = '', clientId = ''] = key.split('\u0000');
  return { key, namespace, clientId, expiryInterval: 3600, disconnectedAt: 0, client: null, ...overrides };
}

function message(overrides: Partial<Message> = {}): Message {
  return {
    topic: 'devices/1/temp',
    payload: Buffer.from('21.5'),
    qos: 1,
    retain: false,
    properties: null,
    expiresAt: 0,
    origin: 'acct-1\u0000publisher',
    ...overrides,
  };
}

function outbound(seq: number, overrides: Partial<StoredOutbound> = {}): StoredOutbound {
  return { seq, message: message({ payload: Buffer.from(`m${seq}`) }), qos: 1, subscriptionIds: [], retain: false, packetId: 0, state: 'queued', ...overrides };
}

function will(overrides: Partial<StoredWill> = {}): StoredWill {
  return {
    client: { clientId: 'sensor-1', username: 'Token', protocolVersion: 5, remoteAddress: '127.0.0.1:50000', transport: 'tcp', data: '{"deviceId":"d1","acl":{"rules":[]}}' },
    message: message({ topic: 'devices/1/status', payload: Buffer.from('offline'), retain: true, origin: '', properties: { contentType: 'text/plain', userProperties: [['b', '1'], ['a', '2']] } }),
    delay: 30,
    ...overrides,
  };
}

async function loadOne(store: SessionStore, key = KEY): Promise<StoredSession> {
  const session = (await store.loadAll()).find((s) => s.key === key);
  assert.ok(session, `session ${JSON.stringify(key)} should be stored`);
  return session;
}

function byFilter(session: StoredSession): Map<string, SubscriptionOptions> {
  return new Map(session.subscriptions);
}

/** One suite for every SessionStore (STYLE.md habit 8). */
export function runSessionStoreContract(name: string, makeStore: () => Promise<SessionStoreFixture>): void {
  describe(`SessionStore contract: ${name}`, () => {
    test('a new store holds no sessions', async () => {
      const { store } = await makeStore();
      assert.deepEqual(await store.loadAll(), []);
    });

    test('saveSession keeps the client that last connected, as given, and replaces it', async () => {
      const { store, reopen } = await makeStore();
      const client = { clientId: 'sensor-1', username: 'Token', protocolVersion: 5 as const, remoteAddress: '127.0.0.5:5000', transport: 'tls' as const, data: '{"device":"d1","acl":["a/#"]}' };
      store.saveSession(sessionRow(KEY, { client }));
      const reopened = await reopen();
      assert.deepEqual((await loadOne(reopened)).client, client);
      const next = { ...client, username: 'other', remoteAddress: '127.0.0.6:6000', data: 'null' };
      reopened.saveSession(sessionRow(KEY, { client: next }));
      assert.deepEqual((await loadOne(reopened)).client, next);
    });

    test('saveSession stores the row and replaces it without touching subscriptions or messages', async () => {
      const { store, reopen } = await makeStore();
      store.saveSession(sessionRow(KEY, { expiryInterval: NEVER_EXPIRES }));
      store.setSubscription(KEY, 'a/#', { qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: 0 });
      store.addOutbound(KEY, outbound(1));
      store.addInboundQos2(KEY, 7);
      store.saveSession(sessionRow(KEY, { expiryInterval: 120, disconnectedAt: 1_700_000_000_123 }));

      const reopened = await reopen();
      const session = await loadOne(reopened);
      assert.equal(session.namespace, 'acct-1');
      assert.equal(session.clientId, 'sensor-1');
      assert.equal(session.expiryInterval, 120);
      assert.equal(session.disconnectedAt, 1_700_000_000_123);
      assert.equal(session.client, null);
      assert.equal(session.subscriptions.length, 1);
      assert.deepEqual(session.outbound.map((e) => e.seq), [1]);
      assert.deepEqual(session.inboundQos2, [7]);
    });

    test('expiry interval 0xFFFFFFFF (never) round-trips', async () => {
      const { store, reopen } = await makeStore();
      store.saveSession(sessionRow(KEY, { expiryInterval: NEVER_EXPIRES }));
      assert.equal((await loadOne(await reopen())).expiryInterval, NEVER_EXPIRES);
    });

    test('subscriptions keep every option, are replaced per filter and can be deleted', async () => {
      const { store, reopen } = await makeStore();
      const plain: SubscriptionOptions = { qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: 0 };
      const everything: SubscriptionOptions = { qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 2, subscriptionId: 268_435_455 };
      store.saveSession(sessionRow());
      store.setSubscription(KEY, 'devices/+/temp', plain);
      store.setSubscription(KEY, '$share/g/alerts/#', everything);
      store.setSubscription(KEY, 'gone', plain);
      store.setSubscription(KEY, 'devices/+/temp', { ...plain, qos: 1, retainHandling: 1, subscriptionId: 5 });
      store.deleteSubscription(KEY, 'gone');
      store.deleteSubscription(KEY, 'never-existed');

      const subscriptions = byFilter(await loadOne(await reopen()));
      assert.deepEqual(
        subscriptions,
        new Map<string, SubscriptionOptions>([
          ['devices/+/temp', { ...plain, qos: 1, retainHandling: 1, subscriptionId: 5 }],
          ['$share/g/alerts/#', everything],
        ]),
      );
    });

    test('outbound entries load in seq order with their updates, and removals stick', async () => {
      const { store, reopen } = await makeStore();
      store.saveSession(sessionRow());
      store.addOutbound(KEY, outbound(3));
      store.addOutbound(KEY, outbound(1, { state: 'publish', packetId: 11, qos: 2, retain: true, subscriptionIds: [4, 9] }));
      store.addOutbound(KEY, outbound(2));
      store.addOutbound(KEY, outbound(4));
      store.updateOutbound(KEY, 1, 11, 'pubrel');
      store.updateOutbound(KEY, 3, 12, 'publish');
      store.removeOutbound(KEY, 2);
      store.removeOutbound(KEY, 99);
      await store.flush();
      store.updateOutbound(KEY, 4, 13, 'publish');

      const session = await loadOne(await reopen());
      assert.deepEqual(session.outbound, [
        outbound(1, { state: 'pubrel', packetId: 11, qos: 2, retain: true, subscriptionIds: [4, 9] }),
        outbound(3, { state: 'publish', packetId: 12 }),
        outbound(4, { state: 'publish', packetId: 13 }),
      ]);
    });

    test('an entry changed by the caller after addOutbound is stored as it was added', async () => {
      const { store } = await makeStore();
      store.saveSession(sessionRow());
      const entry = outbound(1, { subscriptionIds: [1] });
      store.addOutbound(KEY, entry);
      entry.packetId = 5;
      entry.state = 'publish';
      entry.subscriptionIds.push(2);
      const [stored] = (await loadOne(store)).outbound;
      assert.deepEqual(stored, outbound(1, { subscriptionIds: [1] }));
    });

    test('inbound QoS 2 packet ids are added and released', async () => {
      const { store, reopen } = await makeStore();
      store.saveSession(sessionRow());
      store.addInboundQos2(KEY, 3);
      store.addInboundQos2(KEY, 65535);
      store.addInboundQos2(KEY, 1);
      store.addInboundQos2(KEY, 3);
      store.removeInboundQos2(KEY, 65535);
      store.removeInboundQos2(KEY, 42);
      assert.deepEqual([...(await loadOne(await reopen())).inboundQos2].sort((a, b) => a - b), [1, 3]);
    });

    test('deleteSession removes the session, its subscriptions, messages and QoS 2 ids', async () => {
      const { store, reopen } = await makeStore();
      const other = 'acct-2\u0000sensor-1';
      for (const key of [KEY, other]) {
        store.saveSession(sessionRow(key));
        store.setSubscription(key, 'x', { qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: 0 });
        store.addOutbound(key, outbound(1));
        store.addInboundQos2(key, 1);
      }
      await store.flush();
      store.deleteSession(KEY);

      let reopened = await reopen();
      assert.deepEqual((await reopened.loadAll()).map((s) => s.key), [other]);

      // A session created again under the same key starts empty.
      reopened.saveSession(sessionRow(KEY));
      reopened = await reopen();
      const again = await loadOne(reopened);
      assert.deepEqual([again.subscriptions, again.outbound, again.inboundQos2], [[], [], []]);
      assert.equal((await loadOne(reopened, other)).outbound.length, 1);
    });

    test('messages round-trip exactly: bytes, every property, user property order, expiry, origin', async () => {
      const { store, reopen } = await makeStore();
      const full = message({
        topic: 'ünïcode/topic/☃',
        payload: Buffer.from([0x00, 0xff, 0xfe, 0xc3, 0x28, 0x80, 0x0a, 0x00]),
        qos: 2,
        retain: true,
        expiresAt: 1_900_000_000_456,
        origin: '',
        properties: {
          payloadFormatIndicator: 0,
          messageExpiryInterval: 3600,
          contentType: 'application/octet-stream',
          responseTopic: 'replies/☃',
          correlationData: Buffer.from([0xde, 0xad, 0x00, 0xbe, 0xef]),
          userProperties: [['a', '1'], ['b', '2'], ['a', '3'], ['', ''], ['ключ', 'значение']],
        },
      });
      const utf8 = message({ properties: { payloadFormatIndicator: 1, contentType: 'text/plain' } });
      const empty = message({ payload: Buffer.alloc(0), properties: { userProperties: [] } });
      store.saveSession(sessionRow());
      store.addOutbound(KEY, outbound(1, { message: full }));
      store.addOutbound(KEY, outbound(2, { message: utf8 }));
      store.addOutbound(KEY, outbound(3, { message: empty }));
      store.addOutbound(KEY, outbound(4));

      const [a, b, c, d] = (await loadOne(await reopen())).outbound;
      assert.deepEqual(a?.message, full);
      assert.deepEqual(b?.message, utf8);
      assert.deepEqual(c?.message, empty);
      assert.deepEqual(d?.message, outbound(4).message);
      assert.ok(Buffer.isBuffer(a?.message.payload) && Buffer.isBuffer(a.message.properties?.correlationData));
      assert.deepEqual(a?.message.properties?.userProperties, [['a', '1'], ['b', '2'], ['a', '3'], ['', ''], ['ключ', 'значение']]);
    });

    test('sessions with the same client id in different namespaces are separate', async () => {
      const { store, reopen } = await makeStore();
      const other = 'acct-2\u0000sensor-1';
      store.saveSession(sessionRow(KEY));
      store.saveSession(sessionRow(other, { expiryInterval: 5 }));
      store.addOutbound(other, outbound(1));
      const reopened = await reopen();
      assert.equal((await loadOne(reopened, KEY)).outbound.length, 0);
      const second = await loadOne(reopened, other);
      assert.deepEqual([second.namespace, second.clientId, second.expiryInterval, second.outbound.length], ['acct-2', 'sensor-1', 5, 1]);
    });

    test('many mutations issued in one tick are all durable after the next tick', async () => {
      const { store, reopen } = await makeStore();
      const count = 2_000;
      store.saveSession(sessionRow());
      for (let seq = 1; seq <= count; seq++) store.addOutbound(KEY, outbound(seq, { state: 'publish', packetId: seq }));
      for (let seq = 1; seq <= count; seq += 2) store.removeOutbound(KEY, seq);
      for (let id = 1; id <= 100; id++) store.addInboundQos2(KEY, id);
      // No explicit flush: the store's own timer must write the batch.
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));

      const session = await loadOne(await reopen());
      assert.equal(session.outbound.length, count / 2);
      assert.deepEqual(session.outbound.slice(0, 3).map((e) => e.seq), [2, 4, 6]);
      assert.equal(session.inboundQos2.length, 100);
    });

    // MQTT 5 §3.1.3.2.2, SPEC §2: a delayed will survives a restart with its session.
    test('a will is stored with its session, replaced, removed by setWill(null) and by deleteSession', async () => {
      const { store, reopen } = await makeStore();
      const other = 'acct-2\u0000sensor-1';
      store.saveSession(sessionRow(KEY));
      store.saveSession(sessionRow(other));
      store.setWill(KEY, will({ delay: 5 }));
      store.setWill(KEY, will());
      store.setWill(other, will({ delay: 7 }));
      let reopened = await reopen();
      assert.deepEqual((await loadOne(reopened)).will, will(), 'the last will, exactly: client, message with properties, delay');
      assert.equal((await loadOne(reopened, other)).will?.delay, 7);

      reopened.setWill(KEY, null);
      reopened.setWill('acct-3\u0000nobody', null);
      reopened = await reopen();
      assert.equal((await loadOne(reopened)).will, null);
      assert.notEqual((await loadOne(reopened, other)).will, null);

      reopened.deleteSession(other);
      reopened.saveSession(sessionRow(other));
      assert.equal((await loadOne(await reopen(), other)).will, null, 'deleteSession took the will with it');
    });

    test('a will without a saved session is not loaded; a session without a will loads will null', async () => {
      const { store, reopen } = await makeStore();
      store.setWill(KEY, will());
      store.saveSession(sessionRow('acct-2\u0000plain'));
      const loaded = await (await reopen()).loadAll();
      assert.deepEqual(loaded.map((s) => [s.key, s.will]), [['acct-2\u0000plain', null]]);
    });

    // SPEC §2: a publisher's PUBACK/PUBREC waits on whenDurable for the copies queued here.
    test('whenDurable tells a waiter once, with true, after the mutations issued before it', async () => {
      const { store, reopen } = await makeStore();
      const calls: boolean[] = [];
      store.saveSession(sessionRow());
      store.addOutbound(KEY, outbound(1));
      store.whenDurable({ durable: (ok) => calls.push(ok) });
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(calls, [true]);
      await store.flush();
      store.whenDurable({ durable: (ok) => calls.push(ok) });
      assert.deepEqual(calls, [true, true], 'with nothing pending the waiter is told at once');
      assert.equal((await loadOne(await reopen())).outbound.length, 1);
    });

    test('flush resolves with everything durable, and loadAll sees writes not yet flushed', async () => {
      const { store, reopen } = await makeStore();
      store.saveSession(sessionRow());
      store.addOutbound(KEY, outbound(1));
      assert.equal((await loadOne(store)).outbound.length, 1);
      store.addOutbound(KEY, outbound(2));
      await store.flush();
      await store.flush(); // nothing pending: still fine
      assert.equal((await loadOne(await reopen())).outbound.length, 2);
    });
  });
}
