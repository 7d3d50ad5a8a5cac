import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { READY_PROBE_DEVICE } from '../../src/metrics/readiness.ts';
import { removeDataDirs, startTestServer } from '../metrics/helpers.ts';

after(removeDataDirs);

test('GET /health and GET /ready answer without credentials; /ready writes and reads both stores, leaving nothing behind', { timeout: 30_000 }, async () => {
  const { server, http, stop } = await startTestServer();
  try {
    const health = await fetch(`${http}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: true });

    const ready = await fetch(`${http}/ready`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: true, result: { listeners: 'ok', registry: 'ok', buckets: 'ok' } });
    const probe = await server.data.store.query(READY_PROBE_DEVICE, { mode: 'count', qty: 1, skip: 0, ordination: 'descending' });
    assert.deepEqual(probe, { kind: 'number', value: 0 }, 'the probe record is deleted again');
  } finally {
    await stop();
  }
});

test('GET /ready: 503 naming the store that cannot be written', { timeout: 30_000 }, async () => {
  const { server, http, stop } = await startTestServer();
  try {
    await server.data.store.close();
    const ready = await fetch(`${http}/ready`);
    assert.equal(ready.status, 503);
    const body = (await ready.json()) as { status: boolean; message: string; result: Record<string, string> };
    assert.equal(body.status, false);
    assert.match(body.message, /^not ready: buckets: not writable: /);
    assert.equal(body.result.registry, 'ok');
    assert.equal(body.result.listeners, 'ok');
    assert.equal((await fetch(`${http}/health`)).status, 200, 'the process is still up');
  } finally {
    await stop();
  }
});
