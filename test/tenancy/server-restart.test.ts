/**
 * The real server across restarts (issue 4 acceptance: "a test that restarts the server and shows
 * devices, tokens, retained messages survive"; first run prints working credentials, later runs
 * print nothing secret — SPEC §9).
 *
 * Part one runs startServer in-process twice on one data directory; part two spawns the real
 * process (`node --import tsx src/server.ts`), runs the mosquitto_pub command it prints, and
 * starts it again to check that no token is printed the second time.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { spawnProcess, type RunningProcess } from '../broker/helpers.ts';
import { connackCode, endAll, login, loginRecording, record, waitUntil } from './helpers.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const scratch = mkdtempSync(path.join(tmpdir(), 'bucketmq-tenancy-restart-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function config(dir: string) {
  return loadConfig(['--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--data-dir', dir, '--log-level', 'silent'], {});
}

describe('startServer twice on the same data directory', () => {
  test('devices, tokens and retained messages survive a restart; first-run credentials only on the first start', { timeout: 30_000 }, async () => {
    const dir = path.join(scratch, 'inproc');
    let server: RunningServer | null = await startServer(config(dir));
    try {
      const first = server.firstRun;
      assert.ok(first !== null, 'first start created no credentials');
      assert.equal(typeof first.accountToken, 'string');
      assert.equal(typeof first.deviceToken, 'string');
      assert.ok(server.registry.authenticateAccountToken(first.accountToken), 'first-run account token does not authenticate');
      const accountId = first.accountId;

      // More state to carry over: a second device with a read token, and a revoked token.
      const extra = server.registry.createDevice(accountId, { name: 'extra', tags: [{ key: 'room', value: 'lab' }] });
      const readToken = server.registry.createDeviceToken(accountId, extra.device.id, { name: 'ro', permission: 'read', expire_time: '1 day' });
      const doomed = server.registry.createDeviceToken(accountId, extra.device.id, { name: 'doomed', permission: 'full' });
      try {
        server.registry.deleteDeviceToken(accountId, extra.device.id, doomed.info.id);
      } catch {
        // A failure here is reported by the revocation tests; this test checks persistence.
      }
      const tokensBefore = server.registry.deviceTokens(accountId, extra.device.id).map((t) => [t.id, t.name, t.permission, t.expire_time]);

      // Publish a retained message with the first-run device token.
      const pub = await login(server.ports.mqtt, first.deviceToken, { protocolVersion: 5 });
      await pub.publishAsync('restart/state', 'kept-across-restart', { qos: 1, retain: true });
      await endAll([pub]);

      await server.stop();
      server = null;

      server = await startServer(config(dir));
      assert.equal(server.firstRun, null, 'second start created (or reported) new credentials');
      assert.equal(server.registry.accounts().length, 1, 'second start created another account');

      // The same device token still logs in (v3 and v5).
      assert.equal(await connackCode(server.ports.mqtt, { protocolVersion: 5, username: 'Token', password: first.deviceToken }), 0);
      assert.equal(await connackCode(server.ports.mqtt, { protocolVersion: 4, username: 'Token', password: first.deviceToken }), 0);
      assert.equal(await connackCode(server.ports.mqtt, { protocolVersion: 5, username: 'Token', password: readToken.token }), 0);
      assert.equal(await connackCode(server.ports.mqtt, { protocolVersion: 5, username: 'Token', password: doomed.token }), 0x87, 'a revoked token works again after restart');
      assert.equal(server.registry.authenticateDeviceToken(readToken.token)?.permission, 'read');
      assert.ok(server.registry.authenticateAccountToken(first.accountToken), 'account token lost');

      // Devices and their tokens are listed by the registry.
      const names = server.registry.devices(accountId).map((d) => d.name).sort();
      assert.deepEqual(names, ['demo-device', 'extra']);
      assert.deepEqual(server.registry.device(accountId, extra.device.id)?.tags, [{ key: 'room', value: 'lab' }]);
      assert.deepEqual(server.registry.deviceTokens(accountId, extra.device.id).map((t) => [t.id, t.name, t.permission, t.expire_time]), tokensBefore);
      assert.equal(server.registry.deviceTokens(accountId, first.deviceId).length, 1);

      // The retained message is delivered to a new subscriber.
      const sub = await loginRecording(server.ports.mqtt, first.deviceToken, { protocolVersion: 4 });
      try {
        await sub.client.subscribeAsync('restart/#', { qos: 1 });
        await waitUntil(() => sub.got.length === 1, 'the retained message after restart');
        assert.deepEqual(sub.got.map((m) => [m.topic, m.payload, m.retain]), [['restart/state', 'kept-across-restart', true]]);
      } finally {
        await endAll([sub.client]);
      }
    } finally {
      await server?.stop();
    }
  });
});

// ---- the real process ------------------------------------------------------------------------

interface Started {
  proc: RunningProcess;
  mqttPort: number;
}

/** Spawns the server and resolves once it logged "bucketmq ready" (and the banner, if any, is out). */
async function spawnServer(dir: string, extra: string[] = []): Promise<Started> {
  const proc = spawnProcess(
    process.execPath,
    ['--import', 'tsx', path.join(root, 'src/server.ts'), '--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--data-dir', dir, ...extra],
    { timeoutMs: 40_000 },
  );
  try {
    await waitUntil(() => /bucketmq ready/.test(proc.stdout()), 'the server to log "bucketmq ready"', 20_000);
  } catch (err) {
    proc.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\nstdout:\n${proc.stdout()}`);
  }
  // The banner is written right after startServer resolves, after the ready line.
  await new Promise((r) => setTimeout(r, 300));
  const port = /mqtt listening on 127\.0\.0\.1:(\d+)/.exec(proc.stdout());
  assert.ok(port, `no "mqtt listening on" line in:\n${proc.stdout()}`);
  return { proc, mqttPort: Number(port[1]) };
}

async function stopServer(s: Started): Promise<number | null> {
  s.proc.kill('SIGTERM');
  const r = await s.proc.done;
  return r.code;
}

describe('the bucketmq process: first run prints working credentials, later runs print none', () => {
  test('the printed mosquitto_pub command works; a second start prints no token', { timeout: 60_000 }, async () => {
    const dir = path.join(scratch, 'process');
    const first = await spawnServer(dir);
    let accountToken: string;
    let deviceToken: string;
    try {
      const out = first.proc.stdout();
      const account = /account token:\s+(\S+)/.exec(out);
      assert.ok(account, `first run printed no account token:\n${out}`);
      accountToken = account[1]!;
      const commandLine = out.split('\n').map((l) => l.trim()).find((l) => l.startsWith('mosquitto_pub '));
      assert.ok(commandLine, `first run printed no mosquitto_pub command:\n${out}`);
      const pw = / -P (\S+)/.exec(commandLine);
      assert.ok(pw, `the mosquitto_pub command has no -P <device token>: ${commandLine}`);
      deviceToken = pw[1]!;
      const port = / -p (\d+)/.exec(commandLine);
      assert.equal(Number(port?.[1]), first.mqttPort, 'the command\'s port is not the logged MQTT port');
      const topic = / -t (\S+)/.exec(commandLine)?.[1];
      assert.ok(topic, `no -t in ${commandLine}`);
      const plainTopic = topic.replace(/^'(.*)'$/, '$1');

      // A subscriber logged in with the same device token (same account topic space).
      const sub = await login(first.mqttPort, deviceToken, { protocolVersion: 5 });
      try {
        const got = record(sub);
        await sub.subscribeAsync(plainTopic, { qos: 1 });
        // Exactly the printed command, through a shell (it is meant to be pasted into one).
        const run = spawnProcess('sh', ['-c', commandLine], { timeoutMs: 8000 });
        const r = await run.done;
        assert.equal(r.code, 0, `printed command failed: ${r.stderr}`);
        await waitUntil(() => got.length === 1, 'the message of the printed mosquitto_pub command', 5000);
        assert.equal(got[0]!.topic, plainTopic);
        assert.deepEqual(JSON.parse(got[0]!.payload), { variable: 'temperature', value: 21.5, unit: 'C' });
      } finally {
        await endAll([sub]);
      }
    } finally {
      assert.equal(await stopServer(first), 0, 'SIGTERM did not stop the server with exit code 0');
    }

    const second = await spawnServer(dir);
    try {
      const out = second.proc.stdout();
      assert.ok(!out.includes(accountToken), 'second start printed the account token');
      assert.ok(!out.includes(deviceToken), 'second start printed the device token');
      assert.doesNotMatch(out, /account token:|device token:|mosquitto_pub .* -P /, 'second start printed credentials');
      // And the credentials printed the first time still work.
      assert.equal(await connackCode(second.mqttPort, { protocolVersion: 4, username: 'Token', password: deviceToken }), 0);
    } finally {
      assert.equal(await stopServer(second), 0);
    }

    // SPEC §1: tokens never appear in logs, even at the most verbose level, whatever the client does.
    const third = await spawnServer(dir, ['--log-level', 'trace', '--log-format', 'json']);
    const wrong = '0badc0de-0000-4000-8000-123456789abc';
    try {
      assert.equal(await connackCode(third.mqttPort, { protocolVersion: 5, username: 'Token', password: deviceToken, clientId: 'log-pw' }), 0);
      assert.equal(await connackCode(third.mqttPort, { protocolVersion: 4, username: deviceToken, clientId: 'log-user' }), 0);
      assert.equal(await connackCode(third.mqttPort, { protocolVersion: 5, username: 'Token', password: wrong, clientId: 'log-wrong' }), 0x87);
      assert.equal(await connackCode(third.mqttPort, { protocolVersion: 4, username: wrong, clientId: 'log-wrong-user' }), 0x05);
      const c = await login(third.mqttPort, deviceToken, { protocolVersion: 5, clientId: 'log-pub' });
      await c.subscribeAsync('log/#', { qos: 1 });
      await c.publishAsync('log/x', 'payload', { qos: 1 });
      await endAll([c]);
      await waitUntil(() => third.proc.stdout().includes('log-wrong-user'), 'the refused connection to be logged', 3000).catch(() => undefined);
    } finally {
      assert.equal(await stopServer(third), 0);
    }
    const r = await third.proc.done;
    const logs = r.stdout + r.stderr;
    assert.match(logs, /log-pub/, 'trace logging did not log the client at all (the check below would prove nothing)');
    for (const [secret, what] of [[deviceToken, 'device token'], [accountToken, 'account token'], [wrong, 'wrong token']] as const) {
      assert.ok(!logs.includes(secret), `the ${what} appears in the trace log`);
    }
  });
});
