/**
 * Restart cost against the size of the retained set (issue 15).
 *
 *   npx tsx bench/restart.ts [-- --namespaces 100 --per-namespace 2000 --big 20000 --rounds 3]
 *
 * Fills a data directory's SQLite retained store (`--namespaces` × `--per-namespace` messages plus
 * one namespace `big` of `--big`; 64-byte payloads), then per round:
 * - `Broker.start()` in this process over that store, then the first and the second SUBSCRIBE `#`
 *   of a small and of the big namespace, from SUBSCRIBE sent to the last retained message received
 *   (an MQTT.js client over TCP, so the figure includes its parsing);
 * - the server process (`src/server.ts`, spawn to "bucketmq ready"), on the filled directory and on
 *   an empty one, which shows the fixed cost of a start.
 * Figures are min–max over the rounds, in ms.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { Broker } from '../src/broker/broker.ts';
import { SqliteRetainedStore } from '../src/broker/retained/sqlite-retained-store.ts';
import { openDatabase } from '../src/storage/sqlite-database.ts';
import { renderTable } from './table.ts';

const { values: args } = parseArgs({
  options: {
    namespaces: { type: 'string', default: '100' },
    'per-namespace': { type: 'string', default: '2000' },
    big: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '3' },
  },
});
const namespaces = Number(args.namespaces);
const perNamespace = Number(args['per-namespace']);
const big = Number(args.big);
const rounds = Number(args.rounds);
const ROOT = path.resolve(import.meta.dirname, '..');
const DATABASE = 'bucketmq.db';

async function fill(dataDir: string): Promise<void> {
  const db = openDatabase(path.join(dataDir, DATABASE));
  const store = new SqliteRetainedStore(db);
  const payload = Buffer.alloc(64, 'x');
  const put = (namespace: string, count: number): void => {
    for (let i = 0; i < count; i++) {
      store.set(namespace, { topic: `devices/${i % 100}/sensor/${i}`, payload, qos: 1, retain: true, properties: null, expiresAt: 0, origin: '' });
    }
  };
  for (let n = 0; n < namespaces; n++) put(`ns-${n}`, perNamespace);
  put('big', big);
  await store.close();
  db.close();
}

/** ms from SUBSCRIBE `#` to the `expected`-th retained message, for a client in `namespace`. */
async function firstSubscribe(port: number, namespace: string, expected: number): Promise<number> {
  const client = await mqtt.connectAsync({ host: '127.0.0.1', port, username: namespace, protocolVersion: 5, reconnectPeriod: 0 });
  let received = 0;
  const started = performance.now();
  const done = new Promise<number>((resolve) => client.on('message', () => {
    if (++received === expected) resolve(performance.now() - started);
  }));
  client.subscribe('#', { qos: 0 });
  const ms = await done;
  await client.endAsync();
  return ms;
}

async function inProcessRound(dataDir: string): Promise<number[]> {
  const db = openDatabase(path.join(dataDir, DATABASE));
  const retainedStore = new SqliteRetainedStore(db);
  // The namespace is the username, so one client per namespace.
  const broker = new Broker({ retainedStore, hooks: { authenticate: (request) => ({ ok: true, namespace: request.username ?? '' }) } });
  const started = performance.now();
  await broker.start();
  const startMs = performance.now() - started;
  const listener = await broker.listenTcp({ host: '127.0.0.1', port: 0 });
  const figures = [startMs];
  for (const [namespace, count] of [['ns-0', perNamespace], ['big', big]] as const) {
    figures.push(await firstSubscribe(listener.port, namespace, count), await firstSubscribe(listener.port, namespace, count));
  }
  await broker.close();
  db.close();
  return figures;
}

/** ms from spawn to "bucketmq ready". */
function serverStart(dataDir: string): Promise<number> {
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts', '--mqtt-port', '0', '--http-port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--log-format', 'text'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let readyMs = 0;
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (readyMs !== 0 || !out.includes('bucketmq ready')) return;
      readyMs = performance.now() - started;
      child.kill('SIGTERM');
    });
    child.on('exit', (code) => (readyMs !== 0 ? resolve(readyMs) : reject(new Error(`server exited (${code}) before it was ready:\n${out}`))));
  });
}

const span = (values: number[]): string => {
  const digits = Math.max(...values) < 10 ? 1 : 0;
  return `${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}`;
};

const filled = mkdtempSync(path.join(tmpdir(), 'bmq-bench-restart-'));
const empty = mkdtempSync(path.join(tmpdir(), 'bmq-bench-restart-empty-'));
try {
  const fillStarted = performance.now();
  await fill(filled);
  const total = namespaces * perNamespace + big;
  console.log(`filled ${total.toLocaleString('en-US')} retained messages (${namespaces} × ${perNamespace} + ${big} in 'big') in ${(performance.now() - fillStarted).toFixed(0)} ms`);
  // Untimed first runs: the server's first start creates its registry, tokens and bucket files.
  await serverStart(filled);
  await serverStart(empty);

  const inProcess: number[][] = [];
  const processes: number[][] = [];
  for (let round = 0; round < rounds; round++) {
    inProcess.push(await inProcessRound(filled));
    processes.push([await serverStart(filled), await serverStart(empty)]);
  }
  const column = (rows: number[][], i: number): string => span(rows.map((row) => row[i]!));
  console.log(renderTable(['what', 'ms'], [
    ['Broker.start()', column(inProcess, 0)],
    [`SUBSCRIBE # in a ${perNamespace}-message namespace, first`, column(inProcess, 1)],
    ['  second', column(inProcess, 2)],
    [`SUBSCRIBE # in the ${big}-message namespace, first`, column(inProcess, 3)],
    ['  second', column(inProcess, 4)],
    ['server process to ready, filled', column(processes, 0)],
    ['server process to ready, empty', column(processes, 1)],
  ]));
} finally {
  rmSync(filled, { recursive: true, force: true });
  rmSync(empty, { recursive: true, force: true });
}
