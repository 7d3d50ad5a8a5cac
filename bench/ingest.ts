/**
 * Ingest benchmark (issue 5): records per second durably stored in buckets.
 *
 *   npm run bench:ingest [-- --seconds 5 --connections 8 --window 1000 --http-concurrency 32 --rows mqtt1,mqtt10,parser,parser1,http1,http100]
 *
 * Rows:
 * - MQTT: QoS 1 publishers (MQTT 3.1.1, raw sockets, pre-encoded packets, in a separate process) publish
 *   through an `insert_bucket` action; a PUBACK arrives only after the records are committed, so
 *   acknowledged messages x records per message = records durably stored. One and ten records per
 *   message. At the end the bucket is counted to check that every acknowledged record is there.
 * - MQTT through a payload parser: the same publishers, 5-byte binary frames, devices whose parser
 *   decodes each into 3 records (`parser`) or 1 (`parser1`) (SPEC §4, issue 6); units are messages.
 * - HTTP: POST /data with a device token, bodies of 1 and 100 records (when this build has the data API).
 * Stores: SQLite (the node's database file), and PostgreSQL when BUCKETMQ_TEST_PG_URL is set and the
 * PostgreSQL store is built.
 *
 * The server runs in this process, the load in a forked child (`--child`), so each has a core.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.ts';
import type { BucketStore } from '../src/data/bucket-store.ts';
import { startServer, type RunningServer } from '../src/server.ts';
import { CpuSplit, type CpuShares } from './cpu-split.ts';
import { FrameWalker, PacketType } from './frame-walker.ts';
import { encodeConnect, encodeQos1Ring } from './packets.ts';

const HERE = fileURLToPath(import.meta.url);
const TOPIC = 'bench/ingest';
const RING_SIZE = 4096;
const WARMUP_MS = 1_000;

interface MqttJob {
  kind: 'mqtt';
  port: number;
  tokens: string[];
  /** The message, as hex (binary frames survive the trip to the child). */
  payloadHex: string;
  window: number;
  seconds: number;
}

interface HttpJob {
  kind: 'http';
  port: number;
  tokens: string[];
  body: string;
  concurrency: number;
  seconds: number;
}

type Job = MqttJob | HttpJob;

/** What a child reports: units (acknowledged messages, or 2xx answers) over the measured window. */
interface JobResult {
  units: number;
  ms: number;
  /** Units acknowledged in total (warm-up included), to check against the bucket. */
  total: number;
  failures: number;
  /** CPU time during the measured window, µs, by part (set by the parent; null off Linux). */
  cpu?: CpuShares | null;
}

/**
 * Device decoders in the hosted service's template style: a hex frame (temperature int16 / 100,
 * humidity uint8 / 2, battery uint16 mV) into 3 records, and the same frame into its temperature alone.
 */
const HEX_FRAME_DECODER = (fields: string): string => `
const raw = payload.find((x) => x.variable === 'payload');
if (raw) {
  const buffer = Buffer.from(raw.value, 'hex');
  payload = [${fields}];
}`;
const TEMPERATURE = "{ variable: 'temperature', value: buffer.readInt16BE(0) / 100, unit: 'C' }";
const PARSERS = [
  {
    row: 'parser',
    records: 3,
    code: HEX_FRAME_DECODER(`${TEMPERATURE}, { variable: 'humidity', value: buffer.readUInt8(2) / 2, unit: '%' }, { variable: 'battery', value: buffer.readUInt16BE(3), unit: 'mV' }`),
  },
  { row: 'parser1', records: 1, code: HEX_FRAME_DECODER(TEMPERATURE) },
];

function record(i: number): { variable: string; value: number; unit: string } {
  return { variable: `temperature${i}`, value: 21.5 + i, unit: 'C' };
}

function body(records: number): string {
  return JSON.stringify(records === 1 ? record(0) : Array.from({ length: records }, (_, i) => record(i)));
}

// ---- the load (child process) ------------------------------------------------------------------

async function runMqtt(job: MqttJob): Promise<JobResult> {
  const { ring, packetBytes } = encodeQos1Ring(TOPIC, Buffer.from(job.payloadHex, 'hex'), RING_SIZE);
  let acked = 0;
  let failures = 0;
  const sockets = await Promise.all(
    job.tokens.map(
      (token, n) =>
        new Promise<net.Socket>((resolve, reject) => {
          const socket = net.connect({ host: '127.0.0.1', port: job.port, noDelay: true });
          let connected = false;
          let nextId = 1;
          let inflight = 0;
          const refill = (): void => {
            let want = job.window - inflight;
            while (want > 0) {
              const run = Math.min(want, RING_SIZE - nextId + 1);
              socket.write(ring.subarray((nextId - 1) * packetBytes, (nextId - 1 + run) * packetBytes));
              inflight += run;
              want -= run;
              nextId = nextId + run > RING_SIZE ? 1 : nextId + run;
            }
          };
          const walker = new FrameWalker({
            onFrame(firstByte, buf, start) {
              const type = firstByte >> 4;
              if (type === PacketType.puback) {
                inflight--;
                acked++;
              } else if (type === PacketType.connack) {
                if (buf[start + 1] !== 0) return reject(new Error(`CONNACK refused: ${buf[start + 1]}`));
                connected = true;
                resolve(socket);
              }
            },
          });
          socket.on('data', (chunk) => {
            walker.feed(chunk);
            if (connected && !stopped) refill();
          });
          socket.on('error', (error) => (connected ? failures++ : reject(error)));
          socket.write(encodeConnect(`bench-${n}`, { username: 'Token', password: token }));
          starters.push(refill);
        }),
    ),
  );
  for (const start of starters) start();
  const { units, ms } = await measure(() => acked, job.seconds);
  stopped = true;
  // Let what is in flight finish, so `total` matches what the bucket holds.
  const quiet = Date.now() + 10_000;
  let last = -1;
  while (acked !== last && Date.now() < quiet) {
    last = acked;
    await sleep(300);
  }
  for (const socket of sockets) socket.destroy();
  return { units, ms, total: acked, failures };
}
const starters: Array<() => void> = [];
let stopped = false;

async function runHttp(job: HttpJob): Promise<JobResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: job.concurrency });
  let answered = 0;
  let failures = 0;
  let stop = false;
  const payload = Buffer.from(job.body);
  const post = (token: string): Promise<void> =>
    new Promise((resolve) => {
      const request = http.request(
        { host: '127.0.0.1', port: job.port, path: '/data', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': payload.length, 'device-token': token } },
        (response) => {
          response.resume();
          response.on('end', () => {
            if (response.statusCode !== undefined && response.statusCode < 300) answered++;
            else failures++;
            resolve();
          });
        },
      );
      request.on('error', () => {
        failures++;
        resolve();
      });
      request.end(payload);
    });
  const workers = Array.from({ length: job.concurrency }, async (_, i) => {
    const token = job.tokens[i % job.tokens.length]!;
    while (!stop) await post(token);
  });
  const { units, ms } = await measure(() => answered, job.seconds);
  stop = true;
  await Promise.all(workers);
  agent.destroy();
  return { units, ms, total: answered, failures };
}

/**
 * After the warm-up, counts units over `seconds`. The parent reads the machine's busy CPU time at the
 * 'window-start' and 'window-end' messages, so its CPU figure covers exactly this window.
 */
async function measure(count: () => number, seconds: number): Promise<{ units: number; ms: number }> {
  await sleep(WARMUP_MS);
  const from = count();
  const t0 = performance.now();
  process.send?.('window-start');
  await sleep(seconds * 1000);
  const units = count() - from;
  const ms = performance.now() - t0;
  process.send?.('window-end');
  return { units, ms };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

if (process.argv.includes('--child')) {
  process.once('message', (job: Job) => {
    const run = job.kind === 'mqtt' ? runMqtt(job) : runHttp(job);
    run.then(
      (result) => process.send!(result, () => process.exit(0)),
      (error: unknown) => {
        process.stderr.write(`load child failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  });
} else {
  await main();
}

// ---- the orchestrator --------------------------------------------------------------------------

/** Runs one load; `cpuSplit` (null off Linux) measures where the CPU of its measured window went. */
function runChild(job: Job, cpuSplit: CpuSplit | null): Promise<JobResult> {
  const child = fork(HERE, ['--child'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let cpu: CpuShares | null = null;
  const label = (pid: number, command: string): string => (pid === child.pid ? 'load' : command.includes('process-host') ? 'sandbox' : 'other');
  return new Promise((resolve, reject) => {
    child.on('message', (message: JobResult | 'window-start' | 'window-end') => {
      if (message === 'window-start') cpuSplit?.start();
      else if (message === 'window-end') cpu = cpuSplit?.stop(label) ?? null;
      else resolve({ ...message, cpu });
    });
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`load child exited with ${code}`));
    });
    child.send(job);
  });
}

interface Row {
  store: string;
  /** The row's name in --rows. */
  id: string;
  path: string;
  recordsPerUnit: number;
  recordsPerSecond: number;
  unitsPerSecond: number;
  /** CPU µs per unit over the measured window, by part. */
  cpuPerUnit: CpuShares | null;
  note: string;
}

async function countAll(store: BucketStore, deviceIds: string[]): Promise<number> {
  let total = 0;
  for (const id of deviceIds) {
    const result = await store.query(id, { mode: 'count', qty: 15, skip: 0, ordination: 'descending' });
    if (result.kind === 'number') total += result.value;
  }
  return total;
}

async function postgresFactory(): Promise<(() => BucketStore) | null> {
  const url = process.env.BUCKETMQ_TEST_PG_URL;
  if (url === undefined || url === '') return null;
  const { PostgresBucketStore } = await import('../src/data/postgres/postgres-bucket-store.ts');
  // A fresh schema per run, so counts start at zero and runs never mix.
  const store = await PostgresBucketStore.open({ connectionString: url, schema: `bench_ingest_${process.pid}` });
  return () => store;
}

async function dropBenchSchema(): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: process.env.BUCKETMQ_TEST_PG_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS bench_ingest_${process.pid} CASCADE`);
  } finally {
    await client.end();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '5' },
      connections: { type: 'string', default: '8' },
      window: { type: 'string', default: '1000' },
      'http-concurrency': { type: 'string', default: '32' },
      /** Which rows: any of mqtt1, mqtt10, parser, parser1, http1, http100 (comma-separated); default all. */
      rows: { type: 'string', default: 'mqtt1,mqtt10,parser,parser1,http1,http100' },
    },
  });
  // Made before the server starts, so the threads alive now are known as Node's and V8's own.
  const cpuSplit = CpuSplit.available() ? new CpuSplit() : null;
  const seconds = Number(values.seconds);
  const connections = Number(values.connections);
  const window = Number(values.window);
  const httpConcurrency = Number(values['http-concurrency']);
  const selected = new Set(values.rows.split(','));
  const rows: Row[] = [];

  const stores: Array<{ name: string; factory?: () => BucketStore }> = [{ name: 'sqlite' }];
  const pg = await postgresFactory();
  if (pg !== null) stores.push({ name: 'postgres', factory: pg });
  else console.log('PostgreSQL rows skipped (set BUCKETMQ_TEST_PG_URL to include them)');

  for (const { name, factory } of stores) {
    const dir = mkdtempSync(path.join(tmpdir(), 'bucketmq-bench-ingest-'));
    const config = loadConfig(['--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--data-dir', dir, '--log-level', 'error'], {});
    const server: RunningServer = await startServer(config, factory === undefined ? {} : { bucketStore: factory });
    try {
      const accountId = server.firstRun!.accountId;
      const devices = Array.from({ length: connections }, (_, i) => server.registry.createDevice(accountId, { name: `bench-${i}` }));
      const tokens = devices.map((d) => d.token);
      const deviceIds = devices.map((d) => d.device.id);
      server.actions.create(accountId, { name: 'bench', trigger: { type: 'mqtt_topic', topics: ['bench/#'] }, action: { type: 'insert_bucket' } });

      let expected = await countAll(server.data.store, deviceIds);
      for (const perMessage of [1, 10].filter((n) => selected.has(`mqtt${n}`))) {
        // The same number of records in flight whatever the message size.
        const messageWindow = Math.max(1, Math.round(window / perMessage));
        const result = await runChild({ kind: 'mqtt', port: server.ports.mqtt, tokens, payloadHex: Buffer.from(body(perMessage)).toString('hex'), window: messageWindow, seconds }, cpuSplit);
        expected += result.total * perMessage;
        const stored = await countAll(server.data.store, deviceIds);
        const check = stored >= expected ? 'all acknowledged records in the bucket' : `MISSING ${expected - stored} acknowledged records`;
        rows.push(row(name, `mqtt${perMessage}`, `MQTT QoS 1 (${connections} conn x ${messageWindow} msgs in flight)`, perMessage, result, `${check}${result.failures > 0 ? `, ${result.failures} socket errors` : ''}`));
        expected = stored;
      }

      for (const parser of PARSERS.filter((p) => selected.has(p.row))) {
        // Devices with a payload parser: 5-byte binary frames decoded into records (SPEC §4).
        const parsed = Array.from({ length: connections }, (_, i) => server.registry.createDevice(accountId, { name: `bench-${parser.row}-${i}`, payload_parser: parser.code }));
        const parsedIds = parsed.map((d) => d.device.id);
        const before = await countAll(server.data.store, parsedIds);
        const result = await runChild({ kind: 'mqtt', port: server.ports.mqtt, tokens: parsed.map((d) => d.token), payloadHex: '08fc5b0e74', window, seconds }, cpuSplit);
        const storedNow = await countAll(server.data.store, parsedIds);
        const wanted = result.total * parser.records;
        const check = storedNow - before >= wanted ? 'all acknowledged records in the bucket' : `MISSING ${wanted - (storedNow - before)} acknowledged records`;
        rows.push(row(name, parser.row, `MQTT QoS 1 through a ${parser.records}-record payload parser (${connections} conn x ${window} msgs in flight; units are messages)`, parser.records, result, check));
      }

      const probe = await fetch(`http://127.0.0.1:${server.ports.http}/data`, { method: 'POST', headers: { 'device-token': tokens[0]!, 'content-type': 'application/json' }, body: body(1) });
      if (probe.status === 404) {
        console.log(`${name}: HTTP rows skipped (this build has no POST /data)`);
      } else {
        for (const perRequest of [1, 100].filter((n) => selected.has(`http${n}`))) {
          const result = await runChild({ kind: 'http', port: server.ports.http, tokens, body: body(perRequest), concurrency: httpConcurrency, seconds }, cpuSplit);
          rows.push(row(name, `http${perRequest}`, `HTTP POST /data (${httpConcurrency} concurrent)`, perRequest, result, result.failures > 0 ? `${result.failures} failed requests` : ''));
        }
      }
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
      if (name === 'postgres') await dropBenchSchema();
    }
  }

  console.log('');
  console.log('| store | path | records/unit | units/s | records/s durably stored | machine CPU µs/unit | note |');
  console.log('|---|---|---:|---:|---:|---:|---|');
  for (const r of rows) {
    const cpu = r.cpuPerUnit === null ? '—' : r.cpuPerUnit.machine.toFixed(0);
    console.log(`| ${r.store} | ${r.path} | ${r.recordsPerUnit} | ${Math.round(r.unitsPerSecond).toLocaleString('en')} | ${Math.round(r.recordsPerSecond).toLocaleString('en')} | ${cpu} | ${r.note} |`);
  }
  if (rows.some((r) => r.cpuPerUnit !== null)) {
    console.log('');
    console.log('Where the machine CPU went, µs per unit (bench/cpu-split.ts):');
    console.log('');
    console.log('| store | row | machine | event loop | V8 threads (GC, JIT) | server threads (bucket writer) | parser sandbox process | load generator | other (PostgreSQL, kernel, rest) |');
    console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      const c = r.cpuPerUnit;
      if (c === null) continue;
      const f = (us: number | undefined): string => (us ?? 0).toFixed(1);
      console.log(`| ${r.store} | ${r.id} | ${f(c.machine)} | ${f(c.eventLoop)} | ${f(c.v8Threads)} | ${f(c.serverThreads)} | ${f(c.children.sandbox)} | ${f(c.children.load)} | ${f(c.other + (c.children.other ?? 0))} |`);
    }
  }
}

function perUnit(cpu: CpuShares, units: number): CpuShares {
  const children: Record<string, number> = {};
  for (const [name, us] of Object.entries(cpu.children)) children[name] = us / units;
  return { machine: cpu.machine / units, eventLoop: cpu.eventLoop / units, v8Threads: cpu.v8Threads / units, serverThreads: cpu.serverThreads / units, children, other: cpu.other / units };
}

function row(store: string, id: string, pathName: string, recordsPerUnit: number, result: JobResult, note: string): Row {
  const unitsPerSecond = (result.units * 1000) / result.ms;
  const cpuPerUnit = result.cpu == null || result.units === 0 ? null : perUnit(result.cpu, result.units);
  return { store, id, path: pathName, recordsPerUnit, unitsPerSecond, recordsPerSecond: unitsPerSecond * recordsPerUnit, cpuPerUnit, note };
}
