/** RequestTable (src/parser/request-table.ts): requests in flight by increasing id, settled in any order. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestTable } from '../../src/parser/request-table.ts';

test('set and take in any order, across growth, with ids far apart; drain returns the rest oldest first', () => {
  const table = new RequestTable<string>(4);
  const live = new Map<number, string>();
  let next = 1;
  // A rolling window of requests, most settling in order, some lingering much longer.
  for (let round = 0; round < 5_000; round++) {
    for (let k = 0; k < 3; k++) {
      const id = next++;
      table.set(id, `r${id}`);
      live.set(id, `r${id}`);
    }
    const oldest = [...live.keys()].slice(0, 2);
    for (const id of oldest) {
      if (id % 97 === 0) continue; // lingers
      assert.equal(table.take(id), `r${id}`);
      live.delete(id);
    }
    assert.equal(table.size, live.size);
  }
  assert.equal(table.take(next + 5), undefined, 'an id never set');
  assert.equal(table.take(1), undefined, 'an id already taken');
  const rest = table.drain();
  assert.deepEqual(rest, [...live.keys()].sort((a, b) => a - b).map((id) => `r${id}`));
  assert.equal(table.size, 0);
  assert.equal(table.take([...live.keys()][0]!), undefined, 'drained');
});
