/**
 * The action queue under a flood (issue 17): a slow target fills its account's lane, further runs
 * are dropped and counted, other accounts keep running, and MQTT ingest goes on at the same pace.
 * A real server with `--action-queue 50` and the recording stand-in executors held (a target that
 * does not answer).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { ACCOUNT_CONCURRENCY } from '../../src/actions/runner.ts';
import { settle } from '../broker/mock-time.ts';
import { ActionFixture } from './action-fixture.ts';

const QUEUE = 50;
/** A/B rounds of the throughput comparison. */
const ROUNDS = 5;
const f = new ActionFixture(['--action-queue', String(QUEUE)]);
before(() => f.start());
after(() => f.close());

async function publishAll(client: MqttClient, topic: string, count: number): Promise<number> {
  const started = performance.now();
  await Promise.all(Array.from({ length: count }, (_, i) => client.publishAsync(topic, `{"variable":"n","value":${i}}`, { qos: 1 })));
  return performance.now() - started;
}

test('a flood against a slow target: the lane holds what it may, drops and counts the rest; other accounts still run', async () => {
  const device = f.createDevice();
  const id = await f.createAction({ trigger: { type: 'mqtt_topic', topics: ['flood/#'] } });
  await f.setActionType(id, 'http_post');
  const runner = f.server.actionRuns.runner;
  f.executors.hold();
  try {
    const client = await f.connect(device.token);
    const flood = 2_000;
    await publishAll(client, 'flood/x', flood);
    await settle(() => runner.stats.running === ACCOUNT_CONCURRENCY, 5_000, 'the lane\'s runs to start');
    assert.deepEqual({ ...runner.stats }, { queued: QUEUE, running: ACCOUNT_CONCURRENCY, dropped: flood - QUEUE - ACCOUNT_CONCURRENCY, loops: 0 });

    // Another account's lane is its own.
    const other = f.server.registry.createAccount({ name: 'other' });
    const otherDevice = f.createDevice([], other.account.id);
    const created = await f.api('POST', '/actions', { name: 'other', trigger: { type: 'variable', conditions: [{ variable: 'n', is: 'any' }] }, action: { type: 'insert_bucket' } }, other.token);
    assert.equal(created.status, 201);
    await f.postData(otherDevice.token, { variable: 'n', value: 1 });
    await f.executors.waitFor(() => f.executors.of(created.body.result.id).length === 1, 5_000, 'the other account\'s run');
  } finally {
    f.executors.release();
  }
  await settle(() => runner.stats.running === 0 && runner.stats.queued === 0, 5_000, 'the lane to drain');
  assert.equal(f.executors.of(id).length, QUEUE + ACCOUNT_CONCURRENCY, 'exactly the runs that were queued ran');
  const runs = await f.api('GET', `/actions/${id}/runs`);
  assert.equal(runs.body.result.length, QUEUE + ACCOUNT_CONCURRENCY);
});

test('MQTT ingest throughput with a slow action on the flooded topic vs without (A/B alternated, same run)', async (t) => {
  const device = f.createDevice();
  await f.createAction({ trigger: { type: 'mqtt_topic', topics: ['ingest/#'], devices: [device.id] } }); // insert_bucket: every message stored
  const slow = await f.createAction({ trigger: { type: 'mqtt_topic', topics: ['ingest/#'], devices: [device.id] } });
  await f.setActionType(slow, 'http_post');
  const client = await f.connect(device.token);
  const perRound = 5_000;
  const rates: Record<'with' | 'without', number[]> = { with: [], without: [] };
  await publishAll(client, 'ingest/warmup', perRound); // JIT and the bucket writer warmed up first
  f.executors.hold();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const variant of round % 2 === 0 ? (['without', 'with'] as const) : (['with', 'without'] as const)) {
        assert.equal((await f.api('PUT', `/actions/${slow}`, { active: variant === 'with' })).status, 200);
        const ms = await publishAll(client, 'ingest/x', perRound);
        rates[variant].push(Math.round((perRound / ms) * 1000));
      }
    }
  } finally {
    f.executors.release();
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(ROUNDS / 2)]!;
  t.diagnostic(`QoS 1 msg/s stored, ${perRound} per round: without the slow action ${rates.without.join(', ')} (median ${median(rates.without)}); with it ${rates.with.join(', ')} (median ${median(rates.with)})`);
  assert.ok(f.server.actionRuns.runner.stats.dropped > 0, 'the slow action\'s lane was full');
  // Generous: the machine is shared; a queue on the ingest path would cost far more than this.
  assert.ok(median(rates.with) >= 0.5 * median(rates.without), `with ${median(rates.with)} msg/s vs without ${median(rates.without)} msg/s`);
});
