import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import mqtt from 'mqtt';
import { pubackCode } from '../tenancy/helpers.ts';
import { HOST, Scrape, connectDevice, createAccount, removeDataDirs, scrape, startTestServer } from './helpers.ts';

after(removeDataDirs);

const record = JSON.stringify({ variable: 'temperature', value: 21.5 });

test('GET /metrics: Prometheus text whose counters follow real connects, publishes, subscribes, drops, stores and parser runs', { timeout: 60_000 }, async () => {
  const { server, http, stop } = await startTestServer(['--max-queued', '1', '--metrics-accounts', 'acme', '--sys-interval', '0']);
  const clients: mqtt.MqttClient[] = [];
  try {
    const acme = createAccount(server, 'acme');
    const globex = createAccount(server, 'globex');
    const created = await fetch(`${http}/actions`, {
      method: 'POST',
      headers: { authorization: acme.token, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'store', trigger: { type: 'mqtt_topic', topics: ['sensors/#'] }, action: { type: 'insert_bucket' } }),
    });
    assert.equal(created.status, 201, await created.text());
    const parsing = acme.device('parsing');
    const parsingId = server.registry.devices(acme.id).find((d) => d.name === 'parsing')!.id;
    server.registry.updateDevice(acme.id, parsingId, { payload_parser: 'throw new Error("cannot decode")' });

    // An offline persistent session (v3.1.1 clean=false) that can queue one message.
    const offline = await connectDevice(server, acme.device('offline'), { protocolVersion: 4, clean: false, clientId: 'offline-1' });
    await offline.subscribeAsync('sensors/#', { qos: 1 });
    await offline.endAsync();

    const before = await scrape(http);
    const publisher = await connectDevice(server, acme.device('publisher'));
    const subscriber = await connectDevice(server, acme.device('subscriber'));
    const parser = await connectDevice(server, parsing);
    const other = await mqtt.connectAsync(`ws://${HOST}:${server.ports.http}/mqtt`, { username: 'Token', password: globex.device('ws'), protocolVersion: 4, reconnectPeriod: 0 });
    clients.push(publisher, subscriber, parser, other);
    await subscriber.subscribeAsync('sensors/#', { qos: 1 });
    const received = new Promise<void>((resolve) => {
      let n = 0;
      subscriber.on('message', () => ++n === 3 && resolve());
    });
    for (let i = 0; i < 3; i++) await publisher.publishAsync('sensors/t', record, { qos: 1 });
    await publisher.publishAsync('other/x', 'a', { qos: 0 });
    await publisher.publishAsync('status/retained', 'kept', { qos: 1, retain: true });
    assert.equal(await pubackCode(publisher, '$SYS/x', 'forged'), 0x87, 'a client may not publish under $SYS');
    assert.equal(await pubackCode(parser, 'sensors/p', 'raw'), 0x99, 'the parser threw: payload format invalid');
    await received;
    await other.publishAsync('globex/t', 'g', { qos: 0 });
    await other.publishAsync('globex/t', 'g', { qos: 0 });
    // Its PUBACK comes after the two QoS 0 publishes were taken in (one connection, in order).
    await other.publishAsync('globex/t', 'g', { qos: 1 });

    const now = await scrape(http);
    const delta = (name: string, labels: Record<string, string> = {}): number => now.value(name, labels) - before.value(name, labels);
    assert.equal(now.types.get('bucketmq_messages_received_total'), 'counter');
    assert.equal(now.types.get('bucketmq_bucket_commit_seconds'), 'histogram');
    assert.equal(now.types.get('bucketmq_connections'), 'gauge');

    assert.equal(now.value('bucketmq_connections', { listener: 'tcp', protocol: '5.0' }), 3);
    assert.equal(now.value('bucketmq_connections', { listener: 'ws', protocol: '3.1.1' }), 1);
    // QoS 1: three records, the retained one, the refused $SYS one, the parser's, globex's; QoS 0: one of acme's, two of globex's.
    assert.equal(delta('bucketmq_messages_received_total', { qos: '1' }), 7);
    assert.equal(delta('bucketmq_messages_received_total', { qos: '0' }), 3);
    assert.ok(delta('bucketmq_messages_sent_total', { qos: '1' }) >= 3);
    assert.ok(delta('bucketmq_bytes_received_total') > 6 * record.length);
    assert.ok(delta('bucketmq_bytes_sent_total') > 3 * record.length);
    assert.ok(delta('bucketmq_packets_received_total') >= 13, 'CONNECTs, SUBSCRIBE, PUBLISHes');
    // The offline session queued the first of the four sensors/# messages; the queue full, the other three were dropped.
    assert.equal(now.value('bucketmq_messages_queued'), 1);
    assert.equal(now.value('bucketmq_subscriptions'), 2, 'the offline session\'s and the subscriber\'s');
    assert.equal(delta('bucketmq_messages_dropped_total', { cause: 'queue_full' }), 3);
    assert.equal(delta('bucketmq_messages_dropped_total', { cause: 'publish_refused' }), 1);
    assert.equal(delta('bucketmq_retained_messages'), 1);
    assert.equal(delta('bucketmq_records_stored_total'), 3);
    assert.ok(delta('bucketmq_bucket_commit_seconds_count') >= 1);
    assert.equal(delta('bucketmq_action_runs_total', { type: 'insert_bucket' }), 4);
    assert.equal(delta('bucketmq_action_failures_total', { type: 'insert_bucket' }), 1);
    assert.equal(delta('bucketmq_parser_runs_total'), 1);
    assert.ok(delta('bucketmq_parser_run_seconds_total') > 0);
    assert.equal(delta('bucketmq_parser_errors_total', { kind: 'runtime' }), 1);
    assert.ok(now.has('bucketmq_rate_limit_hits_total') || now.types.get('bucketmq_rate_limit_hits_total') === 'counter');
    assert.ok(now.has('process_cpu_user_seconds_total'));
    assert.ok(now.has('nodejs_eventloop_lag_p99_seconds'));

    // Per-account series only for the allow-listed account.
    assert.equal(now.value('bucketmq_account_connections', { account: 'acme' }), 3);
    assert.equal(delta('bucketmq_account_messages_received_total', { account: 'acme' }), 7);
    assert.equal(delta('bucketmq_account_messages_dropped_total', { account: 'acme' }), 4);
    assert.ok(![...now.samples.keys()].some((k) => k.includes('globex') || k.includes(globex.id)), 'no series names another account');
  } finally {
    for (const client of clients) client.end(true);
    await stop();
  }
});

test('--metrics-token: /metrics wants the Bearer token; /health and /ready stay open', { timeout: 30_000 }, async () => {
  const { http, stop } = await startTestServer(['--metrics-token', 's3cret']);
  try {
    const none = await fetch(`${http}/metrics`);
    assert.equal(none.status, 401);
    assert.deepEqual(await none.json(), { status: false, message: 'Authorization: a Bearer token matching --metrics-token is required' });
    assert.equal((await fetch(`${http}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    assert.equal((await fetch(`${http}/metrics`, { headers: { authorization: 's3cret' } })).status, 401, 'the scheme is part of it');
    const scraped = await scrape(http, { authorization: 'Bearer s3cret' });
    assert.ok(scraped.has('bucketmq_sessions'));
    assert.equal((await fetch(`${http}/health`)).status, 200);
    assert.equal((await fetch(`${http}/ready`)).status, 200);
  } finally {
    await stop();
  }
});

test('--metrics false: no /metrics route (404 in the API error shape)', { timeout: 30_000 }, async () => {
  const { http, stop } = await startTestServer(['--metrics', 'false']);
  try {
    const response = await fetch(`${http}/metrics`);
    assert.equal(response.status, 404);
    const body = (await response.json()) as { status: boolean; message: string };
    assert.equal(body.status, false);
    assert.equal(typeof body.message, 'string');
  } finally {
    await stop();
  }
});

test('the Scrape reader refuses a line that is not Prometheus text', () => {
  assert.throws(() => new Scrape('bucketmq_x{qos=1} 3\n'), /not Prometheus text format/);
  assert.throws(() => new Scrape('bucketmq_x 3 apples\n'), /not Prometheus text format/);
  assert.equal(new Scrape('# TYPE a counter\na{b="c",d="e"} 2.5e+3\n').value('a', { d: 'e', b: 'c' }), 2500);
});
