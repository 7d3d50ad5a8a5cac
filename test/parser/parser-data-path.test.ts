/**
 * Payload parsers on the data path end to end (issue 6, SPEC §4): a real server, MQTT.js clients,
 * HTTP requests, the SQLite buckets and isolated-vm underneath. Parsers run before validation on
 * MQTT actions, `tago/data/post` and HTTP POST /data; errors store nothing, answer 400 / PUBACK 0x99,
 * and reach the inspector with the parser's console output.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import { loadConfig } from '../../src/config.ts';
import type { DataRecord } from '../../src/data/record.ts';
import { startServer, type RunningServer } from '../../src/server.ts';

const scratch = mkdtempSync(path.join(tmpdir(), 'bucketmq-parsers-'));
let server: RunningServer;
let accountToken: string;
const clients: MqttClient[] = [];

/** A hex sensor frame: temperature int16 / 100, humidity uint8 / 2, battery uint16 mV (SPEC §4 example). */
const HEX_DECODER = `
const raw = payload.find((x) => x.variable === 'payload');
if (raw) {
  const buffer = Buffer.from(raw.value, 'hex');
  console.log('frame of', buffer.length, 'bytes');
  payload = [
    { variable: 'temperature', value: buffer.readInt16BE(0) / 100, unit: 'C' },
    { variable: 'humidity', value: buffer.readUInt8(2) / 2, unit: '%' },
    { variable: 'battery', value: buffer.readUInt16BE(3), unit: 'mV' },
  ];
}`;

before(async () => {
  const config = loadConfig(['--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--data-dir', scratch, '--log-level', 'silent', '--parser-timeout', '300'], {});
  server = await startServer(config);
  assert.ok(server.firstRun !== null);
  accountToken = server.firstRun.accountToken;
  const action = await api('POST', '/actions', { name: 'store sensors', trigger: { type: 'mqtt_topic', topics: ['sensors/#'] }, action: { type: 'insert_bucket' } });
  assert.equal(action.status, 201);
});

after(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await server.stop();
  rmSync(scratch, { recursive: true, force: true });
});

async function api(method: string, url: string, body?: unknown, headers: Record<string, string> = { authorization: accountToken }): Promise<{ status: number; body: any }> {
  const isRaw = typeof body === 'string' || Buffer.isBuffer(body);
  const response = await fetch(`http://127.0.0.1:${server.ports.http}${url}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': isRaw ? 'text/plain' : 'application/json' }) },
    ...(body === undefined ? {} : { body: isRaw ? (body as string) : JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text.length > 0 ? JSON.parse(text) : null };
}

let devices = 0;
async function createDevice(parser: string | null, params: Array<{ key: string; value: string }> = []): Promise<{ id: string; token: string }> {
  const created = await api('POST', '/devices', { name: `sensor-${++devices}`, payload_parser: parser });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.result.device_id as string;
  if (params.length > 0) assert.equal((await api('PUT', `/devices/${id}/params`, params)).status, 200);
  return { id, token: created.body.result.token as string };
}

async function connect(token: string, options: IClientOptions = {}): Promise<MqttClient> {
  const client = await connectAsync(`mqtt://127.0.0.1:${server.ports.mqtt}`, { username: 'Token', password: token, reconnectPeriod: 0, connectTimeout: 5_000, protocolVersion: 5, ...options });
  clients.push(client);
  return client;
}

async function stored(deviceId: string): Promise<DataRecord[]> {
  const result = await server.data.store.query(deviceId, { mode: 'default', qty: 1_000, skip: 0, ordination: 'ascending' });
  assert.equal(result.kind, 'records');
  return result.records;
}

function pick(records: DataRecord[]): Array<[string, unknown, string | null]> {
  return records.map((r) => [r.variable, r.value, r.unit]);
}

describe('payload parsers on the data path', () => {
  test('MQTT action: a hex frame is decoded by the device parser, records carry metadata.mqtt_topic, console output reaches the inspector', async () => {
    const device = await createDevice(HEX_DECODER);
    const client = await connect(device.token);
    await client.publishAsync('sensors/room1', Buffer.from('08fc5b0e74', 'hex'), { qos: 1 });
    const records = await stored(device.id);
    assert.deepEqual(pick(records), [['temperature', 23, 'C'], ['humidity', 45.5, '%'], ['battery', 3700, 'mV']]);
    for (const r of records) assert.deepEqual(r.metadata, { mqtt_topic: 'sensors/room1' });
    assert.equal(new Set(records.map((r) => r.group)).size, 1, 'one group shared by the message');
    const logs = server.inspector.history(device.id).filter((e) => e.type === 'parser.log');
    assert.deepEqual(logs.map((e) => e.data), [{ level: 'log', message: 'frame of 5 bytes' }]);
  });

  test('the parser sees the non-JSON message as a payload record with metadata.mqtt_topic, and raw_payload as a Buffer', async () => {
    const device = await createDevice(`payload = [{ variable: 'seen', value: JSON.stringify(payload) }, { variable: 'raw', value: raw_payload.toString('base64') }]`);
    const client = await connect(device.token);
    await client.publishAsync('sensors/text', 'hello', { qos: 1 });
    const records = await stored(device.id);
    assert.deepEqual(JSON.parse(records[0]!.value as string), [{ variable: 'payload', value: 'hello', metadata: { mqtt_topic: 'sensors/text' } }]);
    assert.equal(records[1]!.value, Buffer.from('hello').toString('base64'));
  });

  test('binary and multi-byte text payloads: payload holds the hex or the text, raw_payload the exact bytes, whatever the topic holds', async () => {
    const device = await createDevice(`payload = [{ variable: 'seen', value: JSON.stringify(payload) }, { variable: 'raw', value: raw_payload.toString('base64') }]`);
    const client = await connect(device.token);
    const cases: Array<{ topic: string; bytes: Buffer; value: string }> = [
      { topic: 'sensors/bin', bytes: Buffer.from([0xff, 0x00, 0x10, 0xc3]), value: 'ff0010c3' },
      { topic: 'sensors/a"b\\c\tq', bytes: Buffer.from('température 😀\t"quoted"\n\\end', 'utf8'), value: 'température 😀\t"quoted"\n\\end' },
    ];
    for (const { topic, bytes, value } of cases) {
      await client.publishAsync(topic, bytes, { qos: 1 });
      const records = await stored(device.id);
      assert.deepEqual(JSON.parse(records[0]!.value as string), [{ variable: 'payload', value, metadata: { mqtt_topic: topic } }], topic);
      assert.equal(records[1]!.value, bytes.toString('base64'), topic);
      await server.data.store.delete(device.id, {});
    }
  });

  test('tago/data/post runs the parser too; JSON records arrive as the payload array', async () => {
    const device = await createDevice(`payload = payload.map((r) => ({ ...r, value: r.value * 10, unit: 'dC' }))`);
    const client = await connect(device.token);
    await client.publishAsync('tago/data/post', JSON.stringify({ variable: 'temperature', value: 2.5 }), { qos: 1 });
    assert.deepEqual(pick(await stored(device.id)), [['temperature', 25, 'dC']]);
  });

  test('HTTP POST /data: JSON and raw bodies go through the parser', async () => {
    const device = await createDevice(HEX_DECODER + `\nelse { payload.push({ variable: 'count', value: payload.length }) }`);
    const headers = { 'device-token': device.token };
    const raw = await api('POST', '/data', '08fc5b0e74', headers);
    assert.deepEqual([raw.status, raw.body], [202, { status: true, result: '3 Data Added' }]);
    const json = await api('POST', '/data', [{ variable: 'a', value: 1 }, { variable: 'b', value: 2 }], headers);
    assert.deepEqual([json.status, json.body], [202, { status: true, result: '3 Data Added' }]);
    assert.deepEqual(pick(await stored(device.id)).map(([v]) => v).sort(), ['a', 'b', 'battery', 'count', 'humidity', 'temperature']);
  });

  test('HTTP POST /data: a JSON body that is not records reaches the parser parsed, as [object] (a network server webhook)', async () => {
    const device = await createDevice(`const up = payload[0]; payload = [{ variable: 'rssi', value: up.rx[0].rssi, group: up.id }]`);
    const answer = await api('POST', '/data', { id: 'uplink-7', rx: [{ rssi: -97 }] }, { 'device-token': device.token });
    assert.deepEqual([answer.status, answer.body], [202, { status: true, result: '1 Data Added' }]);
    const [record] = await stored(device.id);
    assert.deepEqual([record?.variable, record?.value, record?.group], ['rssi', -97, 'uplink-7']);
  });

  test('a parser error stores nothing: HTTP 400 with the message, MQTT 5 PUBACK 0x99, inspector gets the error and the console output', async () => {
    const device = await createDevice(`console.error('bad frame', payload.length); throw new Error('checksum mismatch')`);
    const http = await api('POST', '/data', { variable: 'x', value: 1 }, { 'device-token': device.token });
    assert.equal(http.status, 400);
    assert.match(http.body.message, /checksum mismatch/);
    const client = await connect(device.token);
    await assert.rejects(client.publishAsync('sensors/x', '{"variable":"x","value":1}', { qos: 1 }), (error: Error & { code?: number }) => error.code === 0x99);
    assert.deepEqual(await stored(device.id), []);
    const events = server.inspector.history(device.id);
    assert.deepEqual(events.filter((e) => e.type === 'parser.log').map((e) => e.data), [
      { level: 'error', message: 'bad frame 1' },
      { level: 'error', message: 'bad frame 1' },
    ]);
    const errors = events.filter((e) => e.type === 'parser.error').map((e) => e.data);
    assert.deepEqual(errors.map((e) => [e.kind, e.via]), [['runtime', 'http'], ['runtime', 'mqtt']]);
    assert.match(String(errors[0]!.message), /Error: checksum mismatch/);
    // The same events over the admin API, filtered by kind.
    const listed = await api('GET', `/devices/${device.id}/inspector?kinds=parser_log,parser_error`);
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.body.result.map((e: any) => e.kind), ['parser_log', 'parser_error', 'parser_log', 'parser_error']);
    assert.ok(!Number.isNaN(Date.parse(listed.body.result[0].time)));
    const onlyErrors = await api('GET', `/devices/${device.id}/inspector?kinds=parser_error`);
    assert.deepEqual(onlyErrors.body.result.map((e: any) => e.data.via), ['http', 'mqtt']);
    const other = server.registry.createAccount({ name: 'inspector-probe', plan: 'scale' });
    assert.equal((await api('GET', `/devices/${device.id}/inspector`, undefined, { authorization: other.token })).status, 404);
  });

  test('a result that fails validation, a non-array result and a syntax error are rejected with a clear message', async () => {
    const invalid = await createDevice(`payload = [{ variable: 'bad name!', value: 1 }]`);
    const a = await api('POST', '/data', { variable: 'x', value: 1 }, { 'device-token': invalid.token });
    assert.equal(a.status, 400);
    assert.match(a.body.message, /record 0: variable/);
    assert.equal(server.inspector.history(invalid.id).find((e) => e.type === 'parser.error')?.data.kind, 'validation');

    const notArray = await createDevice(`payload = { variable: 'x', value: 1 }`);
    const b = await api('POST', '/data', { variable: 'x', value: 1 }, { 'device-token': notArray.token });
    assert.equal(b.status, 400);
    assert.match(b.body.message, /must be an array/);

    const syntax = await createDevice(`payload = [`);
    const c = await api('POST', '/data', { variable: 'x', value: 1 }, { 'device-token': syntax.token });
    assert.equal(c.status, 400);
    assert.match(c.body.message, /SyntaxError/);
    for (const d of [invalid, notArray, syntax]) assert.deepEqual(await stored(d.id), []);
  });

  test('a parser stuck in a loop times out for its own message only: other clients keep being served, and the next message parses', async () => {
    const looping = await createDevice(`if (payload[0].value === 'loop') { while (true) {} } payload = [{ variable: 'ok', value: payload[0].value }]`);
    const other = await createDevice(null);
    const stuck = await connect(looping.token);
    const healthy = await connect(other.token);
    let loopEnded = false;
    const looped = stuck.publishAsync('sensors/loop', 'loop', { qos: 1 }).then(() => 'acked', (error: Error & { code?: number }) => error.code).finally(() => (loopEnded = true));
    // While the loop runs (300 ms limit here), the other device's publishes are stored: the sandbox
    // never holds the event loop.
    for (let i = 0; i < 10; i++) await healthy.publishAsync('sensors/ok', JSON.stringify({ variable: 'n', value: i }), { qos: 1 });
    assert.equal(loopEnded, false, 'another device was served while the parser looped');
    assert.equal(await looped, 0x99);
    const timeout = server.inspector.history(looping.id).find((e) => e.type === 'parser.error');
    assert.equal(timeout?.data.kind, 'timeout');
    await stuck.publishAsync('sensors/next', 'fine', { qos: 1 });
    assert.deepEqual(pick(await stored(looping.id)), [['ok', 'fine', null]]);
    assert.equal((await stored(other.id)).length, 10);
  });

  test('a parser that allocates until out of memory loses only its message; the broker and the device\'s next message are fine', async () => {
    const device = await createDevice(`if (payload[0].value === 'oom') { const hoard = []; while (true) hoard.push(new Array(100000).fill(hoard.length)); }
payload = [{ variable: 'ok', value: payload[0].value }]`);
    const client = await connect(device.token);
    await assert.rejects(client.publishAsync('sensors/oom', 'oom', { qos: 1 }), (error: Error & { code?: number }) => error.code === 0x99);
    assert.equal(server.inspector.history(device.id).find((e) => e.type === 'parser.error')?.data.kind, 'memory');
    await client.publishAsync('sensors/oom', 'after', { qos: 1 });
    assert.deepEqual(pick(await stored(device.id)), [['ok', 'after', null]]);
  });

  test('changing the parser or the device params takes effect on the next message', async () => {
    const device = await createDevice(`payload = [{ variable: 'v', value: 1 }]`, [{ key: 'offset', value: '10' }]);
    const headers = { 'device-token': device.token };
    assert.equal((await api('POST', '/data', { variable: 'x', value: 0 }, headers)).status, 202);
    const code = `const offset = Number(device.params.find((p) => p.key === 'offset').value); payload = [{ variable: 'v', value: 2 + offset }]`;
    assert.equal((await api('PUT', `/devices/${device.id}`, { payload_parser: code })).status, 200);
    assert.equal((await api('POST', '/data', { variable: 'x', value: 0 }, headers)).status, 202);
    assert.equal((await api('PUT', `/devices/${device.id}/params`, [{ key: 'offset', value: '20' }])).status, 200);
    assert.equal((await api('POST', '/data', { variable: 'x', value: 0 }, headers)).status, 202);
    assert.equal((await api('PUT', `/devices/${device.id}`, { payload_parser: null })).status, 200);
    assert.equal((await api('POST', '/data', { variable: 'x', value: 0 }, headers)).status, 202);
    assert.deepEqual(pick(await stored(device.id)).map(([v, value]) => [v, value]), [['v', 1], ['v', 12], ['v', 22], ['x', 0]]);
  });
});

describe('POST /devices/:id/parser/test', () => {
  test('runs the saved parser on a sample: records as they would be stored and the console output, nothing stored', async () => {
    const device = await createDevice(HEX_DECODER);
    const run = await api('POST', `/devices/${device.id}/parser/test`, { payload: '08fc5b0e74', topic: 'sensors/lab' });
    assert.equal(run.status, 200, JSON.stringify(run.body));
    const result = run.body.result;
    assert.equal(result.ok, true);
    assert.deepEqual(result.logs, [{ level: 'log', message: 'frame of 5 bytes' }]);
    assert.deepEqual(result.records.map((r: any) => [r.variable, r.value, r.unit, r.device, r.metadata]), [
      ['temperature', 23, 'C', device.id, { mqtt_topic: 'sensors/lab' }],
      ['humidity', 45.5, '%', device.id, { mqtt_topic: 'sensors/lab' }],
      ['battery', 3700, 'mV', device.id, { mqtt_topic: 'sensors/lab' }],
    ]);
    assert.equal(result.payload.length, 3);
    assert.deepEqual(await stored(device.id), []);
    assert.deepEqual(server.inspector.history(device.id), [], 'a test run is not device traffic');
  });

  test('tries code sent with the request, with hex/base64 samples; reports errors and invalid results', async () => {
    const device = await createDevice(null);
    const url = `/devices/${device.id}/parser/test`;
    const echo = `console.log(raw_payload.toString('hex')); payload = [{ variable: 'len', value: raw_payload.length }]`;
    const b64 = await api('POST', url, { payload: Buffer.from([1, 2, 3]).toString('base64'), encoding: 'base64', code: echo });
    assert.deepEqual([b64.body.result.ok, b64.body.result.logs, b64.body.result.records[0].value], [true, [{ level: 'log', message: '010203' }], 3]);
    const thrown = await api('POST', url, { payload: 'x', code: `console.log('before'); null.x` });
    assert.deepEqual([thrown.body.result.ok, thrown.body.result.error.kind, thrown.body.result.logs], [false, 'runtime', [{ level: 'log', message: 'before' }]]);
    assert.match(thrown.body.result.error.message, /TypeError/);
    const syntax = await api('POST', url, { payload: 'x', code: `payload = [` });
    assert.equal(syntax.body.result.error.kind, 'syntax');
    const invalid = await api('POST', url, { payload: 'x', code: `payload = [{ value: 1 }]` });
    assert.deepEqual([invalid.body.result.ok, invalid.body.result.error.kind], [false, 'validation']);
    assert.match(invalid.body.result.error.message, /record 0: variable/);
    const timeout = await api('POST', url, { payload: 'x', code: `while (true) {}` });
    assert.equal(timeout.body.result.error.kind, 'timeout');
  });

  test('needs code when the device has none; another account\'s device is 404; bad bodies name the field', async () => {
    const device = await createDevice(null);
    const none = await api('POST', `/devices/${device.id}/parser/test`, { payload: 'x' });
    assert.deepEqual([none.status, none.body.message], [400, 'body/code is required: the device has no payload parser']);
    const other = server.registry.createAccount({ name: 'other-tenant', plan: 'scale' });
    const foreign = await api('POST', `/devices/${device.id}/parser/test`, { payload: 'x', code: 'payload = []' }, { authorization: other.token });
    assert.equal(foreign.status, 404);
    const badEncoding = await api('POST', `/devices/${device.id}/parser/test`, { payload: 'x', encoding: 'rot13', code: 'x' });
    assert.equal(badEncoding.status, 400);
    assert.match(badEncoding.body.message, /encoding/);
    const badHex = await api('POST', `/devices/${device.id}/parser/test`, { payload: '08fz', encoding: 'hex', code: 'x' });
    assert.deepEqual([badHex.status, badHex.body.message], [400, 'body/payload is not hex (pairs of 0-9, a-f; spaces allowed)']);
    const badBase64 = await api('POST', `/devices/${device.id}/parser/test`, { payload: 'a*b', encoding: 'base64', code: 'x' });
    assert.deepEqual([badBase64.status, badBase64.body.message], [400, 'body/payload is not base64']);
    const spaced = await api('POST', `/devices/${device.id}/parser/test`, { payload: '08 fc 5b', encoding: 'hex', code: 'payload = [{ variable: "n", value: raw_payload.length }]' });
    assert.equal(spaced.body.result.records[0].value, 3);
  });
});

