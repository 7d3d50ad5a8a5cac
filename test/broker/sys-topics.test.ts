/**
 * SysTopics on the broker's clock (node:test mock timers): a round every interval, per namespace with a
 * connected client, publishing only the values that changed; interval 0 publishes nothing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Message } from '../../src/broker/message.ts';
import { SysTopics } from '../../src/broker/sys-topics.ts';
import { connect, endClient, startBroker } from './helpers.ts';
import { MOCK_TIME_TEST, mockTime } from './mock-time.ts';

/** The broker logs in a client with its username as namespace. */
const byUsername = { authenticate: (request: { username: string | undefined }) => ({ ok: true as const, namespace: request.username ?? '' }) };

test('$SYS rounds follow the broker clock: each interval, only changed values, only namespaces with a connected client', MOCK_TIME_TEST, async (t) => {
  const time = mockTime(t);
  const tb = await startBroker({ hooks: byUsername });
  const sys = new SysTopics(tb.broker, { intervalSeconds: 10, version: 'bucketmq version test' });
  const a = await connect(tb.port, { username: 'ns-a', clientId: 'a' });
  const b = await connect(tb.port, { username: 'ns-b', clientId: 'b' });
  try {
    await endClient(b, false);
    await new Promise<void>((resolve) => (tb.broker.stats.namespace('ns-b').connected === 0 ? resolve() : tb.broker.once('client.disconnect', () => resolve())));
    const published: Array<[string, string, string]> = [];
    const publish = tb.broker.publish.bind(tb.broker);
    t.mock.method(tb.broker, 'publish', (namespace: string, message: Message) => {
      published.push([namespace, message.topic, message.payload.toString()]);
      return publish(namespace, message);
    });
    sys.start();

    time.tick(9_999);
    assert.equal(published.length, 0);
    time.tick(1);
    assert.ok(published.every(([namespace]) => namespace === 'ns-a'), 'ns-b has no connected client');
    const first = new Map(published.map(([, topic, text]) => [topic, text]));
    assert.equal(first.get('$SYS/broker/clients/connected'), '1');
    assert.equal(first.get('$SYS/broker/uptime'), '10 seconds');
    assert.equal(first.get('$SYS/broker/version'), 'bucketmq version test');
    assert.equal(first.size, 16);

    published.length = 0;
    time.tick(10_000);
    assert.deepEqual(published, [['ns-a', '$SYS/broker/uptime', '20 seconds']], 'nothing else changed');
  } finally {
    sys.stop();
    await endClient(a);
    await tb.close();
  }
});

test('--sys-interval 0: no round is ever armed', MOCK_TIME_TEST, async (t) => {
  const time = mockTime(t);
  const tb = await startBroker({ hooks: byUsername });
  const sys = new SysTopics(tb.broker, { intervalSeconds: 0, version: 'v' });
  const a = await connect(tb.port, { username: 'ns-a', clientId: 'a' });
  try {
    const publish = t.mock.method(tb.broker, 'publish');
    sys.start();
    time.tick(3_600_000);
    assert.equal(publish.mock.callCount(), 0);
  } finally {
    sys.stop();
    await endClient(a);
    await tb.close();
  }
});
