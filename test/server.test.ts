import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { connect as mqttConnect, connectAsync, type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { loadConfig } from '../src/config.ts';
import { createLogger, REDACTED } from '../src/log.ts';
import { startServer, type RunningServer } from '../src/server.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const scratch = mkdtempSync(path.join(tmpdir(), 'bucketmq-server-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

let dirs = 0;
function dataDir(): string {
  return path.join(scratch, `data-${++dirs}`);
}

/** Always 127.0.0.1 and port 0: never a fixed port, never `localhost` (which may resolve to ::1). */
function testConfig(dir: string, extra: string[] = []) {
  return loadConfig(['--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--allow-anonymous', 'true', '--data-dir', dir, '--log-level', 'silent', ...extra], {});
}

function connect(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  return connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5_000, ...options });
}

function nextMessage(client: MqttClient): Promise<[topic: string, payload: Buffer, packet: IPublishPacket]> {
  return new Promise((resolve) => client.once('message', (topic, payload, packet) => resolve([topic, payload, packet])));
}

/** Fails with `what` instead of hanging until the test's own timeout. */
async function within<T>(promise: Promise<T>, what: string, ms = 5_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function roundTrip(subscriber: MqttClient, publisher: MqttClient, topic: string, payload: string): Promise<void> {
  await subscriber.subscribeAsync(topic, { qos: 1 });
  const received = nextMessage(subscriber);
  await publisher.publishAsync(topic, payload, { qos: 1 });
  const [gotTopic, gotPayload] = await within(received, `message on ${topic}`);
  assert.equal(gotTopic, topic);
  assert.equal(gotPayload.toString(), payload);
}

test('startServer: publish/subscribe round trip over TCP and WebSocket, then stop', { timeout: 30_000 }, async () => {
  const server = await startServer(testConfig(dataDir()));
  let stopped = false;
  try {
    assert.ok(server.ports.mqtt > 0 && server.ports.mqtt !== 1883);
    assert.ok(server.ports.http > 0);
    assert.equal(server.ports.mqtts, undefined);
    assert.equal(server.ports.https, undefined, 'no HTTPS listener without a certificate');

    const subscriber = await connect(`mqtt://127.0.0.1:${server.ports.mqtt}`, { clientId: 'sub', protocolVersion: 5 });
    const publisher = await connect(`mqtt://127.0.0.1:${server.ports.mqtt}`, { clientId: 'pub', protocolVersion: 4 });
    await roundTrip(subscriber, publisher, 'bucketmq/test', 'hello over tcp');

    const wsClient = await connect(`ws://127.0.0.1:${server.ports.http}/mqtt`, { clientId: 'ws', protocolVersion: 5 });
    await roundTrip(wsClient, publisher, 'bucketmq/ws', 'hello over websocket');
    await roundTrip(subscriber, wsClient, 'bucketmq/from-ws', 'hello from websocket');

    await Promise.all([subscriber.endAsync(), publisher.endAsync(), wsClient.endAsync()]);
    await server.stop();
    stopped = true;
    await server.stop(); // idempotent
    await assert.rejects(connect(`mqtt://127.0.0.1:${server.ports.mqtt}`), 'nothing listens after stop');
  } finally {
    if (!stopped) await server.stop();
  }
});

test('startServer: retained messages and a persistent session survive a restart on the same data dir', { timeout: 30_000 }, async () => {
  const dir = dataDir();
  let server: RunningServer = await startServer(testConfig(dir));
  try {
    const durable = await connect(`mqtt://127.0.0.1:${server.ports.mqtt}`, { clientId: 'durable', clean: false, protocolVersion: 4 });
    await durable.subscribeAsync('restart/queued', { qos: 1 });
    await durable.endAsync();

    const publisher = await connect(`mqtt://127.0.0.1:${server.ports.mqtt}`, { clientId: 'pub' });
    await publisher.publishAsync('restart/retained', 'kept', { qos: 1, retain: true });
    await publisher.publishAsync('restart/queued', 'waiting', { qos: 1 });
    await publisher.endAsync();
    await server.stop();

    server = await startServer(testConfig(dir));
    const fresh = await connect(`mqtt://127.0.0.1:${server.ports.mqtt}`, { clientId: 'fresh' });
    const retained = nextMessage(fresh);
    await fresh.subscribeAsync('restart/retained', { qos: 1 });
    const [retainedTopic, retainedPayload, retainedPacket] = await within(retained, 'retained message after restart');
    assert.equal(retainedTopic, 'restart/retained');
    assert.equal(retainedPayload.toString(), 'kept');
    assert.equal(retainedPacket.retain, true);
    await fresh.endAsync();

    // Listen before CONNECT completes: the queued message may arrive right behind the CONNACK.
    const durableAgain = mqttConnect(`mqtt://127.0.0.1:${server.ports.mqtt}`, { clientId: 'durable', clean: false, protocolVersion: 4, reconnectPeriod: 0 });
    const queued = nextMessage(durableAgain);
    const [queuedTopic, queuedPayload] = await within(queued, 'queued message after restart');
    assert.equal(queuedTopic, 'restart/queued');
    assert.equal(queuedPayload.toString(), 'waiting');
    await durableAgain.endAsync();
  } finally {
    await server.stop();
  }
});

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

test('startServer: MQTT over TLS with a certificate made for the test', { timeout: 30_000, skip: !hasOpenssl && 'openssl not installed' }, async () => {
  const dir = dataDir();
  const cert = path.join(scratch, 'cert.pem');
  const key = path.join(scratch, 'key.pem');
  const made = spawnSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert,
  ]);
  assert.equal(made.status, 0, made.stderr.toString());

  const tlsFlags = ['--tls-cert', cert, '--tls-key', key, '--mqtts-port', '0', '--https-port', '0'];
  const server = await startServer(testConfig(dir, tlsFlags));
  try {
    assert.ok(server.ports.mqtts !== undefined && server.ports.mqtts > 0);
    const secure = await connect(`mqtts://127.0.0.1:${server.ports.mqtts}`, { clientId: 'tls', ca: readFileSync(cert) });
    const plain = await connect(`mqtt://127.0.0.1:${server.ports.mqtt}`, { clientId: 'plain' });
    await roundTrip(secure, plain, 'bucketmq/tls', 'hello over tls');
    await Promise.all([secure.endAsync(), plain.endAsync()]);

    // A taken HTTPS port names its flag; the listeners opened before it are closed again.
    await assert.rejects(startServer(testConfig(dataDir(), [...tlsFlags, '--https-port', String(server.ports.https)])), (error: Error) => {
      assert.equal(error.name, 'StartupError');
      assert.equal(error.message, `--https-port: cannot start the https listener on 127.0.0.1:${server.ports.https}: the port is already in use`);
      return true;
    });
  } finally {
    await server.stop();
  }
});

test('startServer: an unreadable or unusable certificate is a ConfigError naming --tls-cert; a taken port names its flag', { timeout: 30_000 }, async () => {
  const missing = path.join(scratch, 'no-such-cert.pem');
  await assert.rejects(startServer(testConfig(dataDir(), ['--tls-cert', missing, '--tls-key', missing])), (error: Error) => {
    assert.equal(error.name, 'ConfigError');
    assert.match(error.message, /^--tls-cert: cannot read ".*no-such-cert\.pem"/);
    return true;
  });

  const notPem = path.join(scratch, 'not-a-cert.pem');
  writeFileSync(notPem, 'hello');
  await assert.rejects(startServer(testConfig(dataDir(), ['--tls-cert', notPem, '--tls-key', notPem])), (error: Error) => {
    assert.equal(error.name, 'ConfigError');
    assert.match(error.message, /^--tls-cert ".*not-a-cert\.pem", --tls-key ".*not-a-cert\.pem": not a usable PEM certificate/);
    return true;
  });

  const first = await startServer(testConfig(dataDir()));
  try {
    await assert.rejects(startServer(testConfig(dataDir(), ['--mqtt-port', String(first.ports.mqtt)])), (error: Error) => {
      assert.equal(error.name, 'StartupError');
      assert.equal(error.message, `--mqtt-port: cannot start the mqtt listener on 127.0.0.1:${first.ports.mqtt}: the port is already in use`);
      return true;
    });
  } finally {
    await first.stop();
  }
});

test('the logger censors passwords and tokens and logs the listening addresses', { timeout: 30_000 }, async () => {
  const lines: string[] = [];
  const logger = createLogger({ level: 'info', format: 'json', destination: { write: (line: string) => void lines.push(line) } });
  logger.info({ password: 'hunter2', connect: { token: 'tok-1' }, req: { headers: { authorization: 'Bearer x' } } }, 'secrets');
  const logged = lines.join('');
  assert.doesNotMatch(logged, /hunter2|tok-1|Bearer x/);
  assert.equal(logged.split(REDACTED).length - 1, 3);

  const server = await startServer(testConfig(dataDir()), { logger });
  await server.stop();
  const messages = lines.map((line) => (JSON.parse(line) as { msg: string }).msg);
  assert.ok(messages.includes(`mqtt listening on 127.0.0.1:${server.ports.mqtt}`), messages.join('\n'));
  assert.ok(messages.some((msg) => msg.startsWith(`http listening on 127.0.0.1:${server.ports.http} `)), messages.join('\n'));
  assert.ok(!messages.some((msg) => msg.startsWith('https listening')), 'no HTTPS listener without a certificate');
  assert.ok(messages.includes('bucketmq stopped'));
});

/** The environment without BUCKETMQ_* variables, so the developer's own settings cannot leak into a test. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('BUCKETMQ_')));
}

interface Spawned {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first stdout line (so far or to come) matching, rejects on exit or after 20 s. */
  waitFor(pattern: RegExp): Promise<RegExpMatchArray>;
}

function spawnNode(args: string[]): Spawned {
  const child = spawn(process.execPath, args, { cwd: root, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waiters: Array<{ pattern: RegExp; resolve: (match: RegExpMatchArray) => void }> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    stdout.push(line);
    for (let i = waiters.length - 1; i >= 0; i--) {
      const match = line.match(waiters[i]!.pattern);
      if (match) waiters.splice(i, 1)[0]!.resolve(match);
    }
  });
  createInterface({ input: child.stderr! }).on('line', (line) => stderr.push(line));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => setImmediate(() => resolve({ code, signal })));
  });
  return {
    child,
    stdout,
    stderr,
    exit,
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        for (const line of stdout) {
          const match = line.match(pattern);
          if (match) return resolve(match);
        }
        const timer = setTimeout(() => reject(new Error(`no ${pattern} within 20 s; stdout:\n${stdout.join('\n')}\nstderr:\n${stderr.join('\n')}`)), 20_000);
        waiters.push({ pattern, resolve: (match) => (clearTimeout(timer), resolve(match)) });
        void exit.then(() => reject(new Error(`exited before ${pattern}; stdout:\n${stdout.join('\n')}\nstderr:\n${stderr.join('\n')}`)));
      }),
  };
}

test('the server process logs its port, serves, and exits 0 on SIGTERM', { timeout: 30_000 }, async () => {
  const server = spawnNode(['--import', 'tsx', 'src/server.ts', '--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--allow-anonymous', 'true', '--data-dir', dataDir()]);
  try {
    const [, port] = await server.waitFor(/mqtt listening on 127\.0\.0\.1:(\d+)/);
    await server.waitFor(/bucketmq ready/);
    const client = await connect(`mqtt://127.0.0.1:${port}`, { clientId: 'probe' });
    await roundTrip(client, client, 'bucketmq/process', 'alive');
    await client.endAsync();

    server.child.kill('SIGTERM');
    const { code, signal } = await server.exit;
    assert.equal(signal, null, 'exited by itself, not killed by the signal');
    assert.equal(code, 0, server.stderr.join('\n'));
    assert.ok(server.stdout.some((line) => line.includes('SIGTERM received, shutting down')), server.stdout.join('\n'));
    assert.ok(server.stdout.some((line) => line.includes('bucketmq stopped')), server.stdout.join('\n'));
  } finally {
    server.child.kill('SIGKILL');
  }
});

test('a bad setting exits 2 with a message naming it and no stack trace', { timeout: 30_000 }, async () => {
  const server = spawnNode(['--import', 'tsx', 'src/server.ts', '--mqtt-port', 'abc']);
  const { code } = await server.exit;
  assert.equal(code, 2);
  const stderr = server.stderr.join('\n');
  assert.match(stderr, /--mqtt-port: "abc" is not a port number \(0-65535\)/);
  assert.doesNotMatch(stderr, /^\s+at /m);
  assert.deepEqual(server.stdout, []);
});

test('bin/bucketmq.js runs the server (here: --help, exit 0)', { timeout: 30_000 }, async () => {
  const bin = spawnNode(['bin/bucketmq.js', '--help']);
  const { code } = await bin.exit;
  assert.equal(code, 0, bin.stderr.join('\n'));
  assert.match(bin.stdout.join('\n'), /--mqtt-port <port>/);
});
