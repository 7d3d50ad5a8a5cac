/**
 * A stand-in "broker" that does almost no work, to measure the load generator's own ceiling
 * (`npm run bench -- --brokers null,...`). It answers CONNECT and SUBSCRIBE, and copies the bytes of
 * every PUBLISH it receives, unchanged, to every subscriber (no topic matching: in each bench row
 * every subscriber matches every publisher). QoS 1 publishes get a PUBACK; the subscribers' PUBACKs
 * are ignored. If a row runs at N msg/s here, the generator can measure brokers up to about N.
 *
 *   node --import tsx bench/null-broker.ts --port 18830
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { FrameWalker, PacketType, type FrameSink } from './frame-walker.ts';

const CONNECT = 1;
const SUBSCRIBE = 8;
const DISCONNECT = 14;
const CONNACK_ACCEPTED = Buffer.from([0x20, 0x02, 0x00, 0x00]);

const subscribers: net.Socket[] = [];

class Client implements FrameSink {
  readonly #socket: net.Socket;
  readonly #walker = new FrameWalker(this);
  /** Byte range of consecutive PUBLISH packets in the chunk being walked. */
  #runStart = -1;
  #runEnd = -1;
  #runBuf: Buffer | null = null;
  #acks: number[] = [];

  constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.#walker.feed(chunk);
      this.#flushRun();
      if (this.#acks.length > 0) this.#flushAcks();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      const index = subscribers.indexOf(socket);
      if (index >= 0) subscribers.splice(index, 1);
    });
  }

  onFrame(firstByte: number, buf: Buffer, bodyStart: number, bodyLength: number): void {
    const type = firstByte >> 4;
    if (type === PacketType.publish) {
      // The frame starts where its fixed header does: bodyStart minus the header length.
      const frameStart = bodyStart - headerLength(bodyLength);
      if (this.#runBuf !== buf || frameStart !== this.#runEnd) {
        this.#flushRun();
        this.#runBuf = buf;
        this.#runStart = frameStart;
      }
      this.#runEnd = bodyStart + bodyLength;
      if ((firstByte & 0x06) === 0x02) {
        const topicLength = buf.readUInt16BE(bodyStart);
        this.#acks.push(buf.readUInt16BE(bodyStart + 2 + topicLength));
      }
      return;
    }
    this.#flushRun();
    if (type === CONNECT) {
      this.#socket.write(CONNACK_ACCEPTED);
    } else if (type === SUBSCRIBE) {
      const id = buf.readUInt16BE(bodyStart);
      const qos = (buf[bodyStart + bodyLength - 1] ?? 0) & 0x03;
      this.#socket.write(Buffer.from([0x90, 0x03, id >> 8, id & 0xff, qos]));
      subscribers.push(this.#socket);
    } else if (type === DISCONNECT) {
      this.#socket.end();
    }
  }

  #flushRun(): void {
    if (this.#runBuf === null) return;
    const bytes = this.#runBuf.subarray(this.#runStart, this.#runEnd);
    this.#runBuf = null;
    for (let i = 0; i < subscribers.length; i++) (subscribers[i] as net.Socket).write(bytes);
  }

  #flushAcks(): void {
    const out = Buffer.allocUnsafe(this.#acks.length * 4);
    for (let i = 0; i < this.#acks.length; i++) {
      const id = this.#acks[i] as number;
      out.writeUInt32BE(0x40020000 | id, i * 4);
    }
    this.#acks = [];
    this.#socket.write(out);
  }
}

/** Bytes of a fixed header whose remaining length is `length` (MQTT 3.1.1 §2.2.3). */
function headerLength(length: number): number {
  return length < 128 ? 2 : length < 16_384 ? 3 : length < 2_097_152 ? 4 : 5;
}

const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: null-broker.ts --port PORT');
  process.exit(2);
}
const server = net.createServer((socket) => new Client(socket));
server.listen(port, values.host, () => console.log(`null broker listening on ${values.host}:${port}`));
process.on('SIGTERM', () => process.exit(0));
