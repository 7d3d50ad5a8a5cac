import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import mqtt from 'mqtt';
import { loadConfig } from '../../src/config.ts';
import { startServer } from '../../src/server.ts';
import { dropSchema, freshClient, pgSkip, randomSchema, requirePgUrl } from './postgres-helpers.ts';

describe('the server with --postgres-url keeps buckets in PostgreSQL', { skip: pgSkip() }, () => {
  test('an MQTT publish through an insert_bucket action lands in PostgreSQL and reads back through GET /data', async () => {
    const schema = randomSchema();
    const setup = await freshClient();
    await setup.query(`CREATE SCHEMA ${schema}`);
    await setup.end();
    // The schema rides in the URL (libpq `options`), as a deployment would set a search_path.
    const url = new URL(requirePgUrl());
    url.searchParams.set('options', `-c search_path=${schema}`);
    const dir = mkdtempSync(path.join(tmpdir(), 'bucketmq-pg-server-'));
    const server = await startServer(loadConfig(['--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--data-dir', dir, '--log-level', 'silent', '--postgres-url', url.toString()], {}));
    try {
      const { accountId, deviceToken } = server.firstRun!;
      server.actions.create(accountId, { name: 'store sensors', trigger: { type: 'mqtt_topic', topics: ['sensors/#'] }, action: { type: 'insert_bucket' } });
      const client = await mqtt.connectAsync({ host: '127.0.0.1', port: server.ports.mqtt, protocolVersion: 5, username: 'Token', password: deviceToken, reconnectPeriod: 0 });
      // QoS 1: the PUBACK arrives only once the record is committed in PostgreSQL.
      await client.publishAsync('sensors/t', JSON.stringify({ variable: 'temperature', value: 21.5, unit: 'C' }), { qos: 1 });
      await client.endAsync();

      const direct = await freshClient(schema);
      const rows = await direct.query('SELECT variable, value_num, unit FROM bucket_records');
      await direct.end();
      assert.deepEqual(rows.rows, [{ variable: 'temperature', value_num: 21.5, unit: 'C' }]);

      const response = await fetch(`http://127.0.0.1:${server.ports.http}/data?variable=temperature&query=last_value`, { headers: { Token: deviceToken } });
      const body = (await response.json()) as { status: boolean; result: Array<{ value: number; metadata: { mqtt_topic: string } }> };
      assert.equal(body.status, true);
      assert.equal(body.result[0]!.value, 21.5);
      assert.equal(body.result[0]!.metadata.mqtt_topic, 'sensors/t');
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
      await dropSchema(schema);
    }
  });

  test('an unreachable PostgreSQL stops the start with an error naming --postgres-url, not the password', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bucketmq-pg-bad-'));
    try {
      await assert.rejects(
        startServer(loadConfig(['--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--data-dir', dir, '--log-level', 'silent', '--postgres-url', 'postgres://u:s3cret@127.0.0.1:1/none'], {})),
        (error: Error) => /--postgres-url: cannot open the PostgreSQL bucket store/.test(error.message) && !error.message.includes('s3cret'),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
