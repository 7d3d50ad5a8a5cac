/**
 * `npm run bench:footprint` — memory per idle connection and connects per second, bucketmq against
 * Mosquitto and aedes, side by side (issue 15).
 *
 *   npm run bench:footprint -- --connections 19000 --window 500 --rounds 2
 *
 * Per broker and round: a fresh broker on a random 127.0.0.1 port (pinned to CPU 0), warmed up with
 * 200 connections that are closed again, its RSS read from /proc/PID/status (VmRSS) once it is idle, then `connections` idle MQTT 3.1.1 connections from
 * client processes on CPU 1 (footprint-client.ts: CONNECT with clean session, a unique client id and
 * a 600 s keepalive, CONNACK, then silence), at most `window` handshakes in flight. Once every
 * connection is up and the broker has settled, RSS is read again:
 *
 *   KB per connection = (RSS after - RSS before) / connections
 *   connects/s        = connections / (last CONNACK - first TCP connect)
 *
 * The Node brokers also load bench/node-probe.ts, which reports their heap after a full GC (before
 * connecting and after the RSS reading), so the table shows how much of the growth is live JS heap.
 * Rounds alternate the brokers, so a busy phase of the shared machine hits all of them.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BROKER_NAMES, BrokerUnavailable, DEFAULT_BROKERS, HOST, MOSQUITTO_SETTINGS, startBroker, type BrokerName, type RunningBroker } from './brokers.ts';
import { ClientFleet, LOCAL_ADDRESSES } from './footprint-client.ts';
import { probeFile, type ProbeReport } from './node-probe.ts';
import { formatCount, formatRate, renderTable } from './table.ts';

const PROBE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'node-probe.ts');

const USAGE = `usage: npm run bench:footprint -- [options]
  --connections N      idle connections per broker [19000]
  --window N           CONNECT handshakes in flight at most (over all client processes) [500]
  --brokers NAMES      comma-separated: bucketmq,mosquitto,aedes [${DEFAULT_BROKERS.join(',')}]
  --rounds N           runs per broker, brokers alternating; memory is the median, connects/s the range [1]
  --per-process N      connections per client process at most (a process may hold 20,000 files) [10000]
  --keepalive S        CONNECT keepalive, long enough that nothing times out [600]
  --settle S           seconds to wait after the last CONNACK before reading RSS [3]
  --timeout S          seconds the connecting may take, per run [120]
  --pin on|off         broker on CPU 0, clients on CPU 1 (taskset) [on]
  --bucketmq-node-arg=ARG  Node flag for bucketmq (repeatable), e.g. --bucketmq-node-arg=--max-semi-space-size=128`;

/**
 * Connections opened and closed before the baseline reading, so one-off costs are paid before it:
 * code compiled on first use, and mqtt-packet's number caches (it fills 65,536 small Buffers, ~6 MB,
 * on its first encode), which would otherwise count as ~0.3 KB per connection at 19,000.
 */
const WARMUP_CONNECTIONS = 200;
/** Settle time after the warm-up: bucketmq keeps a closed socket referenced for 5 s (SocketTransport.end). */
const STARTUP_SETTLE_MS = 6_000;
const PROBE_TIMEOUT_MS = 10_000;

interface Run {
  broker: BrokerName;
  status: 'ok' | 'failed' | 'n/a';
  connections: number;
  /** VmRSS in KiB. */
  rssBefore: number;
  rssAfter: number;
  /** Node brokers: heap used after a full GC, bytes, before and after. */
  heapBefore: ProbeReport | null;
  heapAfter: ProbeReport | null;
  connectsPerSecond: number | null;
  note: string;
}

export interface FootprintRow {
  broker: BrokerName;
  connections: number;
  /** RSS growth per connection, KiB (median over rounds). */
  rssKbPerConnection: number | null;
  /** Live heap growth per connection after a full GC, KiB (Node brokers). */
  heapKbPerConnection: number | null;
  /** External + array buffer growth per connection, KiB (Node brokers). */
  externalKbPerConnection: number | null;
  connectsPerSecond: number[];
  note: string;
}

/** VmRSS of a process in KiB, or null when it is gone. */
export function vmRssKb(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? null : Number(match[1]);
  } catch {
    return null;
  }
}

/** Asks a broker that loaded node-probe.ts for its memory after a full GC. */
async function probe(pid: number | undefined): Promise<ProbeReport | null> {
  if (pid === undefined) return null;
  const file = probeFile(pid);
  rmSync(file, { force: true });
  try {
    process.kill(pid, 'SIGUSR2');
  } catch {
    return null;
  }
  const deadline = Date.now() + PROBE_TIMEOUT_MS;
  while (Date.now() < deadline) {
    await sleep(50);
    if (existsSync(file)) {
      const report = JSON.parse(readFileSync(file, 'utf8')) as ProbeReport;
      rmSync(file, { force: true });
      return report;
    }
  }
  return null;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Settings {
  connections: number;
  window: number;
  perProcess: number;
  keepalive: number;
  settleMs: number;
  timeoutMs: number;
  pin: boolean;
  bucketmqNodeArgs: string[];
}

async function measure(name: BrokerName, settings: Settings): Promise<Run> {
  const run: Run = { broker: name, status: 'failed', connections: 0, rssBefore: 0, rssAfter: 0, heapBefore: null, heapAfter: null, connectsPerSecond: null, note: '' };
  const node = name === 'bucketmq' || name === 'aedes';
  let broker: RunningBroker;
  try {
    broker = await startBroker(name, {
      cpus: settings.pin ? '0' : null,
      bucketmqArgs: [],
      startTimeoutMs: 20_000,
      nodeArgs: node ? ['--import', PROBE, ...(name === 'bucketmq' ? settings.bucketmqNodeArgs : [])] : [],
    });
  } catch (error) {
    if (!(error instanceof BrokerUnavailable)) throw error;
    return { ...run, status: 'n/a', note: error.message };
  }
  const clientCpus = settings.pin ? (os.cpus().length === 2 ? '1' : `1-${os.cpus().length - 1}`) : null;
  const fleet = new ClientFleet(settings.connections, { perProcess: settings.perProcess, cpus: clientCpus });
  try {
    const warmup = new ClientFleet(WARMUP_CONNECTIONS, { perProcess: WARMUP_CONNECTIONS, cpus: clientCpus });
    await warmup.connect({
      host: HOST, port: broker.port, count: WARMUP_CONNECTIONS, clientIdPrefix: `fp-warmup-${name}-`, localAddresses: LOCAL_ADDRESSES,
      window: settings.window, keepalive: settings.keepalive, clean: true, subscribePrefix: null, subscribeTopic: null, disconnect: false, timeoutMs: settings.timeoutMs,
    });
    await warmup.close();
    await sleep(STARTUP_SETTLE_MS);
    if (node) {
      run.heapBefore = await probe(broker.pid);
      await sleep(500);
    }
    run.rssBefore = vmRssKb(broker.pid) ?? 0;
    const report = await fleet.connect({
      host: HOST, port: broker.port, count: settings.connections, clientIdPrefix: `fp-${name}-`, localAddresses: LOCAL_ADDRESSES,
      window: settings.window, keepalive: settings.keepalive, clean: true, subscribePrefix: null, subscribeTopic: null, disconnect: false,
      timeoutMs: settings.timeoutMs,
    });
    run.connections = report.done;
    run.connectsPerSecond = report.elapsedMs > 0 ? (report.done / report.elapsedMs) * 1000 : null;
    await sleep(settings.settleMs);
    const status = await fleet.status();
    const rss = vmRssKb(broker.pid);
    if (rss === null || !broker.alive) {
      run.note = `broker died: ${broker.output.trim().split('\n').slice(-2).join(' | ')}`;
      return run;
    }
    run.rssAfter = rss;
    if (node) run.heapAfter = await probe(broker.pid);
    const notes: string[] = [];
    if (report.failed > 0) notes.push(`${formatCount(report.failed)} handshakes failed (${report.errors.join('; ')})`);
    if (status.lost > 0) notes.push(`${formatCount(status.lost)} connections closed by the broker while idle`);
    run.note = notes.join('; ');
    // Memory per connection is only meaningful when (nearly) all connections are up and stayed up.
    run.status = report.done > 0 && status.open >= settings.connections * 0.99 ? 'ok' : 'failed';
    run.connections = status.open;
    return run;
  } finally {
    // The broker goes first, so TIME_WAIT lands on its (random, never reused) port and not on the
    // clients' source ports; then the clients.
    await broker.stop();
    await fleet.close();
  }
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function summarize(broker: BrokerName, runs: Run[]): FootprintRow {
  const ok = runs.filter((run) => run.status === 'ok');
  const perConnection = (f: (run: Run) => number | null): number | null => median(ok.map(f).filter((v): v is number => v !== null));
  return {
    broker,
    connections: median(ok.map((run) => run.connections)) ?? 0,
    rssKbPerConnection: perConnection((run) => (run.rssAfter - run.rssBefore) / run.connections),
    heapKbPerConnection: perConnection((run) => run.heapBefore === null || run.heapAfter === null ? null : (run.heapAfter.heapUsed - run.heapBefore.heapUsed) / 1024 / run.connections),
    externalKbPerConnection: perConnection((run) => run.heapBefore === null || run.heapAfter === null ? null : (run.heapAfter.external - run.heapBefore.external) / 1024 / run.connections),
    connectsPerSecond: ok.map((run) => run.connectsPerSecond).filter((v): v is number => v !== null),
    note: [...new Set(runs.map((run) => (run.status === 'ok' ? run.note : `${run.status}${run.note === '' ? '' : `: ${run.note}`}`)).filter((n) => n !== ''))].join('; '),
  };
}

function kb(value: number | null): string {
  return value === null ? '-' : value.toFixed(2);
}

function range(values: number[]): string {
  if (values.length === 0) return '-';
  const min = Math.min(...values);
  const max = Math.max(...values);
  return min === max ? formatRate(min) : `${formatRate(min)}–${formatRate(max)}`;
}

export function renderFootprint(rows: FootprintRow[], settings: Pick<Settings, 'connections' | 'window'>): string {
  const header = ['broker', 'connections', 'KB/conn (RSS)', 'KB/conn (heap after GC)', 'KB/conn (external)', 'connects/s'];
  const body = rows.map((row) => [
    row.broker, formatCount(row.connections), kb(row.rssKbPerConnection), kb(row.heapKbPerConnection), kb(row.externalKbPerConnection), range(row.connectsPerSecond),
  ]);
  const notes = rows.filter((row) => row.note !== '').map((row) => `  ${row.broker}: ${row.note}`);
  return [
    `Idle connections: RSS growth per connection and connects/s (${formatCount(settings.connections)} MQTT 3.1.1 connections, clean session, keepalive 600 s; at most ${settings.window} handshakes in flight)`,
    renderTable(header, body),
    ...(notes.length > 0 ? ['Notes:', ...notes] : []),
    'KB = 1024 bytes. Heap and external: Node brokers only, after a full GC; RSS is read without forcing one.',
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      connections: { type: 'string', default: '19000' },
      window: { type: 'string', default: '500' },
      brokers: { type: 'string', default: DEFAULT_BROKERS.join(',') },
      rounds: { type: 'string', default: '1' },
      'per-process': { type: 'string', default: '10000' },
      keepalive: { type: 'string', default: '600' },
      settle: { type: 'string', default: '3' },
      timeout: { type: 'string', default: '120' },
      pin: { type: 'string', default: 'on' },
      'bucketmq-node-arg': { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const integer = (name: string, text: string, min: number): number => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < min) {
      console.error(`--${name} must be an integer >= ${min}\n\n${USAGE}`);
      process.exit(2);
    }
    return value;
  };
  const brokers = values.brokers.split(',').map((s) => s.trim()).filter((s) => s !== '') as BrokerName[];
  for (const name of brokers) {
    if (!BROKER_NAMES.includes(name) || name === 'null') {
      console.error(`--brokers: unknown "${name}" (known: bucketmq, mosquitto, aedes)\n\n${USAGE}`);
      process.exit(2);
    }
  }
  const settings: Settings = {
    connections: integer('connections', values.connections, 1),
    window: integer('window', values.window, 1),
    perProcess: integer('per-process', values['per-process'], 1),
    keepalive: integer('keepalive', values.keepalive, 0),
    settleMs: integer('settle', values.settle, 0) * 1000,
    timeoutMs: integer('timeout', values.timeout, 1) * 1000,
    pin: values.pin === 'on' && os.cpus().length >= 2,
    bucketmqNodeArgs: values['bucketmq-node-arg'],
  };
  const rounds = integer('rounds', values.rounds, 1);
  // Each broker holds one file per connection: it must fit under the process's open-file limit.
  if (settings.connections > 19_500) console.error(`warning: ${settings.connections} connections may exceed the brokers' open-file limit (ulimit -n)`);

  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));
  const startedAt = Date.now();
  const runs = new Map<BrokerName, Run[]>(brokers.map((b) => [b, []]));
  for (let round = 0; round < rounds; round++) {
    for (const name of brokers) {
      const run = await measure(name, settings);
      runs.get(name)!.push(run);
      const perConnection = run.connections > 0 ? ((run.rssAfter - run.rssBefore) / run.connections).toFixed(2) : '-';
      const heap = run.heapBefore !== null && run.heapAfter !== null && run.connections > 0 ? `, heap ${((run.heapAfter.heapUsed - run.heapBefore.heapUsed) / 1024 / run.connections).toFixed(2)} KB/conn` : '';
      console.error(`  footprint ${name.padEnd(10)} ${run.status}  ${formatCount(run.connections)} conn  RSS ${formatCount(run.rssBefore)} → ${formatCount(run.rssAfter)} KiB = ${perConnection} KB/conn${heap}  ${run.connectsPerSecond === null ? '' : `${formatRate(run.connectsPerSecond)} connects/s`}  ${run.note}`);
    }
  }
  const rows = brokers.map((name) => summarize(name, runs.get(name)!));
  console.log(`\n${renderFootprint(rows, settings)}`);
  console.log(`Mosquitto config: ${MOSQUITTO_SETTINGS.filter((s) => !s.startsWith('log_')).join(', ')}; rounds ${rounds}; total time ${((Date.now() - startedAt) / 1000).toFixed(0)} s`);
  if (rows.some((row) => row.rssKbPerConnection === null)) process.exitCode = 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
