import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { InspectorBus, type InspectorEvent } from '../../src/inspector/inspector-bus.ts';

describe('InspectorBus', () => {
  test('keeps the last N events per device, oldest first, apart per device', () => {
    let clock = 1_000;
    const bus = new InspectorBus({ historySize: 3, now: () => clock++ });
    for (let i = 0; i < 5; i++) bus.publish('a', 'parser.log', { i });
    bus.publish('b', 'parser.log', { i: 'b' });
    assert.deepEqual(bus.history('a').map((e) => e.data.i), [2, 3, 4]);
    assert.deepEqual(bus.history('a').map((e) => e.time), [1_002, 1_003, 1_004]);
    assert.deepEqual(bus.history('b').map((e) => e.data.i), ['b']);
    assert.deepEqual(bus.history('c'), []);
  });

  test('subscribers get live events of their device only, until they unsubscribe', () => {
    const bus = new InspectorBus();
    const seen: InspectorEvent[] = [];
    const stop = bus.subscribe('a', (e) => seen.push(e));
    bus.publish('a', 'x', { n: 1 });
    bus.publish('b', 'x', { n: 2 });
    stop();
    bus.publish('a', 'x', { n: 3 });
    assert.deepEqual(seen.map((e) => [e.deviceId, e.data.n]), [['a', 1]]);
  });

  test('forget drops a device\'s history', () => {
    const bus = new InspectorBus();
    bus.publish('a', 'x', {});
    bus.forget('a');
    assert.deepEqual(bus.history('a'), []);
  });
});
