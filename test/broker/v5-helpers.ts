/**
 * Extras for the MQTT 5 tests beside helpers.ts (broker start, MQTT.js, collectors). Wire-level helpers for the MQTT 5 end-to-end tests (v5-*.test.ts): a raw TCP client that keeps
 * every received frame byte for byte, an ordered MQTT 5 property encoder/decoder (mqtt-packet
 * folds user properties into an object and loses their order), and small process helpers for
 * mosquitto_pub / mosquitto_sub. Every wait is bounded.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import mqttPacket from 'mqtt-packet';
import type { IConnackPacket, IConnectPacket, ISubackPacket, ISubscription, Packet } from 'mqtt-packet';
import mqtt from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';

// ---- timing ----------------------------------------------------------------------------------

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves with the arguments of the next `event` on `emitter` that passes `accept`. */
export function nextEvent<A extends unknown[]>(
  emitter: { on(event: string, fn: (...args: never[]) => void): unknown; off(event: string, fn: (...args: never[]) => void): unknown },
  event: string,
  ms: number,
  accept: (...args: A) => boolean = () => true,
): Promise<A> {
  let listener: ((...args: A) => void) | undefined;
  const p = new Promise<A>((resolve) => {
    listener = (...args: A) => {
      if (accept(...args)) resolve(args);
    };
    emitter.on(event, listener as unknown as (...args: never[]) => void);
  });
  return withTimeout(p, ms, `event ${event}`).finally(() => emitter.off(event, listener as unknown as (...args: never[]) => void));
}

// ---- MQTT.js ---------------------------------------------------------------------------------

export interface Connected {
  client: MqttClient;
  connack: IConnackPacket;
}

/** MQTT.js client with no reconnect; resolves with the client and its CONNACK. */
export function connectMqttJs(port: number, options: IClientOptions = {}): Promise<Connected> {
  const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 3000, ...options });
  const p = new Promise<Connected>((resolve, reject) => {
    client.once('connect', (connack) => resolve({ client, connack }));
    client.once('error', reject);
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
  return withTimeout(p, 4000, 'MQTT.js CONNACK').catch((err: unknown) => {
    client.end(true);
    throw err;
  });
}

export async function endAll(clients: Array<MqttClient | WireClient | undefined>): Promise<void> {
  await Promise.all(
    clients.map(async (c) => {
      if (c === undefined) return;
      if (c instanceof WireClient) c.destroy();
      else await withTimeout(c.endAsync(true), 2000, 'MQTT.js end').catch(() => undefined);
    }),
  );
}

// ---- raw client ------------------------------------------------------------------------------

export interface Frame {
  /** Packet type (high nibble of the first byte). */
  type: number;
  flags: number;
  /** The whole packet as received. */
  raw: Buffer;
  /** Where the variable header starts in `raw`. */
  bodyOffset: number;
  /** mqtt-packet's decoding (user property order lost), or null if it failed. */
  packet: Packet | null;
}

export const PUBLISH = 3;
export const PUBACK = 4;
export const PUBREC = 5;
export const PUBREL = 6;
export const PUBCOMP = 7;
export const SUBACK = 9;
export const UNSUBACK = 11;
export const DISCONNECT = 14;

/**
 * An MQTT client on a bare socket: sends what it is told (mqtt-packet encoded or hand-built bytes),
 * never acknowledges on its own, and records every frame it receives.
 */
export class WireClient {
  readonly socket: net.Socket;
  readonly protocolVersion: 3 | 4 | 5;
  /** Every frame received, in order. */
  readonly received: Frame[] = [];
  /** Frames not yet taken by `take`. */
  readonly #inbox: Frame[] = [];
  #waiters: Array<() => void> = [];
  #buffer: Buffer = Buffer.alloc(0);
  readonly #parser: ReturnType<typeof mqttPacket.parser>;
  #parsed: Packet | null = null;
  closed = false;
  readonly closedPromise: Promise<void>;

  private constructor(socket: net.Socket, protocolVersion: 3 | 4 | 5) {
    this.socket = socket;
    this.protocolVersion = protocolVersion;
    this.#parser = mqttPacket.parser({ protocolVersion });
    this.#parser.on('packet', (p: Packet) => {
      this.#parsed = p;
    });
    this.#parser.on('error', () => {
      this.#parsed = null;
    });
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', () => undefined);
    this.closedPromise = new Promise((resolve) => {
      socket.once('close', () => {
        this.closed = true;
        resolve();
        this.#wake();
      });
    });
  }

  static open(port: number, protocolVersion: 3 | 4 | 5 = 5): Promise<WireClient> {
    const socket = net.connect({ host: '127.0.0.1', port });
    const p = new Promise<WireClient>((resolve, reject) => {
      socket.once('connect', () => resolve(new WireClient(socket, protocolVersion)));
      socket.once('error', reject);
    });
    return withTimeout(p, 3000, 'TCP connect');
  }

  /** Opens a socket, sends CONNECT and waits for CONNACK. */
  static async connect(port: number, connect: Partial<IConnectPacket> = {}, protocolVersion: 3 | 4 | 5 = 5): Promise<{ raw: WireClient; connack: IConnackPacket & { reasonCode?: number } }> {
    const raw = await WireClient.open(port, protocolVersion);
    raw.send({ cmd: 'connect', protocolId: protocolVersion === 3 ? 'MQIsdp' : 'MQTT', protocolVersion, clientId: '', clean: true, keepalive: 30, ...connect } as IConnectPacket);
    const frame = await raw.take((f) => f.type === 2, 3000);
    return { raw, connack: frame.packet as IConnackPacket & { reasonCode?: number } };
  }

  #nextPacketId = 1;

  /** A fresh packet identifier for SUBSCRIBE/UNSUBSCRIBE/PUBLISH sent by a test. */
  packetId(): number {
    return this.#nextPacketId++;
  }

  /** Sends SUBSCRIBE and resolves with the SUBACK reason codes. */
  async subscribe(subscriptions: ISubscription[], properties?: { subscriptionIdentifier?: number; userProperties?: Record<string, string> }, ms = 3000): Promise<number[]> {
    const messageId = this.packetId();
    this.send({ cmd: 'subscribe', messageId, subscriptions, ...(properties ? { properties } : {}) } as Packet);
    const frame = await this.take((f) => f.type === SUBACK && f.raw.readUInt16BE(f.bodyOffset) === messageId, ms, 'SUBACK');
    return (frame.packet as ISubackPacket).granted as number[];
  }

  /** Takes the next PUBLISH and decodes it with its properties in wire order. */
  async nextPublish(ms = 3000, accept: (p: RawPublish) => boolean = () => true): Promise<RawPublish> {
    const frame = await this.take((f) => f.type === PUBLISH && accept(decodePublishV5(f)), ms, 'PUBLISH');
    return decodePublishV5(frame);
  }

  /** Asserts nothing matching arrives for `ms` (returns what did arrive, for the assertion message). */
  async quiet(ms: number, accept: (f: Frame) => boolean = (f) => f.type === PUBLISH): Promise<Frame[]> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return this.pending(accept);
  }

  send(packet: Packet): void {
    this.socket.write(mqttPacket.generate(packet, { protocolVersion: this.protocolVersion }));
  }

  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Takes (removes from the inbox) the first frame matching `accept`, waiting up to `ms`. */
  async take(accept: (f: Frame) => boolean, ms: number, what = 'a frame'): Promise<Frame> {
    const deadline = Date.now() + ms;
    for (;;) {
      const index = this.#inbox.findIndex(accept);
      if (index >= 0) return this.#inbox.splice(index, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}; inbox types: [${this.#inbox.map((f) => f.type).join(',')}]${this.closed ? ' (socket closed)' : ''}`);
      if (this.closed) throw new Error(`socket closed while waiting for ${what}; inbox types: [${this.#inbox.map((f) => f.type).join(',')}]`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Takes `n` frames matching `accept`, in arrival order. */
  async takeN(n: number, accept: (f: Frame) => boolean, ms: number, what = 'frames'): Promise<Frame[]> {
    const deadline = Date.now() + ms;
    const out: Frame[] = [];
    for (let i = 0; i < n; i++) out.push(await this.take(accept, Math.max(1, deadline - Date.now()), `${what} (${i + 1} of ${n})`));
    return out;
  }

  /** Frames matching `accept` that are in the inbox now (not removed). */
  pending(accept: (f: Frame) => boolean): Frame[] {
    return this.#inbox.filter(accept);
  }

  /** Waits for the socket to close (server-side close), up to `ms`. */
  waitClosed(ms: number): Promise<void> {
    return withTimeout(this.closedPromise, ms, 'the server to close the connection');
  }

  /** Sends DISCONNECT (v5 reason code optional) and ends the socket. */
  disconnect(reasonCode = 0, properties?: Record<string, unknown>): void {
    if (this.closed) return;
    this.send({ cmd: 'disconnect', reasonCode, ...(properties ? { properties } : {}) } as Packet);
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      const buf = this.#buffer;
      if (buf.length < 2) break;
      let remaining = 0;
      let multiplier = 1;
      let i = 1;
      let done = false;
      while (i < buf.length && i <= 4) {
        const b = buf[i]!;
        remaining += (b & 0x7f) * multiplier;
        multiplier *= 128;
        i++;
        if ((b & 0x80) === 0) {
          done = true;
          break;
        }
      }
      if (!done || buf.length < i + remaining) break;
      const raw = Buffer.from(buf.subarray(0, i + remaining));
      this.#buffer = buf.subarray(i + remaining);
      this.#parsed = null;
      this.#parser.parse(raw);
      const frame: Frame = { type: raw[0]! >> 4, flags: raw[0]! & 0x0f, raw, bodyOffset: i, packet: this.#parsed };
      this.received.push(frame);
      this.#inbox.push(frame);
    }
    this.#wake();
  }
}

// ---- MQTT 5 properties, in wire order ---------------------------------------------------------

export const Prop = {
  PayloadFormatIndicator: 0x01,
  MessageExpiryInterval: 0x02,
  ContentType: 0x03,
  ResponseTopic: 0x08,
  CorrelationData: 0x09,
  SubscriptionIdentifier: 0x0b,
  SessionExpiryInterval: 0x11,
  WillDelayInterval: 0x18,
  ReasonString: 0x1f,
  ReceiveMaximum: 0x21,
  TopicAlias: 0x23,
  UserProperty: 0x26,
} as const;

export type PropValue = number | string | Buffer | [string, string];
export type PropList = Array<[id: number, value: PropValue]>;

function encodeVarint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

function readVarint(buf: Buffer, pos: number): [value: number, next: number] {
  let value = 0;
  let multiplier = 1;
  for (;;) {
    const b = buf[pos++]!;
    value += (b & 0x7f) * multiplier;
    if ((b & 0x80) === 0) return [value, pos];
    multiplier *= 128;
  }
}

function utf8(s: string): Buffer {
  const body = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(body.length);
  return Buffer.concat([len, body]);
}

function encodeProps(props: PropList): Buffer {
  const parts: Buffer[] = [];
  for (const [id, value] of props) {
    parts.push(Buffer.from([id]));
    switch (id) {
      case Prop.PayloadFormatIndicator:
        parts.push(Buffer.from([value as number]));
        break;
      case Prop.MessageExpiryInterval:
      case Prop.SessionExpiryInterval:
      case Prop.WillDelayInterval: {
        const b = Buffer.alloc(4);
        b.writeUInt32BE(value as number);
        parts.push(b);
        break;
      }
      case Prop.TopicAlias:
      case Prop.ReceiveMaximum: {
        const b = Buffer.alloc(2);
        b.writeUInt16BE(value as number);
        parts.push(b);
        break;
      }
      case Prop.SubscriptionIdentifier:
        parts.push(encodeVarint(value as number));
        break;
      case Prop.CorrelationData: {
        const data = value as Buffer;
        const len = Buffer.alloc(2);
        len.writeUInt16BE(data.length);
        parts.push(len, data);
        break;
      }
      case Prop.UserProperty: {
        const [k, v] = value as [string, string];
        parts.push(utf8(k), utf8(v));
        break;
      }
      default:
        parts.push(utf8(value as string));
    }
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([encodeVarint(body.length), body]);
}

/** A v5 PUBLISH built by hand, properties in exactly the given order. */
export function encodePublishV5(options: { topic: string; payload: Buffer | string; qos?: 0 | 1 | 2; packetId?: number; retain?: boolean; props?: PropList }): Buffer {
  const qos = options.qos ?? 0;
  const parts: Buffer[] = [utf8(options.topic)];
  if (qos > 0) {
    const id = Buffer.alloc(2);
    id.writeUInt16BE(options.packetId ?? 1);
    parts.push(id);
  }
  parts.push(encodeProps(options.props ?? []));
  parts.push(typeof options.payload === 'string' ? Buffer.from(options.payload) : options.payload);
  const body = Buffer.concat(parts);
  const first = (PUBLISH << 4) | (qos << 1) | (options.retain ? 1 : 0);
  return Buffer.concat([Buffer.from([first]), encodeVarint(body.length), body]);
}

/** A v5 CONNECT built by hand: CONNECT and will properties in exactly the given order. */
export function encodeConnectV5(options: { clientId: string; keepalive?: number; props?: PropList; will?: { topic: string; payload: string; qos?: 0 | 1 | 2; retain?: boolean; props?: PropList } }): Buffer {
  const will = options.will;
  const flags = 0x02 | (will ? 0x04 | ((will.qos ?? 0) << 3) | (will.retain ? 0x20 : 0) : 0);
  const keepalive = Buffer.alloc(2);
  keepalive.writeUInt16BE(options.keepalive ?? 30);
  const parts: Buffer[] = [utf8('MQTT'), Buffer.from([5, flags]), keepalive, encodeProps(options.props ?? []), utf8(options.clientId)];
  if (will) parts.push(encodeProps(will.props ?? []), utf8(will.topic), utf8(will.payload));
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([0x10]), encodeVarint(body.length), body]);
}

export interface RawPublish {
  topic: string;
  qos: number;
  retain: boolean;
  dup: boolean;
  packetId: number;
  props: PropList;
  payload: Buffer;
}

/** Decodes a v5 PUBLISH frame, keeping its properties in wire order. */
export function decodePublishV5(frame: Frame): RawPublish {
  const buf = frame.raw;
  let pos = frame.bodyOffset;
  const topicLen = buf.readUInt16BE(pos);
  const topic = buf.toString('utf8', pos + 2, pos + 2 + topicLen);
  pos += 2 + topicLen;
  const qos = (frame.flags >> 1) & 3;
  let packetId = 0;
  if (qos > 0) {
    packetId = buf.readUInt16BE(pos);
    pos += 2;
  }
  const [propLen, start] = readVarint(buf, pos);
  const end = start + propLen;
  pos = start;
  const props: PropList = [];
  const readString = (): string => {
    const len = buf.readUInt16BE(pos);
    const s = buf.toString('utf8', pos + 2, pos + 2 + len);
    pos += 2 + len;
    return s;
  };
  while (pos < end) {
    const id = buf[pos++]!;
    switch (id) {
      case Prop.PayloadFormatIndicator:
        props.push([id, buf[pos++]!]);
        break;
      case Prop.MessageExpiryInterval:
        props.push([id, buf.readUInt32BE(pos)]);
        pos += 4;
        break;
      case Prop.TopicAlias:
        props.push([id, buf.readUInt16BE(pos)]);
        pos += 2;
        break;
      case Prop.SubscriptionIdentifier: {
        const [v, next] = readVarint(buf, pos);
        props.push([id, v]);
        pos = next;
        break;
      }
      case Prop.CorrelationData: {
        const len = buf.readUInt16BE(pos);
        props.push([id, Buffer.from(buf.subarray(pos + 2, pos + 2 + len))]);
        pos += 2 + len;
        break;
      }
      case Prop.UserProperty: {
        const k = readString();
        const v = readString();
        props.push([id, [k, v]]);
        break;
      }
      case Prop.ContentType:
      case Prop.ResponseTopic:
        props.push([id, readString()]);
        break;
      default:
        throw new Error(`unexpected PUBLISH property 0x${id.toString(16)}`);
    }
  }
  return { topic, qos, retain: (frame.flags & 1) === 1, dup: (frame.flags & 8) === 8, packetId, props, payload: Buffer.from(buf.subarray(end)) };
}

export function propValues(p: RawPublish, id: number): PropValue[] {
  return p.props.filter(([pid]) => pid === id).map(([, v]) => v);
}

export function userProps(p: RawPublish): Array<[string, string]> {
  return propValues(p, Prop.UserProperty) as Array<[string, string]>;
}

/** A v5 acknowledgement (PUBACK/PUBREC/PUBREL/PUBCOMP) with an explicit reason code. */
export function encodeAck(type: number, packetId: number, reasonCode?: number): Buffer {
  const flags = type === PUBREL ? 0x02 : 0;
  if (reasonCode === undefined) return Buffer.from([(type << 4) | flags, 2, packetId >> 8, packetId & 0xff]);
  return Buffer.from([(type << 4) | flags, 3, packetId >> 8, packetId & 0xff, reasonCode]);
}

/** Packet id and reason code of a received acknowledgement frame (reason 0 when omitted). */
export function ackOf(frame: Frame): { packetId: number; reasonCode: number } {
  const packetId = frame.raw.readUInt16BE(frame.bodyOffset);
  const reasonCode = frame.raw.length > frame.bodyOffset + 2 ? frame.raw[frame.bodyOffset + 2]! : 0;
  return { packetId, reasonCode };
}

/** Reason code and reason string of a received v5 DISCONNECT. */
export function disconnectOf(frame: Frame): { reasonCode: number; reasonString: string | undefined } {
  const p = frame.packet as { reasonCode?: number; properties?: { reasonString?: string } } | null;
  const reasonCode = frame.raw.length > frame.bodyOffset ? frame.raw[frame.bodyOffset]! : 0;
  return { reasonCode, reasonString: p?.properties?.reasonString };
}

// ---- mosquitto clients -----------------------------------------------------------------------

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs mosquitto_pub or mosquitto_sub to completion (killed after `ms`). `started` fires once the
 * process is spawned, for callers that need to act while it runs.
 */
export function runMosquitto(command: 'mosquitto_pub' | 'mosquitto_sub', args: string[], ms: number): Promise<ProcessResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: -1, stdout, stderr: stderr + String(err) });
    });
  });
}
