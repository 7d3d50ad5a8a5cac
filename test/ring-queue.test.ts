/** RingQueue (src/ring-queue.ts): first in, first out, across wrap-around and growth. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RingQueue } from '../src/ring-queue.ts';

test('items leave in the order they came, whatever the mix of pushes and shifts, across growth', () => {
  const queue = new RingQueue<number>(2);
  const model: number[] = [];
  let next = 0;
  for (let round = 0; round < 2_000; round++) {
    // Bursts of pushes and shifts of varying size keep the ring wrapping and make it grow now and then.
    for (let k = 0; k < (round % 7) + 1; k++) {
      queue.push(next);
      model.push(next++);
    }
    for (let k = 0; k < (round % 5) + 1; k++) assert.equal(queue.shift(), model.shift());
    assert.equal(queue.length, model.length);
    assert.equal(queue.at(0), model[0]);
    assert.equal(queue.at(model.length - 1), model[model.length - 1]);
    assert.equal(queue.at(model.length), undefined);
  }
  assert.deepEqual(queue.drain(), model);
  assert.equal(queue.length, 0);
  assert.equal(queue.shift(), undefined);
});

test('a queue never pushed to answers as empty, and its first push allocates', () => {
  const queue = new RingQueue<string>(4);
  assert.equal(queue.length, 0);
  assert.equal(queue.shift(), undefined);
  assert.equal(queue.at(0), undefined);
  assert.deepEqual(queue.drain(), []);
  assert.throws(() => queue.set(0, 'x'), RangeError);
  for (let i = 0; i < 9; i++) queue.push(String(i));
  assert.deepEqual(queue.drain(), ['0', '1', '2', '3', '4', '5', '6', '7', '8']);
});
