/**
 * Batching and lifecycle of the parser sandbox: messages of one device queued while its call is in
 * flight go into the isolate together, limits stay per message inside a batch, isolates are cached
 * per key (replaced when the code changes, least recently used evicted), and dispose lets the
 * process exit.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ParserSandbox, type ParseOutcome, type ParserDevice } from '../../src/parser/sandbox.ts';

const TIMEOUT_MS = 300;
const sandbox = new ParserSandbox({ timeoutMs: TIMEOUT_MS });
after(() => sandbox.dispose());

const device: ParserDevice = { id: 'dev-b', name: 'batch', tags: [], params: [] };
const echo = 'payload = [{ variable: "i", value: payload[0].i }]';

function run(key: string, code: string, i: number, box: ParserSandbox = sandbox): Promise<ParseOutcome> {
  return box.parse(key, code, device, { payload: [{ i }], raw: Buffer.alloc(0) });
}

function echoed(i: number): ParseOutcome {
  return { ok: true, payload: [{ variable: 'i', value: i }], logs: [] };
}

describe('batching', () => {
  test('500 messages of one device issued at once take a few isolate calls', async () => {
    await run('burst', echo, -1);
    const before = sandbox.stats;
    const outcomes = await Promise.all(Array.from({ length: 500 }, (_, i) => run('burst', echo, i)));
    outcomes.forEach((outcome, i) => assert.deepEqual(outcome, echoed(i)));
    const after = sandbox.stats;
    assert.equal(after.messages - before.messages, 500);
    // maxBatch is 256: two calls, a few more if a batch ran past its time budget on a busy machine.
    assert.ok(after.calls - before.calls <= 10, `${after.calls - before.calls} calls`);
  });

  test('in a batch, only the message that loops forever times out', async () => {
    const code = 'if (payload[0].i === 3) while (true) {} payload = [{ variable: "i", value: payload[0].i }]';
    const outcomes = await Promise.all(Array.from({ length: 7 }, (_, i) => run('one-spins', code, i)));
    outcomes.forEach((outcome, i) => {
      if (i === 3) assert.deepEqual(outcome, { ok: false, error: { kind: 'timeout', message: `parser timed out after ${TIMEOUT_MS} ms` }, logs: [] });
      else assert.deepEqual(outcome, echoed(i));
    });
  });

  test('the time limit is per message, not per batch', async () => {
    // Four messages of 100 ms each: 400 ms in all, over the 300 ms limit, each well within it.
    const code = 'const end = Date.now() + 100; while (Date.now() < end) {} payload = [{ variable: "i", value: payload[0].i }]';
    const outcomes = await Promise.all(Array.from({ length: 4 }, (_, i) => run('slow-batch', code, i)));
    outcomes.forEach((outcome, i) => assert.deepEqual(outcome, echoed(i)));
  });

  test('in a batch, only the message that exhausts memory fails', async () => {
    const code = 'if (payload[0].i === 2) { const keep = []; while (true) keep.push(new Array(1e5).fill(1.5)) } payload = [{ variable: "i", value: payload[0].i }]';
    const outcomes = await Promise.all(Array.from({ length: 5 }, (_, i) => run('one-hogs', code, i)));
    outcomes.forEach((outcome, i) => {
      if (i === 2) assert.deepEqual(outcome, { ok: false, error: { kind: 'memory', message: 'parser exceeded the memory limit of 32 MB' }, logs: [] });
      else assert.deepEqual(outcome, echoed(i));
    });
  });

  test('devices do not share batches or isolates', async () => {
    const before = sandbox.stats;
    const outcomes = await Promise.all(Array.from({ length: 40 }, (_, i) => run(`device-${i % 4}`, echo, i)));
    outcomes.forEach((outcome, i) => assert.deepEqual(outcome, echoed(i)));
    const after = sandbox.stats;
    assert.equal(after.isolatesCreated - before.isolatesCreated, 4);
    assert.ok(after.calls - before.calls >= 4 && after.calls - before.calls <= 12, `${after.calls - before.calls} calls`);
  });
});

describe('isolate cache', () => {
  test('changed code gets a new isolate; invalidate drops the old one', async () => {
    const created = (): number => sandbox.stats.isolatesCreated;
    const start = created();
    assert.deepEqual(await run('cache', echo, 1), echoed(1));
    assert.deepEqual(await run('cache', echo, 2), echoed(2));
    assert.equal(created(), start + 1);
    // Same behaviour, different text: a new isolate.
    assert.deepEqual(await run('cache', `${echo} `, 3), echoed(3));
    assert.equal(created(), start + 2);
    sandbox.invalidate('cache');
    assert.deepEqual(await run('cache', `${echo} `, 4), echoed(4));
    assert.equal(created(), start + 3);
  });

  test('a syntax error is reported for every message until the code changes', async () => {
    const broken = await Promise.all([run('broken', 'payload = [', 0), run('broken', 'payload = [', 1)]);
    for (const outcome of broken) assert.equal(outcome.ok ? 'ok' : outcome.error.kind, 'syntax');
    assert.deepEqual(await run('broken', echo, 2), echoed(2));
  });

  test('least recently used isolates are disposed beyond maxIsolates', async () => {
    const box = new ParserSandbox({ maxIsolates: 2 });
    try {
      for (const key of ['a', 'b', 'c', 'd']) assert.deepEqual(await run(key, echo, 1, box), echoed(1));
      assert.equal(box.stats.isolatesCreated, 4);
      assert.equal(box.stats.isolatesAlive, 2);
      // 'd' is cached: no new isolate. 'a' was evicted: a new one.
      await run('d', echo, 1, box);
      assert.equal(box.stats.isolatesCreated, 4);
      await run('a', echo, 1, box);
      assert.equal(box.stats.isolatesCreated, 5);
      assert.equal(box.stats.isolatesAlive, 2);
    } finally {
      box.dispose();
    }
  });
});

describe('dispose', () => {
  test('calls in flight and later calls reject', async () => {
    const box = new ParserSandbox({ timeoutMs: 5000 });
    await run('x', echo, 1, box);
    const pending = run('x', 'while (true) {}', 1, box);
    box.dispose();
    await assert.rejects(pending, /parser sandbox is disposed/);
    await assert.rejects(run('x', echo, 1, box), /parser sandbox is disposed/);
  });

  test('the process can exit after dispose, and when the sandbox is idle without it', async () => {
    const sandboxUrl = new URL('../../src/parser/sandbox.ts', import.meta.url).href;
    const cwd = fileURLToPath(new URL('../..', import.meta.url));
    for (const ending of ['s.dispose();', '']) {
      const script = `
        import { ParserSandbox } from ${JSON.stringify(sandboxUrl)};
        const s = new ParserSandbox();
        const outcome = await s.parse('k', 'payload = [{ variable: "v" }]', { id: 'd', name: 'd', tags: [], params: [] }, { payload: [], raw: Buffer.alloc(0) });
        console.log(JSON.stringify(outcome));
        ${ending}`;
      const stdout = await new Promise<string>((resolve, reject) => {
        execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd, timeout: 20_000 }, (error, out) =>
          error ? reject(error) : resolve(out),
        );
      });
      assert.deepEqual(JSON.parse(stdout), { ok: true, payload: [{ variable: 'v' }], logs: [] });
    }
  });
});
