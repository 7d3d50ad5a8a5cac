/**
 * The live inspector stream (SPEC §6, issue 16) over a real socket: the API listening on 127.0.0.1,
 * real `ws` clients, events published through the real InspectorBus. History then live with no gap
 * and no duplicate, the kinds filter, refusals before the upgrade, a stalled viewer that does not
 * slow the publisher and then learns how many events it missed, no listener left behind.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { InspectorBus, type InspectorListener } from '../../src/inspector/inspector-bus.ts';
import { apiFixture, type ApiFixture } from './helpers.ts';

const HOST = '127.0.0.1';
/** Small, so the stalled-viewer test fills it quickly. */
const VIEWER_BUFFER_BYTES = 64 * 1024;

/** The real bus, counting live subscriptions so a leak shows. */
class CountingBus extends InspectorBus {
  subscribers = 0;

  override subscribe(deviceId: string, listener: InspectorListener): () => void {
    this.subscribers++;
    const unsubscribe = super.subscribe(deviceId, listener);
    return () => {
      this.subscribers--;
      unsubscribe();
    };
  }
}

const bus = new CountingBus();
let f: ApiFixture;
let base: string;
/** The server side of every accepted stream, in order. */
const accepted: WebSocket[] = [];
const clients: WebSocket[] = [];

/** The one place tests produce events. */
function emit(deviceId: string, kind: string, data: Record<string, unknown> = {}): void {
  bus.publish(deviceId, kind, data);
}

function newDevice(name: string): string {
  return f.registry.createDevice(f.accountId, { name }).device.id;
}

before(async () => {
  f = apiFixture({ inspector: bus, inspectorLive: { viewerBufferBytes: VIEWER_BUFFER_BYTES } });
  await f.app.listen({ host: HOST, port: 0 });
  const address = f.app.server.address();
  assert.ok(address !== null && typeof address === 'object');
  base = `${HOST}:${address.port}`;
  f.app.websocketServer.on('connection', (socket: WebSocket) => accepted.push(socket));
});

after(async () => {
  for (const client of clients) client.terminate();
  await f.close();
});

interface Watcher {
  ws: WebSocket;
  /** Every parsed message, in arrival order. */
  messages: any[];
  /** Resolves once `predicate(messages)` holds (checked on every message). */
  until(predicate: (messages: any[]) => boolean): Promise<void>;
}

interface ClientOptions {
  headers?: Record<string, string>;
  protocols?: string[];
}

function connect(path: string, options: ClientOptions = {}): WebSocket {
  const ws = new WebSocket(`ws://${base}${path}`, options.protocols ?? [], { headers: options.headers ?? {} });
  clients.push(ws);
  return ws;
}

/** Opens a stream, authenticated with the fixture's token in the Authorization header unless `options` say otherwise. */
async function watch(path: string, options: ClientOptions = { headers: { authorization: f.token } }): Promise<Watcher> {
  const ws = connect(path, options);
  const messages: any[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data) => {
    messages.push(JSON.parse(String(data)));
    for (const waiter of waiters) waiter();
  });
  ws.on('unexpected-response', (_request, response) => ws.emit('error', new Error(`refused: ${response.statusCode}`)));
  await once(ws, 'open');
  return {
    ws,
    messages,
    until: (predicate) =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (!predicate(messages)) return;
          waiters.delete(check);
          resolve();
        };
        ws.once('close', (code, reason) => reject(new Error(`closed ${code} ${String(reason)} after ${messages.length} messages`)));
        waiters.add(check);
        check();
      }),
  };
}

/** The HTTP answer to an upgrade the server refuses. */
function refusal(path: string, options: ClientOptions = {}): Promise<{ status: number; body: any }> {
  const ws = connect(path, options);
  return new Promise((resolve, reject) => {
    ws.on('open', () => reject(new Error(`${path} opened`)));
    ws.on('error', () => {}); // the refusal itself; 'unexpected-response' carries it
    ws.on('unexpected-response', (_request, response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) }));
    });
  });
}

/** The server side of a stream has closed (and so has run its close handlers). */
async function serverClosed(socket: WebSocket): Promise<void> {
  if (socket.readyState !== WebSocket.CLOSED) await once(socket, 'close');
}

describe('GET /devices/:deviceId/inspector/live', () => {
  test('replays the history, then streams live: events published all around the open arrive once each, in order', async () => {
    const device = newDevice('replay');
    let seq = 0;
    for (; seq < 100; seq++) emit(device, 'publish_in', { seq });
    // One event per turn of the event loop during the whole handshake and after it.
    let pumping = true;
    const pump = (): void => {
      if (!pumping) return;
      emit(device, 'publish_in', { seq: seq++ });
      setImmediate(pump);
    };
    setImmediate(pump);
    const viewer = await watch(`/devices/${device}/inspector/live`);
    const atOpen = seq;
    await viewer.until((m) => m.length >= atOpen + 20);
    pumping = false;
    emit(device, 'publish_in', { seq: seq++ });
    await viewer.until((m) => m.at(-1)?.data.seq === seq - 1);
    assert.ok(seq < 500, `${seq} events: more than the kept history, the test cannot tell a gap from the ring`);
    assert.ok(atOpen > 100, 'events were published during the handshake');
    assert.deepEqual(viewer.messages.map((m) => m.data.seq), Array.from({ length: seq }, (_, i) => i));
    const first = viewer.messages[0];
    assert.deepEqual(Object.keys(first), ['time', 'device', 'kind', 'connection', 'data']);
    assert.equal(new Date(first.time).toISOString(), first.time);
    assert.deepEqual([first.device, first.kind, first.connection], [device, 'publish_in', null]);
    viewer.ws.close();
  });

  test('kinds=connect,publish_in: only those kinds, in the history, the live stream and the REST listing', async () => {
    const device = newDevice('kinds');
    for (const kind of ['connect', 'publish_out', 'publish_in', 'disconnect']) emit(device, kind, { at: 'history' });
    const viewer = await watch(`/devices/${device}/inspector/live?kinds=connect,publish_in`);
    for (const kind of ['subscribe', 'publish_in', 'parser_log', 'connect', 'publish_out']) emit(device, kind, { at: 'live' });
    emit(device, 'publish_in', { at: 'end' });
    await viewer.until((m) => m.at(-1)?.data.at === 'end');
    assert.deepEqual(viewer.messages.map((m) => `${m.data.at} ${m.kind}`), [
      'history connect',
      'history publish_in',
      'live publish_in',
      'live connect',
      'end publish_in',
    ]);
    const listed = await f.call('GET', `/devices/${device}/inspector?kinds=connect,publish_in`);
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.body.result, viewer.messages);
    viewer.ws.close();
  });

  test('an unknown kind is refused with 400 naming kinds, before the upgrade and on the REST listing', async () => {
    const device = newDevice('bad-kinds');
    const refused = await refusal(`/devices/${device}/inspector/live?kinds=connect,publish`, { headers: { authorization: f.token } });
    assert.equal(refused.status, 400);
    assert.match(refused.body.message, /^querystring\/kinds has unknown kind "publish" \(known: connect, connack, /);
    const listed = await f.call('GET', `/devices/${device}/inspector?kinds=,`);
    assert.deepEqual([listed.status, listed.body.message], [400, 'querystring/kinds names no kind']);
  });

  test('the token may come as a header, the token query parameter or a token.<token> sub-protocol', async () => {
    const device = newDevice('auth');
    emit(device, 'connect');
    const path = `/devices/${device}/inspector/live`;
    const byHeader = await watch(path, { headers: { authorization: `Bearer ${f.token}` } });
    const byQuery = await watch(`${path}?token=${f.token}`, {});
    const byProtocol = await watch(path, { protocols: ['bucketmq.inspector', `token.${f.token}`] });
    assert.equal(byProtocol.ws.protocol, 'bucketmq.inspector', 'the server never echoes the token');
    for (const viewer of [byHeader, byQuery, byProtocol]) {
      await viewer.until((m) => m.length === 1);
      viewer.ws.close();
    }
  });

  test('no token or a wrong one: 401; a device of another account: 404; a write-only token: 403; all before the upgrade', async () => {
    const device = newDevice('private');
    const path = `/devices/${device}/inspector/live`;
    assert.equal((await refusal(path)).status, 401);
    assert.equal((await refusal(path, { headers: { authorization: '00000000-0000-0000-0000-000000000000' } })).status, 401);
    assert.equal((await refusal(`${path}?token=nope`)).status, 401);
    const other = f.registry.createAccount({ name: 'other' });
    const foreign = await refusal(path, { headers: { authorization: other.token } });
    assert.deepEqual(foreign, { status: 404, body: { status: false, message: `device ${device} not found` } });
    assert.equal((await refusal(path, { protocols: ['bucketmq.inspector', `token.${other.token}`] })).status, 404);
    const writer = f.registry.createAccountToken(f.accountId, { name: 'writer', permission: 'write' });
    assert.equal((await refusal(path, { headers: { authorization: writer.token } })).status, 403);
    assert.equal(bus.subscribers, 0);
  });

  test('a plain GET gets 426, and other routes refuse an upgrade with 404', async () => {
    const device = newDevice('plain');
    const plain = await f.call('GET', `/devices/${device}/inspector/live`);
    assert.equal(plain.status, 426);
    assert.match(plain.body.message, /WebSocket/);
    const rest = await refusal(`/devices/${device}/inspector`, { headers: { authorization: f.token } });
    assert.deepEqual(rest, { status: 404, body: { status: false, message: `route GET /devices/${device}/inspector does not accept a WebSocket upgrade` } });
  });

  test('closing a viewer removes its bus listener', async () => {
    const device = newDevice('leak');
    const before = accepted.length;
    const viewers = await Promise.all([1, 2, 3].map(() => watch(`/devices/${device}/inspector/live`)));
    assert.equal(bus.subscribers, 3);
    const sockets = accepted.slice(before);
    assert.equal(sockets.length, 3);
    viewers[0]!.ws.close();
    viewers[1]!.ws.terminate(); // an abrupt end too
    await Promise.all([serverClosed(sockets[0]!), serverClosed(sockets[1]!)]);
    assert.equal(bus.subscribers, 1);
    emit(device, 'connect', { n: 1 });
    await viewers[2]!.until((m) => m.length === 1);
    viewers[2]!.ws.close();
    await serverClosed(sockets[2]!);
    assert.equal(bus.subscribers, 0);
  });

  test('deleting the device closes its streams with 4404 "device deleted", and only its own', async () => {
    const device = newDevice('doomed');
    const survivor = newDevice('survivor');
    const before = accepted.length;
    const doomed = await watch(`/devices/${device}/inspector/live`);
    const other = await watch(`/devices/${survivor}/inspector/live`);
    const closed = once(doomed.ws, 'close');
    assert.equal((await f.call('DELETE', `/devices/${device}`)).status, 200);
    const [code, reason] = await closed;
    assert.deepEqual([code, String(reason)], [4404, 'device deleted']);
    await serverClosed(accepted[before]!);
    assert.equal(bus.subscribers, 1);
    emit(survivor, 'connect');
    await other.until((m) => m.length === 1);
    other.ws.close();
  });

  test('a viewer that never reads does not slow the publisher; once it reads again it gets {"kind":"skipped","count":N}', async (t) => {
    const stalledDevice = newDevice('stalled');
    const unwatchedDevice = newDevice('unwatched');
    const before = accepted.length;
    const viewer = await watch(`/devices/${stalledDevice}/inspector/live`);
    const serverSide = accepted[before]!;
    viewer.ws.pause(); // stops reading its TCP socket: the kernel buffers fill, then the server's
    const preview = 'x'.repeat(1000); // a publish_in preview at its 1 KB cap
    let published = 0;
    const publish = (deviceId: string): void => {
      emit(deviceId, 'publish_in', { seq: deviceId === stalledDevice ? published++ : -1, preview });
    };
    // Fill the socket until the server holds more than the bound unsent; the next event finds it stalled.
    while (serverSide.bufferedAmount <= VIEWER_BUFFER_BYTES && published < 200_000) publish(stalledDevice);
    assert.ok(serverSide.bufferedAmount > VIEWER_BUFFER_BYTES, `the socket never backed up after ${published} events`);
    const buffered = serverSide.bufferedAmount;
    const filled = published;

    // A/B, alternated in the same run: the same events to a device nobody watches and to the stalled one.
    const perRun = 200_000;
    const rate = (deviceId: string): number => {
      const start = process.hrtime.bigint();
      for (let i = 0; i < perRun; i++) publish(deviceId);
      return perRun / (Number(process.hrtime.bigint() - start) / 1e9);
    };
    rate(unwatchedDevice), rate(stalledDevice); // warm-up, not counted
    const unwatched: number[] = [];
    const stalled: number[] = [];
    for (let round = 0; round < 7; round++) {
      if (round % 2 === 0) unwatched.push(rate(unwatchedDevice)), stalled.push(rate(stalledDevice));
      else stalled.push(rate(stalledDevice)), unwatched.push(rate(unwatchedDevice));
    }
    const median = (rates: number[]): number => [...rates].sort((a, b) => a - b)[rates.length >> 1]!;
    // Other work on the machine only ever slows a run down, so the fastest runs are the fairest comparison.
    const best = (rates: number[]): number => Math.max(...rates);
    const kilo = (rates: number[]): string => rates.map((r) => Math.round(r / 1000)).join(', ');
    t.diagnostic(`bus.publish, ${perRun} events per run, 7 runs alternated after a warm-up; events/s (thousands) unwatched: ${kilo(unwatched)}; stalled viewer: ${kilo(stalled)}`);
    t.diagnostic(`median unwatched ${Math.round(median(unwatched))}/s, stalled viewer ${Math.round(median(stalled))}/s, ratio ${(median(stalled) / median(unwatched)).toFixed(2)}`);
    t.diagnostic(`best unwatched ${Math.round(best(unwatched))}/s, stalled viewer ${Math.round(best(stalled))}/s, ratio ${(best(stalled) / best(unwatched)).toFixed(2)}`);
    t.diagnostic(`the stalled socket held ${buffered} bytes unsent after ${filled} events (kernel buffers full); it stayed at ${serverSide.bufferedAmount}`);
    assert.equal(serverSide.bufferedAmount, buffered, 'nothing more was queued for the stalled viewer');
    assert.ok(best(stalled) > 0.5 * best(unwatched), 'a stalled viewer slowed the publisher down');

    viewer.ws.resume();
    await viewer.until((m) => m.at(-1)?.kind === 'skipped');
    const delivered = viewer.messages.slice(0, -1);
    const marker = viewer.messages.at(-1);
    assert.deepEqual(delivered.map((m) => m.data.seq), Array.from({ length: delivered.length }, (_, i) => i), 'what was sent arrived in order');
    assert.deepEqual(marker, { kind: 'skipped', count: published - delivered.length });
    t.diagnostic(`the stalled viewer got ${delivered.length} events, then skipped ${marker.count}`);
    publish(stalledDevice);
    await viewer.until((m) => m.at(-1)?.data?.seq === published - 1);
    assert.equal(viewer.messages.length, delivered.length + 2, 'the stream resumed right after the marker');
    viewer.ws.close();
  });

  test('is in the OpenAPI document: a GET with the upgrade, the message format and the kinds filter', async () => {
    const doc = (await f.call('GET', '/docs/openapi.json', { token: null })).body;
    const operation = doc.paths['/devices/{deviceId}/inspector/live']?.get;
    assert.ok(operation, 'documented');
    assert.match(operation.description, /Upgrade: websocket/);
    assert.match(operation.description, /"kind": "skipped", "count": N/);
    assert.ok(operation.responses['101']);
    const kinds = operation.parameters.find((p: { name: string }) => p.name === 'kinds');
    assert.match(kinds.description, /connect, connack, subscribe/);
  });
});
