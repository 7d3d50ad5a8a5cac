/**
 * A session's outbound queue (issue 15): FIFO order, O(1) room-making by dropping the oldest QoS 0
 * message, and the per-session byte cap beside the count cap, over the wire with MQTT.js.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IClientOptions } from 'mqtt';
import type { Message } from '../../src/broker/message.ts';
import { OutboundQueue } from '../../src/broker/session/outbound-queue.ts';
import type { Outbound } from '../../src/broker/session/outbound.ts';
import { connect, connectCollecting, endClient, startBroker, type TestBroker } from './helpers.ts';

let seq = 0;
function entry(qos: 0 | 1 | 2, payload: string, topic = 't'): Outbound {
  const message: Message = { topic, payload: Buffer.from(payload), qos, retain: false, properties: null, expiresAt: 0, origin: '' };
  return { seq: ++seq, message, qos, subscriptionIds: null, retain: false, packetId: 0, state: 'queued', stored: false };
}
const payloads = (entries: Iterable<Outbound>): string[] => [...entries].map((e) => e.message.payload.toString());

describe('OutboundQueue', () => {
  test('FIFO with count and bytes; dropping the oldest QoS 0 leaves the rest in order', () => {
    const queue = new OutboundQueue();
    for (const [qos, p] of [[1, 'a'], [0, 'b'], [1, 'c'], [0, 'd'], [0, 'e']] as const) queue.push(entry(qos, p));
    assert.deepEqual([queue.length, queue.bytes], [5, 10]);
    assert.equal(queue.removeOldestQos0()?.message.payload.toString(), 'b');
    assert.deepEqual(payloads(queue), ['a', 'c', 'd', 'e']);
    assert.deepEqual([queue.length, queue.bytes], [4, 8]);
    assert.equal(queue.shift()?.message.payload.toString(), 'a');
    assert.equal(queue.peek()?.message.payload.toString(), 'c');
    assert.equal(queue.shift()?.message.payload.toString(), 'c');
    // 'd' leaves by shift: the next QoS 0 to drop is 'e', not the gone 'd'.
    assert.equal(queue.shift()?.message.payload.toString(), 'd');
    assert.equal(queue.removeOldestQos0()?.message.payload.toString(), 'e');
    assert.deepEqual([queue.length, queue.bytes, queue.peek(), queue.shift(), queue.removeOldestQos0()], [0, 0, undefined, undefined, undefined]);
  });

  test('holes at the front are skipped by peek and shift; clear empties everything', () => {
    const queue = new OutboundQueue();
    for (const [qos, p] of [[0, 'a'], [0, 'b'], [1, 'c']] as const) queue.push(entry(qos, p));
    queue.removeOldestQos0();
    queue.removeOldestQos0();
    assert.equal(queue.peek()?.message.payload.toString(), 'c');
    assert.equal(queue.removeOldestQos0(), undefined, 'no QoS 0 left');
    queue.push(entry(0, 'd'));
    assert.deepEqual(payloads(queue), ['c', 'd']);
    queue.clear();
    assert.deepEqual([queue.length, queue.bytes, payloads(queue)], [0, 0, []]);
    queue.push(entry(0, 'e'));
    assert.equal(queue.removeOldestQos0()?.message.payload.toString(), 'e');
  });

  test('agrees with a plain array model over a long random run', () => {
    const queue = new OutboundQueue();
    const model: Outbound[] = [];
    let state = 7;
    const random = (): number => (state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    for (let i = 0; i < 20_000; i++) {
      const r = random();
      if (r < 0.5) {
        const e = entry(random() < 0.5 ? 0 : 1, 'x'.repeat(1 + Math.floor(random() * 5)));
        queue.push(e);
        model.push(e);
      } else if (r < 0.75) {
        assert.equal(queue.shift(), model.shift());
      } else {
        const index = model.findIndex((e) => e.qos === 0);
        assert.equal(queue.removeOldestQos0(), index < 0 ? undefined : model.splice(index, 1)[0]);
      }
      assert.equal(queue.length, model.length);
    }
    assert.deepEqual([...queue], model);
    assert.equal(queue.bytes, model.reduce((sum, e) => sum + e.message.payload.length + e.message.topic.length, 0));
  });
});

describe('per-session byte cap (--max-queued-bytes)', () => {
  let tb: TestBroker;
  const dropped: Array<{ payload: string; reason: string }> = [];
  before(async () => {
    // Messages on 'bytes/t' (7 bytes of topic) with 10-byte payloads cost 17 bytes: two fit in 40.
    tb = await startBroker({ limits: { maxQueuedBytes: 40 } });
    tb.broker.on('message.dropped', (_client, message, reason) => dropped.push({ payload: message.payload.toString(), reason }));
  });
  after(() => tb.close());

  test('an offline session keeps what fits: the oldest QoS 0 makes room, then new messages are dropped; one message over the cap never evicts', async () => {
    const session: IClientOptions = { clientId: 'byte-capped', protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 3600 } };
    const first = await connectCollecting(tb.port, { ...session, clean: true });
    await first.client.subscribeAsync('bytes/t', { qos: 1 });
    first.messages.stop();
    await endClient(first.client, false);

    const publisher = await connect(tb.port, { protocolVersion: 5 });
    const sends: Array<[0 | 1, string]> = [[0, 'A000000000'], [1, 'B000000000'], [1, 'C000000000'], [1, 'D000000000'], [1, 'E'.repeat(50)]];
    for (const [qos, payload] of sends) await publisher.publishAsync('bytes/t', payload, { qos });
    await publisher.publishAsync('flush/marker', '', { qos: 1 });

    const again = await connectCollecting(tb.port, session);
    assert.equal(again.connack.sessionPresent, true);
    // Online now: the marker arrives after everything that was queued.
    await publisher.publishAsync('bytes/t', 'marker', { qos: 1 });
    const got = await again.messages.waitFor(3);
    assert.deepEqual(got.map((m) => m.payload.toString()), ['B000000000', 'C000000000', 'marker']);
    assert.deepEqual(dropped, [
      { payload: 'A000000000', reason: 'session queue full (40 bytes), oldest QoS 0 dropped' },
      { payload: 'D000000000', reason: 'session queue full (40 bytes)' },
      { payload: 'E'.repeat(50), reason: 'session queue full (40 bytes)' },
    ]);
    again.messages.stop();
    await endClient(again.client, false);
    await endClient(publisher, false);
    await endClient((await connectCollecting(tb.port, { clientId: 'byte-capped', protocolVersion: 5, clean: true })).client, false);
  });
});
