import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { runCli } from '../../src/cli/main.ts';
import { loadConfig } from '../../src/config.ts';
import { startServer } from '../../src/server.ts';

/** Runs the CLI in-process and captures what it prints. */
async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(argv, {}, { out: (t) => (out += t + '\n'), err: (t) => (err += t + '\n') });
  return { code, out, err };
}

const TOKEN = /token: ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/;

describe('bucketmq account / device / token commands', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'bucketmq-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const at = ['--data-dir', dir];

  test('create an account, a device and tokens; list them without secrets; revoke', async () => {
    const account = await cli('account', 'create', '--name', 'acme', '--plan', 'starter', ...at);
    assert.equal(account.code, 0, account.err);
    const accountToken = TOKEN.exec(account.out)?.[1];
    assert.ok(accountToken, account.out);

    const device = await cli('device', 'create', '--name', 'boiler', '--tag', 'site=north', '--json', ...at);
    assert.equal(device.code, 0, device.err);
    const created = JSON.parse(device.out) as { device: { id: string; tags: unknown }; token: string };
    assert.deepEqual(created.device.tags, [{ key: 'site', value: 'north' }]);

    const token = await cli('token', 'create', created.device.id, '--name', 'reader', '--permission', 'read', '--expire', '3 hours', ...at);
    assert.equal(token.code, 0, token.err);
    const readToken = TOKEN.exec(token.out)?.[1];
    assert.ok(readToken);

    const list = await cli('token', 'list', created.device.id, '--json', ...at);
    const tokens = JSON.parse(list.out) as Array<{ id: string; name: string; permission: string; expire_time: string }>;
    assert.deepEqual(tokens.map((t) => [t.name, t.permission]), [['Default', 'full'], ['reader', 'read']]);
    assert.ok(!list.out.includes(readToken) && !list.out.includes(created.token), 'secrets are never listed');
    assert.notEqual(tokens[1]!.expire_time, 'never');

    const devices = await cli('device', 'list', ...at);
    assert.match(devices.out, /boiler/);

    const revoke = await cli('token', 'delete', created.device.id, tokens[1]!.id, ...at);
    assert.equal(revoke.code, 0, revoke.err);
    assert.equal(JSON.parse((await cli('token', 'list', created.device.id, '--json', ...at)).out).length, 1);
  });

  test('errors name what is wrong and exit 1; with two accounts --account is required', async () => {
    await cli('account', 'create', '--name', 'second', ...at);
    const ambiguous = await cli('device', 'list', ...at);
    assert.equal(ambiguous.code, 1);
    assert.match(ambiguous.err, /--account is needed: there are 2 accounts \(acme, second\)/);
    const byName = await cli('device', 'list', '--account', 'second', ...at);
    assert.equal(byName.code, 0);
    const unknown = await cli('device', 'delete', 'nope', '--account', 'acme', ...at);
    assert.equal(unknown.code, 1);
    assert.match(unknown.err, /device nope not found/);
    const badExpire = await cli('token', 'create', 'x', '--name', 't', '--account', 'acme', ...at);
    assert.equal(badExpire.code, 1);
    const badPermission = await cli('token', 'create', 'x', '--name', 't', '--permission', 'admin', '--account', 'acme', ...at);
    assert.notEqual(badPermission.code, 0);
    assert.match(badPermission.err, /admin/);
  });

  test('the bin launcher runs the same commands (npx bucketmq device list)', () => {
    const result = spawnSync(process.execPath, ['bin/bucketmq.js', 'account', 'list', '--data-dir', dir], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /acme\s+starter/);
  });
});

describe('a revocation made by the CLI reaches a running server', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'bucketmq-cli-live-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('deleting the token from another process cuts the live MQTT 5 session within 1 s (DISCONNECT 0x98)', async () => {
    const server = await startServer(loadConfig(['--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--data-dir', dir, '--log-level', 'silent'], {}));
    try {
      const credentials = server.firstRun!;
      const client = await mqtt.connectAsync({ host: '127.0.0.1', port: server.ports.mqtt, protocolVersion: 5, username: 'Token', password: credentials.deviceToken, reconnectPeriod: 0 });
      const cut = new Promise<{ reasonCode: number | undefined; at: number }>((resolve) => {
        client.on('disconnect', (packet) => resolve({ reasonCode: packet.reasonCode, at: Date.now() }));
      });
      const tokens = JSON.parse((await cli('token', 'list', credentials.deviceId, '--json', '--data-dir', dir)).out) as Array<{ id: string }>;
      // A separate process, as an operator would run it.
      const started = Date.now();
      const result = spawnSync(process.execPath, ['bin/bucketmq.js', 'token', 'delete', credentials.deviceId, tokens[0]!.id, '--data-dir', dir], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(result.status, 0, result.stderr);
      const revokedAt = Date.now();
      const outcome = await Promise.race([cut, new Promise<null>((resolve) => setTimeout(() => resolve(null), 3000))]);
      assert.ok(outcome, 'session was not cut');
      assert.equal(outcome.reasonCode, 0x98);
      assert.ok(outcome.at - revokedAt < 1000, `cut ${outcome.at - revokedAt} ms after the CLI returned (started ${revokedAt - started} ms earlier)`);
      client.end(true);
    } finally {
      await server.stop();
    }
  });
});
