/**
 * The MQTT data path end to end (issue 5, SPEC §2, §5): a real server (startServer), real MQTT.js
 * clients, the admin API over HTTP, the SQLite bucket store underneath.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import { loadConfig } from '../../src/config.ts';
import type { DataQuery } from '../../src/data/query.ts';
import type { DataRecord } from '../../src/data/record.ts';
import { BUCKETS_FILE, startServer, type RunningServer } from '../../src/server.ts';
import { openDatabase } from '../../src/storage/sqlite-database.ts';
import type { TagItem } from '../../src/tenancy/model.ts';

const scratch = mkdtempSync(path.join(tmpdir(), 'bucketmq-actions-'));
let server: RunningServer;
let accountId: string;
let accountToken: string;
const clients: MqttClient[] = [];

before(async () => {
  const config = loadConfig(['--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--data-dir', scratch, '--log-level', 'silent'], {});
  server = await startServer(config);
  assert.ok(server.firstRun !== null);
  accountId = server.firstRun.accountId;
  accountToken = server.firstRun.accountToken;
});

after(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await server.stop();
  rmSync(scratch, { recursive: true, force: true });
});

async function api(method: string, url: string, body?: unknown, token = accountToken): Promise<{ status: number; body: any }> {
  const response = await fetch(`http://127.0.0.1:${server.ports.http}${url}`, {
    method,
    headers: { authorization: token, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // left as text for the assertion to show
  }
  return { status: response.status, body: parsed };
}

async function createAction(topics: string[], scope: { devices?: string[]; tags?: TagItem[] } = {}): Promise<string> {
  const answer = await api('POST', '/actions', { name: `store ${topics.join(',')}`, trigger: { type: 'mqtt_topic', topics, ...scope }, action: { type: 'insert_bucket' } });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return answer.body.result.id as string;
}

let devices = 0;
function createDevice(tags: TagItem[] = []): { id: string; token: string } {
  const created = server.registry.createDevice(accountId, { name: `device-${++devices}`, tags });
  return { id: created.device.id, token: created.token };
}

async function connect(token: string, options: IClientOptions = {}): Promise<MqttClient> {
  const client = await connectAsync(`mqtt://127.0.0.1:${server.ports.mqtt}`, {
    username: 'Token',
    password: token,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    protocolVersion: 5,
    ...options,
  });
  clients.push(client);
  return client;
}

function query(partial: Partial<DataQuery>): DataQuery {
  return { mode: 'default', qty: 1_000, skip: 0, ordination: 'descending', ...partial };
}

async function records(deviceId: string, partial: Partial<DataQuery> = {}): Promise<DataRecord[]> {
  const result = await server.data.store.query(deviceId, query(partial));
  assert.equal(result.kind, 'records');
  return result.kind === 'records' ? result.records : [];
}

async function count(deviceId: string): Promise<number> {
  const result = await server.data.store.query(deviceId, query({ mode: 'count' }));
  assert.equal(result.kind, 'number');
  return result.kind === 'number' ? result.value : -1;
}

describe('mqtt_topic → insert_bucket', () => {
  test('the issue\'s acceptance: a JSON record on sensors/t is stored with metadata.mqtt_topic and served by the data API', async () => {
    await createAction(['sensors/#']);
    const device = createDevice();
    const client = await connect(device.token);
    await client.publishAsync('sensors/t', '{"variable":"temperature","value":21.5,"unit":"C"}', { qos: 1 });

    const [stored] = await records(device.id, { mode: 'last_value', variables: ['temperature'] });
    assert.ok(stored !== undefined, 'stored by the time the PUBACK arrived');
    assert.equal(stored.variable, 'temperature');
    assert.equal(stored.value, 21.5);
    assert.equal(stored.unit, 'C');
    assert.deepEqual(stored.metadata, { mqtt_topic: 'sensors/t' });

    // The device data API (SPEC §8), with the device's token.
    const answer = await api('GET', '/data?variable=temperature&query=last_value', undefined, device.token);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.result.length, 1);
    assert.equal(answer.body.result[0].value, 21.5);
    assert.equal(answer.body.result[0].unit, 'C');
    assert.equal(answer.body.result[0].metadata.mqtt_topic, 'sensors/t');
  });

  test('a non-record payload is stored as the payload variable: text as text, other bytes as hex', async () => {
    const device = createDevice();
    const client = await connect(device.token);
    await client.publishAsync('sensors/raw', '0a1b', { qos: 1 });
    await client.publishAsync('sensors/bin', Buffer.from([0xff, 0x0a, 0x1b]), { qos: 1 });
    const stored = await records(device.id, { variables: ['payload'], ordination: 'ascending' });
    assert.deepEqual(stored.map((r) => [r.value, r.metadata?.mqtt_topic]), [['0a1b', 'sensors/raw'], ['ff0a1b', 'sensors/bin']]);
  });

  test('no matching action: routed to subscribers, nothing stored', async () => {
    const device = createDevice();
    const client = await connect(device.token);
    await client.subscribeAsync('elsewhere/#', { qos: 1 });
    const delivered = new Promise<string>((resolve) => client.once('message', (topic) => resolve(topic)));
    await client.publishAsync('elsewhere/x', '{"variable":"a","value":1}', { qos: 1 });
    assert.equal(await delivered, 'elsewhere/x');
    assert.equal(await count(device.id), 0);
  });

  test('an inactive action stores nothing; reactivating it does', async () => {
    const id = await createAction(['toggled/#']);
    assert.equal((await api('PUT', `/actions/${id}`, { active: false })).status, 200);
    const device = createDevice();
    const client = await connect(device.token);
    await client.publishAsync('toggled/a', '{"variable":"a","value":1}', { qos: 1 });
    assert.equal(await count(device.id), 0);
    assert.equal((await api('PUT', `/actions/${id}`, { active: true })).status, 200);
    await client.publishAsync('toggled/a', '{"variable":"a","value":2}', { qos: 1 });
    assert.equal(await count(device.id), 1);
  });

  test('scope by device ids', async () => {
    const inside = createDevice();
    const outside = createDevice();
    await createAction(['scoped/ids/#'], { devices: [inside.id] });
    const a = await connect(inside.token);
    const b = await connect(outside.token);
    await a.publishAsync('scoped/ids/x', '{"variable":"a","value":1}', { qos: 1 });
    await b.publishAsync('scoped/ids/x', '{"variable":"a","value":1}', { qos: 1 });
    assert.equal(await count(inside.id), 1);
    assert.equal(await count(outside.id), 0);
  });

  test('scope by tags: a device must carry every tag; a tag change takes effect at once', async () => {
    const paris = createDevice([{ key: 'site', value: 'paris' }, { key: 'kind', value: 'meter' }]);
    const rome = createDevice([{ key: 'site', value: 'rome' }, { key: 'kind', value: 'meter' }]);
    await createAction(['scoped/tags/#'], { tags: [{ key: 'site', value: 'paris' }, { key: 'kind', value: 'meter' }] });
    const a = await connect(paris.token);
    const b = await connect(rome.token);
    await a.publishAsync('scoped/tags/x', '{"variable":"a","value":1}', { qos: 1 });
    await b.publishAsync('scoped/tags/x', '{"variable":"a","value":1}', { qos: 1 });
    assert.equal(await count(paris.id), 1);
    assert.equal(await count(rome.id), 0);

    const moved = await api('PUT', `/devices/${rome.id}`, { tags: [{ key: 'site', value: 'paris' }, { key: 'kind', value: 'meter' }] });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    await b.publishAsync('scoped/tags/x', '{"variable":"a","value":2}', { qos: 1 });
    assert.equal(await count(rome.id), 1);
  });

  test('fires once per message when several filters and several actions match', async () => {
    await createAction(['multi/#', 'multi/+', 'multi/x']);
    await createAction(['+/x']);
    const device = createDevice();
    const client = await connect(device.token);
    await client.publishAsync('multi/x', '{"variable":"a","value":1}', { qos: 1 });
    assert.equal(await count(device.id), 1);
  });

  test('tago/data/post stores into the publisher\'s bucket without an action', async () => {
    const device = createDevice();
    const client = await connect(device.token, { protocolVersion: 4 });
    await client.publishAsync('tago/data/post', '[{"variable":"a","value":1},{"variable":"b","value":"x"}]', { qos: 1 });
    const stored = await records(device.id);
    assert.deepEqual(stored.map((r) => r.variable).sort(), ['a', 'b']);
    assert.equal(stored[0]!.group, stored[1]!.group, 'one message, one group');
  });

  test('deleting a device deletes its bucket; other devices keep theirs', async () => {
    const doomed = createDevice();
    const kept = createDevice();
    for (const device of [doomed, kept]) {
      const client = await connect(device.token);
      await client.publishAsync('tago/data/post', '{"variable":"level","value":3}', { qos: 1 });
      await client.endAsync();
    }
    assert.equal(await count(doomed.id), 1);
    server.registry.deleteDevice(accountId, doomed.id);
    const deadline = Date.now() + 2_000;
    while ((await count(doomed.id)) !== 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(await count(doomed.id), 0, 'the deleted device\'s records are gone');
    assert.equal(await count(kept.id), 1);
  });

  test('v5 QoS 1 with an invalid record: PUBACK 0x99 and nothing of the message stored', async () => {
    await createAction(['invalid/#']);
    const device = createDevice();
    const client = await connect(device.token);
    await assert.rejects(
      client.publishAsync('invalid/x', '[{"variable":"ok","value":1},{"variable":"bad name","value":2}]', { qos: 1 }),
      (error: Error & { code?: number }) => error.code === 0x99,
    );
    assert.equal(await count(device.id), 0);
    // A v3 client cannot be told no: it is acknowledged (resending would never help), nothing stored.
    const v3 = await connect(device.token, { protocolVersion: 4 });
    await v3.publishAsync('invalid/x', '{"variable":"bad name","value":2}', { qos: 1 });
    assert.equal(await count(device.id), 0);
  });

  test('PUBACK/PUBREC only after the commit: every acknowledged record is already in the bucket', async () => {
    await createAction(['acked/#']);
    const device = createDevice();
    const client = await connect(device.token);
    const seenMissing: number[] = [];
    await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        await client.publishAsync('acked/seq', JSON.stringify({ variable: 'seq', value: i }), { qos: i % 2 === 0 ? 1 : 2 });
        const found = await records(device.id, { variables: ['seq'], values: [i] });
        if (found.length !== 1) seenMissing.push(i);
      }),
    );
    assert.deepEqual(seenMissing, []);
    assert.equal(await count(device.id), 200);
  });

  test('a store failure: v5 gets PUBACK 0x80, v3 gets no PUBACK (so it resends), nothing stored', async () => {
    await createAction(['failing/#']);
    const device = createDevice();
    const v5 = await connect(device.token);
    const v3 = await connect(device.token, { protocolVersion: 4, clientId: `v3-${device.id}` });
    // A second connection to the same file makes every insert fail, like a full disk would.
    const db = openDatabase(path.join(scratch, BUCKETS_FILE));
    try {
      db.exec("CREATE TRIGGER fail_inserts BEFORE INSERT ON records BEGIN SELECT RAISE(ABORT, 'simulated failure'); END");
      await assert.rejects(v5.publishAsync('failing/x', '{"variable":"a","value":1}', { qos: 1 }), (error: Error & { code?: number }) => error.code === 0x80);
      let acked = false;
      void v3.publishAsync('failing/x', '{"variable":"a","value":1}', { qos: 1 }).then(() => (acked = true), () => undefined);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(acked, false, 'v3 publish left unacknowledged');
      assert.equal(await count(device.id), 0);
    } finally {
      db.exec('DROP TRIGGER IF EXISTS fail_inserts');
      db.close();
    }
  });

  test('the admin API: list, read, validation, other accounts see nothing', async () => {
    const id = await createAction(['api/#']);
    const list = await api('GET', '/actions');
    assert.equal(list.status, 200);
    assert.ok(list.body.result.some((a: { id: string }) => a.id === id));
    const one = await api('GET', `/actions/${id}`);
    assert.deepEqual(one.body.result.trigger, { type: 'mqtt_topic', topics: ['api/#'] });
    assert.deepEqual(one.body.result.action, { type: 'insert_bucket' });

    const badFilter = await api('POST', '/actions', { name: 'x', trigger: { type: 'mqtt_topic', topics: ['a/#/b'] }, action: { type: 'insert_bucket' } });
    assert.equal(badFilter.status, 400);
    assert.match(badFilter.body.message, /trigger\/topics\/0/);
    const badType = await api('POST', '/actions', { name: 'x', trigger: { type: 'mqtt_topic', topics: ['a'] }, action: { type: 'teleport' } });
    assert.equal(badType.status, 400);
    const unknownDevice = await api('POST', '/actions', { name: 'x', trigger: { type: 'mqtt_topic', topics: ['a'], devices: ['nope'] }, action: { type: 'insert_bucket' } });
    assert.equal(unknownDevice.status, 400);
    assert.equal((await api('GET', '/actions', undefined, 'not-a-token')).status, 401);

    const other = server.registry.createAccount({ name: 'other' });
    assert.equal((await api('GET', `/actions/${id}`, undefined, other.token)).status, 404);
    assert.equal((await api('DELETE', `/actions/${id}`, undefined, other.token)).status, 404);
    assert.deepEqual((await api('GET', '/actions', undefined, other.token)).body.result, []);

    const removed = await api('DELETE', `/actions/${id}`);
    assert.equal(removed.status, 200);
    assert.equal((await api('GET', `/actions/${id}`)).status, 404);
  });
});
