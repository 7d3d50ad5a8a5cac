/**
 * Server settings. Each setting has one name from which everything else is derived: the config-file
 * key (`mqttPort`), the flag (`--mqtt-port`) and the environment variable (`BUCKETMQ_MQTT_PORT`).
 * Sources, lowest to highest precedence: defaults < JSON config file (`--config FILE`) < environment <
 * flags. `loadConfig` touches no process globals (argv and env are parameters) so tests drive it
 * directly; the only I/O is reading the config file and package.json.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { DEFAULT_LIMITS, type BrokerLimits } from './broker/broker-options.ts';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from './log.ts';
import type { AclRule } from './tenancy/acl.ts';
import { isTimeZone } from './parser/options.ts';
import type { Plan } from './tenancy/model.ts';

export interface Config {
  /** Interface every listener binds to. */
  host: string;
  /** MQTT over TCP; 0 = a random free port. */
  mqttPort: number;
  /** MQTT over TLS; only listened on when `tlsCert` and `tlsKey` are set. */
  mqttsPort: number;
  /** PEM certificate (chain) file; set together with `tlsKey` or not at all. */
  tlsCert: string | undefined;
  /** PEM private key file. */
  tlsKey: string | undefined;
  /** HTTP: admin and device API, console, and MQTT over WebSocket on /mqtt. */
  httpPort: number;
  /** The same as `httpPort` over TLS (WSS on /mqtt); only listened on when `tlsCert` and `tlsKey` are set. */
  httpsPort: number;
  /** Directory holding bucketmq.db; created when missing. */
  dataDir: string;
  /** PostgreSQL connection URL for buckets; undefined = buckets in the SQLite file. */
  postgresUrl: string | undefined;
  logLevel: LogLevel;
  logFormat: LogFormat;
  limits: BrokerLimits;
  /** Clients without credentials join this account (by name; created if missing); off when false. */
  allowAnonymous: boolean;
  anonymousAccount: string;
  aclDefault: 'allow' | 'deny';
  defaultPlan: string;
  /** ACL rules, from the config file only (SPEC §2). */
  acl: AclRule[];
  /** Plans added to or replacing the defaults, from the config file only (SPEC §7). */
  plans: Plan[];
  /** Payload parser sandbox (SPEC §4): time limit per message, memory limit per device, the scripts' time zone. */
  parser: { timeoutMs: number; memoryMb: number; timezone: string };
  /** Action runs waiting per account before new ones are dropped (issue 17). */
  actionQueue: number;
  /** GET /metrics (Prometheus): on/off, the Bearer token it wants (none = open), accounts with their own series. */
  metrics: { enabled: boolean; token: string | undefined; accounts: string[] };
  /** Seconds between $SYS rounds; 0 = no $SYS topics. */
  sysInterval: number;
  /** Live inspector stream (SPEC §6): unsent bytes per viewer above which events are skipped. */
  inspector: { viewerBufferBytes: number };
}

/** Every setting under its own name, as a config file spells it. */
export interface Settings {
  host: string;
  mqttPort: number;
  mqttsPort: number;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  httpPort: number;
  httpsPort: number;
  dataDir: string;
  postgresUrl: string | undefined;
  logLevel: LogLevel;
  logFormat: LogFormat;
  allowAnonymous: boolean;
  anonymousAccount: string;
  aclDefault: 'allow' | 'deny';
  defaultPlan: string;
  maxPacketSize: number;
  connectTimeout: number;
  maxInflight: number;
  receiveMaximum: number;
  maxHeldAcks: number;
  maxQueued: number;
  maxQueuedBytes: number;
  maxSocketBuffer: number;
  maxTopicLength: number;
  maxTopicDepth: number;
  maxSubscriptions: number;
  topicAliasMaximum: number;
  serverKeepAlive: number;
  maxKeepalive: number;
  maxSessionExpiry: number;
  takeoverLimit: number;
  takeoverBackoff: number;
  parserTimeout: number;
  parserMemory: number;
  parserTimezone: string;
  actionQueue: number;
  metrics: boolean;
  metricsToken: string | undefined;
  metricsAccounts: string[];
  sysInterval: number;
  inspectorViewerBufferKb: number;
}
export type SettingKey = keyof Settings;

/** A bad setting. The message names the setting as the user gave it (flag, env variable or file key) and the value. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    /** The setting at fault (config-file name), when there is one. */
    readonly setting?: SettingKey | 'config',
  ) {
    super(message);
  }
}

/** `--help` or `--version` was asked for: print `text` to stdout and exit 0. Not an error. */
export class PrintAndExit extends Error {
  override readonly name = 'PrintAndExit';
  constructor(readonly text: string) {
    super('print and exit');
  }
}

export interface SettingSpec<K extends SettingKey> {
  /** Heading the flag is listed under in --help. */
  readonly group: 'Listeners' | 'Storage' | 'Logging' | 'Access' | 'Parsers' | 'Operations' | 'Limits';
  /** Placeholder in --help, e.g. `<port>`. */
  readonly arg: string;
  /** One line, with the unit. */
  readonly description: string;
  readonly default: Settings[K];
  /** How the default reads in --help and the README. */
  readonly defaultText?: string;
  /** A file or directory path: relative paths in a config file are resolved against the file's directory. */
  readonly isPath?: true;
  /** Returns the value or throws Invalid with what is wrong. */
  readonly parse: (raw: unknown) => Settings[K];
}

/** What is wrong with a value, without saying where it came from (loadConfig adds that). */
class Invalid extends Error {}

const MAX_PACKET = 268_435_460; // 1 + 4 + 268,435,455: the largest packet MQTT can frame (MQTT 5 §2.1.4)

/** Every setting, in --help order. A mapped type, so adding a field to Settings without a spec fails to compile. */
export const SETTINGS: { readonly [K in SettingKey]: SettingSpec<K> } = {
  host: {
    group: 'Listeners',
    arg: '<address>',
    description: 'interface the listeners bind to (0.0.0.0 = all IPv4, :: = all)',
    default: '0.0.0.0',
    parse: text('an address'),
  },
  mqttPort: {
    group: 'Listeners',
    arg: '<port>',
    description: 'MQTT over TCP port; 0 = a random free port',
    default: 1883,
    parse: port,
  },
  mqttsPort: {
    group: 'Listeners',
    arg: '<port>',
    description: 'MQTT over TLS port, used when --tls-cert and --tls-key are set',
    default: 8883,
    parse: port,
  },
  tlsCert: {
    group: 'Listeners',
    arg: '<file>',
    description: 'TLS certificate chain, PEM file (with --tls-key)',
    default: undefined,
    defaultText: 'none',
    isPath: true,
    parse: optionalText('a file path'),
  },
  tlsKey: {
    group: 'Listeners',
    arg: '<file>',
    description: 'TLS private key, PEM file (with --tls-cert)',
    default: undefined,
    defaultText: 'none',
    isPath: true,
    parse: optionalText('a file path'),
  },
  httpPort: {
    group: 'Listeners',
    arg: '<port>',
    description: 'HTTP port: admin and device API, console, and MQTT over WebSocket on /mqtt; 0 = a random free port',
    default: 8080,
    parse: port,
  },
  httpsPort: {
    group: 'Listeners',
    arg: '<port>',
    description: 'HTTPS port: what the HTTP port serves, over TLS, with MQTT over WebSocket at wss://HOST:PORT/mqtt; used when --tls-cert and --tls-key are set',
    default: 8443,
    parse: port,
  },
  dataDir: {
    group: 'Storage',
    arg: '<dir>',
    description: 'directory of the SQLite databases (bucketmq.db, and buckets.db for the buckets); created when missing',
    default: './data',
    isPath: true,
    parse: text('a directory path'),
  },
  postgresUrl: {
    group: 'Storage',
    arg: '<url>',
    description: 'keep buckets in PostgreSQL (postgres://user:password@host:port/db) instead of the SQLite file',
    default: undefined,
    defaultText: 'none',
    parse: optionalText('a postgres:// URL'),
  },
  logLevel: {
    group: 'Logging',
    arg: '<level>',
    description: `log level: ${LOG_LEVELS.join(', ')}`,
    default: 'info',
    parse: oneOf(LOG_LEVELS),
  },
  logFormat: {
    group: 'Logging',
    arg: '<format>',
    description: 'log lines as text (for people) or json (one object per line, for log shippers)',
    default: 'text',
    parse: oneOf(LOG_FORMATS),
  },
  allowAnonymous: {
    group: 'Access',
    arg: '<bool>',
    description: 'let clients that send no credentials in, into the --anonymous-account (plain-broker mode)',
    default: false,
    parse: boolean,
  },
  anonymousAccount: {
    group: 'Access',
    arg: '<name>',
    description: 'account (by name) that anonymous clients join; created when missing',
    default: 'anonymous',
    parse: text('an account name'),
  },
  aclDefault: {
    group: 'Access',
    arg: '<policy>',
    description: 'what happens when no ACL rule (config file "acl") applies: allow or deny',
    default: 'allow',
    parse: oneOf(['allow', 'deny'] as const),
  },
  defaultPlan: {
    group: 'Access',
    arg: '<plan>',
    description: 'plan of new accounts (free, starter, scale, or one from the config file "plans")',
    default: 'scale',
    parse: text('a plan name'),
  },
  parserTimeout: {
    group: 'Parsers',
    arg: '<ms>',
    description: 'time a payload parser may run per message, in milliseconds; a parser over it stores nothing',
    default: 1_000,
    parse: integer('milliseconds', 10, 60_000),
  },
  parserMemory: {
    group: 'Parsers',
    arg: '<MiB>',
    description: 'memory limit of each device\'s parser sandbox, in MiB (isolated-vm needs at least 8)',
    default: 32,
    parse: integer('MiB', 8, 4_096),
  },
  parserTimezone: {
    group: 'Parsers',
    arg: '<zone>',
    description: 'IANA time zone of payload parsers\' clock (Date#toString, getHours, dayjs()), whatever the server\'s own zone; the hosted service runs them in UTC',
    default: 'UTC',
    parse: timeZone,
  },
  actionQueue: {
    group: 'Limits',
    arg: '<count>',
    description: 'action runs waiting per account; when full, new runs are dropped and counted (4 run at once per account)',
    default: 1_000,
    parse: integer('runs', 1, 1_000_000),
  },
  metrics: {
    group: 'Operations',
    arg: '<bool>',
    description: 'serve Prometheus metrics on GET /metrics of the HTTP port(s); false = no such route (404)',
    default: true,
    parse: boolean,
  },
  metricsToken: {
    group: 'Operations',
    arg: '<token>',
    description: 'when set, GET /metrics wants the header "Authorization: Bearer <token>" (else 401)',
    default: undefined,
    defaultText: 'none (open)',
    parse: optionalText('a token'),
  },
  metricsAccounts: {
    group: 'Operations',
    arg: '<list>',
    description: 'accounts (ids or names, comma-separated) that get their own per-account metrics series; no other account is labelled',
    default: [],
    defaultText: 'none',
    parse: textList('account ids or names, comma-separated'),
  },
  sysInterval: {
    group: 'Operations',
    arg: '<seconds>',
    description: 'seconds between $SYS/broker/... updates (each account sees its own figures); 0 = no $SYS topics',
    default: 10,
    parse: integer('seconds', 0, 86_400),
  },
  inspectorViewerBufferKb: {
    group: 'Operations',
    arg: '<KiB>',
    description: 'unsent data a live inspector viewer may have, in KiB; beyond it events are skipped and the viewer is told how many',
    default: 1024,
    parse: integer('KiB', 16, 1_048_576),
  },
  maxPacketSize: {
    group: 'Limits',
    arg: '<bytes>',
    description: 'largest MQTT packet accepted, in bytes; checked before the body is read',
    default: DEFAULT_LIMITS.maximumPacketSize,
    defaultText: `${DEFAULT_LIMITS.maximumPacketSize} (256 KiB)`,
    parse: integer('bytes', 64, MAX_PACKET),
  },
  connectTimeout: {
    group: 'Limits',
    arg: '<ms>',
    description: 'time a new connection has to send CONNECT, in milliseconds',
    default: DEFAULT_LIMITS.connectTimeoutMs,
    parse: integer('milliseconds', 100, 3_600_000),
  },
  maxInflight: {
    group: 'Limits',
    arg: '<count>',
    description: 'outbound QoS 1/2 messages awaiting acknowledgement per session (also capped by the client\'s receive maximum)',
    default: DEFAULT_LIMITS.maxInflight,
    parse: integer('messages', 1, 65_535),
  },
  receiveMaximum: {
    group: 'Limits',
    arg: '<count>',
    description: 'inbound QoS 1/2 publishes a client may leave unacknowledged (MQTT 5 receive maximum)',
    default: DEFAULT_LIMITS.receiveMaximum,
    parse: integer('messages', 1, 65_535),
  },
  maxHeldAcks: {
    group: 'Limits',
    arg: '<count>',
    description: 'inbound QoS 1/2 publishes of one client still being stored before the broker stops reading from it (until half are acknowledged)',
    default: DEFAULT_LIMITS.maxHeldAcks,
    parse: integer('messages', 1, 65_535),
  },
  maxQueued: {
    group: 'Limits',
    arg: '<count>',
    description: 'messages queued per session beyond those in flight; when full the oldest QoS 0 goes first',
    default: DEFAULT_LIMITS.maxQueued,
    parse: integer('messages', 0, 100_000_000),
  },
  maxQueuedBytes: {
    group: 'Limits',
    arg: '<bytes>',
    description: 'payload and topic bytes queued per session beyond those in flight; when full the oldest QoS 0 goes first',
    default: DEFAULT_LIMITS.maxQueuedBytes,
    defaultText: `${DEFAULT_LIMITS.maxQueuedBytes} (16 MiB)`,
    parse: integer('bytes', 0, Number.MAX_SAFE_INTEGER),
  },
  maxSocketBuffer: {
    group: 'Limits',
    arg: '<bytes>',
    description: 'bytes waiting on a socket above which QoS 0 messages to that client are dropped (slow consumer)',
    default: DEFAULT_LIMITS.maxSocketBufferBytes,
    defaultText: `${DEFAULT_LIMITS.maxSocketBufferBytes} (8 MiB)`,
    parse: integer('bytes', 1024, 2 ** 31),
  },
  maxTopicLength: {
    group: 'Limits',
    arg: '<bytes>',
    description: 'longest topic name or filter, in UTF-8 bytes',
    default: DEFAULT_LIMITS.maxTopicLength,
    parse: integer('bytes', 1, 65_535),
  },
  maxTopicDepth: {
    group: 'Limits',
    arg: '<levels>',
    description: 'most levels in a topic name or filter',
    default: DEFAULT_LIMITS.maxTopicDepth,
    parse: integer('levels', 1, 65_535),
  },
  maxSubscriptions: {
    group: 'Limits',
    arg: '<count>',
    description: 'subscriptions per session',
    default: DEFAULT_LIMITS.maxSubscriptions,
    parse: integer('subscriptions', 1, 10_000_000),
  },
  topicAliasMaximum: {
    group: 'Limits',
    arg: '<count>',
    description: 'topic aliases a client may use towards the broker (MQTT 5); 0 = none',
    default: DEFAULT_LIMITS.topicAliasMaximum,
    parse: integer('aliases', 0, 65_535),
  },
  serverKeepAlive: {
    group: 'Limits',
    arg: '<seconds>',
    description: 'keep alive imposed on clients, in seconds; 0 = accept the client\'s value',
    default: DEFAULT_LIMITS.serverKeepAlive,
    parse: integer('seconds', 0, 65_535),
  },
  maxKeepalive: {
    group: 'Limits',
    arg: '<seconds>',
    description: 'largest keep alive a client may use, in seconds; v5 clients asking for more (or 0) are told this value, v3 clients are refused (CONNACK 2); 0 = no cap',
    default: DEFAULT_LIMITS.maxKeepalive,
    parse: integer('seconds', 0, 65_535),
  },
  maxSessionExpiry: {
    group: 'Limits',
    arg: '<seconds>',
    description: 'upper bound on session expiry, in seconds (also for v3 clean=false sessions); 4294967295 = never expire',
    default: DEFAULT_LIMITS.maxSessionExpiry,
    parse: integer('seconds', 0, 0xffff_ffff),
  },
  takeoverLimit: {
    group: 'Limits',
    arg: '<count>',
    description: 'takeovers of one client id allowed per minute; beyond that the id is refused for --takeover-backoff (two devices sharing an id)',
    default: DEFAULT_LIMITS.takeoverLimit,
    parse: integer('takeovers', 1, 1_000_000),
  },
  takeoverBackoff: {
    group: 'Limits',
    arg: '<ms>',
    description: 'how long a client id caught in a takeover loop is refused, in milliseconds',
    default: DEFAULT_LIMITS.takeoverBackoffMs,
    parse: integer('milliseconds', 0, 86_400_000),
  },
};

export const SETTING_KEYS = Object.keys(SETTINGS) as SettingKey[];

/** `mqttPort` → `--mqtt-port`. */
export function flagName(key: SettingKey | 'config'): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** `mqttPort` → `BUCKETMQ_MQTT_PORT`. */
export function envName(key: SettingKey | 'config'): string {
  return `BUCKETMQ_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** How a default reads in --help and the README. */
export function defaultText(key: SettingKey): string {
  const spec: SettingSpec<SettingKey> = SETTINGS[key];
  return spec.defaultText ?? String(spec.default);
}

/**
 * Reads the settings from `argv` (the arguments after the script, e.g. process.argv.slice(2)), `env`
 * and the config file named by `--config` or BUCKETMQ_CONFIG. Throws ConfigError on a bad value and
 * PrintAndExit for --help and --version.
 */
export function loadConfig(argv: readonly string[], env: Record<string, string | undefined>): Config {
  const flags = parseFlags(argv);

  let file: { name: string; values: Record<string, unknown> } | undefined;
  const configPath = flags.config ?? nonEmpty(env[envName('config')]);
  if (configPath !== undefined) {
    const source = flags.config !== undefined ? flagName('config') : envName('config');
    file = { name: configPath, values: readConfigFile(configPath, source) };
  }

  const values: Partial<Record<SettingKey, unknown>> = {};
  const sources: Partial<Record<SettingKey, string>> = {};
  for (const key of SETTING_KEYS) {
    const spec: SettingSpec<SettingKey> = SETTINGS[key];
    let raw: unknown;
    let source: string | undefined;
    const envValue = nonEmpty(env[envName(key)]);
    if (flags[key] !== undefined) {
      raw = flags[key];
      source = flagName(key);
    } else if (envValue !== undefined) {
      raw = envValue;
      source = envName(key);
    } else if (file !== undefined && file.values[key] !== undefined && file.values[key] !== null) {
      raw = file.values[key];
      source = `${file.name}: ${key}`;
    }
    if (source === undefined) {
      values[key] = spec.default;
      continue;
    }
    let value: unknown;
    try {
      value = spec.parse(raw);
    } catch (error) {
      if (error instanceof Invalid) throw new ConfigError(`${source}: ${error.message}`, key);
      throw error;
    }
    if (spec.isPath && file !== undefined && source.startsWith(file.name) && typeof value === 'string') {
      value = path.resolve(path.dirname(file.name), value);
    }
    values[key] = value;
    sources[key] = source;
  }
  const settings = values as Settings; // every key was assigned above, from its own spec

  checkTogether(settings, sources);
  return toConfig(settings, {
    acl: parseAcl(file?.values.acl, file?.name),
    plans: parsePlans(file?.values.plans, file?.name),
  });
}

/** Settings that only make sense together. */
function checkTogether(settings: Settings, sources: Partial<Record<SettingKey, string>>): void {
  const named = (key: SettingKey): string => sources[key] ?? flagName(key);
  const hasCert = settings.tlsCert !== undefined;
  const hasKey = settings.tlsKey !== undefined;
  if (hasCert !== hasKey) {
    const [given, missing]: [SettingKey, SettingKey] = hasCert ? ['tlsCert', 'tlsKey'] : ['tlsKey', 'tlsCert'];
    throw new ConfigError(
      `${named(given)} is set but ${flagName(missing)} is not: TLS needs both a certificate (--tls-cert) and its private key (--tls-key), or neither`,
      missing,
    );
  }
  if (!hasCert && sources.mqttsPort !== undefined) {
    throw new ConfigError(`${named('mqttsPort')}: the MQTT over TLS listener needs --tls-cert and --tls-key`, 'mqttsPort');
  }
  if (!hasCert && sources.httpsPort !== undefined) {
    throw new ConfigError(`${named('httpsPort')}: the HTTPS listener needs --tls-cert and --tls-key`, 'httpsPort');
  }
  const ports: SettingKey[] = hasCert ? ['mqttPort', 'mqttsPort', 'httpPort', 'httpsPort'] : ['mqttPort', 'httpPort'];
  for (let i = 0; i < ports.length; i++) {
    for (let j = i + 1; j < ports.length; j++) {
      const a = ports[i]!;
      const b = ports[j]!;
      if (settings[a] !== 0 && settings[a] === settings[b]) {
        throw new ConfigError(`${named(b)}: port ${String(settings[b])} is already taken by ${flagName(a)}`, b);
      }
    }
  }
}

function toConfig(s: Settings, fileOnly: { acl: AclRule[]; plans: Plan[] }): Config {
  return {
    host: s.host,
    mqttPort: s.mqttPort,
    mqttsPort: s.mqttsPort,
    tlsCert: s.tlsCert,
    tlsKey: s.tlsKey,
    httpPort: s.httpPort,
    httpsPort: s.httpsPort,
    dataDir: s.dataDir,
    postgresUrl: s.postgresUrl,
    logLevel: s.logLevel,
    logFormat: s.logFormat,
    allowAnonymous: s.allowAnonymous,
    anonymousAccount: s.anonymousAccount,
    aclDefault: s.aclDefault,
    defaultPlan: s.defaultPlan,
    ...fileOnly,
    parser: { timeoutMs: s.parserTimeout, memoryMb: s.parserMemory, timezone: s.parserTimezone },
    actionQueue: s.actionQueue,
    metrics: { enabled: s.metrics, token: s.metricsToken, accounts: s.metricsAccounts },
    sysInterval: s.sysInterval,
    inspector: { viewerBufferBytes: s.inspectorViewerBufferKb * 1024 },
    limits: {
      maximumPacketSize: s.maxPacketSize,
      connectTimeoutMs: s.connectTimeout,
      maxInflight: s.maxInflight,
      receiveMaximum: s.receiveMaximum,
      maxHeldAcks: s.maxHeldAcks,
      maxQueued: s.maxQueued,
      maxQueuedBytes: s.maxQueuedBytes,
      maxSocketBufferBytes: s.maxSocketBuffer,
      maxTopicLength: s.maxTopicLength,
      maxTopicDepth: s.maxTopicDepth,
      maxSubscriptions: s.maxSubscriptions,
      topicAliasMaximum: s.topicAliasMaximum,
      serverKeepAlive: s.serverKeepAlive,
      maxKeepalive: s.maxKeepalive,
      maxSessionExpiry: s.maxSessionExpiry,
      takeoverLimit: s.takeoverLimit,
      takeoverBackoffMs: s.takeoverBackoff,
    },
  };
}

/** The full --help text. */
export function helpText(): string {
  try {
    parseFlags(['--help']);
  } catch (error) {
    if (error instanceof PrintAndExit) return error.text;
    throw error;
  }
  throw new Error('commander did not print help');
}

type Flags = Partial<Record<SettingKey | 'config', string>>;

function parseFlags(argv: readonly string[]): Flags {
  let out = '';
  let err = '';
  const program = new Command('bucketmq')
    .description('bucketmq: self-hosted MQTT broker and IoT data platform')
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'print this help')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => (out += s),
      writeErr: (s) => (err += s),
      getOutHelpWidth: () => 100,
      getErrHelpWidth: () => 100,
    })
    .addHelpText(
      'after',
      [
        '',
        'Settings are read from, lowest to highest precedence: the defaults, the JSON file given by --config',
        '(keys are the flag names in camelCase, e.g. {"mqttPort": 18830}; relative paths are resolved against',
        "the file's directory), the BUCKETMQ_* environment variables, then the flags.",
      ].join('\n'),
    );
  program.addOption(
    new Option('--config <file>', `JSON file of settings (env ${envName('config')})`).helpGroup('Options:'),
  );
  for (const key of SETTING_KEYS) {
    const spec: SettingSpec<SettingKey> = SETTINGS[key];
    program.addOption(
      new Option(`${flagName(key)} ${spec.arg}`, `${spec.description} (default: ${defaultText(key)}; env ${envName(key)})`).helpGroup(
        `${spec.group}:`,
      ),
    );
  }
  try {
    program.parse(argv as string[], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') throw new PrintAndExit(out);
      throw new ConfigError((err || error.message).replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' '));
    }
    throw error;
  }
  return program.opts<Flags>();
}

function readConfigFile(file: string, source: string): Record<string, unknown> {
  let textContent: string;
  try {
    textContent = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`${source}: cannot read ${JSON.stringify(file)}: ${(error as Error).message}`, 'config');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(textContent);
  } catch (error) {
    throw new ConfigError(`${source}: ${JSON.stringify(file)} is not valid JSON: ${(error as Error).message}`, 'config');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`${source}: ${JSON.stringify(file)} must hold a JSON object of settings`, 'config');
  }
  for (const key of Object.keys(parsed)) {
    if (!(key in SETTINGS) && !FILE_ONLY_KEYS.includes(key)) {
      throw new ConfigError(`${file}: unknown setting ${JSON.stringify(key)} (known: ${[...SETTING_KEYS, ...FILE_ONLY_KEYS].join(', ')})`, 'config');
    }
  }
  return parsed as Record<string, unknown>;
}

let version: string | undefined;
export function packageVersion(): string {
  version ??= (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return version;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** A value as the user wrote it, quoted, cut short if long. */
function show(raw: unknown): string {
  const shown = JSON.stringify(raw) ?? String(raw);
  return shown.length > 80 ? `${shown.slice(0, 77)}...` : shown;
}

function port(raw: unknown): number {
  return integer('', 0, 65_535, 'a port number (0-65535)')(raw);
}

/** Accepts a JSON integer or a string of digits in [min, max]. */
function integer(unit: string, min: number, max: number, what = `a whole number of ${unit} (${min}-${max})`) {
  return (raw: unknown): number => {
    const value = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(value) || value < min || value > max) throw new Invalid(`${show(raw)} is not ${what}`);
    return value;
  };
}

function text(what: string) {
  return (raw: unknown): string => {
    if (typeof raw !== 'string' || raw.trim() === '') throw new Invalid(`${show(raw)} is not ${what}`);
    return raw;
  };
}

/** A comma-separated string (flag, environment) or an array of strings (config file), none blank. */
function textList(what: string): (raw: unknown) => string[] {
  return (raw) => {
    const items = typeof raw === 'string' ? raw.split(',') : Array.isArray(raw) && raw.every((item) => typeof item === 'string') ? (raw as string[]) : null;
    const trimmed = items?.map((item) => item.trim());
    if (trimmed === undefined || trimmed.includes('')) throw new Invalid(`${show(raw)} is not ${what}`);
    return trimmed;
  };
}

function optionalText(what: string): (raw: unknown) => string | undefined {
  return text(what);
}

function timeZone(raw: unknown): string {
  if (typeof raw !== 'string' || !isTimeZone(raw)) throw new Invalid(`${show(raw)} is not an IANA time zone (e.g. UTC, Europe/Berlin, America/Sao_Paulo)`);
  return raw;
}

function boolean(raw: unknown): boolean {
  if (raw === true || raw === 'true' || raw === '1' || raw === 'yes') return true;
  if (raw === false || raw === 'false' || raw === '0' || raw === 'no') return false;
  throw new Invalid(`${show(raw)} is not true or false`);
}

/** Keys only a config file can set: structured values with no flag form. */
const FILE_ONLY_KEYS = ['acl', 'plans'];

function parseAcl(raw: unknown, file: string | undefined): AclRule[] {
  if (raw === undefined) return [];
  const where = (i: number, field: string): string => `${file}: acl[${i}].${field}`;
  if (!Array.isArray(raw)) throw new ConfigError(`${file}: acl must be an array of rules`, 'config');
  return raw.map((rule: unknown, i): AclRule => {
    if (typeof rule !== 'object' || rule === null) throw new ConfigError(`${file}: acl[${i}] must be an object`, 'config');
    const r = rule as Record<string, unknown>;
    for (const key of Object.keys(r)) {
      if (!['account', 'device', 'action', 'permission', 'topic'].includes(key)) throw new ConfigError(`${where(i, key)}: unknown field`, 'config');
    }
    if (!['publish', 'subscribe', 'all'].includes(r.action as string)) throw new ConfigError(`${where(i, 'action')}: ${show(r.action)} is not one of publish, subscribe, all`, 'config');
    if (!['allow', 'deny'].includes(r.permission as string)) throw new ConfigError(`${where(i, 'permission')}: ${show(r.permission)} is not allow or deny`, 'config');
    if (typeof r.topic !== 'string' || r.topic === '') throw new ConfigError(`${where(i, 'topic')}: must be a topic filter`, 'config');
    for (const key of ['account', 'device'] as const) {
      if (r[key] !== undefined && typeof r[key] !== 'string') throw new ConfigError(`${where(i, key)}: must be an id string`, 'config');
    }
    return {
      action: r.action as AclRule['action'],
      permission: r.permission as AclRule['permission'],
      topic: r.topic,
      ...(r.account !== undefined ? { account: r.account as string } : {}),
      ...(r.device !== undefined ? { device: r.device as string } : {}),
    };
  });
}

function parsePlans(raw: unknown, file: string | undefined): Plan[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw new ConfigError(`${file}: plans must be an array of {name, limits}`, 'config');
  return raw.map((plan: unknown, i): Plan => {
    const p = plan as Record<string, unknown> | null;
    if (typeof p?.name !== 'string' || p.name === '') throw new ConfigError(`${file}: plans[${i}].name must be a non-empty string`, 'config');
    if (typeof p.limits !== 'object' || p.limits === null) throw new ConfigError(`${file}: plans[${i}].limits must be an object of numbers`, 'config');
    for (const [key, value] of Object.entries(p.limits)) {
      if (typeof value !== 'number' || !(value >= 0)) throw new ConfigError(`${file}: plans[${i}].limits.${key} must be a number >= 0`, 'config');
    }
    return { name: p.name, limits: p.limits as Record<string, number> };
  });
}

function oneOf<T extends string>(choices: readonly T[]) {
  return (raw: unknown): T => {
    if (typeof raw !== 'string' || !(choices as readonly string[]).includes(raw)) {
      throw new Invalid(`${show(raw)} is not one of ${choices.join(', ')}`);
    }
    return raw as T;
  };
}
