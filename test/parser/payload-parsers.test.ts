import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceCache } from '../../src/data/device-cache.ts';
import { InspectorBus } from '../../src/inspector/inspector-bus.ts';
import { ParserBusyError, ParserError, PayloadParsers } from '../../src/parser/payload-parsers.ts';
import { ParserSandbox } from '../../src/parser/sandbox.ts';
import { openDatabase } from '../../src/storage/sqlite-database.ts';
import { Registry } from '../../src/tenancy/registry.ts';

const registry = new Registry(openDatabase(':memory:'));
registry.installPlans();
const accountId = registry.createAccount({ name: 'parsers' }).account.id;
const devices = new DeviceCache(registry);
const sandbox = new ParserSandbox({ timeoutMs: 2_000 });
after(() => {
  sandbox.dispose();
  devices.close();
});

function device(code: string | null): string {
  return registry.createDevice(accountId, { name: 'd', payload_parser: code }).device.id;
}

/** One message through the parser step, as the data path submits it; resolves with the parser's result. */
function parse(parsers: PayloadParsers, deviceId: string, payload: unknown[], raw: Buffer, via: string): Promise<unknown> {
  return new Promise((resolve, reject) => parsers.submit({ deviceId, via, parsed: resolve, failed: reject }, { payload, raw }));
}

describe('PayloadParsers', () => {
  test('devices without a parser are left alone; a blank parser counts as none', async () => {
    const parsers = new PayloadParsers(sandbox, devices, new InspectorBus());
    assert.equal(parsers.has(device(null)), false);
    assert.equal(parsers.has(device('  \n')), false);
    assert.equal(parsers.has(device('payload = []')), true);
  });

  test('the script sees the device with its params; errors become ParserError and inspector events', async () => {
    const inspector = new InspectorBus();
    const parsers = new PayloadParsers(sandbox, devices, inspector);
    const id = registry.createDevice(accountId, { name: 'meter', tags: [{ key: 'site', value: 'a' }], params: [{ key: 'k', value: '2' }], payload_parser: 'payload = [{ variable: device.name, value: Number(device.params[0].value) * payload[0].value }]' }).device.id;
    assert.deepEqual(await parse(parsers, id, [{ variable: 'x', value: 21 }], Buffer.from('x'), 'http'), [{ variable: 'meter', value: 42 }]);

    const failing = device('console.log("about to fail"); throw new RangeError("bad frame")');
    await assert.rejects(parse(parsers, failing, [], Buffer.alloc(0), 'mqtt'), (error: unknown) => error instanceof ParserError && error.kind === 'runtime' && /RangeError: bad frame/.test(error.message));
    assert.deepEqual(inspector.history(failing).map((e) => [e.type, e.data.kind ?? e.data.message]), [['parser.log', 'about to fail'], ['parser.error', 'runtime']]);
  });

  test('backpressure: beyond maxPending messages in the sandbox, new ones are refused with a 503 until it drains', async () => {
    const parsers = new PayloadParsers(sandbox, devices, new InspectorBus(), { maxPending: 2 });
    const slow = device('const end = Date.now() + 150; while (Date.now() < end) {} payload = [{ variable: "done", value: true }]');
    const first = parse(parsers, slow, [], Buffer.alloc(0), 'mqtt');
    const second = parse(parsers, slow, [], Buffer.alloc(0), 'mqtt');
    await assert.rejects(parse(parsers, slow, [], Buffer.alloc(0), 'mqtt'), (error: unknown) => error instanceof ParserBusyError && error.statusCode === 503);
    assert.deepEqual(await Promise.all([first, second]), [[{ variable: 'done', value: true }], [{ variable: 'done', value: true }]]);
    assert.deepEqual(await parse(parsers, slow, [], Buffer.alloc(0), 'mqtt'), [{ variable: 'done', value: true }]);
  });
});
