/**
 * HTTPS and WSS (issue 14) through a whole server started with a certificate made for the test: the
 * device data API, the admin API and MQTT over secure WebSocket on the HTTPS port, with plain HTTP
 * and WebSocket still served beside them. Real sockets on 127.0.0.1, random ports, and the test's
 * certificate as the only CA the clients trust (no rejectUnauthorized: false).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import https from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { makeTestCert, type TestCert } from '../broker/wire-helpers.ts';

const HOST = '127.0.0.1';
const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

let cert: TestCert;
let dataDir: string;
let server: RunningServer;
const logged: string[] = [];
let accountToken: string;
let deviceToken: string;

before(async () => {
  if (!hasOpenssl) return;
  cert = makeTestCert();
  dataDir = mkdtempSync(path.join(tmpdir(), 'bucketmq-https-'));
  const config = loadConfig(
    [
      '--host', HOST, '--mqtt-port', '0', '--http-port', '0', '--mqtts-port', '0', '--https-port', '0',
      '--tls-cert', cert.certPath, '--tls-key', cert.keyPath, '--allow-anonymous', 'true', '--data-dir', dataDir,
    ],
    {},
  );
  const logger = createLogger({ level: 'info', format: 'json', destination: { write: (line: string) => void logged.push(line) } });
  server = await startServer(config, { logger });
  const { account, token } = server.registry.createAccount({ name: 'acme' });
  accountToken = token;
  deviceToken = server.registry.createDevice(account.id, { name: 'sensor', type: 'immutable' }).token;
});

after(async () => {
  if (!hasOpenssl) return;
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
  cert.remove();
});

interface Answer {
  status: number;
  body: any;
}

/** One HTTPS request that trusts only the test's certificate. */
function request(method: string, url: string, headers: Record<string, string>, body?: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(`https://${HOST}:${server.ports.https}${url}`, { method, headers, ca: cert.cert }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

function connect(url: string, clientId: string): Promise<MqttClient> {
  return mqtt.connectAsync(url, { clientId, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5_000, ca: cert.cert });
}

function nextMessage(client: MqttClient): Promise<[topic: string, payload: string]> {
  return new Promise((resolve) => client.once('message', (topic, payload) => resolve([topic, payload.toString()])));
}

describe('with --tls-cert and --tls-key', { skip: !hasOpenssl && 'openssl not installed', timeout: 30_000 }, () => {
  test('an HTTPS port of its own, and the start-up log names its https:// and wss:// URLs', () => {
    const { http, https: httpsPort, mqtt: mqttPort, mqtts } = server.ports;
    assert.ok(httpsPort !== undefined && httpsPort > 0 && httpsPort !== 8443);
    assert.equal(new Set([http, httpsPort, mqttPort, mqtts]).size, 4);
    const messages = logged.map((line) => (JSON.parse(line) as { msg: string }).msg);
    const line = `https listening on ${HOST}:${httpsPort} (API at https://${HOST}:${httpsPort}, and MQTT over WebSocket at wss://${HOST}:${httpsPort}/mqtt)`;
    assert.ok(messages.includes(line), messages.join('\n'));
  });

  test('POST /data then GET /data with a device token over HTTPS', async () => {
    const posted = await request('POST', '/data', { token: deviceToken, 'content-type': 'application/json' }, { variable: 'temperature', value: 21.5 });
    assert.deepEqual([posted.status, posted.body], [202, { status: true, result: '1 Data Added' }]);
    const read = await request('GET', '/data?variable=temperature&query=last_value', { token: deviceToken });
    assert.equal(read.status, 200);
    assert.equal(read.body.result[0].value, 21.5);
  });

  test('the admin API with an account token over HTTPS, and the same route over plain HTTP at the same time', async () => {
    const [secure, plain] = await Promise.all([
      request('GET', '/devices', { authorization: accountToken }),
      fetch(`http://${HOST}:${server.ports.http}/devices`, { headers: { authorization: accountToken } }).then(async (res) => ({ status: res.status, body: await res.json() })),
    ]);
    assert.equal(secure.status, 200);
    assert.deepEqual(secure.body, plain.body);
    assert.deepEqual(secure.body.result.map((device: { name: string }) => device.name), ['sensor']);
    assert.equal((await request('GET', '/devices', {})).status, 401, 'the same auth on both ports');
  });

  test('MQTT.js over wss:// publishes and receives, to and from a ws:// client on the HTTP port', async () => {
    const connected: string[] = [];
    const onConnect = (client: { clientId: string; transport: string }): void => void connected.push(`${client.clientId}:${client.transport}`);
    server.broker.on('client.connect', onConnect);
    const secure = await connect(`wss://${HOST}:${server.ports.https}/mqtt`, 'over-wss');
    const plain = await connect(`ws://${HOST}:${server.ports.http}/mqtt`, 'over-ws');
    try {
      assert.deepEqual(connected.sort(), ['over-ws:ws', 'over-wss:wss']);
      await secure.subscribeAsync('https/test/#', { qos: 1 });
      await plain.subscribeAsync('https/test/#', { qos: 1 });

      const toSecure = nextMessage(secure);
      await plain.publishAsync('https/test/from-ws', 'hello wss', { qos: 1 });
      assert.deepEqual(await toSecure, ['https/test/from-ws', 'hello wss']);

      const toPlain = nextMessage(plain);
      await secure.publishAsync('https/test/from-wss', 'hello ws', { qos: 1 });
      assert.deepEqual(await toPlain, ['https/test/from-wss', 'hello ws']);
    } finally {
      server.broker.off('client.connect', onConnect);
      await Promise.all([secure.endAsync(), plain.endAsync()]);
    }
  });

  test('a WebSocket upgrade to another path on the HTTPS port gets 404, as on the HTTP port', async () => {
    const socket = tls.connect({ host: HOST, port: server.ports.https!, ca: cert.cert });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const closed = new Promise<void>((resolve, reject) => {
      socket.on('close', () => resolve());
      socket.on('error', reject);
    });
    socket.write(
      'GET /elsewhere HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    await closed; // the 404 answer closes the connection
    assert.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 404 Not Found\r\n/);
  });

  test('plain HTTP to the HTTPS port is refused, not served', async () => {
    const answer = await fetch(`http://${HOST}:${server.ports.https}/devices`, { headers: { authorization: accountToken } }).then(
      (res) => res.status,
      (error: unknown) => error,
    );
    assert.ok(answer instanceof Error, `got ${String(answer)}`);
  });
});
