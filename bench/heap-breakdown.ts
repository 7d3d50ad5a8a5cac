/**
 * Where bucketmq's memory goes, per idle connection, per subscription, per offline session and per
 * queued message (issue 15's memory model; the figures are in bench/README.md).
 *
 *   npx tsx bench/heap-breakdown.ts [--connections 10000 --subscribed 9000 --sessions 500 --messages 200 --snapshots on --top 25]
 *
 * The server runs in this process (as `npm start` runs it, anonymous mode, SQLite stores), the clients
 * in child processes (footprint-client.ts). Phases, each measured after a full GC:
 *   1. N idle connections (MQTT 3.1.1, clean session, keepalive 600 s);
 *   2. K more connections (9,000), each with one QoS 1 subscription to its own topic;
 *   3. S persistent sessions (clean session off, one QoS 1 subscription each), then disconnected;
 *   4. M QoS 1 messages (64-byte payloads) published to each of those S topics, so S × M messages
 *      wait in offline queues.
 * Each phase prints the growth of the JS heap, of external memory (Buffers) and of RSS per unit. With
 * `--snapshots on` (the default) a heap snapshot follows each phase and the growth is broken down by
 * object type (heap-snapshot.ts); snapshots make the process's RSS grow by themselves, so read RSS
 * figures from a run with `--snapshots off`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import { loadConfig } from '../src/config.ts';
import type { Message } from '../src/broker/message.ts';
import { startServer } from '../src/server.ts';
import { ClientFleet, LOCAL_ADDRESSES } from './footprint-client.ts';
import { perUnit, summarizeSnapshot, type KindTotal } from './heap-snapshot.ts';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '10000' },
    subscribed: { type: 'string', default: '9000' },
    sessions: { type: 'string', default: '500' },
    messages: { type: 'string', default: '200' },
    payload: { type: 'string', default: '64' },
    snapshots: { type: 'string', default: 'on' },
    top: { type: 'string', default: '25' },
  },
});
const connections = Number(values.connections);
// This process holds the server's sockets: idle + subscribed connections must stay under its
// open-file limit (20,000 on the project's machine), hence 9,000 rather than another 10,000.
const subscribed = Number(values.subscribed);
const sessions = Number(values.sessions);
const messagesPerSession = Number(values.messages);
const payloadBytes = Number(values.payload);
const snapshots = values.snapshots === 'on';
const top = Number(values.top);

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

interface Reading {
  heapUsed: number;
  external: number;
  rssKb: number;
  snapshot: string | null;
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'bucketmq-heap-breakdown-'));

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const startedAt = Date.now();

async function read(name: string): Promise<Reading> {
  console.error(`heap-breakdown: ${name} at ${((Date.now() - startedAt) / 1000).toFixed(0)} s`);
  await sleep(1_000);
  gc();
  gc();
  const usage = process.memoryUsage();
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
  const snapshot = snapshots ? v8.writeHeapSnapshot(path.join(dir, `${name}.heapsnapshot`)) : null;
  return { heapUsed: usage.heapUsed, external: usage.external, rssKb, snapshot };
}

const config = loadConfig(['--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--data-dir', path.join(dir, 'data'), '--allow-anonymous', 'true', '--log-level', 'warn'], {});
const server = await startServer(config);
let namespace: string | null = null;
server.broker.once('client.connect', (client) => {
  namespace = client.namespace;
});
const port = server.ports.mqtt;
const cpus = null;
const job = { host: '127.0.0.1', port, localAddresses: LOCAL_ADDRESSES, window: 500, keepalive: 600, timeoutMs: 300_000 };
const fleets: ClientFleet[] = [];
const WARMUP = 200;

async function connect(count: number, prefix: string, options: { clean: boolean; subscribePrefix: string | null; disconnect: boolean }): Promise<void> {
  const fleet = new ClientFleet(count, { perProcess: 10_000, cpus });
  fleets.push(fleet);
  const report = await fleet.connect({ ...job, count, clientIdPrefix: prefix, subscribeTopic: null, ...options });
  if (report.done !== count) throw new Error(`${prefix}: ${report.done}/${count} handshakes (${report.errors.join('; ')})`);
}

const phases: Array<{ name: string; unit: string; units: number; reading: Reading }> = [];
try {
  // Warm-up, so one-off costs fall before the baseline: code compiled on first use, and mqtt-packet's
  // number caches (65,536 Buffers each, filled on its first encode: ~6 MB, or 0.6 KB per connection at 10,000).
  const warmup = new ClientFleet(WARMUP, { perProcess: WARMUP, cpus });
  await warmup.connect({ ...job, count: WARMUP, clientIdPrefix: 'hb-warmup-', subscribeTopic: null, clean: true, subscribePrefix: 'hb/warmup/', disconnect: false });
  for (let i = 0; i < WARMUP; i++) {
    server.broker.publish(namespace ?? '', { topic: `hb/warmup/${i}`, payload: Buffer.from('warm-up'), qos: 1, retain: false, properties: null, expiresAt: 0, origin: '' }, null);
  }
  await warmup.close();
  // Let the warm-up's sockets close and the broker drop them (a closed connection is released on 'close').
  await sleep(6_000);
  phases.push({ name: 'start', unit: '', units: 1, reading: await read('0-start') });

  await connect(connections, 'hb-idle-', { clean: true, subscribePrefix: null, disconnect: false });
  phases.push({ name: 'idle connections', unit: 'connection', units: connections, reading: await read('1-idle') });

  await connect(subscribed, 'hb-sub-', { clean: true, subscribePrefix: 'hb/sub/', disconnect: false });
  phases.push({ name: 'connections with one subscription', unit: 'connection + subscription', units: subscribed, reading: await read('2-subscribed') });

  await connect(sessions, 'hb-offline-', { clean: false, subscribePrefix: 'hb/queue/', disconnect: true });
  await sleep(6_000);
  phases.push({ name: 'offline persistent sessions (one subscription)', unit: 'session', units: sessions, reading: await read('3-offline') });

  const ns = namespace ?? '';
  const template = Buffer.alloc(payloadBytes, 0x61);
  for (let m = 0; m < messagesPerSession; m++) {
    for (let s = 0; s < sessions; s++) {
      // Like a PUBLISH from a client: the payload is copied out of the read (publish-codec.ts).
      const message: Message = { topic: `hb/queue/${s}`, payload: Buffer.from(template), qos: 1, retain: false, properties: null, expiresAt: 0, origin: '' };
      server.broker.publish(ns, message, null);
    }
    if (m % 50 === 49) await sleep(10);
  }
  phases.push({ name: `queued QoS 1 messages (${payloadBytes}-byte payload, one subscriber each)`, unit: 'message', units: sessions * messagesPerSession, reading: await read('4-queued') });
} finally {
  for (const fleet of fleets) await fleet.close();
  await server.stop();
}

console.log(`\nbucketmq memory, grown per unit (after a full GC; ${os.cpus().length} cores, Node ${process.version})${snapshots ? ' — RSS inflated by the heap snapshots, use --snapshots off for it' : ''}`);
console.log('phase                                               unit                        JS heap B   external B   RSS B');
for (let i = 1; i < phases.length; i++) {
  const { name, unit, units, reading } = phases[i]!;
  const prev = phases[i - 1]!.reading;
  const per = (a: number, b: number): string => ((a - b) / units).toFixed(0).padStart(10);
  console.log(`${name.padEnd(51)} ${unit.padEnd(26)} ${per(reading.heapUsed, prev.heapUsed)}   ${per(reading.external, prev.external)} ${per(reading.rssKb * 1024, prev.rssKb * 1024)}`);
}

if (snapshots) {
  const summaries: Array<Map<string, KindTotal>> = phases.map((phase) => summarizeSnapshot(phase.reading.snapshot!));
  console.error(`heap-breakdown: snapshots read at ${((Date.now() - startedAt) / 1000).toFixed(0)} s`);
  const show = (title: string, rows: Array<{ kind: string; count: number; bytes: number }>): void => {
    const total = rows.reduce((sum, row) => sum + row.bytes, 0);
    console.log(`\n${title}: ${total.toFixed(0)} bytes of JS heap (self sizes; top ${top})`);
    console.log('   bytes   objects  kind');
    for (const row of rows.slice(0, top)) console.log(`${row.bytes.toFixed(0).padStart(8)}  ${row.count.toFixed(2).padStart(8)}  ${row.kind}`);
  };
  const idle = perUnit(summaries[1]!, summaries[0]!, connections);
  show('Per idle connection', idle);
  // Connections with a subscription, minus what an idle connection costs: what the subscription adds.
  const withSubscription = perUnit(summaries[2]!, summaries[1]!, subscribed);
  const idleByKind = new Map(idle.map((row) => [row.kind, row]));
  const subscriptionOnly = withSubscription.map((row) => ({ kind: row.kind, count: row.count - (idleByKind.get(row.kind)?.count ?? 0), bytes: row.bytes - (idleByKind.get(row.kind)?.bytes ?? 0) }));
  const subscribedKinds = new Set(withSubscription.map((row) => row.kind));
  for (const row of idle) if (!subscribedKinds.has(row.kind)) subscriptionOnly.push({ kind: row.kind, count: -row.count, bytes: -row.bytes });
  show('Per subscription (connection with one subscription minus an idle connection)', subscriptionOnly.sort((a, b) => b.bytes - a.bytes));
  show('Per offline persistent session with one subscription', perUnit(summaries[3]!, summaries[2]!, sessions));
  show('Per queued QoS 1 message', perUnit(summaries[4]!, summaries[3]!, sessions * messagesPerSession));
}
rmSync(dir, { recursive: true, force: true });
