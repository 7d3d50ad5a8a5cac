/**
 * Crash test (issue 5 acceptance): a QoS 1 publisher streams records through an insert_bucket
 * action; the server process is killed with SIGKILL mid-stream and restarted on the same data
 * directory; every record whose PUBACK the client saw is in the bucket.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { SqliteBucketStore } from '../../src/data/sqlite/sqlite-bucket-store.ts';
import { BUCKETS_FILE } from '../../src/server.ts';
import { openDatabase } from '../../src/storage/sqlite-database.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dataDir = mkdtempSync(path.join(tmpdir(), 'bucketmq-crash-'));
const children: ChildProcess[] = [];
after(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

interface Server {
  child: ChildProcess;
  lines: string[];
  waitFor(pattern: RegExp): Promise<RegExpMatchArray>;
  exited: Promise<NodeJS.Signals | null>;
}

function spawnServer(): Server {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('BUCKETMQ_')));
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/server.ts', '--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--data-dir', dataDir],
    { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  const lines: string[] = [];
  const waiters: Array<{ pattern: RegExp; resolve: (m: RegExpMatchArray) => void }> = [];
  const onLine = (line: string): void => {
    lines.push(line);
    for (let i = waiters.length - 1; i >= 0; i--) {
      const match = line.match(waiters[i]!.pattern);
      if (match) waiters.splice(i, 1)[0]!.resolve(match);
    }
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', onLine);
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  return {
    child,
    lines,
    exited,
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        for (const line of lines) {
          const match = line.match(pattern);
          if (match) return resolve(match);
        }
        const timer = setTimeout(() => reject(new Error(`no ${pattern} within 20 s:\n${lines.join('\n')}`)), 20_000);
        waiters.push({ pattern, resolve: (m) => (clearTimeout(timer), resolve(m)) });
        void exited.then(() => reject(new Error(`server exited before ${pattern}:\n${lines.join('\n')}`)));
      }),
  };
}

async function ports(server: Server): Promise<{ mqtt: number; http: number }> {
  const [, mqtt] = await server.waitFor(/mqtt listening on 127\.0\.0\.1:(\d+)/);
  const [, http] = await server.waitFor(/http listening on 127\.0\.0\.1:(\d+)/);
  await server.waitFor(/bucketmq ready/);
  return { mqtt: Number(mqtt), http: Number(http) };
}

test('every record acknowledged before a SIGKILL is in the bucket after the restart', { timeout: 90_000 }, async () => {
  const first = spawnServer();
  const [, accountToken] = await first.waitFor(/account token:\s+(\S+)/);
  const [, deviceId] = await first.waitFor(/device:\s+\S+ \((\S+)\)/);
  const [, deviceToken] = await first.waitFor(/device token:\s+(\S+)/);
  const { mqtt, http } = await ports(first);

  const created = await fetch(`http://127.0.0.1:${http}/actions`, {
    method: 'POST',
    headers: { authorization: accountToken!, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'store everything', trigger: { type: 'mqtt_topic', topics: ['crash/#'] }, action: { type: 'insert_bucket' } }),
  });
  assert.equal(created.status, 201, await created.text());

  const client: MqttClient = await connectAsync(`mqtt://127.0.0.1:${mqtt}`, {
    username: 'Token',
    password: deviceToken,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
  });
  client.on('error', () => undefined);
  const acked: number[] = [];
  let next = 0;
  let killed = false;
  // A window of publishes in flight, so the kill lands among uncommitted batches.
  const WINDOW = 200;
  const KILL_AFTER_ACKS = 3_000;
  await new Promise<void>((resolve) => {
    const publishOne = (): void => {
      if (killed) return;
      const seq = next++;
      client.publish('crash/stream', JSON.stringify({ variable: 'seq', value: seq }), { qos: 1 }, (error) => {
        if (error !== undefined && error !== null) return;
        if (killed) return;
        acked.push(seq);
        if (acked.length >= KILL_AFTER_ACKS) {
          killed = true;
          first.child.kill('SIGKILL');
          resolve();
          return;
        }
        publishOne();
      });
    };
    for (let i = 0; i < WINDOW; i++) publishOne();
  });
  assert.equal(await first.exited, 'SIGKILL');
  client.end(true);
  assert.ok(next > acked.length, 'publishes were still in flight when the server died');

  // Restart on the same data directory; the old database (WAL included) must open and serve.
  const second = spawnServer();
  const restarted = await ports(second);
  const again = await connectAsync(`mqtt://127.0.0.1:${restarted.mqtt}`, { username: 'Token', password: deviceToken, reconnectPeriod: 0, connectTimeout: 5_000 });
  await again.publishAsync('crash/stream', JSON.stringify({ variable: 'seq', value: -1 }), { qos: 1 });
  await again.endAsync();

  // Read the bucket through a second connection to the same file.
  const db = openDatabase(path.join(dataDir, BUCKETS_FILE));
  const store = new SqliteBucketStore(db);
  const stored = new Set<number>();
  try {
    for await (const record of store.stream(deviceId!, { variables: ['seq'] })) stored.add(record.value as number);
  } finally {
    await store.close();
    db.close();
  }
  const missing = acked.filter((seq) => !stored.has(seq));
  assert.deepEqual(missing.slice(0, 20), [], `${missing.length} of ${acked.length} acknowledged records missing`);
  assert.ok(stored.has(-1), 'the restarted server stores too');

  second.child.kill('SIGTERM');
  assert.equal(await second.exited, null, 'graceful stop after the restart');
});
