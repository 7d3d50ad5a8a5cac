/**
 * The admin API over a real socket (listen + fetch), sharing its port with MQTT over WebSocket on
 * /mqtt (SPEC §2), and the request log, which never carries a token (SPEC §1).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { attachMqttOverWebSocket } from '../../src/api/app.ts';
import { Broker } from '../../src/broker/broker.ts';
import { createLogger } from '../../src/log.ts';
import { apiFixture, type ApiFixture } from './helpers.ts';

const HOST = '127.0.0.1';

class Lines extends Writable {
  readonly text: string[] = [];
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.text.push(chunk.toString());
    done();
  }
}

let f: ApiFixture;
let broker: Broker;
let base: string;
let port: number;
const logLines = new Lines();

before(async () => {
  broker = new Broker();
  await broker.start();
  f = apiFixture({ broker, logger: createLogger({ level: 'info', format: 'json', destination: logLines }) });
  attachMqttOverWebSocket(f.app, broker); // a second call (the fixture passed the broker) does nothing
  await f.app.listen({ host: HOST, port: 0 });
  const address = f.app.server.address() as net.AddressInfo;
  port = address.port;
  base = `http://${HOST}:${port}`;
});

after(async () => {
  // The broker first: it cuts the WebSocket clients, which the HTTP server would otherwise wait for.
  await broker.close();
  await f.close();
});

describe('over a real socket', () => {
  test('create a device with fetch, read it back with a Bearer token', async () => {
    const created = await fetch(`${base}/devices`, {
      method: 'POST',
      headers: { authorization: f.token, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'over-the-wire', tags: [{ key: 'via', value: 'fetch' }] }),
    });
    assert.equal(created.status, 201);
    assert.match(created.headers.get('content-type') ?? '', /application\/json/);
    const { result } = (await created.json()) as { result: { id: string; token: string } };
    const read = await fetch(`${base}/devices/${result.id}`, { headers: { authorization: `Bearer ${f.token}` } });
    assert.equal(read.status, 200);
    const body = (await read.json()) as { status: boolean; result: { name: string } };
    assert.deepEqual([body.status, body.result.name], [true, 'over-the-wire']);
  });

  test('errors keep their shape over the wire', async () => {
    const unauthorized = await fetch(`${base}/devices`);
    assert.equal(unauthorized.status, 401);
    assert.equal(((await unauthorized.json()) as { status: boolean }).status, false);
    const malformed = await fetch(`${base}/devices`, { method: 'POST', headers: { token: f.token, 'content-type': 'application/json' }, body: '{' });
    assert.equal(malformed.status, 400);
    assert.deepEqual(await malformed.json(), { status: false, message: 'body is not valid JSON' });
  });

  test('MQTT over WebSocket on /mqtt of the same port', async () => {
    const url = `ws://${HOST}:${port}/mqtt`;
    const sub = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000 });
    const pub = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000 });
    try {
      await sub.subscribeAsync('api/ws/test', { qos: 1 });
      const received = new Promise<string>((resolve) => sub.once('message', (_topic, payload) => resolve(payload.toString())));
      await pub.publishAsync('api/ws/test', 'through the API port', { qos: 1 });
      assert.equal(await received, 'through the API port');
      // The API still answers while WebSocket clients are connected.
      assert.equal((await fetch(`${base}/account`, { headers: { authorization: f.token } })).status, 200);
    } finally {
      await Promise.all([sub.endAsync(), pub.endAsync()]);
    }
  });

  test('a WebSocket upgrade on another path is refused with 404', async () => {
    const answer = await rawUpgrade(port, '/devices');
    assert.match(answer, /^HTTP\/1\.1 404 /);
  });
});

describe('request log', () => {
  test('one line per request with the path only: the token query parameter never reaches the log', async () => {
    logLines.text.length = 0;
    const secret = f.token;
    const answer = await fetch(`${base}/account?token=${encodeURIComponent(secret)}`);
    assert.equal(answer.status, 200);
    await fetch(`${base}/not/a/route?token=${encodeURIComponent(secret)}`);
    await fetch(`${base}/devices`, { headers: { authorization: secret, 'account-token': secret } });
    const log = logLines.text.join('');
    assert.ok(!log.includes(secret), `a token reached the log:\n${log}`);
    const lines = log.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(
      lines.filter((l) => l.msg === 'request').map((l) => [l.method, l.path, l.statusCode]),
      [['GET', '/account', 200], ['GET', '/not/a/route', 404], ['GET', '/devices', 200]],
    );
  });
});

/** Sends a WebSocket upgrade request by hand and returns the first bytes of the answer. */
function rawUpgrade(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, HOST, () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n',
      );
    });
    let data = '';
    socket.setTimeout(3000, () => {
      socket.destroy();
      reject(new Error(`no answer to the upgrade; got ${JSON.stringify(data)}`));
    });
    socket.on('data', (chunk) => {
      data += chunk.toString();
    });
    socket.on('close', () => resolve(data));
    socket.on('error', reject);
  });
}
