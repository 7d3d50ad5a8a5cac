import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupCommitWriter } from '../../src/data/group-commit.ts';

/**
 * A fake durable log: a commit is atomic (all of its items or none) and fails when any item is
 * negative, like a transaction hitting a constraint. `delayMs` makes commits take time, so callers
 * pile up behind a running one.
 */
function log(delayMs = 0) {
  const committed: number[] = [];
  const batches: number[][] = [];
  let running = 0;
  let overlapped = false;
  const commit = async (items: number[]): Promise<void> => {
    running++;
    if (running > 1) overlapped = true;
    try {
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      if (items.some((n) => n < 0)) throw new Error(`negative item in batch of ${items.length}`);
      committed.push(...items);
      batches.push([...items]);
    } finally {
      running--;
    }
  };
  return { commit, committed, batches, overlapped: () => overlapped };
}

const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);

describe('GroupCommitWriter', () => {
  test('callers of one tick share one commit, in arrival order', async () => {
    const l = log();
    const writer = new GroupCommitWriter(l.commit);
    await Promise.all(range(0, 100).map((c) => writer.write(range(c * 3, 3))));
    assert.deepEqual(l.batches, [range(0, 300)]);
    assert.equal(writer.batches, 1);
  });

  test('under sustained concurrency batches grow: callers arriving during a commit form the next one', async () => {
    const l = log(5);
    const writer = new GroupCommitWriter(l.commit);
    const writes: Array<Promise<void>> = [writer.write([0])];
    // Arrivals spread over a running commit.
    for (let round = 1; round <= 4; round++) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      for (let c = 0; c < 50; c++) writes.push(writer.write([round * 1_000 + c]));
    }
    await Promise.all(writes);
    assert.equal(l.committed.length, 201);
    assert.ok(l.batches.length <= 5, `201 callers took ${l.batches.length} commits`);
    assert.ok(Math.max(...l.batches.map((b) => b.length)) >= 50, 'later commits carry many callers');
    assert.equal(l.overlapped(), false, 'commits never overlap');
    assert.deepEqual([...l.committed].sort((a, b) => a - b), [0, ...[1, 2, 3, 4].flatMap((r) => range(r * 1_000, 50))]);
  });

  test('inFlight: up to that many commits run at once, each with the callers that arrived before it', async () => {
    const l = log(20);
    let peak = 0;
    let running = 0;
    const writer = new GroupCommitWriter<number>(async (items) => {
      peak = Math.max(peak, ++running);
      try {
        await l.commit(items);
      } finally {
        running--;
      }
    }, { inFlight: 2 });
    const first = writer.write([1]);
    await new Promise((resolve) => setImmediate(resolve));
    // The first commit is running: the next tick's callers start a second one beside it.
    const second = writer.write([2]);
    await new Promise((resolve) => setImmediate(resolve));
    // Both slots busy: these wait and share the third commit.
    const rest = [writer.write([3]), writer.write([4])];
    await Promise.all([first, second, ...rest]);
    assert.equal(peak, 2);
    assert.deepEqual(l.batches, [[1], [2], [3, 4]]);
  });

  test('a resolved write is committed by the time it resolves', async () => {
    const l = log(2);
    const writer = new GroupCommitWriter(l.commit);
    const seen: boolean[] = [];
    await Promise.all(range(0, 20).map((n) => writer.write([n]).then(() => seen.push(l.committed.includes(n)))));
    assert.deepEqual(seen, Array(20).fill(true));
  });

  test('maxBatch caps a commit; a single larger caller still goes in one commit', async () => {
    const l = log();
    const writer = new GroupCommitWriter(l.commit, { maxBatch: 10 });
    await Promise.all([writer.write(range(0, 4)), writer.write(range(4, 4)), writer.write(range(8, 4)), writer.write(range(12, 25)), writer.write(range(37, 3))]);
    assert.deepEqual(l.batches.map((b) => b.length), [8, 4, 25, 3]);
    assert.deepEqual(l.committed, range(0, 40));
  });

  test('failure isolation: only the failing caller rejects, nothing of it is committed, the others are', async () => {
    const l = log();
    const writer = new GroupCommitWriter(l.commit);
    const results = await Promise.allSettled(range(0, 20).map((c) => writer.write(c === 7 ? [70, -1, 71] : [c * 10, c * 10 + 1])));
    assert.deepEqual(results.map((r) => r.status), range(0, 20).map((c) => (c === 7 ? 'rejected' : 'fulfilled')));
    const failure = results[7];
    assert.ok(failure?.status === 'rejected' && failure.reason instanceof Error);
    assert.equal(failure.reason.message, 'negative item in batch of 3', 'the caller sees the error of its own items');
    assert.ok(!l.committed.includes(70) && !l.committed.includes(71));
    assert.deepEqual([...l.committed].sort((a, b) => a - b), range(0, 20).filter((c) => c !== 7).flatMap((c) => [c * 10, c * 10 + 1]));
  });

  test('several failing callers in one batch are each rejected; the writer goes on', async () => {
    const l = log(1);
    const writer = new GroupCommitWriter(l.commit);
    const results = await Promise.allSettled(range(0, 10).map((c) => writer.write(c % 3 === 0 ? [-c - 1] : [c])));
    assert.deepEqual(results.map((r) => r.status === 'fulfilled'), range(0, 10).map((c) => c % 3 !== 0));
    await writer.write([100]);
    assert.deepEqual([...l.committed].sort((a, b) => a - b), [1, 2, 4, 5, 7, 8, 100]);
  });

  test('a lone caller whose commit fails gets the error; non-Error throws become Errors', async () => {
    const writer = new GroupCommitWriter<number>(() => {
      throw 'disk on fire';
    });
    await assert.rejects(writer.write([1]), (error: unknown) => error instanceof Error && error.message === 'disk on fire');
    const sync = new GroupCommitWriter<number>((items) => {
      if (items.includes(2)) throw new Error('two');
    });
    const settled = await Promise.allSettled([sync.write([1]), sync.write([2]), sync.write([3])]);
    assert.deepEqual(settled.map((s) => s.status), ['fulfilled', 'rejected', 'fulfilled']);
  });

  test('an empty write resolves without a commit', async () => {
    const l = log();
    const writer = new GroupCommitWriter(l.commit);
    await writer.write([]);
    assert.equal(l.batches.length, 0);
  });

  test('drain waits for everything written so far; close drains and then refuses writes', async () => {
    const l = log(3);
    const writer = new GroupCommitWriter(l.commit, { maxBatch: 5 });
    const writes = range(0, 30).map((n) => writer.write([n]));
    await writer.drain();
    assert.equal(l.committed.length, 30, 'drain returned after the last commit');
    await Promise.all(writes);

    const more = range(30, 7).map((n) => writer.write([n]));
    await writer.close();
    assert.equal(l.committed.length, 37, 'close drained the pending writes');
    await Promise.all(more);
    await assert.rejects(writer.write([99]), /writer is closed/);
  });

  test('drain on an idle writer returns at once', async () => {
    const writer = new GroupCommitWriter<number>(() => {});
    await writer.drain();
  });
});
