/**
 * ACL on wildcard subscriptions (issue 14, SPEC §2), over real sockets: a filter that only overlaps
 * a denied area is granted and each message on a denied topic is withheld at delivery (counted as
 * `message.dropped`, reason 'acl'); a filter wholly inside a denied area is refused (v3 0x80, v5
 * 0x87). Every test ends with a marker message from the same publisher: MQTT keeps one
 * publisher's messages in order to a subscriber (MQTT 5 §4.6), and a withheld message is dropped
 * synchronously while it is routed, so once the marker arrived the received set and the drops are
 * final — no waiting for messages that should not come.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt, { type MqttClient } from 'mqtt';
import { ReasonCode, SubackFailureV3 } from '../../src/broker/reason-codes.ts';
import type { AclRule } from '../../src/tenancy/acl.ts';
import { startMosquittoSub } from '../broker/wire-helpers.ts';
import { HOST, endAll, login, newDevice, record, startTenancyBroker, subackCodes, waitUntil, type Received, type TenancyBroker, type TestDevice } from './helpers.ts';

const MARKER = 'marker/done';

/** Publishes each [topic, payload] at QoS 1 (retained when asked), then the marker. */
async function publishThenMarker(pub: MqttClient, messages: Array<[string, string]>, retain = false): Promise<void> {
  for (const [topic, payload] of messages) await pub.publishAsync(topic, payload, { qos: 1, retain });
  await pub.publishAsync(MARKER, 'end', { qos: 1 });
}

/** What `got` received before the marker, as "topic=payload", once the marker is in. */
async function beforeMarker(got: Received[]): Promise<string[]> {
  await waitUntil(() => got.some((m) => m.topic === MARKER), 'the marker message');
  return got.filter((m) => m.topic !== MARKER).map((m) => `${m.topic}=${m.payload}`);
}

describe('wildcard subscriptions next to deny rules (default allow)', () => {
  let tb: TenancyBroker;
  let restricted: TestDevice;
  const clients: MqttClient[] = [];
  /** `message.dropped` events with reason 'acl', as "clientId topic". */
  const aclDrops: string[] = [];

  before(async () => {
    tb = await startTenancyBroker((registry) => {
      const anon = registry.createAccount({ name: 'anonymous' }).account.id;
      restricted = newDevice(registry, anon, 'restricted');
      const acl: AclRule[] = [
        { action: 'subscribe', permission: 'deny', topic: 'test/nosubscribe' },
        { action: 'subscribe', permission: 'deny', topic: 'a/#' },
        { device: restricted.deviceId, action: 'subscribe', permission: 'deny', topic: 'test/devonly' },
      ];
      return { anonymousAccountId: anon, acl, aclDefault: 'allow' };
    });
    tb.broker.on('message.dropped', (client, message, reason) => {
      if (reason === 'acl') aclDrops.push(`${client.clientId} ${message.topic}`);
    });
  });
  after(async () => {
    await endAll(clients);
    await tb.close();
  });

  async function anon(opts: Parameters<typeof login>[2] = {}): Promise<MqttClient> {
    const c = await login(tb.port, null, opts);
    clients.push(c);
    return c;
  }

  test('mosquitto_sub -t "#" receives everything except the denied topic', async () => {
    const sub = await startMosquittoSub(['-h', HOST, '-p', String(tb.port), '-V', 'mqttv311', '-i', 'mosq-all', '-t', '#', '-q', '1']);
    try {
      // Granted, not refused: mosquitto_sub prints the granted QoS (a refusal would print 128).
      assert.match(sub.output(), /Subscribed \(mid: \d+\): 1\b/);
      const pub = await anon();
      await publishThenMarker(pub, [['test/a', '1'], ['test/nosubscribe', 'secret'], ['other/x', '2'], ['a/b', 'also-denied'], ['test/nosubscribe/deeper', '3']]);
      await waitUntil(() => sub.messages.some((m) => m.topic === MARKER), 'the marker at mosquitto_sub');
      assert.deepEqual(sub.messages.map((m) => `${m.topic}=${m.payload}`), ['test/a=1', 'other/x=2', 'test/nosubscribe/deeper=3', `${MARKER}=end`]);
      assert.deepEqual(aclDrops.filter((d) => d.startsWith('mosq-all ')), ['mosq-all test/nosubscribe', 'mosq-all a/b']);
    } finally {
      sub.stop();
    }
  });

  test('a v5 client: "#" and "+/x" granted beside refused filters wholly inside a denied area (v5 0x87, v3 0x80)', async () => {
    const v5 = await anon({ clientId: 'v5-all' });
    assert.deepEqual(await subackCodes(v5, ['#', '+/x', 'a/b/+', 'test/nosubscribe', 'a'], 1), [ReasonCode.GrantedQos1, ReasonCode.GrantedQos1, ReasonCode.NotAuthorized, ReasonCode.NotAuthorized, ReasonCode.NotAuthorized]);
    const v3 = await anon({ protocolVersion: 4, clientId: 'v3-all' });
    assert.deepEqual(await subackCodes(v3, ['a/b/+', '#', 'test/nosubscribe'], 1), [SubackFailureV3, ReasonCode.GrantedQos1, SubackFailureV3]);
    const got = record(v5);
    const pub = await anon();
    await publishThenMarker(pub, [['a/x', 'denied'], ['b/x', 'ok'], ['test/nosubscribe', 'denied'], ['a', 'denied']]);
    // b/x matches both "#" and "+/x": delivered once (MQTT 5 §3.3.4); a/x matches both and both withhold it.
    assert.deepEqual(await beforeMarker(got), ['b/x=ok']);
    assert.deepEqual(aclDrops.filter((d) => d.startsWith('v5-all ')), ['v5-all a/x', 'v5-all test/nosubscribe', 'v5-all a']);
  });

  test('a shared subscription: a member whose rules deny a topic is passed over; when all deny, one drop', async () => {
    const denied = await login(tb.port, restricted.token, { clientId: 'share-restricted' });
    const open = await anon({ clientId: 'share-open' });
    clients.push(denied);
    const gotDenied = record(denied);
    const gotOpen = record(open);
    assert.deepEqual(await subackCodes(denied, ['$share/g/test/#'], 1), [ReasonCode.GrantedQos1]);
    assert.deepEqual(await subackCodes(open, ['$share/g/test/#', MARKER], 1), [ReasonCode.GrantedQos1, ReasonCode.GrantedQos1]);
    const pub = await anon();
    await publishThenMarker(pub, [['test/devonly', 'd1'], ['test/devonly', 'd2'], ['test/devonly', 'd3'], ['test/nosubscribe', 'nobody']]);
    const all = await beforeMarker(gotOpen);
    assert.deepEqual(all.filter((m) => m.startsWith('test/devonly')), ['test/devonly=d1', 'test/devonly=d2', 'test/devonly=d3']);
    assert.deepEqual(gotDenied, []);
    assert.deepEqual(aclDrops.filter((d) => d.endsWith('test/nosubscribe') && d.startsWith('share-')).length, 1);
  });

  test('retained messages sent on subscribe follow the same rule', async () => {
    const pub = await anon();
    for (const [topic, payload] of [['keep/one', 'r1'], ['test/nosubscribe', 'r-denied'], ['a/kept', 'r-denied-too'], ['keep/two', 'r2']] as const) {
      await pub.publishAsync(topic, payload, { qos: 1, retain: true });
    }
    const sub = await anon({ clientId: 'retained-all' });
    const got = record(sub);
    // Retained messages go out right after the SUBACK, before anything published later.
    assert.deepEqual(await subackCodes(sub, ['#'], 1), [ReasonCode.GrantedQos1]);
    await pub.publishAsync(MARKER, 'end', { qos: 1 });
    const retained = (await beforeMarker(got)).sort();
    assert.deepEqual(retained, ['keep/one=r1', 'keep/two=r2']);
    assert.deepEqual(aclDrops.filter((d) => d.startsWith('retained-all ')).sort(), ['retained-all a/kept', 'retained-all test/nosubscribe']);
    for (const topic of ['keep/one', 'test/nosubscribe', 'a/kept', 'keep/two']) await pub.publishAsync(topic, '', { qos: 1, retain: true });
  });

  test('a persistent session offline: messages on denied topics are not queued for it', async () => {
    const first = await anon({ clientId: 'offline-all', clean: false, properties: { sessionExpiryInterval: 60 } });
    assert.deepEqual(await subackCodes(first, ['#'], 1), [ReasonCode.GrantedQos1]);
    await first.endAsync();
    const pub = await anon();
    await publishThenMarker(pub, [['q/1', 'one'], ['test/nosubscribe', 'denied'], ['q/2', 'two']]);
    // Recording from the first byte: the queue can arrive in the CONNACK's segment.
    const back = mqtt.connect({ host: HOST, port: tb.port, protocolVersion: 5, reconnectPeriod: 0, clientId: 'offline-all', clean: false, properties: { sessionExpiryInterval: 60 } });
    clients.push(back);
    const got = record(back);
    assert.deepEqual(await beforeMarker(got), ['q/1=one', 'q/2=two']);
  });
});

describe('wildcard subscriptions under --acl-default deny', () => {
  let tb: TenancyBroker;
  const clients: MqttClient[] = [];

  before(async () => {
    tb = await startTenancyBroker((registry) => {
      const anon = registry.createAccount({ name: 'anonymous' }).account.id;
      const acl: AclRule[] = [
        { action: 'subscribe', permission: 'allow', topic: 'sensors/#' },
        { action: 'subscribe', permission: 'allow', topic: MARKER },
        { action: 'publish', permission: 'allow', topic: '#' },
      ];
      return { anonymousAccountId: anon, acl, aclDefault: 'deny' };
    });
  });
  after(async () => {
    await endAll(clients);
    await tb.close();
  });

  test('"#" overlapping an allowed area is granted and receives only that area; a filter no rule allows is refused', async () => {
    const sub = await login(tb.port, null);
    const pub = await login(tb.port, null);
    clients.push(sub, pub);
    assert.deepEqual(await subackCodes(sub, ['#', 'other/#'], 1), [ReasonCode.GrantedQos1, ReasonCode.NotAuthorized]);
    const got = record(sub);
    await publishThenMarker(pub, [['sensors/t1', 'ok'], ['other/x', 'denied'], ['sensors', 'ok-parent']]);
    assert.deepEqual(await beforeMarker(got), ['sensors/t1=ok', 'sensors=ok-parent']);
  });
});
