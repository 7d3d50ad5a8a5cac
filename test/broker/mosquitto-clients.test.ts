/**
 * Interoperability with Debian's mosquitto_pub / mosquitto_sub (libmosquitto 2.0) over MQTT 3.1.1
 * and MQTT 3.1: QoS, retained messages, persistent sessions, wills and bulk publishing, checked
 * against mosquitto_sub's formatted output and MQTT.js.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import {
  type ProcessResult,
  type RunningProcess,
  type TestBroker,
  MessageCollector,
  connect,
  delay,
  endClient,
  spawnProcess,
  startBroker,
  waitForMessages,
} from './helpers.ts';
import { waitUntil } from './wire-helpers.ts';

const HOST = '127.0.0.1';
const T = { timeout: 30_000 };
/** mosquitto_sub output format: QoS, retain flag, topic, payload. */
const FORMAT = '%q %r %t %p';

const VERSIONS = [
  { name: 'MQTT 3.1.1', flag: 'mqttv311', other: 'mqttv31', mqttjs: { protocolVersion: 4 as const, protocolId: 'MQTT' as const } },
  { name: 'MQTT 3.1', flag: 'mqttv31', other: 'mqttv311', mqttjs: { protocolVersion: 3 as const, protocolId: 'MQIsdp' as const } },
];

describe('mosquitto_pub / mosquitto_sub', () => {
  let tb: TestBroker;
  const clients: MqttClient[] = [];
  const kills: Array<() => void> = [];
  let seq = 0;
  const uid = (what: string): string => `mq${what}${++seq}`;

  before(async () => {
    tb = await startBroker();
  });
  after(async () => {
    await tb.close();
  });
  afterEach(async () => {
    for (const kill of kills.splice(0)) kill();
    await Promise.all(clients.splice(0).map((c) => endClient(c)));
  });

  /** Resolves when some client has subscribed to `filter` (so publishing now cannot race the subscription). */
  function subscribed(filter: string, timeoutMs = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      const onSubscribe = (_client: unknown, subs: Array<{ filter: string; result: number }>): void => {
        if (!subs.some((s) => s.filter === filter && s.result < 0x80)) return;
        clearTimeout(timer);
        tb.broker.off('client.subscribe', onSubscribe);
        resolve();
      };
      const timer = setTimeout(() => {
        tb.broker.off('client.subscribe', onSubscribe);
        reject(new Error(`nobody subscribed to ${filter} within ${timeoutMs} ms`));
      }, timeoutMs);
      tb.broker.on('client.subscribe', onSubscribe);
    });
  }

  function mosquittoSub(version: string, args: string[], timeoutMs = 10_000): RunningProcess {
    const proc = spawnProcess('mosquitto_sub', ['-h', HOST, '-p', String(tb.port), '-V', version, ...args], { timeoutMs });
    kills.push(() => proc.kill('SIGKILL'));
    return proc;
  }

  async function mosquittoPub(version: string, args: string[], stdin?: string): Promise<ProcessResult> {
    const proc = spawnProcess('mosquitto_pub', ['-h', HOST, '-p', String(tb.port), '-V', version, ...args], { timeoutMs: 10_000, stdin });
    kills.push(() => proc.kill('SIGKILL'));
    const result = await proc.done;
    assert.equal(result.code, 0, `mosquitto_pub ${args.join(' ')} failed: ${result.stderr}`);
    return result;
  }

  function lines(result: ProcessResult): string[] {
    return result.stdout.split('\n').filter((l) => l.length > 0);
  }

  function assertExited(result: ProcessResult): void {
    assert.equal(result.timedOut, false, `mosquitto_sub timed out; stdout so far:\n${result.stdout}\nstderr:\n${result.stderr}`);
    assert.equal(result.code, 0, `mosquitto_sub exit ${result.code}: ${result.stderr}`);
  }

  for (const V of VERSIONS) {
    describe(V.name, () => {
      test('mosquitto_sub -C 3 -q 2 receives QoS 0, 1 and 2 from mosquitto_pub', T, async () => {
        const topic = uid('q');
        const ready = subscribed(topic);
        const sub = mosquittoSub(V.flag, ['-t', topic, '-q', '2', '-C', '3', '-F', FORMAT]);
        await ready;
        for (const q of ['0', '1', '2']) await mosquittoPub(V.flag, ['-t', topic, '-q', q, '-m', `m${q}`]);
        const result = await sub.done;
        assertExited(result);
        assert.deepEqual(lines(result), [`0 0 ${topic} m0`, `1 0 ${topic} m1`, `2 0 ${topic} m2`]);
      });

      test('QoS is downgraded to the subscription QoS', T, async () => {
        const topic = uid('dg');
        const ready = Promise.all([subscribed(`${topic}/0`), subscribed(`${topic}/1`)]);
        const sub0 = mosquittoSub(V.flag, ['-t', `${topic}/0`, '-q', '0', '-C', '2', '-F', FORMAT]);
        const sub1 = mosquittoSub(V.flag, ['-t', `${topic}/1`, '-q', '1', '-C', '2', '-F', FORMAT]);
        await ready;
        for (const q of ['1', '2']) {
          await mosquittoPub(V.flag, ['-t', `${topic}/0`, '-q', q, '-m', `p${q}`]);
          await mosquittoPub(V.flag, ['-t', `${topic}/1`, '-q', q, '-m', `p${q}`]);
        }
        const [r0, r1] = await Promise.all([sub0.done, sub1.done]);
        assertExited(r0);
        assertExited(r1);
        assert.deepEqual(lines(r0), [`0 0 ${topic}/0 p1`, `0 0 ${topic}/0 p2`]);
        assert.deepEqual(lines(r1), [`1 0 ${topic}/1 p1`, `1 0 ${topic}/1 p2`]);
      });

      test(`publisher on ${V.other}, subscriber on ${V.flag}: messages cross protocol versions`, T, async () => {
        const topic = uid('x');
        const ready = subscribed(topic);
        const sub = mosquittoSub(V.flag, ['-t', topic, '-q', '2', '-C', '2', '-F', FORMAT]);
        await ready;
        await mosquittoPub(V.other, ['-t', topic, '-q', '2', '-m', 'from-other']);
        // mosquitto_sub hands a QoS 2 message on only after the broker's PUBREL, so a QoS 1 message
        // published meanwhile could print first: wait for the first line before sending the second.
        await waitUntil(() => sub.stdout().includes('from-other'), 'the QoS 2 message printed', 10_000);
        await mosquittoPub(V.other, ['-t', topic, '-q', '1', '-m', 'again']);
        const result = await sub.done;
        assertExited(result);
        assert.deepEqual(lines(result), [`2 0 ${topic} from-other`, `1 0 ${topic} again`]);
      });

      test('retained (-r): delivered to a later mosquitto_sub with the retain flag, replaced, cleared with -n', T, async () => {
        const topic = uid('r');
        await mosquittoPub(V.flag, ['-t', topic, '-q', '2', '-r', '-m', 'first']);
        await mosquittoPub(V.flag, ['-t', topic, '-q', '1', '-r', '-m', 'second']);
        const got = await mosquittoSub(V.flag, ['-t', topic, '-q', '2', '-C', '1', '-F', FORMAT]).done;
        assertExited(got);
        assert.deepEqual(lines(got), [`1 1 ${topic} second`], 'only the latest retained message, retain flag 1, at its published QoS 1');

        // A wildcard subscriber picks up every retained topic below it.
        await mosquittoPub(V.flag, ['-t', `${topic}/a`, '-q', '1', '-r', '-m', 'ra']);
        await mosquittoPub(V.flag, ['-t', `${topic}/b/c`, '-q', '1', '-r', '-m', 'rbc']);
        const wild = await mosquittoSub(V.flag, ['-t', `${topic}/#`, '-q', '1', '-C', '3', '-F', FORMAT]).done;
        assertExited(wild);
        assert.deepEqual(lines(wild).sort(), [`1 1 ${topic} second`, `1 1 ${topic}/a ra`, `1 1 ${topic}/b/c rbc`].sort());

        // An empty retained message (-n) clears the topic: a new subscriber gets nothing within 1 s.
        for (const t of [topic, `${topic}/a`, `${topic}/b/c`]) await mosquittoPub(V.flag, ['-t', t, '-q', '1', '-r', '-n']);
        const ready = subscribed(`${topic}/#`);
        const empty = mosquittoSub(V.flag, ['-t', `${topic}/#`, '-q', '1', '-C', '1', '-F', FORMAT], 2500);
        await ready;
        const none = await empty.done;
        assert.equal(none.stdout, '', 'nothing retained after clearing');
        assert.equal(none.timedOut, true, 'mosquitto_sub was still waiting for its first message');
      });

      test('live delivery of a retained publish to an existing mosquitto_sub has retain flag 0', T, async () => {
        const topic = uid('lr');
        const ready = subscribed(topic);
        const sub = mosquittoSub(V.flag, ['-t', topic, '-q', '1', '-C', '1', '-F', FORMAT]);
        await ready;
        await mosquittoPub(V.flag, ['-t', topic, '-q', '1', '-r', '-m', 'live']);
        const result = await sub.done;
        assertExited(result);
        assert.deepEqual(lines(result), [`1 0 ${topic} live`]);
        await mosquittoPub(V.flag, ['-t', topic, '-q', '1', '-r', '-n']);
      });

      test('mosquitto_pub -l: 500 lines from stdin arrive complete and in order at an MQTT.js subscriber', T, async () => {
        const topic = uid('l');
        const sub = await connect(tb.port, V.mqttjs);
        clients.push(sub);
        await sub.subscribeAsync(topic, { qos: 1 });
        const collector = new MessageCollector(sub);
        const input = Array.from({ length: 500 }, (_, i) => `line-${i}`);
        await mosquittoPub(V.flag, ['-t', topic, '-q', '1', '-l'], input.join('\n') + '\n');
        await collector.waitFor(500, 10_000);
        await delay(300);
        assert.deepEqual(collector.messages.map((m) => m.payload.toString()), input, 'all 500 lines, in order, once each');
        assert.ok(collector.messages.every((m) => m.packet.qos === 1 && m.topic === topic));
        collector.stop();
      });

      test('MQTT.js publishes 200 QoS 2 messages; mosquitto_sub -C 200 gets them in order', T, async () => {
        const topic = uid('js');
        const ready = subscribed(topic);
        const sub = mosquittoSub(V.flag, ['-t', topic, '-q', '2', '-C', '200', '-F', '%q %p']);
        await ready;
        const pub = await connect(tb.port, V.mqttjs);
        clients.push(pub);
        await Promise.all(Array.from({ length: 200 }, (_, i) => pub.publishAsync(topic, `n${i}`, { qos: 2 })));
        const result = await sub.done;
        assertExited(result);
        assert.deepEqual(lines(result), Array.from({ length: 200 }, (_, i) => `2 n${i}`));
      });

      test('persistent session (-c -i): QoS 1/2 messages published while mosquitto_sub is away are delivered on its return', T, async () => {
        const id = uid('ps');
        const topic = uid('pst');
        // First run: subscribe with clean=false, take one message, disconnect cleanly.
        const ready = subscribed(topic);
        const first = mosquittoSub(V.flag, ['-c', '-i', id, '-t', topic, '-q', '2', '-C', '1', '-F', FORMAT]);
        await ready;
        await mosquittoPub(V.flag, ['-t', topic, '-q', '1', '-m', 'online']);
        const r1 = await first.done;
        assertExited(r1);
        assert.deepEqual(lines(r1), [`1 0 ${topic} online`]);

        await mosquittoPub(V.flag, ['-t', topic, '-q', '1', '-m', 'away-1']);
        await mosquittoPub(V.flag, ['-t', topic, '-q', '2', '-m', 'away-2']);
        const r2 = await mosquittoSub(V.flag, ['-c', '-i', id, '-t', topic, '-q', '2', '-C', '2', '-F', FORMAT]).done;
        assertExited(r2);
        assert.deepEqual(lines(r2), [`1 0 ${topic} away-1`, `2 0 ${topic} away-2`]);

        // Without -c (clean session) the stored session is discarded: a second clean=false visit finds nothing queued.
        await mosquittoSub(V.flag, ['-i', id, '-t', `${topic}/unused`, '-C', '1', '-W', '1']).done;
        await mosquittoPub(V.flag, ['-t', topic, '-q', '1', '-m', 'not-queued']);
        const r3 = mosquittoSub(V.flag, ['-c', '-i', id, '-t', `${topic}/other`, '-q', '1', '-C', '1', '-F', FORMAT], 2000);
        const none = await r3.done;
        assert.equal(none.stdout, '', 'the clean session removed the old subscription and queue');
      });

      test('the will of a killed mosquitto_sub is published; a normal exit publishes none', T, async () => {
        const willTopic = uid('w');
        const watcher = await connect(tb.port, V.mqttjs);
        clients.push(watcher);
        await watcher.subscribeAsync(willTopic, { qos: 1 });
        const collector = new MessageCollector(watcher);

        // Exits normally after one message: DISCONNECT, no will.
        const topic = uid('wt');
        const ready = subscribed(topic);
        const polite = mosquittoSub(V.flag, ['-t', topic, '-C', '1', '--will-topic', willTopic, '--will-payload', 'polite', '--will-qos', '1']);
        await ready;
        await mosquittoPub(V.flag, ['-t', topic, '-m', 'bye']);
        assertExited(await polite.done);
        await delay(400);
        assert.deepEqual(collector.messages.map((m) => m.payload.toString()), [], 'no will after a clean DISCONNECT');

        // Killed: the socket closes without DISCONNECT, the will goes out with its QoS.
        const ready2 = subscribed(`${topic}/k`);
        const rude = mosquittoSub(V.flag, ['-t', `${topic}/k`, '--will-topic', willTopic, '--will-payload', 'killed', '--will-qos', '1']);
        await ready2;
        rude.kill('SIGKILL');
        const [m] = await collector.waitFor(1, 3000);
        assert.equal(m!.payload.toString(), 'killed');
        assert.equal(m!.packet.qos, 1);
        collector.stop();
      });

      test('mosquitto_sub on # does not receive $SYS/ topics; on $SYS/# it does', T, async () => {
        const own = await startBroker();
        try {
          const base = ['-h', HOST, '-p', String(own.port), '-V', V.flag];
          const hash = spawnProcess('mosquitto_sub', [...base, '-t', '#', '-q', '1', '-C', '1', '-F', '%t'], { timeoutMs: 8000 });
          const sys = spawnProcess('mosquitto_sub', [...base, '-t', '$SYS/#', '-q', '1', '-C', '1', '-F', '%t'], { timeoutMs: 8000 });
          kills.push(() => hash.kill('SIGKILL'), () => sys.kill('SIGKILL'));
          let subs = 0;
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error('mosquitto_sub did not subscribe')), 5000);
            own.broker.on('client.subscribe', () => {
              if (++subs === 2) {
                clearTimeout(timer);
                resolve();
              }
            });
          });
          // A client may not publish under $SYS (refused, as Mosquitto does); the broker publishes there itself.
          const forged = spawnProcess('mosquitto_pub', [...base, '-t', '$SYS/forged', '-q', '1', '-m', 'f'], { timeoutMs: 5000 });
          await forged.done;
          own.broker.publish('', { topic: '$SYS/test', payload: Buffer.from('s'), qos: 1, retain: false, properties: null, expiresAt: 0, origin: '' });
          const pub2 = spawnProcess('mosquitto_pub', [...base, '-t', 'plain', '-q', '1', '-m', 'p'], { timeoutMs: 5000 });
          assert.equal((await pub2.done).code, 0);
          const [h, s] = await Promise.all([hash.done, sys.done]);
          assert.equal(h.stdout.trim(), 'plain', "'#' skipped $SYS/test (3.1.1 §4.7.2)");
          assert.equal(s.stdout.trim(), '$SYS/test');
        } finally {
          await own.close();
        }
      });
    });
  }

  test('an MQTT.js v3.1.1 subscriber and a mosquitto v3.1 publisher with -q 2 -r', T, async () => {
    const topic = uid('mix');
    await mosquittoPub('mqttv31', ['-t', topic, '-q', '2', '-r', '-m', 'kept']);
    const sub = await connect(tb.port, { protocolVersion: 4 });
    clients.push(sub);
    const waiting = waitForMessages(sub, 1, 3000);
    await sub.subscribeAsync(topic, { qos: 2 });
    const [m] = await waiting;
    assert.equal(m!.payload.toString(), 'kept');
    assert.equal(m!.packet.retain, true);
    assert.equal(m!.packet.qos, 2);
    await mosquittoPub('mqttv311', ['-t', topic, '-q', '1', '-r', '-n']);
  });
});
