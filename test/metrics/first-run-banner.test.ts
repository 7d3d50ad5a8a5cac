/**
 * The first-run banner's three commands, run as printed (curl and mosquitto_pub, through sh) against
 * a first-run server, in order: create the insert_bucket action, publish, read the record back.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { firstRunBanner } from '../../src/tenancy/first-run.ts';
import { HOST, removeDataDirs, startTestServer } from './helpers.ts';

after(removeDataDirs);

const run = promisify(execFile);

async function shell(command: string): Promise<string> {
  const { stdout } = await run('sh', ['-c', command], { timeout: 10_000 });
  return stdout;
}

test('first run: the banner\'s action, publish and read-back commands store and return the record', { timeout: 60_000 }, async () => {
  const { server, stop } = await startTestServer();
  try {
    assert.ok(server.firstRun !== null, 'an empty data directory is a first run');
    const banner = firstRunBanner(server.firstRun, server.ports, HOST);
    const lines = banner.split('\n');
    const step = (n: number): string => {
      const at = lines.findIndex((line) => line.startsWith(`  ${n}. `));
      assert.ok(at >= 0, `step ${n} in:\n${banner}`);
      return lines[at + 1]!.trim();
    };
    const [createAction, publish, readBack] = [step(1), step(2), step(3)];
    assert.match(createAction, /^curl -X POST .*\/actions$/);
    assert.match(publish, /^mosquitto_pub /);
    assert.match(readBack, /^curl .*\/data\?/);

    const action = JSON.parse(await shell(createAction)) as { status: boolean; result: { id: string } };
    assert.equal(action.status, true);
    await shell(publish);
    const data = JSON.parse(await shell(readBack)) as { status: boolean; result: Array<{ variable: string; value: unknown; unit: string; metadata: Record<string, unknown> }> };
    assert.equal(data.status, true);
    assert.equal(data.result.length, 1);
    assert.deepEqual(
      { variable: data.result[0]!.variable, value: data.result[0]!.value, unit: data.result[0]!.unit, topic: data.result[0]!.metadata.mqtt_topic },
      { variable: 'temperature', value: 21.5, unit: 'C', topic: 'sensors/t' },
    );

    // Where to watch it: the inspector's REST history answers with the printed command; the stream URL names the device.
    const history = lines.find((line) => line.trim().startsWith('history: '))!.trim().slice('history: '.length);
    assert.equal((JSON.parse(await shell(history)) as { status: boolean }).status, true);
    assert.ok(banner.includes(`ws://${HOST}:${server.ports.http}/devices/${server.firstRun.deviceId}/inspector/live?token=${server.firstRun.accountToken}`));
  } finally {
    await stop();
  }
});
