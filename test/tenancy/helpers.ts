/**
 * Helpers for the tenancy tests: a broker wired to a Registry the way src/server.ts wires it
 * (createMqttAccess hooks + Revoker), accounts and devices with tokens, and MQTT.js probes that
 * return reason codes (CONNACK, SUBACK, PUBACK, server DISCONNECT). Every wait is bounded.
 */
import mqtt, { type IClientOptions, type IConnackPacket, type IDisconnectPacket, type MqttClient } from 'mqtt';
import { Broker } from '../../src/broker/broker.ts';
import { openDatabase, type Database } from '../../src/storage/sqlite-database.ts';
import type { Permission } from '../../src/tenancy/model.ts';
import { createMqttAccess, type MqttAccessOptions } from '../../src/tenancy/mqtt-access.ts';
import { Registry } from '../../src/tenancy/registry.ts';
import { Revoker } from '../../src/tenancy/revocation.ts';
import { HOST, delay } from '../broker/helpers.ts';

export { HOST, delay };

export interface TenancyBroker {
  broker: Broker;
  port: number;
  registry: Registry;
  db: Database;
  revoker: Revoker;
  /** Stops the revoker, closes the broker and the database. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts a broker on 127.0.0.1:0 with the tenancy hooks over an in-memory registry (plans
 * installed; or over a database file, to share it with a second Registry like the CLI does). `configure` runs after the registry exists (so it can create the anonymous account)
 * and returns the access options; defaults: anonymous off, no ACL, default allow.
 */
export async function startTenancyBroker(
  configure: (registry: Registry) => Partial<MqttAccessOptions> = () => ({}),
  databasePath = ':memory:',
): Promise<TenancyBroker> {
  const db = openDatabase(databasePath);
  const registry = new Registry(db);
  registry.installPlans();
  const options: MqttAccessOptions = { anonymousAccountId: null, acl: [], aclDefault: 'allow', ...configure(registry) };
  const broker = new Broker({ hooks: createMqttAccess(registry, options) });
  const revoker = new Revoker(broker, registry);
  await broker.start();
  const listener = await broker.listenTcp({ host: HOST, port: 0 });
  let closed: Promise<void> | null = null;
  return {
    broker,
    port: listener.port,
    registry,
    db,
    revoker,
    close: () =>
      (closed ??= (async () => {
        revoker.stop();
        await broker.close();
        db.close();
      })()),
  };
}

export interface TestDevice {
  accountId: string;
  deviceId: string;
  /** The token the device logs in with (its default full token, or the extra one asked for). */
  token: string;
  tokenId: string;
}

export function newAccount(registry: Registry, name = 'acct'): string {
  return registry.createAccount({ name }).account.id;
}

/**
 * Creates a device. With `permission` or `expire_time`, an extra token with those settings is created
 * and returned instead of the default full one.
 */
export function newDevice(registry: Registry, accountId: string, name = 'dev', token?: { permission?: Permission; expire_time?: string }): TestDevice {
  const created = registry.createDevice(accountId, { name });
  if (token === undefined) return { accountId, deviceId: created.device.id, token: created.token, tokenId: created.tokenInfo.id };
  const extra = registry.createDeviceToken(accountId, created.device.id, { name: 'extra', permission: token.permission ?? 'full', expire_time: token.expire_time });
  return { accountId, deviceId: created.device.id, token: extra.token, tokenId: extra.info.id };
}

// ---- MQTT.js --------------------------------------------------------------------------------

/**
 * Connects MQTT.js (default v5, username "Token", password = token) and resolves once CONNACK 0
 * arrived; rejects (with the client ended) on refusal or after 4 s.
 */
export function login(port: number, token: string | null, opts: IClientOptions = {}): Promise<MqttClient> {
  const creds: IClientOptions = token === null ? {} : { username: 'Token', password: token };
  return mqtt.connectAsync({ host: HOST, port, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 4000, ...creds, ...opts });
}

/**
 * Like login(), but records messages from the first byte (a resumed session's queue can arrive in
 * the same segment as CONNACK) and returns the CONNACK's sessionPresent.
 */
export async function loginRecording(port: number, token: string, opts: IClientOptions = {}): Promise<{ client: MqttClient; got: Received[]; sessionPresent: boolean }> {
  const client = mqtt.connect({ host: HOST, port, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 4000, username: 'Token', password: token, ...opts });
  const got = record(client);
  try {
    const connack = await withTimeout(
      new Promise<IConnackPacket>((resolve, reject) => {
        client.once('connect', resolve);
        client.once('error', reject);
        client.once('close', () => reject(new Error('closed before CONNACK')));
      }),
      4000,
      'CONNACK',
    );
    return { client, got, sessionPresent: connack.sessionPresent };
  } catch (err) {
    client.end(true);
    throw err;
  }
}

/**
 * Tries a CONNECT with MQTT.js and resolves with the CONNACK code: 0 when accepted (the client is
 * then ended), otherwise the refusal code (v3 return code / v5 reason code). Rejects when nothing
 * decisive happens within 4 s.
 */
export function connackCode(port: number, opts: IClientOptions): Promise<number> {
  const client = mqtt.connect({ host: HOST, port, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 4000, ...opts });
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => finish(() => reject(new Error('no CONNACK within 4 s'))), 4000);
    const finish = (settle: () => void): void => {
      clearTimeout(timer);
      client.removeAllListeners('connect');
      client.removeAllListeners('error');
      client.on('error', () => undefined);
      client.end(true);
      settle();
    };
    client.once('connect', () => finish(() => resolve(0)));
    client.on('error', (err: Error & { code?: number | string }) => {
      if (typeof err.code === 'number') finish(() => resolve(err.code as number));
      else finish(() => reject(err));
    });
  });
}

/** SUBACK codes for `filters` (v3: granted QoS or 0x80; v5: reason codes). */
export async function subackCodes(client: MqttClient, filters: string[], qos: 0 | 1 | 2 = 1): Promise<number[]> {
  const attempt = client.subscribeAsync(filters, { qos }).then(
    (granted) => granted.map((g) => g.qos as number),
    (err: Error & { packet?: { granted?: number[] } }) => {
      if (err.packet?.granted !== undefined) return err.packet.granted;
      throw err;
    },
  );
  return withTimeout(attempt, 3000, 'SUBACK');
}

/** v5 QoS 1 publish: resolves with the PUBACK reason code (0 = success). */
export async function pubackCode(client: MqttClient, topic: string, payload: string, opts: { retain?: boolean } = {}): Promise<number> {
  const attempt = client.publishAsync(topic, payload, { qos: 1, retain: opts.retain ?? false }).then(
    (packet) => (packet as { reasonCode?: number } | undefined)?.reasonCode ?? 0,
    (err: Error & { code?: number }) => {
      if (typeof err.code === 'number') return err.code;
      throw err;
    },
  );
  return withTimeout(attempt, 3000, 'PUBACK');
}

export interface EndWatch {
  /** The server's DISCONNECT (v5), when one arrived. */
  disconnect: IDisconnectPacket | null;
  disconnectAt: number;
  /** Time the connection closed, or 0 while open. */
  closedAt: number;
  /** Resolves with the close time; rejects after timeoutMs. */
  closed(timeoutMs?: number): Promise<number>;
}

/** Starts recording how a connected client's connection ends. */
export function watchEnd(client: MqttClient): EndWatch {
  const watch: EndWatch = {
    disconnect: null,
    disconnectAt: 0,
    closedAt: 0,
    closed: (timeoutMs = 3000) =>
      watch.closedAt !== 0
        ? Promise.resolve(watch.closedAt)
        : withTimeout(new Promise<number>((resolve) => client.once('close', () => resolve(watch.closedAt || Date.now()))), timeoutMs, 'connection close'),
  };
  client.on('disconnect', (packet) => {
    watch.disconnect = packet;
    watch.disconnectAt = Date.now();
  });
  client.once('close', () => {
    watch.closedAt = Date.now();
  });
  client.on('error', () => undefined);
  return watch;
}

export async function endAll(clients: Array<MqttClient | undefined>): Promise<void> {
  await Promise.all(
    clients.map(async (c) => {
      if (c === undefined) return;
      await withTimeout(c.endAsync(true), 2000, 'MQTT.js end').catch(() => undefined);
    }),
  );
}

export interface Received {
  topic: string;
  payload: string;
  retain: boolean;
}

/** Payloads received by `client` from now on, as strings, with topics. */
export function record(client: MqttClient): Received[] {
  const got: Received[] = [];
  client.on('message', (topic, payload, packet) => got.push({ topic, payload: payload.toString(), retain: packet.retain }));
  return got;
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `predicate` every 10 ms until true; rejects after timeoutMs naming `what`. */
export async function waitUntil(predicate: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(10);
  }
}
