/**
 * Shared helpers for the broker wire tests: a broker on an ephemeral port, MQTT.js clients, bounded
 * waits, and a raw-socket client that speaks bytes (for wire-level checks MQTT.js would hide).
 *
 * Everything binds and connects to 127.0.0.1 only; every wait has a timeout so a failing test never
 * hangs the suite.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import mqtt, { type IClientOptions, type IConnackPacket as MqttConnackPacket, type IPublishPacket as MqttPublishPacket, type MqttClient } from 'mqtt';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { Broker } from '../../src/broker/broker.ts';
import type { BrokerOptions } from '../../src/broker/broker-options.ts';

export const HOST = '127.0.0.1';

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- broker --------------------------------------------------------------------------------------

export interface TestBroker {
  broker: Broker;
  port: number;
  /** Closes the broker (which closes its listeners). Safe to call twice. */
  close(): Promise<void>;
}

/** Starts a broker with a TCP listener on 127.0.0.1 and a free port. */
export async function startBroker(opts: BrokerOptions = {}): Promise<TestBroker> {
  const broker = new Broker(opts);
  await broker.start();
  const listener = await broker.listenTcp({ host: HOST, port: 0 });
  let closed: Promise<void> | null = null;
  return {
    broker,
    port: listener.port,
    close: () => (closed ??= broker.close()),
  };
}

// ---- MQTT.js clients -------------------------------------------------------------------------------

/**
 * Connects an MQTT.js client to 127.0.0.1:port and resolves once CONNACK arrived. Defaults: no
 * automatic reconnect (tests decide when to reconnect), MQTT 3.1.1, 5 s connect timeout.
 * Rejects if the broker refuses the connection.
 */
export function connect(port: number, opts: IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync({
    host: HOST,
    port,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...opts,
  });
}

export interface CollectingClient {
  client: MqttClient;
  /** Started before the socket opened, so messages that arrive together with CONNACK are kept. */
  messages: MessageCollector;
  connack: MqttConnackPacket;
}

/**
 * Like connect(), but records messages from the very first byte (a resumed session's queued
 * messages can arrive in the same TCP segment as CONNACK) and returns the CONNACK (sessionPresent).
 */
export function connectCollecting(port: number, opts: IClientOptions = {}): Promise<CollectingClient> {
  const client = mqtt.connect({ host: HOST, port, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...opts });
  const messages = new MessageCollector(client);
  return new Promise((resolve, reject) => {
    const fail = (err: Error): void => {
      cleanup();
      messages.stop();
      client.end(true);
      reject(err);
    };
    const onConnect = (connack: MqttConnackPacket): void => {
      cleanup();
      resolve({ client, messages, connack });
    };
    const onClose = (): void => fail(new Error('connection closed before CONNACK'));
    const timer = setTimeout(() => fail(new Error('no CONNACK within 5 s')), 5000);
    const cleanup = (): void => {
      clearTimeout(timer);
      client.off('connect', onConnect);
      client.off('error', fail);
      client.off('close', onClose);
    };
    client.on('connect', onConnect);
    client.on('error', fail);
    client.on('close', onClose);
  });
}

/** Ends a client quickly (force: no waiting for in-flight acks). Never throws. */
export async function endClient(client: MqttClient | undefined | null, force = true): Promise<void> {
  if (client === undefined || client === null) return;
  await Promise.race([
    new Promise<void>((resolve) => client.end(force, {}, () => resolve())),
    delay(1000),
  ]).catch(() => undefined);
}

export interface ReceivedMessage {
  topic: string;
  payload: Buffer;
  packet: MqttPublishPacket;
}

/**
 * Records every message a client receives from the moment it is created, so messages that arrive
 * before a test starts waiting are not lost.
 */
export class MessageCollector {
  readonly messages: ReceivedMessage[] = [];
  readonly #client: MqttClient;
  readonly #listener = (topic: string, payload: Buffer, packet: MqttPublishPacket): void => {
    this.messages.push({ topic, payload, packet });
    for (const waiter of [...this.#waiters]) waiter();
  };
  readonly #waiters = new Set<() => void>();

  constructor(client: MqttClient) {
    this.#client = client;
    client.on('message', this.#listener);
  }

  /** Resolves with the first `n` messages once at least `n` arrived; rejects after `timeoutMs`. */
  waitFor(n: number, timeoutMs = 3000): Promise<ReceivedMessage[]> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.messages.length < n) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(this.messages.slice(0, n));
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${n} messages, got ${this.messages.length}`));
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  stop(): void {
    this.#client.off('message', this.#listener);
    this.#waiters.clear();
  }
}

/**
 * Waits for the next `n` messages a client receives (counting from this call) and resolves with
 * them; rejects after `timeoutMs`. Start it before triggering the publishes (or use MessageCollector).
 */
export async function waitForMessages(client: MqttClient, n: number, timeoutMs = 3000): Promise<ReceivedMessage[]> {
  const collector = new MessageCollector(client);
  try {
    return await collector.waitFor(n, timeoutMs);
  } finally {
    collector.stop();
  }
}

/** Resolves with whatever messages arrive during `ms` (for asserting that nothing arrives). */
export async function collectFor(client: MqttClient, ms: number): Promise<ReceivedMessage[]> {
  const collector = new MessageCollector(client);
  await delay(ms);
  collector.stop();
  return collector.messages;
}

/** Resolves when the client emits 'close' (or immediately if it is already disconnected); rejects after timeoutMs. */
export function waitForClose(client: MqttClient, timeoutMs = 3000): Promise<void> {
  if (!client.connected && client.disconnected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`client did not close within ${timeoutMs} ms`)), timeoutMs);
    client.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

// ---- raw socket client -----------------------------------------------------------------------------

export interface RawClientOptions {
  /** Protocol version used to generate and parse packets; updated automatically by send(CONNECT). Default 4. */
  protocolVersion?: 3 | 4 | 5;
}

/**
 * A client that writes packets (mqtt-packet objects or raw bytes) and parses what comes back, with
 * no protocol behaviour of its own: it never acknowledges, pings or reconnects unless told to.
 */
export class RawClient {
  readonly socket: net.Socket;
  /** Every packet received, in order. */
  readonly packets: Packet[] = [];
  /** Parse errors reported by mqtt-packet (a broker sending malformed bytes). */
  readonly parseErrors: Error[] = [];
  closed = false;
  /** Time the socket closed (Date.now()), or 0. */
  closedAt = 0;
  readonly #settings: { protocolVersion: 3 | 4 | 5 };
  readonly #parser: ReturnType<typeof mqttPacket.parser>;
  #cursor = 0;
  readonly #waiters = new Set<() => void>();

  constructor(socket: net.Socket, opts: RawClientOptions = {}) {
    this.socket = socket;
    // mqtt-packet keeps a reference to this object, so changing protocolVersion later takes effect.
    this.#settings = { protocolVersion: opts.protocolVersion ?? 4 };
    this.#parser = mqttPacket.parser(this.#settings);
    this.#parser.on('packet', (packet: Packet) => {
      this.packets.push(packet);
      this.#notify();
    });
    this.#parser.on('error', (err: Error) => {
      this.parseErrors.push(err);
      this.#notify();
    });
    socket.on('data', (chunk: Buffer) => this.#parser.parse(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.closedAt = Date.now();
      this.#notify();
    });
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  get protocolVersion(): 3 | 4 | 5 {
    return this.#settings.protocolVersion;
  }

  /** Writes a packet (generated with mqtt-packet) or raw bytes. Sending CONNECT sets the protocol version. */
  send(packet: Packet | Buffer): void {
    if (Buffer.isBuffer(packet)) {
      this.socket.write(packet);
      return;
    }
    if (packet.cmd === 'connect' && packet.protocolVersion !== undefined) this.#settings.protocolVersion = packet.protocolVersion;
    this.socket.write(mqttPacket.generate(packet, { protocolVersion: this.#settings.protocolVersion }));
  }

  /**
   * Resolves with the next received packet not yet returned by next() (optionally the next one with
   * the given cmd, skipping others); rejects on timeout or if the socket closes first.
   */
  next(cmd?: Packet['cmd'], timeoutMs = 3000): Promise<Packet> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        while (this.#cursor < this.packets.length) {
          const packet = this.packets[this.#cursor++]!;
          if (cmd === undefined || packet.cmd === cmd) {
            done();
            resolve(packet);
            return;
          }
        }
        if (this.closed) {
          done();
          reject(new Error(`socket closed while waiting for ${cmd ?? 'a packet'}`));
        }
      };
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${cmd ?? 'a packet'}`));
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  /** Sends CONNECT and resolves with the CONNACK. Defaults: MQTT 3.1.1, clean, keepalive 60. */
  async handshake(connect: Partial<mqttPacket.IConnectPacket> & { clientId: string }, timeoutMs = 3000): Promise<mqttPacket.IConnackPacket> {
    this.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, ...connect });
    return (await this.next('connack', timeoutMs)) as mqttPacket.IConnackPacket;
  }

  /** Resolves when the server closes the socket (with the time it closed); rejects after timeoutMs. */
  waitForClose(timeoutMs = 3000): Promise<number> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!this.closed) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(this.closedAt);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`socket still open after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  /** Graceful DISCONNECT then end. */
  disconnect(): void {
    if (this.closed) return;
    this.send({ cmd: 'disconnect' });
    this.socket.end();
  }

  /** Drops the connection without DISCONNECT (an ungraceful close: the will fires). */
  destroy(): void {
    this.socket.destroy();
  }
}

export interface ConnectFrameOptions {
  /** Protocol name, 'MQTT' or 'MQIsdp' (or anything, to test refusals). */
  name: string;
  /** Protocol level byte (3, 4, 5, or an unsupported value). */
  level: number;
  /** Connect flags byte (0x02 = clean session). */
  flags: number;
  keepalive: number;
  clientId: string;
}

/**
 * Hand-built CONNECT bytes (no will, no credentials), for what mqtt-packet refuses to generate:
 * empty client ids with clean=false, unknown protocol levels.
 */
export function connectFrame(o: ConnectFrameOptions): Buffer {
  const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
  const name = Buffer.from(o.name);
  const id = Buffer.from(o.clientId);
  const body = Buffer.concat([u16(name.length), name, Buffer.from([o.level, o.flags]), u16(o.keepalive), u16(id.length), id]);
  if (body.length > 127) throw new Error('connectFrame: body too long for a one-byte remaining length');
  return Buffer.concat([Buffer.from([0x10, body.length]), body]);
}

/** Opens a TCP connection to 127.0.0.1:port and wraps it in a RawClient. Rejects after timeoutMs. */
export function rawConnect(port: number, opts: RawClientOptions = {}, timeoutMs = 3000): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`raw connect to ${port} timed out`));
    }, timeoutMs);
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.setNoDelay(true);
      resolve(new RawClient(socket, opts));
    });
  });
}

// ---- child processes (mosquitto_pub / mosquitto_sub) -------------------------------------------

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the process was killed because it outlived timeoutMs. */
  timedOut: boolean;
}

export interface RunningProcess {
  readonly pid: number | undefined;
  /** Output so far. */
  stdout(): string;
  /** Settles when the process exits (never rejects). */
  readonly done: Promise<ProcessResult>;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Spawns a command (no shell) with an optional stdin text and a hard timeout after which it is
 * killed with SIGKILL, so a test can always await `done`.
 */
export function spawnProcess(command: string, args: string[], opts: { stdin?: string; timeoutMs?: number } = {}): RunningProcess {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.on('error', () => undefined);
  if (opts.stdin !== undefined) child.stdin.end(opts.stdin);
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? 10_000);
  const done = new Promise<ProcessResult>((resolve) => {
    child.on('error', (err) => {
      stderr += String(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
  return {
    pid: child.pid,
    stdout: () => stdout,
    done,
    kill: (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}
