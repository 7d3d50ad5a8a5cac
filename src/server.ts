/**
 * Composition root: settings → database → stores → broker → listeners. `startServer` builds and
 * starts one node in-process (tests use it); `main` is the process around it: it reads argv/env,
 * maps failures to exit codes (2 = bad settings, 1 = could not start or crashed) and turns SIGINT /
 * SIGTERM into a graceful stop (stop accepting, close the broker, flush the stores, close the
 * database) followed by exit 0.
 */
import { realpathSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createSecureContext } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { ActionStore } from './actions/action-store.ts';
import { createPublishPipeline } from './actions/publish-pipeline.ts';
import { LockStore } from './actions/lock-store.ts';
import type { ActionExecutors } from './actions/run-context.ts';
import { RunHistory } from './actions/run-history.ts';
import { ActionRunner } from './actions/runner.ts';
import { Scheduler } from './actions/scheduler.ts';
import { variableTriggers } from './actions/variable-trigger.ts';
import { systemClock } from './broker/clock.ts';
import { actionsRoutes } from './api/routes/actions.ts';
import { Broker } from './broker/broker.ts';
import type { ClientInfo } from './broker/client-info.ts';
import type { BrokerHooks } from './broker/hooks.ts';
import type { Listener } from './broker/transport/transport.ts';
import { SqliteRetainedStore } from './broker/retained/sqlite-retained-store.ts';
import { SqliteSessionStore } from './broker/session/sqlite-session-store.ts';
import { SysTopics } from './broker/sys-topics.ts';
import { ConfigError, PrintAndExit, loadConfig, packageVersion, type Config, type SettingKey, flagName } from './config.ts';
import type { BucketStore } from './data/bucket-store.ts';
import type { CommitObserver } from './data/group-commit.ts';
import { DeviceCache } from './data/device-cache.ts';
import { Ingestor } from './data/ingest.ts';
import { RetentionJob } from './data/retention-job.ts';
import { PostgresBucketStore } from './data/postgres/postgres-bucket-store.ts';
import { SqliteBucketStore } from './data/sqlite/sqlite-bucket-store.ts';
import { createLogger, type Logger } from './log.ts';
import { openDatabase, type Database } from './storage/sqlite-database.ts';
import { attachMqttOverWebSocket, buildApiServer } from './api/app.ts';
import { listenHttps } from './api/https-listener.ts';
import { ensureFirstRun, firstRunBanner, type FirstRunCredentials } from './tenancy/first-run.ts';
import { createMqttAccess } from './tenancy/mqtt-access.ts';
import { Registry } from './tenancy/registry.ts';
import { Revoker } from './tenancy/revocation.ts';
import { InspectorBus } from './inspector/inspector-bus.ts';
import { PayloadParsers } from './parser/payload-parsers.ts';
import { ParserSandbox } from './parser/sandbox.ts';
import { operationsRoutes } from './metrics/metrics-routes.ts';
import { Metrics } from './metrics/prometheus.ts';
import { Readiness } from './metrics/readiness.ts';

/** The database file inside the data directory: registry, actions, sessions, retained messages. */
export const DATABASE_FILE = 'bucketmq.db';

/**
 * The SQLite buckets' own file. Separate because SQLite has one write lock per file: the bucket writer
 * thread commits large batches continuously, and registry or session writes on the event loop would
 * otherwise wait for it (blocking every client meanwhile).
 */
export const BUCKETS_FILE = 'buckets.db';

/** Milliseconds a graceful stop may take before the process gives up and exits 1. */
const SHUTDOWN_TIMEOUT_MS = 10_000;

export interface ServerPorts {
  mqtt: number;
  /** Present when TLS is configured. */
  mqtts?: number;
  /** HTTP API; MQTT over WebSocket is on its /mqtt path. */
  http: number;
  /** The HTTP API over TLS, with MQTT over secure WebSocket on /mqtt; present when TLS is configured. */
  https?: number;
}

export interface RunningServer {
  /** The ports actually bound (differ from the config when it asked for 0). */
  readonly ports: ServerPorts;
  readonly broker: Broker;
  readonly registry: Registry;
  readonly actions: ActionStore;
  /** Runs actions of every trigger (queue, run history, locks of variable actions, schedules). */
  readonly actionRuns: { readonly runner: ActionRunner; readonly history: RunHistory; readonly locks: LockStore; readonly scheduler: Scheduler };
  /** The buckets and the one path into them (MQTT and HTTP). */
  readonly data: { readonly store: BucketStore; readonly ingestor: Ingestor };
  readonly retention: RetentionJob;
  /** The live inspector's per-device event stream (SPEC §6). */
  readonly inspector: InspectorBus;
  /** Runs devices' payload parsers (SPEC §4); also behind the admin API's test run. */
  readonly sandbox: ParserSandbox;
  /** Credentials created on an empty database (first run), else null. Printed by `main`, once. */
  readonly firstRun: FirstRunCredentials | null;
  /** Stops accepting, disconnects clients, flushes the stores and closes the database. Idempotent. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Default: a logger built from config.logLevel / config.logFormat. */
  logger?: Logger;
  /** Milliseconds between retention passes (SPEC §1: retention days, record caps). Default 60,000. */
  retentionIntervalMs?: number;
  /**
   * Where buckets live. Default: PostgreSQL when `postgresUrl` is set, else SqliteBucketStore in
   * BUCKETS_FILE. The server closes the store it is given when it stops (benchmarks pass a
   * PostgresBucketStore here).
   */
  bucketStore?: () => BucketStore;
  /** What runs each action type (src/actions/types/); default: every run fails as not available in this build. */
  actionExecutors?: ActionExecutors;
}

/** Until the action types are wired in: a run says plainly that its type cannot run here. */
const NO_EXECUTORS: ActionExecutors = {
  run: async (action) => ({ ok: false, attempts: 0, error: `action type ${action.type} is not available in this build` }),
};

/** A device's last_input is written at most this often (every stored message would be a write). */
const LAST_INPUT_INTERVAL_MS = 1_000;

/** The server could not start for a reason outside the settings' syntax (port in use, unreadable data dir). */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const log = options.logger ?? createLogger({ level: config.logLevel, format: config.logFormat });
  const tls = config.tlsCert !== undefined && config.tlsKey !== undefined ? await loadTls(config.tlsCert, config.tlsKey) : undefined;

  const databasePath = path.resolve(config.dataDir, DATABASE_FILE);
  let db: Database;
  try {
    db = openDatabase(databasePath);
  } catch (error) {
    throw new StartupError(`${flagName('dataDir')}: cannot open the database ${databasePath}: ${messageOf(error)}`);
  }

  // Undone in reverse if a later step fails, so a failed start leaves no socket or file handle behind.
  const undo: Array<() => unknown> = [() => db.close()];
  try {
    const reportError = (context: string, error: unknown): void => log.error({ err: error }, context);
    const sessionStore = new SqliteSessionStore(db, { reportError });
    const retainedStore = new SqliteRetainedStore(db, { reportError });
    undo.push(() => sessionStore.close(), () => retainedStore.close());

    const registry = new Registry(db);
    registry.installPlans(config.plans);
    if (registry.plan(config.defaultPlan) === null) {
      throw new ConfigError(`${flagName('defaultPlan')}: plan "${config.defaultPlan}" does not exist (known: ${registry.plans().map((p) => p.name).join(', ')})`, 'defaultPlan');
    }
    const firstRun = ensureFirstRun(registry, config.defaultPlan);
    const anonymousAccountId = config.allowAnonymous
      ? (registry.accountByName(config.anonymousAccount) ?? registry.createAccount({ name: config.anonymousAccount, plan: config.defaultPlan }).account).id
      : null;
    const actions = new ActionStore(db, registry);
    // The metrics are built once the broker exists; the store tells them of its commits from then on.
    let metrics: Metrics | null = null;
    const onCommit: CommitObserver = (seconds, records) => metrics?.observeCommit(seconds, records);
    const store = options.bucketStore?.() ?? (config.postgresUrl !== undefined ? await openPostgres(config.postgresUrl, onCommit) : openSqliteBuckets(config.dataDir, onCommit));
    undo.push(() => store.close());
    const ingestor = new Ingestor(store);
    trackLastInput(ingestor, registry);
    const devices = new DeviceCache(registry);
    undo.push(() => devices.close());
    const inspector = new InspectorBus();
    const sandbox = new ParserSandbox({ timeoutMs: config.parser.timeoutMs, memoryMb: config.parser.memoryMb, timezone: config.parser.timezone }, {
      onQuarantine: (deviceId) => log.warn({ deviceId }, 'a payload parser crashed the parser sandbox process; it is stopped until its code changes'),
    });
    undo.push(() => sandbox.dispose());
    const parsers = new PayloadParsers(sandbox, devices, inspector);
    ingestor.useParsers(parsers);
    const locks = new LockStore(db);
    const history = new RunHistory(db);
    actions.onChange((change) => change.triggerChanged && locks.clear(change.actionId));
    registry.on('revoked', (revocation) => revocation.kind === 'device-deleted' && locks.forgetDevice(revocation.deviceId));
    const runner = new ActionRunner({ executors: options.actionExecutors ?? NO_EXECUTORS, history, inspector, actions, devices, log, queueSize: config.actionQueue });
    ingestor.onStored(variableTriggers({ actions, devices, locks, runner, log }));
    const scheduler = new Scheduler({ db, actions, runner, clock: systemClock, log });
    undo.push(() => history.close());
    forgetDeletedDevices(registry, { store, parsers, inspector }, log);
    const access = createMqttAccess(registry, { anonymousAccountId, acl: config.acl, aclDefault: config.aclDefault });
    const hooks: BrokerHooks = { ...access, onPublish: createPublishPipeline({ actions, devices, ingestor, log, runner }) };

    const broker = new Broker({ limits: config.limits, sessionStore, retainedStore, hooks });
    logBrokerEvents(broker, log);
    const revoker = new Revoker(broker, registry);
    undo.push(() => revoker.stop());
    await broker.start();
    undo.push(() => broker.close());
    scheduler.start();
    undo.push(() => scheduler.stop());
    if (config.metrics.enabled) metrics = new Metrics({ broker, sandbox, parsers, accounts: registry, accountAllowList: config.metrics.accounts });
    const sys = new SysTopics(broker, { intervalSeconds: config.sysInterval, version: `bucketmq version ${packageVersion()}` });
    sys.start();
    undo.push(() => sys.stop());
    const retention = new RetentionJob(registry, store, { intervalMs: options.retentionIntervalMs, log });
    retention.start();
    undo.push(() => retention.stop());

    const host = config.host;
    const mqtt = await listen('mqtt', 'mqttPort', host, config.mqttPort, () => broker.listenTcp({ host, port: config.mqttPort }));
    log.info({ listener: 'mqtt', host, port: mqtt.port }, `mqtt listening on ${hostPort(host, mqtt.port)}`);
    let mqtts: { port: number } | undefined;
    if (tls !== undefined) {
      mqtts = await listen('mqtts', 'mqttsPort', host, config.mqttsPort, () =>
        broker.listenTls({ host, port: config.mqttsPort, cert: tls.cert, key: tls.key }),
      );
      log.info({ listener: 'mqtts', host, port: mqtts.port }, `mqtts listening on ${hostPort(host, mqtts.port)}`);
    }
    const api = buildApiServer({ registry, broker, logger: log, data: { store, ingestor }, sandbox, inspector, inspectorLive: config.inspector });
    attachMqttOverWebSocket(api, broker);
    undo.push(() => api.close());
    await api.register(actionsRoutes, { actions, registry, runner, history, locks });
    let listening = false;
    const readiness = new Readiness({ registryDb: db, buckets: store, listening: () => listening });
    await api.register(operationsRoutes, { readiness, metrics, metricsToken: config.metrics.token });
    const http = await listen('http', 'httpPort', host, config.httpPort, async () => {
      await api.listen({ host, port: config.httpPort });
      const address = api.server.address();
      return { port: typeof address === 'object' && address !== null ? address.port : config.httpPort };
    });
    log.info(
      { listener: 'http', host, port: http.port },
      `http listening on ${hostPort(host, http.port)} (API, and MQTT over WebSocket at ws://${hostPort(host, http.port)}/mqtt)`,
    );
    // Plain HTTP stays on beside HTTPS (issue 14), so a loopback-only setup needs no certificate.
    let https: Listener | undefined;
    if (tls !== undefined) {
      const listener = await listen('https', 'httpsPort', host, config.httpsPort, () => listenHttps(api, broker, { host, port: config.httpsPort, ...tls }));
      undo.push(() => listener.close());
      log.info(
        { listener: 'https', host, port: listener.port },
        `https listening on ${hostPort(host, listener.port)} (API at https://${hostPort(host, listener.port)}, and MQTT over WebSocket at wss://${hostPort(host, listener.port)}/mqtt)`,
      );
      https = listener;
    }
    listening = true;
    log.info({ dataDir: path.resolve(config.dataDir) }, `bucketmq ready, data in ${path.resolve(config.dataDir)}`);

    let stopping: Promise<void> | undefined;
    const stop = async (): Promise<void> => {
      // The broker stops its listeners first, then disconnects clients (v5: 0x8B) and flushes the stores;
      // then the HTTPS and HTTP listeners finish their requests, the bucket writers drain, and the database closes last.
      listening = false;
      try {
        sys.stop();
        revoker.stop();
        scheduler.stop();
        await retention.stop();
        await broker.close();
        await https?.close();
        await api.close();
      } finally {
        devices.close();
        sandbox.dispose();
        await store.close();
        await sessionStore.close();
        await retainedStore.close();
        history.close();
        db.close();
      }
      log.info('bucketmq stopped');
    };
    const ports: ServerPorts = {
      mqtt: mqtt.port,
      http: http.port,
      ...(mqtts !== undefined ? { mqtts: mqtts.port } : {}),
      ...(https !== undefined ? { https: https.port } : {}),
    };
    return {
      ports,
      broker,
      registry,
      actions,
      actionRuns: { runner, history, locks, scheduler },
      data: { store, ingestor },
      retention,
      inspector,
      sandbox,
      firstRun,
      stop: () => (stopping ??= stop()),
    };
  } catch (error) {
    for (const step of undo.reverse()) {
      try {
        await step();
      } catch (cleanupError) {
        log.warn({ err: cleanupError }, 'cleanup after a failed start');
      }
    }
    throw error;
  }
}

/** Keeps each device's last_input current, writing it at most once a second per device. */
function trackLastInput(ingestor: Ingestor, registry: Registry): void {
  const written = new Map<string, number>();
  registry.on('device-changed', (deviceId) => written.delete(deviceId));
  ingestor.onStored((deviceId) => {
    const now = Date.now();
    if (now - (written.get(deviceId) ?? 0) < LAST_INPUT_INTERVAL_MS) return;
    written.set(deviceId, now);
    registry.recordInput(deviceId);
  });
}

/** A deleted device's records go with it (also for devices of a deleted account). */
/** A deleted device's bucket, parser sandbox and inspector history go with it. */
function forgetDeletedDevices(registry: Registry, parts: { store: BucketStore; parsers: PayloadParsers; inspector: InspectorBus }, log: Logger): void {
  registry.on('revoked', (revocation) => {
    if (revocation.kind !== 'device-deleted') return;
    const { deviceId } = revocation;
    parts.parsers.invalidate(deviceId);
    parts.inspector.forget(deviceId);
    parts.store.delete(deviceId, {}).catch((error: unknown) => log.error({ err: error, deviceId }, 'could not delete the bucket of a deleted device'));
  });
}

/** The SQLite store over BUCKETS_FILE; closing the store closes the file. */
function openSqliteBuckets(dataDir: string, onCommit: CommitObserver): BucketStore {
  const bucketsPath = path.resolve(dataDir, BUCKETS_FILE);
  let db: Database;
  try {
    db = openDatabase(bucketsPath);
  } catch (error) {
    throw new StartupError(`${flagName('dataDir')}: cannot open the bucket database ${bucketsPath}: ${messageOf(error)}`);
  }
  return new SqliteBucketStore(db, { closeDatabase: true, onCommit });
}

async function openPostgres(url: string, onCommit: CommitObserver): Promise<BucketStore> {
  try {
    return await PostgresBucketStore.open({ connectionString: url, onCommit });
  } catch (error) {
    // The URL may hold a password: name the setting, not the value.
    throw new StartupError(`${flagName('postgresUrl')}: cannot open the PostgreSQL bucket store: ${messageOf(error)}`);
  }
}

async function listen<T extends { port: number }>(
  name: string,
  setting: SettingKey,
  host: string,
  port: number,
  open: () => Promise<T>,
): Promise<T> {
  try {
    return await open();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'EADDRINUSE' ? 'the port is already in use' : messageOf(error);
    throw new StartupError(`${flagName(setting)}: cannot start the ${name} listener on ${hostPort(host, port)}: ${reason}`);
  }
}

/** Reads the certificate and key and checks that they are PEM and belong together, before anything is opened. */
async function loadTls(certFile: string, keyFile: string): Promise<{ cert: Buffer; key: Buffer }> {
  const cert = await readSetting(certFile, 'tlsCert');
  const key = await readSetting(keyFile, 'tlsKey');
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    throw new ConfigError(
      `${flagName('tlsCert')} ${JSON.stringify(certFile)}, ${flagName('tlsKey')} ${JSON.stringify(keyFile)}: not a usable PEM certificate and matching private key: ${messageOf(error)}`,
      'tlsCert',
    );
  }
  return { cert, key };
}

async function readSetting(file: string, setting: SettingKey): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    throw new ConfigError(`${flagName(setting)}: cannot read ${JSON.stringify(file)}: ${messageOf(error)}`, setting);
  }
}

/**
 * Mirrors broker events into the log. Listeners are attached only for the levels that are on, so a
 * broker at the default level pays nothing per publish. Never logs the username or the client's
 * `data`: a device may carry its token in the username (SPEC §2).
 */
function logBrokerEvents(broker: Broker, log: Logger): void {
  if (log.isLevelEnabled('info')) {
    broker.on('client.connect', (client, detail) => {
      log.info(
        { ...who(client), cleanStart: detail.cleanStart, keepalive: detail.keepalive, sessionExpiry: detail.sessionExpiry, will: detail.will?.topic },
        'client connected',
      );
    });
    broker.on('client.connack', (request, detail) => {
      if (detail.reasonCode === 0) return;
      log.info(
        { clientId: request.clientId, address: request.remoteAddress, transport: request.transport, reasonCode: detail.reasonCode, reason: detail.reasonString },
        'connection refused',
      );
    });
    broker.on('client.disconnect', (client, detail) => {
      log.info({ ...who(client), cause: detail.cause, reasonCode: detail.reasonCode, detail: detail.detail }, 'client disconnected');
    });
    broker.on('client.error', (client, detail) => {
      if (detail.fault !== undefined) return; // logged as an error below
      log.info(
        { ...(client === null ? { address: detail.remoteAddress } : who(client)), reasonCode: detail.reasonCode, error: detail.message },
        'client error, connection closed',
      );
    });
  }
  if (log.isLevelEnabled('error')) {
    broker.on('client.error', (client, detail) => {
      if (detail.fault === undefined) return;
      log.error(
        { ...(client === null ? { address: detail.remoteAddress } : who(client)), reasonCode: detail.reasonCode, err: detail.fault },
        'internal error while handling a client packet (a bug), connection closed',
      );
    });
  }
  if (log.isLevelEnabled('warn')) {
    broker.on('client.takeover-storm', (detail) => {
      log.warn(
        { clientId: detail.clientId, namespace: detail.namespace || undefined, addresses: detail.addresses, blockedUntil: new Date(detail.blockedUntil).toISOString() },
        'client id taken over in a loop by two connections; refused for a while',
      );
    });
  }
  if (log.isLevelEnabled('debug')) {
    broker.on('client.subscribe', (client, subscriptions) => log.debug({ ...who(client), subscriptions }, 'subscribe'));
    broker.on('client.unsubscribe', (client, filters) => log.debug({ ...who(client), filters }, 'unsubscribe'));
    broker.on('message.dropped', (client, message, reason) => {
      log.debug({ clientId: client.clientId, namespace: client.namespace || undefined, topic: message.topic, qos: message.qos, reason }, 'message dropped');
    });
  }
  if (log.isLevelEnabled('trace')) {
    broker.on('message.publish', (client, message) => {
      log.trace(
        { clientId: client?.clientId, namespace: client?.namespace || undefined, topic: message.topic, qos: message.qos, retain: message.retain, bytes: message.payload.length },
        'publish',
      );
    });
  }
}

function who(client: ClientInfo): Record<string, unknown> {
  return {
    clientId: client.clientId,
    namespace: client.namespace === '' ? undefined : client.namespace,
    address: client.remoteAddress,
    transport: client.transport,
    protocol: client.protocolVersion,
  };
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The process: settings from `argv` (arguments after the script) and `env`, then run until SIGINT or
 * SIGTERM. Exit codes: 0 after a graceful stop (or --help), 1 when the server cannot start, crashes or
 * cannot stop in time, 2 for a bad setting (the message names it; no stack trace).
 */
export async function main(argv: readonly string[], env: Record<string, string | undefined>): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(argv, env);
  } catch (error) {
    if (error instanceof PrintAndExit) {
      process.stdout.write(error.text);
      process.exit(0);
    }
    if (error instanceof ConfigError) exitWithConfigError(error);
    throw error;
  }

  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  process.on('uncaughtException', (error) => {
    log.fatal({ err: error }, 'uncaught exception, exiting');
    process.exit(1);
  });
  process.on('unhandledRejection', (reason) => {
    log.fatal({ err: reason }, 'unhandled promise rejection, exiting');
    process.exit(1);
  });

  let server: RunningServer;
  try {
    server = await startServer(config, { logger: log });
  } catch (error) {
    if (error instanceof ConfigError) exitWithConfigError(error);
    if (error instanceof StartupError) {
      log.error(error.message);
      process.exit(1);
    }
    log.fatal({ err: error }, 'could not start');
    process.exit(1);
  }

  if (server.firstRun !== null) process.stdout.write(firstRunBanner(server.firstRun, server.ports, config.host) + '\n');

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn(`${signal} again, exiting without finishing the shutdown`);
      process.exit(1);
    }
    stopping = true;
    log.info(`${signal} received, shutting down`);
    setTimeout(() => {
      log.error(`shutdown did not finish within ${SHUTDOWN_TIMEOUT_MS} ms, exiting`);
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS).unref();
    server.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

function exitWithConfigError(error: ConfigError): never {
  process.stderr.write(`bucketmq: ${error.message}\nRun "bucketmq --help" for the list of settings.\n`);
  process.exit(2);
}

function isMain(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isMain()) {
  main(process.argv.slice(2), process.env).catch((error: unknown) => {
    process.stderr.write(`bucketmq: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
