/**
 * The data path behind authorization, as server.ts composes a platform node's hooks: tenancy's
 * authorizePublish decides first and the data path's onPublish (src/actions/publish-pipeline.ts)
 * decides the acknowledgement when it allows, whether either answers at once, with a promise, or by
 * holding the acknowledgement. A real broker and raw MQTT 5 clients; the data path is stood for by a
 * hook that holds acks the way the real one does.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { BrokerHooks } from '../../src/broker/hooks.ts';
import type { OnPublish } from '../../src/actions/publish-pipeline.ts';
import { startBroker, type TestBroker } from '../broker/helpers.ts';
import { PUBACK, WireClient, ackOf, encodePublishV5 } from '../broker/v5-helpers.ts';

describe('the data path behind authorizePublish', () => {
  let tb: TestBroker;
  const reached: string[] = [];
  /** Authorization: the topic's first level says how it answers (quota: refuse as a rate limit would). */
  const access: Omit<BrokerHooks, 'onPublish'> = {
    authorizePublish(_client, message) {
      const [how] = message.topic.split('/');
      if (how === 'quota') return Promise.resolve(0x97);
      if (how === 'later') return new Promise((resolve) => setTimeout(() => resolve(0), 20));
      if (how === 'broken') return Promise.reject(new Error('authorization failed'));
      return 0;
    },
  };
  /** The data path: holds, answers with a code, or lets the ack go (second level). */
  const dataPath: OnPublish = (_client, message, acks) => {
    const [, what] = message.topic.split('/');
    reached.push(message.topic);
    if (what === 'hold') {
      const ack = acks.hold();
      if (ack !== null) setTimeout(() => ack.settle(0), 30);
      return;
    }
    if (what === 'bad') return 0x99;
    if (what === 'slowbad') return new Promise((resolve) => setTimeout(() => resolve(0x99), 10));
    return undefined;
  };
  before(async () => {
    tb = await startBroker({ hooks: { ...access, onPublish: dataPath } });
  });
  after(() => tb.close());

  test('each combination acknowledges with the right code, in order, and the data path runs only when authorization allows', async () => {
    const { raw } = await WireClient.connect(tb.port, { clientId: 'layered' });
    const cases: Array<[topic: string, code: number]> = [
      ['quota/hold', 0x97],
      ['later/hold', 0],
      ['later/bad', 0x99],
      ['later/slowbad', 0x99],
      ['later/none', 0],
      ['broken/hold', 0x80],
      ['now/hold', 0],
      ['now/bad', 0x99],
      ['now/none', 0],
    ];
    try {
      cases.forEach(([topic], i) => raw.sendRaw(encodePublishV5({ topic, payload: 'x', qos: 1, packetId: i + 1 })));
      const acks = (await raw.takeN(cases.length, (f) => f.type === PUBACK, 3000)).map(ackOf);
      assert.deepEqual(acks, cases.map(([, code], i) => ({ packetId: i + 1, reasonCode: code })));
      assert.deepEqual([...reached].sort(), cases.filter(([topic]) => !topic.startsWith('quota/') && !topic.startsWith('broken/')).map(([topic]) => topic).sort());
    } finally {
      raw.destroy();
    }
  });
});
