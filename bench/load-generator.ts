/**
 * Load-generator child process (forked by run.ts). It opens raw TCP connections to the broker under
 * test, writes pre-encoded MQTT packets (packets.ts) and counts what comes back by walking fixed
 * headers (frame-walker.ts). The same code drives every broker.
 *
 * Per-message cost is kept to a counter increment:
 * - QoS 0 publishers write chunks of ~64 KiB of identical PUBLISH packets, one chunk per connection
 *   per event-loop turn (setImmediate), so incoming data is still read between chunks when the
 *   subscribers live in the same process, and stop on TCP back-pressure until 'drain'.
 * - QoS 1 publishers keep `window` packets in flight and refill with one write per received chunk.
 * - QoS 1 subscribers answer every delivered PUBLISH with a PUBACK, batched into one write per chunk.
 *
 * Driven over IPC by the commands in protocol.ts; reports progress every 200 ms and at once when a
 * phase completes.
 */
import net from 'node:net';
import { FrameWalker, PacketType, type FrameSink } from './frame-walker.ts';
import { encodeConnect, encodeDisconnect, encodeQos0Chunk, encodeQos1Ring, encodeSubscribe, makePayload } from './packets.ts';
import type { Command, GeneratorEvent, Phase, Progress, PublisherSpec, RunCommand, SetupCommand } from './protocol.ts';

const PROGRESS_INTERVAL_MS = 200;
const CONNECT_CONCURRENCY = 50;
/** Bytes a QoS 0 publisher writes per event-loop turn, summed over its connections. */
const QOS0_TURN_BYTES = 64 * 1024;
/** Packet ids a QoS 1 publisher cycles through; far more than the window, so reuse is always safe. */
const QOS1_RING_SIZE = 4096;
const SUBACK_FAILURE = 0x80;

const now = (): number => Number(process.hrtime.bigint());

function send(event: GeneratorEvent): void {
  process.send?.(event);
}

/** Counters of the current phase, shared by all connections of this process. */
const stats = {
  phase: 'warmup' as Phase,
  active: false,
  sent: 0,
  acked: 0,
  delivered: 0,
  expectedDeliveries: 0,
  firstSendNs: 0,
  lastSendNs: 0,
  lastAckNs: 0,
  lastDeliveryNs: 0,
  unexpectedAcks: 0,
  publishDone: false,
  deliveryDone: false,
};

let stopping = false;
const subscribers: ClientConnection[] = [];
const publishers: ClientConnection[] = [];
let publisherSpec: PublisherSpec | null = null;

interface Waiter {
  packetType: number;
  resolve: (returnCode: number) => void;
  reject: (error: Error) => void;
}

/** Per-connection QoS 0 publishing state: one pre-encoded chunk and how much of the phase is left. */
interface Qos0Sender {
  chunk: Buffer;
  packetBytes: number;
  packetsPerChunk: number;
}

/** Per-connection QoS 1 publishing state: the ring of pre-encoded packets and the in-flight ids. */
interface Qos1Sender {
  ring: Buffer;
  packetBytes: number;
  nextId: number;
  inflight: Uint8Array;
  inflightCount: number;
  window: number;
}

/**
 * One read buffer for every socket of the process (net `onread`): each chunk is walked to the end
 * before the next read, so no allocation and no stream machinery per read.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

class ClientConnection implements FrameSink {
  readonly socket: net.Socket;
  readonly name: string;
  readonly #walker = new FrameWalker(this);
  #waiter: Waiter | null = null;
  /** Packet ids of QoS 1 deliveries in the chunk being walked, answered after the walk. */
  #ackIds: number[] = [];
  remaining = 0;
  qos0: Qos0Sender | null = null;
  qos1: Qos1Sender | null = null;

  constructor(host: string, port: number, name: string) {
    this.name = name;
    const socket = net.connect({
      host,
      port,
      onread: { buffer: READ_BUFFER, callback: (bytes) => { this.#onData(READ_BUFFER.subarray(0, bytes)); return true; } },
    });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('drain', () => schedulePump());
    socket.on('error', () => {
      // 'close' follows and reports; without this listener an ECONNRESET would kill the process.
    });
    socket.on('close', () => this.#onClose());
  }

  /** Resolves with the return code of the next packet of `packetType` (CONNACK, SUBACK). */
  expect(packetType: number, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = null;
        reject(new Error(`${this.name}: no reply of type ${packetType} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiter = {
        packetType,
        resolve: (code) => { clearTimeout(timer); resolve(code); },
        reject: (error) => { clearTimeout(timer); reject(error); },
      };
    });
  }

  onFrame(firstByte: number, buf: Buffer, bodyStart: number, bodyLength: number): void {
    const type = firstByte >> 4;
    if (type === PacketType.publish) {
      stats.delivered++;
      if ((firstByte & 0x06) === 0x02) {
        const topicLength = buf.readUInt16BE(bodyStart);
        this.#ackIds.push(buf.readUInt16BE(bodyStart + 2 + topicLength));
      }
    } else if (type === PacketType.puback) {
      const sender = this.qos1;
      const id = buf.readUInt16BE(bodyStart);
      if (sender !== null && sender.inflight[id] === 1) {
        sender.inflight[id] = 0;
        sender.inflightCount--;
        stats.acked++;
      } else {
        stats.unexpectedAcks++;
      }
    } else if (this.#waiter !== null && type === this.#waiter.packetType) {
      const waiter = this.#waiter;
      this.#waiter = null;
      // CONNACK: return code is the 2nd body byte; SUBACK: the granted QoS follows the packet id.
      const code = type === PacketType.connack ? buf[bodyStart + 1] : buf[bodyStart + bodyLength - 1];
      waiter.resolve(code ?? -1);
    }
  }

  #onData(chunk: Buffer): void {
    const deliveredBefore = stats.delivered;
    const ackedBefore = stats.acked;
    this.#walker.feed(chunk);
    if (this.#ackIds.length > 0) this.#writeAcks();
    const arrived = stats.delivered - deliveredBefore + stats.acked - ackedBefore;
    if (napMs > 0 && arrived > 0) {
      packetsThisTurn += arrived;
      if (!napScheduled) {
        napScheduled = true;
        setImmediate(nap);
      }
    }
    if (stats.delivered !== deliveredBefore) {
      stats.lastDeliveryNs = now();
      if (!stats.deliveryDone && stats.delivered >= stats.expectedDeliveries && stats.active) {
        stats.deliveryDone = true;
        reportProgress();
      }
    }
    if (stats.acked !== ackedBefore) {
      stats.lastAckNs = now();
      if (this.qos1 !== null && stats.active) this.refillQos1();
      checkPublishDone();
    }
  }

  #writeAcks(): void {
    const ids = this.#ackIds;
    const out = Buffer.allocUnsafe(ids.length * 4);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as number;
      const at = i * 4;
      out[at] = 0x40;
      out[at + 1] = 0x02;
      out[at + 2] = id >> 8;
      out[at + 3] = id & 0xff;
    }
    this.#ackIds = [];
    this.socket.write(out);
  }

  /** Sends as many QoS 1 packets as the window allows, as contiguous slices of the id ring. */
  refillQos1(): void {
    const sender = this.qos1;
    if (sender === null) return;
    let count = Math.min(sender.window - sender.inflightCount, this.remaining);
    if (count <= 0) return;
    if (stats.firstSendNs === 0) stats.firstSendNs = now();
    while (count > 0) {
      const run = Math.min(count, QOS1_RING_SIZE - sender.nextId + 1);
      for (let id = sender.nextId; id < sender.nextId + run; id++) {
        if (sender.inflight[id] === 1) {
          fail(`${this.name}: packet id ${id} still unacknowledged after ${QOS1_RING_SIZE} later sends`);
          return;
        }
        sender.inflight[id] = 1;
      }
      const start = (sender.nextId - 1) * sender.packetBytes;
      this.socket.write(sender.ring.subarray(start, start + run * sender.packetBytes));
      sender.inflightCount += run;
      sender.nextId += run;
      if (sender.nextId > QOS1_RING_SIZE) sender.nextId = 1;
      this.remaining -= run;
      stats.sent += run;
      count -= run;
    }
    if (this.remaining === 0 && isLastSend()) stats.lastSendNs = now();
  }

  #onClose(): void {
    if (this.#waiter !== null) {
      const waiter = this.#waiter;
      this.#waiter = null;
      waiter.reject(new Error(`${this.name}: connection closed by the broker during setup`));
      return;
    }
    if (!stopping) fail(`${this.name}: connection closed by the broker`);
  }
}

function isLastSend(): boolean {
  for (let i = 0; i < publishers.length; i++) if ((publishers[i] as ClientConnection).remaining > 0) return false;
  return true;
}

function checkPublishDone(): void {
  if (stats.publishDone || !stats.active) return;
  for (let i = 0; i < publishers.length; i++) {
    const connection = publishers[i] as ClientConnection;
    if (connection.remaining > 0) return;
    if (connection.qos1 !== null && connection.qos1.inflightCount > 0) return;
  }
  stats.publishDone = true;
  reportProgress();
}

// --- Naps: read packets in batches instead of waking up for each one. ---

let napMs = 0;
let napBelowPackets: number | null = null;
let napScheduled = false;
let packetsThisTurn = 0;
const napCell = new Int32Array(new SharedArrayBuffer(4));

/**
 * Runs once per event-loop turn in which deliveries or PUBACKs arrived, after every ready socket was
 * read: the process sleeps `napMs` so the next turn finds many packets waiting on each socket. A
 * broker that writes one packet per syscall otherwise pays a reader wake-up per message — a cost set
 * by how eager the generator is, not by the broker. Adds at most `napMs` to the last delivery's time;
 * a QoS 1 publisher naps only when few PUBACKs came (napBelowPackets), so as not to cap its rate.
 */
function nap(): void {
  napScheduled = false;
  const arrived = packetsThisTurn;
  packetsThisTurn = 0;
  if (napBelowPackets !== null && arrived >= napBelowPackets) return;
  Atomics.wait(napCell, 0, 0, napMs);
}

// --- QoS 0 pump: one chunk per connection per event-loop turn, paused by back-pressure. ---

let pumpScheduled = false;

function schedulePump(): void {
  if (pumpScheduled || !stats.active || publisherSpec?.qos !== 0) return;
  pumpScheduled = true;
  setImmediate(pump);
}

function pump(): void {
  pumpScheduled = false;
  let more = false;
  for (let i = 0; i < publishers.length; i++) {
    const connection = publishers[i] as ClientConnection;
    const sender = connection.qos0;
    if (sender === null || connection.remaining === 0 || connection.socket.writableNeedDrain) continue;
    const count = Math.min(connection.remaining, sender.packetsPerChunk);
    if (stats.firstSendNs === 0) stats.firstSendNs = now();
    const writable = connection.socket.write(
      count === sender.packetsPerChunk ? sender.chunk : sender.chunk.subarray(0, count * sender.packetBytes),
    );
    connection.remaining -= count;
    stats.sent += count;
    if (connection.remaining > 0 && writable) more = true;
  }
  if (isLastSend() && stats.lastSendNs === 0) {
    stats.lastSendNs = now();
    checkPublishDone();
  }
  if (more) {
    pumpScheduled = true;
    setImmediate(pump);
  }
}

// --- Setup, phases, teardown. ---

async function openConnection(setup: SetupCommand, name: string): Promise<ClientConnection> {
  const connection = new ClientConnection(setup.host, setup.port, name);
  await new Promise<void>((resolve, reject) => {
    connection.socket.once('connect', resolve);
    connection.socket.once('error', reject);
  });
  const connack = connection.expect(PacketType.connack, 10_000);
  connection.socket.write(encodeConnect(name, setup.credentials));
  const returnCode = await connack;
  if (returnCode !== 0) throw new Error(`${name}: CONNACK return code ${returnCode}`);
  return connection;
}

async function openMany(count: number, open: (index: number) => Promise<ClientConnection>): Promise<ClientConnection[]> {
  const result: ClientConnection[] = new Array(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const index = next++;
      result[index] = await open(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONNECT_CONCURRENCY, count) }, worker));
  return result;
}

async function setup(command: SetupCommand): Promise<void> {
  napMs = command.napMs;
  napBelowPackets = command.napBelowPackets;
  const spec = command.subscribers;
  if (spec !== null) {
    const subscribe = encodeSubscribe(spec.filter, spec.qos, 1);
    subscribers.push(...await openMany(spec.connections, async (index) => {
      const connection = await openConnection(command, `${command.label}-sub-${index}`);
      const suback = connection.expect(PacketType.suback, 10_000);
      connection.socket.write(subscribe);
      const granted = await suback;
      if (granted === SUBACK_FAILURE || granted > 2) throw new Error(`${connection.name}: SUBACK refused (0x${granted.toString(16)})`);
      // A downgraded subscription would quietly turn a QoS 1 row into a QoS 0 one.
      if (granted !== spec.qos) throw new Error(`${connection.name}: SUBACK granted QoS ${granted}, not ${spec.qos}`);
      return connection;
    }));
  }
  const pubSpec = command.publishers;
  if (pubSpec !== null) {
    publisherSpec = pubSpec;
    const payload = makePayload(pubSpec.payloadBytes);
    publishers.push(...await openMany(pubSpec.connections, async (index) => {
      const connection = await openConnection(command, `${command.label}-pub-${index}`);
      const topic = pubSpec.topics[index];
      if (topic === undefined) throw new Error(`no topic for publisher ${index}`);
      if (pubSpec.qos === 0) {
        const probe = encodeQos0Chunk(topic, payload, 1);
        const packetsPerChunk = Math.max(16, Math.floor(QOS0_TURN_BYTES / probe.packetBytes / pubSpec.connections));
        const { chunk, packetBytes } = encodeQos0Chunk(topic, payload, packetsPerChunk);
        connection.qos0 = { chunk, packetBytes, packetsPerChunk };
      } else {
        const { ring, packetBytes } = encodeQos1Ring(topic, payload, QOS1_RING_SIZE);
        connection.qos1 = {
          ring, packetBytes, nextId: 1, inflight: new Uint8Array(QOS1_RING_SIZE + 1), inflightCount: 0, window: pubSpec.window,
        };
      }
      return connection;
    }));
  }
}

function run(command: RunCommand): void {
  stats.phase = command.phase;
  stats.sent = 0;
  stats.acked = 0;
  stats.delivered = 0;
  stats.expectedDeliveries = subscribers.length > 0 ? command.expectedDeliveries : 0;
  stats.firstSendNs = 0;
  stats.lastSendNs = 0;
  stats.lastAckNs = 0;
  stats.lastDeliveryNs = 0;
  stats.unexpectedAcks = 0;
  stats.publishDone = publishers.length === 0;
  stats.deliveryDone = stats.expectedDeliveries === 0;
  stats.active = true;
  for (const connection of publishers) connection.remaining = command.messagesPerPublisher;
  if (publisherSpec?.qos === 0) schedulePump();
  else for (const connection of publishers) connection.refillQos1();
  reportProgress();
}

function reportProgress(): void {
  const progress: Progress = {
    type: 'progress',
    phase: stats.phase,
    sent: stats.sent,
    acked: stats.acked,
    delivered: stats.delivered,
    firstSendNs: stats.firstSendNs,
    lastSendNs: stats.lastSendNs,
    lastAckNs: stats.lastAckNs,
    lastDeliveryNs: stats.lastDeliveryNs,
    publishDone: stats.publishDone,
    deliveryDone: stats.deliveryDone,
    unexpectedAcks: stats.unexpectedAcks,
  };
  send(progress);
}

async function stop(): Promise<void> {
  reportProgress();
  stopping = true;
  stats.active = false;
  const disconnect = encodeDisconnect();
  const all = [...publishers, ...subscribers];
  await Promise.race([
    Promise.all(all.map((connection) => new Promise<void>((resolve) => {
      if (connection.socket.destroyed) return resolve();
      connection.socket.once('close', () => resolve());
      connection.socket.end(disconnect);
    }))),
    new Promise((resolve) => setTimeout(resolve, 3_000)),
  ]);
  for (const connection of all) connection.socket.destroy();
  send({ type: 'closed' });
  process.exit(0);
}

function fail(message: string): void {
  if (stopping) return;
  stopping = true;
  stats.active = false;
  send({ type: 'failed', message });
  // Give the IPC message a moment to leave before the parent sees the exit.
  setTimeout(() => process.exit(1), 100);
}

const progressTimer = setInterval(() => { if (stats.active) reportProgress(); }, PROGRESS_INTERVAL_MS);
progressTimer.unref();

process.on('message', (message: Command) => {
  switch (message.type) {
    case 'setup':
      setup(message).then(
        () => send({ type: 'ready', connections: subscribers.length + publishers.length }),
        (error: unknown) => fail(error instanceof Error ? error.message : String(error)),
      );
      break;
    case 'run':
      run(message);
      break;
    case 'stop':
      void stop();
      break;
  }
});
// The parent going away (Ctrl-C, crash) must not leave connections open against a broker.
process.on('disconnect', () => process.exit(0));
