/**
 * Decoders written for the hosted service, run unchanged on bucketmq (issue 13, SPEC §3/§4): a real
 * server, MQTT.js and mosquitto_pub publishing through an `insert_bucket` action into SQLite buckets,
 * the device data API, and the parser test-run endpoint.
 * - A JSON message that is not records reaches the parser parsed: an object as `[object]`, an array
 *   as it is, each item with `metadata.mqtt_topic`.
 * - A numeric `serie` or `group` is stored as its decimal string.
 * - The sandbox's clock runs in UTC while this server process runs in Asia/Kathmandu.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { loadConfig } from '../../src/config.ts';
import type { DataRecord } from '../../src/data/record.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { spawnProcess } from '../broker/helpers.ts';

// The server's own zone (this test file runs in its own process). Node applies a changed TZ at once.
process.env.TZ = 'Asia/Kathmandu';

const scratch = mkdtempSync(path.join(tmpdir(), 'bucketmq-real-decoders-'));
let server: RunningServer;
let accountToken: string;
const clients: MqttClient[] = [];

/** An NB-IoT tracker's JSON: the decoder reads the object's own keys. */
const NBIOT_MESSAGE = '{"IMEI":"111222333444555","battery":3.59,"1":[0,0,1,-409.5,"2000/01/01 07:14:11"]}';
const NBIOT_DECODER = `
// NB-IoT tracker: {"IMEI": ..., "battery": volts, "1": [alarm, tamper, state, temperature, clock]}
const data = payload[0];
if (data && data.IMEI) {
  const reading = data['1'];
  const group = 'imei-' + data.IMEI;
  payload = [
    { variable: 'battery', value: data.battery, unit: 'V', group },
    { variable: 'state', value: reading[2], group },
    { variable: 'temperature', value: reading[3], unit: '°C', group },
    { variable: 'device_clock', value: reading[4], group, metadata: { topic: data.metadata.mqtt_topic } },
  ];
}`;

/** SenML (RFC 8428): a base record, then entries by name with numeric, string or boolean values. */
const SENML_MESSAGE = '[{"bn":"142143","bt":1733859162},{"n":"battery","u":"%EL","v":100},{"n":"temperature","u":"Cel","v":21.5,"t":-60},{"n":"door","vb":false},{"n":"fw","vs":"1.4.2"}]';
const SENML_DECODER = `
var bn = '', bt = 0, out = [];
for (var i = 0; i < payload.length; i++) {
  var item = payload[i];
  if (item.bn !== undefined) bn = item.bn;
  if (item.bt !== undefined) bt = item.bt;
  if (item.n === undefined) continue;
  var value = item.v !== undefined ? item.v : item.vs !== undefined ? item.vs : item.vb;
  out.push({ variable: item.n, value: value, unit: item.u, time: new Date((bt + (item.t || 0)) * 1000), group: bn, metadata: { topic: item.metadata.mqtt_topic } });
}
payload = out;`;

/** A LoRaWAN-style uplink whose decoder sets a numeric serie and group (TagoIO's TTN v3 decoder does). */
const FCNT_MESSAGE = '{"f_cnt":4711,"frm_payload":"CPxbDnQ="}';
const NUMERIC_GROUP_DECODER = `
const uplink = payload[0];
const bytes = Buffer.from(uplink.frm_payload, 'base64');
const serie = new Date().getTime();
payload = [
  { variable: 'temperature', value: bytes.readInt16BE(0) / 100, unit: 'C', serie: serie },
  { variable: 'battery', value: bytes.readUInt16BE(3), unit: 'mV', serie: serie },
  { variable: 'frame', value: uplink.f_cnt, group: uplink.f_cnt },
];`;

/** Formats the message's Unix time with Date#toString and getHours: the sandbox's zone shows. */
const CLOCK_MESSAGE = '{"ts":1733859162}';
const CLOCK_DECODER = `
const when = new Date(payload[0].ts * 1000);
payload = [
  { variable: 'reading_time', value: when.toString() },
  { variable: 'hour', value: when.getHours() },
  { variable: 'kathmandu', value: dayjs.unix(payload[0].ts).tz('Asia/Kathmandu').format('YYYY-MM-DD HH:mm') },
];`;
const UTC_TEXT = 'Tue Dec 10 2024 19:32:42 GMT+0000 (Coordinated Universal Time)';

before(async () => {
  const config = loadConfig(['--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--data-dir', scratch, '--log-level', 'silent'], {});
  server = await startServer(config);
  assert.ok(server.firstRun !== null);
  accountToken = server.firstRun.accountToken;
  const topics = ['nbiot/#', 'senml/#', 'lorawan/#', 'clock/#', 'plain/#'];
  const action = await api('POST', '/actions', { name: 'store uplinks', trigger: { type: 'mqtt_topic', topics }, action: { type: 'insert_bucket' } });
  assert.equal(action.status, 201, JSON.stringify(action.body));
});

after(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await server.stop();
  rmSync(scratch, { recursive: true, force: true });
});

async function api(method: string, url: string, body?: unknown, headers: Record<string, string> = { authorization: accountToken }): Promise<{ status: number; body: any }> {
  const response = await fetch(`http://127.0.0.1:${server.ports.http}${url}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text.length > 0 ? JSON.parse(text) : null };
}

let devices = 0;
async function createDevice(parser: string | null): Promise<{ id: string; token: string }> {
  const created = await api('POST', '/devices', { name: `decoder-${++devices}`, payload_parser: parser });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return { id: created.body.result.device_id as string, token: created.body.result.token as string };
}

async function publishMqttJs(token: string, topic: string, message: string): Promise<void> {
  const client = await connectAsync(`mqtt://127.0.0.1:${server.ports.mqtt}`, { username: 'Token', password: token, reconnectPeriod: 0, protocolVersion: 5 });
  clients.push(client);
  // QoS 1: the PUBACK comes once the records are durable.
  const puback = (await client.publishAsync(topic, message, { qos: 1 })) as { reasonCode?: number } | undefined;
  assert.equal(puback?.reasonCode ?? 0, 0, `PUBACK reason ${puback?.reasonCode}`);
}

async function publishMosquitto(token: string, topic: string, message: string): Promise<void> {
  const args = ['-h', '127.0.0.1', '-p', String(server.ports.mqtt), '-V', 'mqttv311', '-u', 'Token', '-P', token, '-q', '1', '-t', topic, '-m', message];
  const result = await spawnProcess('mosquitto_pub', args, { timeoutMs: 10_000 }).done;
  assert.equal(result.code, 0, `mosquitto_pub failed: ${result.stderr}`);
}

async function stored(deviceId: string): Promise<DataRecord[]> {
  const result = await server.data.store.query(deviceId, { mode: 'default', qty: 1_000, skip: 0, ordination: 'ascending' });
  assert.equal(result.kind, 'records');
  return result.records;
}

async function testRun(deviceId: string, payload: string, topic: string): Promise<any> {
  const run = await api('POST', `/devices/${deviceId}/parser/test`, { payload, topic });
  assert.equal(run.status, 200, JSON.stringify(run.body));
  return run.body.result;
}

describe('hosted-service decoders run unchanged (issue 13)', () => {
  test('an MQTT JSON object reaches the decoder as [object] with metadata.mqtt_topic (MQTT.js, QoS 1)', async () => {
    const device = await createDevice(NBIOT_DECODER);
    await publishMqttJs(device.token, 'nbiot/111222333444555/up', NBIOT_MESSAGE);
    const records = await stored(device.id);
    assert.deepEqual(
      records.map((r) => [r.variable, r.value, r.unit, r.group, r.metadata]),
      [
        ['battery', 3.59, 'V', 'imei-111222333444555', { mqtt_topic: 'nbiot/111222333444555/up' }],
        ['state', 1, null, 'imei-111222333444555', { mqtt_topic: 'nbiot/111222333444555/up' }],
        ['temperature', -409.5, '°C', 'imei-111222333444555', { mqtt_topic: 'nbiot/111222333444555/up' }],
        ['device_clock', '2000/01/01 07:14:11', null, 'imei-111222333444555', { mqtt_topic: 'nbiot/111222333444555/up', topic: 'nbiot/111222333444555/up' }],
      ],
    );

    const run = await testRun(device.id, NBIOT_MESSAGE, 'nbiot/111222333444555/up');
    assert.equal(run.ok, true);
    assert.deepEqual(run.validation, { stored: true, count: 4 });
    assert.deepEqual(run.records.map((r: DataRecord) => [r.variable, r.value]), records.map((r) => [r.variable, r.value]));
  });

  test('a SenML array reaches the decoder as it is, each item with the topic (mosquitto_pub, QoS 1)', async () => {
    const device = await createDevice(SENML_DECODER);
    await publishMosquitto(device.token, 'senml/142143', SENML_MESSAGE);
    const records = await stored(device.id); // oldest first: the temperature was read 60 s before the base time
    const iso = (t: number) => new Date(t).toISOString();
    assert.deepEqual(
      records.map((r) => [r.variable, r.value, r.unit, iso(r.time), r.group, r.metadata]),
      [
        ['temperature', 21.5, 'Cel', '2024-12-10T19:31:42.000Z', '142143', { mqtt_topic: 'senml/142143', topic: 'senml/142143' }],
        ['battery', 100, '%EL', '2024-12-10T19:32:42.000Z', '142143', { mqtt_topic: 'senml/142143', topic: 'senml/142143' }],
        ['door', false, null, '2024-12-10T19:32:42.000Z', '142143', { mqtt_topic: 'senml/142143', topic: 'senml/142143' }],
        ['fw', '1.4.2', null, '2024-12-10T19:32:42.000Z', '142143', { mqtt_topic: 'senml/142143', topic: 'senml/142143' }],
      ],
    );

    const run = await testRun(device.id, SENML_MESSAGE, 'senml/142143');
    assert.deepEqual(run.validation, { stored: true, count: 4 });
    const refused = await testRun(device.id, '[{"bn":"142143","bt":1733859162},{"n":"pos","v":1},{"n":"bad name","v":2}]', 'senml/142143');
    assert.equal(refused.ok, false);
    assert.equal(refused.payload.length, 2, 'the parser\'s payload is shown beside the refusal');
    assert.deepEqual(refused.validation, { stored: false, index: 1, field: 'variable', message: 'record 1: variable must not contain whitespace (forbidden: * ? ! < > . - = $ and whitespace)' });
    assert.equal(refused.records, undefined);
  });

  test('numeric serie and group are stored as decimal strings and found with groups= (MQTT.js and mosquitto_pub)', async () => {
    const device = await createDevice(NUMERIC_GROUP_DECODER);
    const before = Date.now();
    await publishMqttJs(device.token, 'lorawan/eui-1/up', FCNT_MESSAGE);
    await publishMosquitto(device.token, 'lorawan/eui-1/up', FCNT_MESSAGE.replace('4711', '4712'));
    const records = await stored(device.id);
    assert.equal(records.length, 6);
    const frames = records.filter((r) => r.variable === 'frame');
    assert.deepEqual(frames.map((r) => [r.value, r.group]), [[4711, '4711'], [4712, '4712']]);
    const series = records.filter((r) => r.variable !== 'frame').map((r) => r.group);
    for (const serie of series) {
      assert.match(serie, /^\d{13}$/);
      assert.ok(Number(serie) >= before && Number(serie) <= Date.now(), serie);
    }

    const headers = { 'device-token': device.token };
    const byFrame = await api('GET', '/data?groups=4712', undefined, headers);
    assert.equal(byFrame.status, 200);
    assert.deepEqual(byFrame.body.result.map((r: DataRecord) => [r.variable, r.value, r.group]), [['frame', 4712, '4712']]);
    const bySerie = await api('GET', `/data?groups[0]=${series[0]}&variables[0]=temperature&variables[1]=battery`, undefined, headers);
    assert.deepEqual(bySerie.body.result.map((r: DataRecord) => r.group), [series[0], series[0]]);
    assert.deepEqual(bySerie.body.result.map((r: DataRecord) => r.variable).sort(), ['battery', 'temperature']);

    const run = await testRun(device.id, FCNT_MESSAGE, 'lorawan/eui-1/up');
    assert.deepEqual(run.validation, { stored: true, count: 3 });
    assert.equal(typeof run.payload[0].serie, 'number', 'the parser\'s own payload keeps its number');
    assert.equal(run.records[2].group, '4711');
  });

  test('the sandbox clock is UTC while the server runs in Asia/Kathmandu; dayjs.tz still converts', async () => {
    assert.equal(new Date(1733859162_000).getHours(), 1, 'this process runs at +05:45');
    const device = await createDevice(CLOCK_DECODER);
    await publishMqttJs(device.token, 'clock/1', CLOCK_MESSAGE);
    assert.deepEqual(
      (await stored(device.id)).map((r) => [r.variable, r.value]),
      [
        ['reading_time', UTC_TEXT],
        ['hour', 19],
        ['kathmandu', '2024-12-11 01:17'],
      ],
    );
    const run = await testRun(device.id, CLOCK_MESSAGE, 'clock/1');
    assert.equal(run.records[0].value, UTC_TEXT);
  });

  test('without a parser a JSON object is stored as the payload record of its text; HTTP JSON bodies reach a parser parsed', async () => {
    const plain = await createDevice(null);
    await publishMqttJs(plain.token, 'plain/1', NBIOT_MESSAGE);
    assert.deepEqual((await stored(plain.id)).map((r) => [r.variable, r.value, r.metadata]), [['payload', NBIOT_MESSAGE, { mqtt_topic: 'plain/1' }]]);

    const parsed = await createDevice(`payload = [{ variable: 'seen', value: JSON.stringify(payload) }]`);
    const posted = await api('POST', '/data', JSON.parse(NBIOT_MESSAGE), { 'device-token': parsed.token });
    assert.deepEqual([posted.status, posted.body], [202, { status: true, result: '1 Data Added' }]);
    assert.deepEqual(JSON.parse((await stored(parsed.id))[0]!.value as string), [JSON.parse(NBIOT_MESSAGE)]);
  });
});
