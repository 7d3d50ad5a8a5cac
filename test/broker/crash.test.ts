/**
 * SIGKILL at random moments (issue 14, "Durability gaps"; SPEC §2: retained messages stored durably,
 * offline queueing of QoS 1/2 that survives a restart, MQTT 5 will delay). The real server runs as a
 * child process on one data directory; it is killed while clients are busy and started again.
 *
 * What is asserted does not depend on where the kill lands:
 * - a retained QoS 1 publish that was acknowledged is there after the restart (or a newer value of
 *   its topic that was sent after it, acknowledged or not);
 * - a QoS 1 message acknowledged while persistent sessions (v3 clean=false, v5 session expiry) were
 *   offline is delivered to each of them after the restart;
 * - a will with a delay, its client gone and the broker killed before the delay ended, is published
 *   once after the restart, and a further crash and restart do not publish it again.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IClientOptions, MqttClient } from 'mqtt';
import { connect, connectCollecting, delay, endClient } from './helpers.ts';
import { cleanupServers, startServer, tempDir, type ServerProcess } from './server-process.ts';

after(cleanupServers);

const ROUNDS = 3;
/** Publishes in flight per publisher, so a kill lands among uncommitted batches. */
const WINDOW = 50;
/** Per round and publisher; far below the session queue limit (10,000), so nothing is dropped for space. */
const MAX_PER_ROUND = 4_000;
const RETAINED_TOPICS = 50;
const SUBSCRIBERS: IClientOptions[] = [
  { clientId: 'crash-sub-v3', protocolVersion: 4, clean: false },
  { clientId: 'crash-sub-v5', protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 3600 } },
];

function randomMs(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min));
}

async function kill(server: ServerProcess): Promise<void> {
  const { signal } = await server.stop('SIGKILL');
  assert.equal(signal, 'SIGKILL');
}

/**
 * Streams QoS 1 publishes (WINDOW in flight) until `stopped()`; `onAck` sees each acknowledged one.
 * Resolves once the first acknowledgement came, so the kill that follows lands during traffic.
 */
function stream(client: MqttClient, next: (i: number) => { topic: string; payload: string; retain: boolean }, onSend: (i: number) => void, onAck: (i: number) => void, stopped: () => boolean): Promise<void> {
  let sent = 0;
  return new Promise((firstAck) => {
    const one = (): void => {
      if (stopped() || sent >= MAX_PER_ROUND) return;
      const i = sent++;
      const { topic, payload, retain } = next(i);
      onSend(i);
      client.publish(topic, payload, { qos: 1, retain }, (error) => {
        if (error !== undefined && error !== null) return;
        if (stopped()) return; // an ack read after the kill was still sent before it; not needed
        onAck(i);
        firstAck();
        one();
      });
    };
    for (let i = 0; i < WINDOW; i++) one();
  });
}

describe('SIGKILL at random moments', { timeout: 120_000 }, () => {
  test('acknowledged retained QoS 1 messages and QoS 1 messages queued for offline persistent sessions survive', async () => {
    const dir = tempDir();
    let server = await startServer(dir);
    for (const opts of SUBSCRIBERS) {
      const c = await connect(server.port, { ...opts, ...(opts.protocolVersion === 5 ? { clean: true } : {}) });
      await c.subscribeAsync('crash/q', { qos: 1 });
      await endClient(c, false);
    }

    for (let round = 0; round < ROUNDS; round++) {
      const retainedPub = await connect(server.port, { clientId: `crash-retained-${round}`, protocolVersion: 4 });
      const queuedPub = await connect(server.port, { clientId: `crash-queued-${round}`, protocolVersion: 5 });
      for (const c of [retainedPub, queuedPub]) c.on('error', () => undefined);
      let killed = false;
      const stopped = (): boolean => killed;
      const retainedTopic = (i: number): string => `crash/r${round}/t${i % RETAINED_TOPICS}`;
      // Per topic: the newest seq sent, and the newest acknowledged (acks come in publish order).
      const sentRetained = new Map<string, number>();
      const ackedRetained = new Map<string, number>();
      const ackedQueued: string[] = [];
      const started = Promise.all([
        stream(retainedPub, (i) => ({ topic: retainedTopic(i), payload: String(i), retain: true }), (i) => sentRetained.set(retainedTopic(i), i), (i) => ackedRetained.set(retainedTopic(i), i), stopped),
        stream(queuedPub, (i) => ({ topic: 'crash/q', payload: `r${round}-${i}`, retain: false }), () => undefined, (i) => ackedQueued.push(`r${round}-${i}`), stopped),
      ]);
      await started;
      const after = randomMs(0, 250);
      await delay(after);
      killed = true;
      await kill(server);
      await Promise.all([endClient(retainedPub), endClient(queuedPub)]);
      const label = `round ${round} (killed ${after} ms after the first acks; ${ackedRetained.size} retained topics and ${ackedQueued.length} queued messages acknowledged)`;

      server = await startServer(dir);

      // Retained: every acknowledged topic holds its acknowledged value or a newer one that was sent.
      const reader = await connectCollecting(server.port, { clientId: `crash-reader-${round}`, protocolVersion: 5 });
      await reader.client.subscribeAsync(`crash/r${round}/#`, { qos: 1 });
      await reader.messages.waitFor(ackedRetained.size, 5_000).catch(() => undefined);
      await delay(100);
      const stored = new Map(reader.messages.messages.map((m) => [m.topic, Number(m.payload.toString())]));
      reader.messages.stop();
      await endClient(reader.client, false);
      const lost = [...ackedRetained].filter(([topic, seq]) => !((stored.get(topic) ?? -1) >= seq && (stored.get(topic) ?? -1) <= sentRetained.get(topic)!));
      assert.deepEqual(lost.map(([topic, seq]) => `${topic}: acknowledged ${seq}, found ${stored.get(topic)}`), [], `${label}: retained messages lost`);

      // Queued: each offline persistent session gets every acknowledged message of the round.
      for (const opts of SUBSCRIBERS) {
        const sub = await connectCollecting(server.port, opts);
        assert.equal(sub.connack.sessionPresent, true, `${label}: ${opts.clientId} session present`);
        const has = (): Set<string> => new Set(sub.messages.messages.map((m) => m.payload.toString()));
        const deadline = Date.now() + 10_000;
        while (ackedQueued.some((p) => !has().has(p)) && Date.now() < deadline) await delay(50);
        const missing = ackedQueued.filter((p) => !has().has(p));
        sub.messages.stop();
        await endClient(sub.client, false);
        assert.deepEqual(missing.slice(0, 10), [], `${label}: ${missing.length} acknowledged messages missing for ${opts.clientId}`);
      }
    }
    await server.stop('SIGTERM');
  });

  test('a delayed will whose broker was killed before the delay ended is published once after the restart', async () => {
    const dir = tempDir();
    let server = await startServer(dir);
    // The observer is a persistent session: a will published while it is offline (at start-up) is queued for it.
    const watcher: IClientOptions = { clientId: 'crash-will-watcher', protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 3600 } };
    const w = await connect(server.port, { ...watcher, clean: true });
    await w.subscribeAsync('crash/will/#', { qos: 1 });
    await endClient(w, false);

    // Restarted at once (the will is still pending at start), then 2.5 s later (its delay ran out while down).
    for (const [round, downMs] of [[0, 0], [1, 2_500]] as const) {
      const topic = `crash/will/${round}`;
      const device = await connect(server.port, {
        clientId: `crash-will-${round}`,
        protocolVersion: 5,
        properties: { sessionExpiryInterval: 60 },
        will: { topic, payload: Buffer.from(`gone ${round}`), qos: 1, retain: false, properties: { willDelayInterval: 2 } },
      });
      device.on('error', () => undefined);
      device.stream.destroy(); // no DISCONNECT: the will stands (MQTT 5 §3.1.2.5)
      const killedAfter = randomMs(0, 1_000);
      await delay(killedAfter);
      await kill(server);
      await endClient(device);
      await delay(downMs);
      const label = `round ${round} (killed ${killedAfter} ms after the close, down ${downMs} ms)`;

      server = await startServer(dir);
      const seen = await connectCollecting(server.port, watcher);
      const wills = (): number => seen.messages.messages.filter((m) => m.topic === topic).length;
      const deadline = Date.now() + 6_000;
      while (wills() === 0 && Date.now() < deadline) await delay(50);
      await delay(300);
      assert.equal(wills(), 1, `${label}: the will, once`);
      seen.messages.stop();
      await endClient(seen.client, false);

      // Published means forgotten: a crash now and a restart past the delay bring no second copy.
      await delay(300);
      await kill(server);
      server = await startServer(dir);
      const again = await connectCollecting(server.port, watcher);
      await delay(2_500);
      assert.equal(again.messages.messages.filter((m) => m.topic === topic).length, 0, `${label}: no second will after another crash`);
      again.messages.stop();
      await endClient(again.client, false);
    }
    await server.stop('SIGTERM');
  });
});
