import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { DEFAULT_LIMITS } from '../src/broker/broker-options.ts';
import {
  ConfigError,
  PrintAndExit,
  SETTINGS,
  SETTING_KEYS,
  defaultText,
  envName,
  flagName,
  helpText,
  loadConfig,
  type Config,
  type SettingKey,
} from '../src/config.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'bucketmq-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function configFile(content: unknown): string {
  const file = path.join(dir, `config-${++files}.json`);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a ConfigError');
}

test('names are derived from the setting: flag in kebab-case, env in BUCKETMQ_ upper snake case', () => {
  assert.equal(flagName('mqttPort'), '--mqtt-port');
  assert.equal(envName('mqttPort'), 'BUCKETMQ_MQTT_PORT');
  assert.equal(flagName('maxPacketSize'), '--max-packet-size');
  assert.equal(envName('dataDir'), 'BUCKETMQ_DATA_DIR');
  assert.equal(envName('config'), 'BUCKETMQ_CONFIG');
});

test('defaults', () => {
  const config = loadConfig([], {});
  const expected: Config = {
    host: '0.0.0.0',
    mqttPort: 1883,
    mqttsPort: 8883,
    tlsCert: undefined,
    tlsKey: undefined,
    httpPort: 8080,
    httpsPort: 8443,
    dataDir: './data',
    postgresUrl: undefined,
    logLevel: 'info',
    logFormat: 'text',
    limits: DEFAULT_LIMITS,
    allowAnonymous: false,
    anonymousAccount: 'anonymous',
    aclDefault: 'allow',
    defaultPlan: 'scale',
    acl: [],
    plans: [],
    parser: { timeoutMs: 1_000, memoryMb: 32, timezone: 'UTC' },
    actionQueue: 1_000,
    metrics: { enabled: true, token: undefined, accounts: [] },
    sysInterval: 10,
    inspector: { viewerBufferBytes: 1024 * 1024 },
  };
  assert.deepEqual(config, expected);
});

test('precedence: defaults < config file < environment < flags', () => {
  const file = configFile({ mqttPort: 1001, httpPort: 1002, maxQueued: 1003, logLevel: 'debug' });
  const env = { BUCKETMQ_HTTP_PORT: '2002', BUCKETMQ_MAX_QUEUED: '2003' };
  const config = loadConfig(['--config', file, '--max-queued', '3003'], env);
  assert.equal(config.mqttPort, 1001, 'file over default');
  assert.equal(config.logLevel, 'debug', 'file over default');
  assert.equal(config.httpPort, 2002, 'env over file');
  assert.equal(config.limits.maxQueued, 3003, 'flag over env and file');
  assert.equal(config.host, '0.0.0.0', 'default when no source sets it');
  assert.equal(config.limits.maxInflight, DEFAULT_LIMITS.maxInflight);
});

test('the issue example: flags and environment are equivalent', () => {
  const byFlags = loadConfig(['--mqtt-port', '18830', '--data-dir', '/tmp/x'], {});
  const byEnv = loadConfig([], { BUCKETMQ_MQTT_PORT: '18830', BUCKETMQ_DATA_DIR: '/tmp/x' });
  assert.deepEqual(byFlags, byEnv);
  assert.equal(byFlags.mqttPort, 18830);
  assert.equal(byFlags.dataDir, '/tmp/x');
});

test('every limit flag reaches its engine limit', () => {
  const config = loadConfig(
    [
      '--max-packet-size', '1024',
      '--connect-timeout', '2500',
      '--max-inflight', '7',
      '--receive-maximum', '8',
      '--max-held-acks', '17',
      '--max-queued', '9',
      '--max-queued-bytes', '65536',
      '--max-socket-buffer', '4096',
      '--max-topic-length', '100',
      '--max-topic-depth', '10',
      '--max-subscriptions', '11',
      '--topic-alias-maximum', '12',
      '--server-keep-alive', '13',
      '--max-keepalive', '18',
      '--max-session-expiry', '14',
      '--takeover-limit', '15',
      '--takeover-backoff', '16',
    ],
    {},
  );
  assert.deepEqual(config.limits, {
    maximumPacketSize: 1024,
    connectTimeoutMs: 2500,
    maxInflight: 7,
    receiveMaximum: 8,
    maxHeldAcks: 17,
    maxQueued: 9,
    maxQueuedBytes: 65536,
    maxSocketBufferBytes: 4096,
    maxTopicLength: 100,
    maxTopicDepth: 10,
    maxSubscriptions: 11,
    topicAliasMaximum: 12,
    serverKeepAlive: 13,
    maxKeepalive: 18,
    maxSessionExpiry: 14,
    takeoverLimit: 15,
    takeoverBackoffMs: 16,
  });
});

test('the config file can come from BUCKETMQ_CONFIG; JSON numbers and strings both work', () => {
  const file = configFile({ mqttPort: '1111', httpPort: 1112 });
  const config = loadConfig([], { BUCKETMQ_CONFIG: file });
  assert.equal(config.mqttPort, 1111);
  assert.equal(config.httpPort, 1112);
});

test('relative paths in a config file are resolved against its directory; null means unset', () => {
  const file = configFile({ dataDir: 'state', tlsCert: 'certs/server.pem', tlsKey: '/abs/key.pem', mqttsPort: null });
  const config = loadConfig(['--config', file], {});
  assert.equal(config.dataDir, path.join(dir, 'state'));
  assert.equal(config.tlsCert, path.join(dir, 'certs/server.pem'));
  assert.equal(config.tlsKey, '/abs/key.pem');
  assert.equal(config.mqttsPort, 8883);
  // From a flag, a relative path stays relative to the working directory.
  assert.equal(loadConfig(['--data-dir', 'state'], {}).dataDir, 'state');
});

test('an empty environment variable counts as unset', () => {
  assert.equal(loadConfig([], { BUCKETMQ_MQTT_PORT: '', BUCKETMQ_TLS_CERT: '' }).mqttPort, 1883);
});

test('the example from the issue: a bad port names the flag and the value', () => {
  const error = configError(() => loadConfig(['--mqtt-port', 'abc'], {}));
  assert.equal(error.message, '--mqtt-port: "abc" is not a port number (0-65535)');
  assert.equal(error.setting, 'mqttPort');
});

/** A value each setting must refuse, as a string (flags, env) and as a JSON value (config file). */
const BAD: Record<SettingKey, { text: string; json: unknown }> = {
  host: { text: ' ', json: 42 },
  mqttPort: { text: '65536', json: -1 },
  mqttsPort: { text: 'https', json: 1.5 },
  tlsCert: { text: ' ', json: true },
  tlsKey: { text: ' ', json: 7 },
  httpPort: { text: '80.5', json: '8o80' },
  httpsPort: { text: '443s', json: 65_536 },
  dataDir: { text: ' ', json: [] },
  postgresUrl: { text: ' ', json: 5432 },
  logLevel: { text: 'loud', json: 'INFO' },
  logFormat: { text: 'yaml', json: 1 },
  allowAnonymous: { text: 'maybe', json: 'on' },
  anonymousAccount: { text: ' ', json: 3 },
  aclDefault: { text: 'permit', json: false },
  defaultPlan: { text: ' ', json: {} },
  maxPacketSize: { text: '256k', json: 268_435_461 },
  connectTimeout: { text: '10s', json: 0 },
  maxInflight: { text: '0', json: 65_536 },
  receiveMaximum: { text: '-1', json: 0 },
  maxHeldAcks: { text: '0', json: 65_536 },
  maxQueued: { text: 'lots', json: -5 },
  maxQueuedBytes: { text: '16MiB', json: -1 },
  maxSocketBuffer: { text: '1', json: '8MiB' },
  maxTopicLength: { text: '0', json: 70_000 },
  maxTopicDepth: { text: '0x10', json: 0 },
  maxSubscriptions: { text: '', json: 0 },
  topicAliasMaximum: { text: '65536', json: -1 },
  serverKeepAlive: { text: '1e3', json: 65_536 },
  maxKeepalive: { text: '60s', json: -1 },
  maxSessionExpiry: { text: '4294967296', json: 2 ** 32 },
  takeoverLimit: { text: '0', json: 'ten' },
  takeoverBackoff: { text: '1m', json: -1 },
  parserTimeout: { text: '1s', json: 0 },
  parserMemory: { text: '4', json: 'lots' },
  parserTimezone: { text: 'Mars/Olympus_Mons', json: 0 },
  actionQueue: { text: '0', json: 'many' },
  metrics: { text: 'sometimes', json: 2 },
  metricsToken: { text: ' ', json: 42 },
  metricsAccounts: { text: 'acme,,globex', json: [1] },
  sysInterval: { text: '10s', json: -1 },
  inspectorViewerBufferKb: { text: '1MiB', json: 8 },
};

for (const key of SETTING_KEYS) {
  test(`a bad ${flagName(key)} is refused from every source, naming the setting and the value`, () => {
    const { text, json } = BAD[key];
    const quotedText = JSON.stringify(text);

    const byFlag = configError(() => loadConfig([flagName(key), text], {}));
    assert.ok(byFlag.message.startsWith(`${flagName(key)}: ${quotedText} is not `), byFlag.message);
    assert.equal(byFlag.setting, key);

    if (text !== '') {
      const byEnv = configError(() => loadConfig([], { [envName(key)]: text }));
      assert.ok(byEnv.message.startsWith(`${envName(key)}: ${quotedText} is not `), byEnv.message);
    }

    const file = configFile({ [key]: json });
    const byFile = configError(() => loadConfig(['--config', file], {}));
    assert.ok(byFile.message.startsWith(`${file}: ${key}: ${JSON.stringify(json)} is not `), byFile.message);
  });
}

test('TLS: certificate and key both or neither', () => {
  const certOnly = configError(() => loadConfig(['--tls-cert', 'c.pem'], {}));
  assert.match(certOnly.message, /^--tls-cert is set but --tls-key is not/);
  const keyOnly = configError(() => loadConfig([], { BUCKETMQ_TLS_KEY: 'k.pem' }));
  assert.match(keyOnly.message, /^BUCKETMQ_TLS_KEY is set but --tls-cert is not/);

  const both = loadConfig(['--tls-cert', 'c.pem', '--tls-key', 'k.pem', '--mqtts-port', '8884'], {});
  assert.equal(both.tlsCert, 'c.pem');
  assert.equal(both.tlsKey, 'k.pem');
  assert.equal(both.mqttsPort, 8884);

  const neither = loadConfig([], {});
  assert.equal(neither.tlsCert, undefined);
  assert.equal(neither.tlsKey, undefined);
});

test('an MQTTS port without a certificate is refused', () => {
  const error = configError(() => loadConfig(['--mqtts-port', '8884'], {}));
  assert.match(error.message, /^--mqtts-port: .*needs --tls-cert and --tls-key/);
});

test('an HTTPS port without a certificate is refused, naming where it was set', () => {
  const byFlag = configError(() => loadConfig(['--https-port', '9443'], {}));
  assert.equal(byFlag.message, '--https-port: the HTTPS listener needs --tls-cert and --tls-key');
  assert.equal(byFlag.setting, 'httpsPort');
  const byEnv = configError(() => loadConfig([], { BUCKETMQ_HTTPS_PORT: '9443' }));
  assert.match(byEnv.message, /^BUCKETMQ_HTTPS_PORT: the HTTPS listener needs/);

  const tls = ['--tls-cert', 'c.pem', '--tls-key', 'k.pem'];
  assert.equal(loadConfig(tls, {}).httpsPort, 8443);
  assert.equal(loadConfig([...tls, '--https-port', '0'], {}).httpsPort, 0);
  const clash = configError(() => loadConfig([...tls, '--https-port', '8080'], {}));
  assert.equal(clash.message, '--https-port: port 8080 is already taken by --http-port');
  assert.equal(clash.setting, 'httpsPort');
});

test('two listeners on one port are refused; port 0 may repeat', () => {
  const error = configError(() => loadConfig(['--http-port', '1883'], {}));
  assert.equal(error.message, '--http-port: port 1883 is already taken by --mqtt-port');
  const random = loadConfig(['--mqtt-port', '0', '--http-port', '0'], {});
  assert.equal(random.mqttPort, 0);
  assert.equal(random.httpPort, 0);
});

test('unknown flags, missing values and stray arguments are refused', () => {
  assert.match(configError(() => loadConfig(['--mqt-port', '1'], {})).message, /unknown option '--mqt-port'.*--mqtt-port/);
  assert.match(configError(() => loadConfig(['--mqtt-port'], {})).message, /--mqtt-port <port>' argument missing/);
  assert.match(configError(() => loadConfig(['serve'], {})).message, /too many arguments|unknown command/);
});

test('config file problems name the file', () => {
  const missing = path.join(dir, 'missing.json');
  assert.match(configError(() => loadConfig(['--config', missing], {})).message, /^--config: cannot read ".*missing\.json"/);
  const broken = configFile('{ "mqttPort": ');
  assert.match(configError(() => loadConfig(['--config', broken], {})).message, /^--config: ".*" is not valid JSON/);
  const list = configFile([1883]);
  assert.match(configError(() => loadConfig(['--config', list], {})).message, /must hold a JSON object/);
  const typo = configFile({ mqtt_port: 1 });
  const error = configError(() => loadConfig([], { BUCKETMQ_CONFIG: typo }));
  assert.equal(error.message.startsWith(`${typo}: unknown setting "mqtt_port"`), true, error.message);
});

test('--help lists every setting with its flag, default and environment variable', () => {
  let printed: PrintAndExit | undefined;
  try {
    loadConfig(['--help'], {});
  } catch (error) {
    if (error instanceof PrintAndExit) printed = error;
  }
  assert.ok(printed, '--help throws PrintAndExit');
  assert.equal(printed.text, helpText());
  const help = printed.text.replace(/\s+/g, ' ');
  for (const key of SETTING_KEYS) {
    const line = new RegExp(`${flagName(key)} ${SETTINGS[key].arg} .*?\\(default: ${escape(defaultText(key))}; env ${envName(key)}\\)`);
    assert.match(help, line, `help for ${key}`);
  }
  assert.match(help, /--config <file>/);
  assert.match(help, /BUCKETMQ_CONFIG/);
});

test('--version prints the package version', () => {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.throws(() => loadConfig(['--version'], {}), (error: unknown) => error instanceof PrintAndExit && error.text.trim() === version);
});

test('the README settings table lists every setting with its flag, environment variable and default', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  for (const key of SETTING_KEYS) {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`${flagName(key)}`));
    assert.ok(row, `README row for ${flagName(key)}`);
    assert.ok(row.includes(`\`${envName(key)}\``), `README row for ${flagName(key)} names ${envName(key)}`);
    assert.ok(row.includes(defaultText(key).split(' ')[0]!), `README row for ${flagName(key)} shows the default ${defaultText(key)}`);
  }
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

test('the config file holds ACL rules and plans; a bad rule names its index and field', () => {
  const file = configFile({
    acl: [{ account: 'a1', action: 'publish', permission: 'deny', topic: 'secret/#' }, { action: 'all', permission: 'allow', topic: 'dev/%d/#' }],
    plans: [{ name: 'custom', limits: { mqtt_publish: 10 } }],
  });
  const config = loadConfig(['--config', file], {});
  assert.deepEqual(config.acl, [
    { account: 'a1', action: 'publish', permission: 'deny', topic: 'secret/#' },
    { action: 'all', permission: 'allow', topic: 'dev/%d/#' },
  ]);
  assert.deepEqual(config.plans, [{ name: 'custom', limits: { mqtt_publish: 10 } }]);
  const bad = configFile({ acl: [{ action: 'publish', permission: 'maybe', topic: 'x' }] });
  assert.match(configError(() => loadConfig(['--config', bad], {})).message, /acl\[0\]\.permission: "maybe" is not allow or deny/);
  const badPlan = configFile({ plans: [{ name: 'p', limits: { mqtt_publish: -1 } }] });
  assert.match(configError(() => loadConfig(['--config', badPlan], {})).message, /plans\[0\]\.limits\.mqtt_publish must be a number >= 0/);
});

test('--inspector-viewer-buffer-kb sets the live inspector viewer bound in bytes (default 1 MiB)', () => {
  assert.equal(loadConfig(['--inspector-viewer-buffer-kb', '64'], {}).inspector.viewerBufferBytes, 65_536);
});

test('--parser-timezone takes an IANA zone for the parser sandbox clock (default UTC)', () => {
  assert.equal(loadConfig([], {}).parser.timezone, 'UTC');
  assert.equal(loadConfig(['--parser-timezone', 'Asia/Kathmandu'], {}).parser.timezone, 'Asia/Kathmandu');
  const error = configError(() => loadConfig(['--parser-timezone', 'Europe/Atlantis'], {}));
  assert.equal(error.message, '--parser-timezone: "Europe/Atlantis" is not an IANA time zone (e.g. UTC, Europe/Berlin, America/Sao_Paulo)');
});
