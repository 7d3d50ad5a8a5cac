/**
 * What parser scripts see and what comes back (SPEC §4): decoders written for TagoIO's hosted
 * service must run unchanged. Real isolated-vm, in the sandbox's child process; one sandbox for
 * the file, each test on its own keys.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ParserSandbox, type ParseOutcome, type ParserDevice } from '../../src/parser/sandbox.ts';

// Generous: these tests are about semantics, not limits, and CI machines are busy.
const sandbox = new ParserSandbox({ timeoutMs: 5000 });
after(() => sandbox.dispose());

const device: ParserDevice = {
  id: 'dev-1',
  name: 'Greenhouse sensor',
  tags: [{ key: 'site', value: 'north' }],
  params: [
    { key: 'offset', value: '1.5', sent: false },
    { key: 'unit', value: 'C', sent: true },
  ],
};

let keys = 0;
/** A fresh key per call unless given: no test shares an isolate by accident. */
function run(code: string, payload: unknown[] = [], raw: Buffer = Buffer.alloc(0), key = `k${keys++}`): Promise<ParseOutcome> {
  return sandbox.parse(key, code, device, { payload, raw });
}

async function records(code: string, payload: unknown[] = [], raw?: Buffer): Promise<unknown[]> {
  const outcome = await run(code, payload, raw);
  assert.ok(outcome.ok, `expected success, got ${JSON.stringify(outcome)}`);
  return outcome.payload;
}

async function failure(code: string, payload: unknown[] = []): Promise<{ kind: string; message: string }> {
  const outcome = await run(code, payload);
  assert.ok(!outcome.ok, `expected failure, got ${JSON.stringify(outcome)}`);
  return outcome.error;
}

const input = [{ variable: 'payload', value: '0a1b2c' }];

describe('the result is the global payload after the run', () => {
  test('reassigned', async () => {
    assert.deepEqual(await records('payload = payload.map((r) => ({ ...r, value: r.value.toUpperCase() }))', input), [
      { variable: 'payload', value: '0A1B2C' },
    ]);
  });

  test('mutated in place', async () => {
    assert.deepEqual(await records('payload.push({ variable: "extra", value: 1 }); payload[0].unit = "x"', input), [
      { variable: 'payload', value: '0a1b2c', unit: 'x' },
      { variable: 'extra', value: 1 },
    ]);
  });

  test('left alone', async () => {
    assert.deepEqual(await records('const unused = 1', input), input);
  });

  test('declared with var, also when the initializer reads the input', async () => {
    assert.deepEqual(await records('var payload = [{ variable: "a", value: 1 }]', input), [{ variable: 'a', value: 1 }]);
    assert.deepEqual(await records('var payload = payload.concat([{ variable: "b", value: 2 }])', input), [
      ...input,
      { variable: 'b', value: 2 },
    ]);
  });

  test('declared with let or const', async () => {
    assert.deepEqual(await records('let payload = [{ variable: "a", value: 1 }]', input), [{ variable: 'a', value: 1 }]);
    assert.deepEqual(await records('const payload = [{ variable: "c", value: 3 }]', input), [{ variable: 'c', value: 3 }]);
  });

  test('top-level return ends the script and keeps the payload of that moment', async () => {
    const code = 'if (!payload.length) return;\npayload = [{ variable: "late", value: 1 }]';
    assert.deepEqual(await records(code, []), []);
    assert.deepEqual(await records(code, input), [{ variable: 'late', value: 1 }]);
    assert.deepEqual(await records('payload = [{ variable: "early", value: 1 }];\nreturn;\npayload = []', input), [
      { variable: 'early', value: 1 },
    ]);
    assert.deepEqual(await records('var payload = [{ variable: "v", value: 1 }]; if (true) return;', input), [{ variable: 'v', value: 1 }]);
  });

  test('a value returned at top level does not replace the payload', async () => {
    assert.deepEqual(await records('return [{ variable: "ignored" }]', input), input);
  });

  test('an assignment to globalThis.payload counts', async () => {
    assert.deepEqual(await records('globalThis.payload = [{ variable: "g", value: 1 }]', input), [{ variable: 'g', value: 1 }]);
  });

  test('Date values arrive as ISO strings', async () => {
    assert.deepEqual(await records('payload = [{ variable: "t", value: 1, time: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)) }]'), [
      { variable: 't', value: 1, time: '2024-01-02T03:04:05.000Z' },
    ]);
  });

  test('BigInt values become numbers when safe, strings otherwise', async () => {
    const raw = Buffer.from('0000000000000102ffffffffffffffff', 'hex');
    const code = 'payload = [{ variable: "small", value: raw_payload.readBigUInt64BE(0) }, { variable: "big", value: raw_payload.readBigUInt64BE(8) }]';
    assert.deepEqual(await records(code, [], raw), [
      { variable: 'small', value: 258 },
      { variable: 'big', value: '18446744073709551615' },
    ]);
  });
});

describe('sloppy-mode scripts', () => {
  test('assigning an undeclared name creates a global', async () => {
    assert.deepEqual(await records('x = 5; payload = [{ variable: "x", value: x }]'), [{ variable: 'x', value: 5 }]);
  });

  test('this is the global object and with statements parse', async () => {
    assert.deepEqual(await records('with ({ a: 1 }) { payload = [{ variable: "a", value: a, global: this === globalThis }] }'), [
      { variable: 'a', value: 1, global: true },
    ]);
  });

  test('a script may declare its own Buffer', async () => {
    assert.deepEqual(await records('function Buffer(x) { return x } payload = [{ variable: "b", value: typeof Buffer.from }]'), [
      { variable: 'b', value: 'undefined' },
    ]);
    assert.deepEqual(await records('const Buffer = { from: () => "mine" }; payload = [{ variable: "b", value: Buffer.from() }]'), [
      { variable: 'b', value: 'mine' },
    ]);
  });
});

describe('globals', () => {
  test('Buffer decodes hex, base64 and utf-8 and reads integers and floats', async () => {
    const code = `
      const b = Buffer.from('fffe0000010240490fdb', 'hex');
      payload = [
        { variable: 'i16', value: b.readInt16BE(0) },
        { variable: 'u32le', value: b.readUInt32LE(2) },
        { variable: 'u8', value: b.readUInt8(5) },
        { variable: 'f32', value: Math.round(b.readFloatBE(6) * 1e5) / 1e5 },
        { variable: 'b64', value: Buffer.from('aGVsbG8=', 'base64').toString('utf8') },
        { variable: 'utf8', value: Buffer.from('héllo').toString('hex') },
        { variable: 'isBuffer', value: Buffer.isBuffer(b) && b instanceof Uint8Array },
      ]`;
    assert.deepEqual(await records(code), [
      { variable: 'i16', value: -2 },
      { variable: 'u32le', value: 0x02010000 },
      { variable: 'u8', value: 2 },
      { variable: 'f32', value: 3.14159 },
      { variable: 'b64', value: 'hello' },
      { variable: 'utf8', value: Buffer.from('héllo').toString('hex') },
      { variable: 'isBuffer', value: true },
    ]);
  });

  test('raw_payload is a Buffer of the original bytes', async () => {
    const raw = Buffer.from([0x01, 0x02, 0xff]);
    assert.deepEqual(await records('payload = [{ variable: "raw", value: raw_payload.toString("hex"), n: raw_payload.length }]', [], raw), [
      { variable: 'raw', value: '0102ff', n: 3 },
    ]);
  });

  test('DataView, typed arrays and BigInt', async () => {
    const code = `
      const view = new DataView(new Uint8Array([0x41, 0x20, 0, 0, 0, 0, 0, 0, 0, 7]).buffer);
      payload = [
        { variable: 'f', value: view.getFloat32(0) },
        { variable: 'big', value: Number(view.getBigUint64(2) + 1n) },
        { variable: 'typed', value: Array.from(new Int16Array([1, -1])) },
      ]`;
    assert.deepEqual(await records(code), [
      { variable: 'f', value: 10 },
      { variable: 'big', value: 8 },
      { variable: 'typed', value: [1, -1] },
    ]);
  });

  test('dayjs with its utc and timezone plugins', async () => {
    const code = `payload = [
      { variable: 'sp', value: dayjs('2024-01-01T12:00:00Z').tz('America/Sao_Paulo').format() },
      { variable: 'berlin', value: dayjs.utc('2024-07-01T12:00:00Z').tz('Europe/Berlin').format('YYYY-MM-DD HH:mm') },
      { variable: 'utc', value: dayjs.utc('2024-01-01T12:00:00Z').format() },
      { variable: 'now', value: Math.abs(dayjs().valueOf() - Date.now()) < 60000 },
    ]`;
    assert.deepEqual(await records(code), [
      { variable: 'sp', value: '2024-01-01T09:00:00-03:00' },
      { variable: 'berlin', value: '2024-07-01 14:00' },
      { variable: 'utc', value: '2024-01-01T12:00:00Z' },
      { variable: 'now', value: true },
    ]);
  });

  test('device holds id, name, tags and params', async () => {
    const code = `payload = [{ variable: 'offset', value: Number(device.params.find((p) => p.key === 'offset').value),
      device: device.id + '/' + device.name, site: device.tags[0].value, sent: device.params[1].sent }]`;
    assert.deepEqual(await records(code), [{ variable: 'offset', value: 1.5, device: 'dev-1/Greenhouse sensor', site: 'north', sent: true }]);
  });

  test('provided globals are reset before each message', async () => {
    // One code for both messages, so they share the isolate; the payload picks the branch.
    const code = `if (payload[0].spoil) {
        device.name = 'changed'; device.params.length = 0; raw_payload[0] = 9; payload.length = 0;
        Buffer = null; dayjs = null; console = null; raw_payload = null; device = null;
        payload = [{ variable: 'spoiled' }];
      } else {
        console.log('still here');
        payload = [{ variable: 'b', name: device.name, params: device.params.length, raw: raw_payload[0],
          input: payload.length, buffer: typeof Buffer.from, dayjs: typeof dayjs.utc }];
      }`;
    const first = await run(code, [{ spoil: true }], Buffer.from([1]), 'reset');
    assert.deepEqual(first.ok && first.payload, [{ variable: 'spoiled' }]);
    const second = await run(code, [{ spoil: false }], Buffer.from([1]), 'reset');
    assert.deepEqual(second, {
      ok: true,
      payload: [{ variable: 'b', name: 'Greenhouse sensor', params: 2, raw: 1, input: 1, buffer: 'function', dayjs: 'function' }],
      logs: [{ level: 'log', message: 'still here' }],
    });
  });

  test('messages queued together for one key each see the device they were sent with', async () => {
    const code = 'payload = [{ variable: "name", value: device.name, n: payload[0].n }]';
    const renamed = { ...device, name: 'Renamed sensor' };
    const outcomes = await Promise.all([device, device, renamed, renamed, device].map((d, n) => sandbox.parse('device-switch', code, d, { payload: [{ n }], raw: Buffer.alloc(0) })));
    assert.deepEqual(
      outcomes.map((o) => (o.ok ? o.payload[0] : o.error)),
      ['Greenhouse sensor', 'Greenhouse sensor', 'Renamed sensor', 'Renamed sensor', 'Greenhouse sensor'].map((value, n) => ({ variable: 'name', value, n })),
    );
  });

  test('raw_payload or device deleted or redefined by one message are back for the next; console cannot be patched', async () => {
    const code = `switch (payload[0].step) {
        case 'delete': delete globalThis.raw_payload; break;
        case 'define': Object.defineProperty(globalThis, 'raw_payload', { value: 'mine', writable: true, configurable: true, enumerable: true }); break;
        case 'getter': Object.defineProperty(globalThis, 'raw_payload', { get() { throw new Error('no'); }, configurable: true }); break;
        case 'patch': console.log = function () {}; console.extra = 1; break;
        case 'device': delete globalThis.device; globalThis.device = { name: 'other' }; break;
      }
      console.log('raw', raw_payload === undefined ? 'missing' : raw_payload[0]);
      payload = [{ variable: 'raw', value: typeof raw_payload === 'object' ? raw_payload[0] : String(raw_payload), extra: typeof console.extra, device: device.name }]`;
    const expected = (value: unknown): ParseOutcome => ({
      ok: true,
      payload: [{ variable: 'raw', value, extra: 'undefined', device: 'Greenhouse sensor' }],
      logs: [{ level: 'log', message: `raw ${String(value)}` }],
    });
    for (const step of ['delete', 'define', 'getter', 'patch', 'device']) {
      const spoiled = await run(code, [{ step }], Buffer.from([7]), 'raw-accessor');
      if (step === 'define') assert.deepEqual(spoiled.ok && spoiled.payload, [{ variable: 'raw', value: 'mine', extra: 'undefined', device: 'Greenhouse sensor' }]);
      if (step === 'device') assert.deepEqual(spoiled.ok && spoiled.payload, [{ variable: 'raw', value: 7, extra: 'undefined', device: 'other' }]);
      if (step === 'getter') assert.deepEqual(spoiled.ok ? undefined : spoiled.error, { kind: 'runtime', message: 'Error: no' });
      assert.deepEqual(await run(code, [{ step: 'none' }], Buffer.from([8]), 'raw-accessor'), expected(8), `after ${step}`);
    }
  });

  test('globals a script creates or replaces do not outlive its message', async () => {
    const code = `if (payload[0].first) { total = 41; globalThis.cache = { n: 1 }; JSON = null; Math = null; }
      payload = [{ variable: 'seen', total: typeof total, cache: typeof cache, json: JSON.stringify([1]), pi: Math.PI > 3 }]`;
    const first = await run(code, [{ first: true }], undefined, 'implicit');
    assert.deepEqual(first.ok ? undefined : first.error, { kind: 'runtime', message: "TypeError: Cannot read properties of null (reading 'stringify')" });
    const second = await run(code, [{ first: false }], undefined, 'implicit');
    assert.deepEqual(second.ok && second.payload, [{ variable: 'seen', total: 'undefined', cache: 'undefined', json: '[1]', pi: true }]);
  });

  test('every way of making a global is undone: this.x, Object.assign, symbols, indirect eval, defineProperty, a replaced prototype of the global object', async () => {
    const makers: Record<string, string> = {
      this: 'this.leak = 1',
      assign: 'Object.assign(globalThis, { leak: 1 })',
      symbol: 'globalThis[Symbol.for("leak")] = 1; leak = 1',
      eval: '(0, eval)("var leak = 1")',
      define: 'Object.defineProperty(globalThis, "leak", { value: 1, enumerable: true, configurable: true })',
      prototype: 'Object.setPrototypeOf(globalThis, { inherited: 1 }); leak = 1',
      proto: '__proto__ = {}; leak = 1',
    };
    for (const [name, make] of Object.entries(makers)) {
      const code = `if (payload[0].make) { ${make} }
        payload = [{ variable: 'seen', leak: typeof leak, symbol: typeof globalThis[Symbol.for('leak')], inherited: typeof inherited, tostring: typeof toString, proto: Object.getPrototypeOf(Object.getPrototypeOf(globalThis)) === Object.prototype }]`;
      const made = await run(code, [{ make: true }], undefined, `leak-${name}`);
      assert.equal(made.ok, true, `${name}: ${JSON.stringify(made)}`);
      const next = await run(code, [{ make: false }], undefined, `leak-${name}`);
      assert.deepEqual(next.ok && next.payload, [{ variable: 'seen', leak: 'undefined', symbol: 'undefined', inherited: 'undefined', tostring: 'function', proto: true }], name);
    }
  });

  test('names the global object lacks: reading throws ReferenceError, typeof is undefined, inherited functions still resolve', async () => {
    const code = `let thrown = 'none'; try { undeclaredName } catch (e) { thrown = e.name }
      payload = [{ variable: 'r', thrown, type: typeof window, own: hasOwnProperty.call(globalThis, 'Buffer'), text: toString.call(1), global: 'Buffer' in globalThis }]`;
    assert.deepEqual(await records(code), [{ variable: 'r', thrown: 'ReferenceError', type: 'undefined', own: true, text: '[object Number]', global: true }]);
  });

  test('a global that cannot be removed fails the message that made it, not the next', async () => {
    const code = 'if (payload[0].pin) Object.defineProperty(globalThis, "pinned", { value: 1, enumerable: true }); payload = [{ variable: "p", value: typeof pinned }]';
    const pinned = await run(code, [{ pin: true }], undefined, 'pinned');
    assert.deepEqual(pinned.ok ? undefined : pinned.error, { kind: 'runtime', message: 'parser left a global that cannot be removed: pinned' });
    // The isolate was replaced: the next message starts clean.
    const next = await run(code, [{ pin: false }], undefined, 'pinned');
    assert.deepEqual(next.ok && next.payload, [{ variable: 'p', value: 'undefined' }]);
  });

  test('an own Buffer of one message does not outlive it', async () => {
    const code = 'if (payload[0].own) { Buffer = function () {} } payload = [{ variable: "b", value: typeof Buffer.from }]';
    assert.deepEqual((await run(code, [{ own: true }], undefined, 'own-buffer')).ok, true);
    const next = await run(code, [{ own: false }], undefined, 'own-buffer');
    assert.deepEqual(next.ok && next.payload, [{ variable: 'b', value: 'function' }]);
  });
});

describe('console', () => {
  test('log and info are log lines, warn and error are error lines, formatted like Node', async () => {
    const outcome = await run(`
      console.log('text', 1, true, null, undefined, { a: [1, 'x'] }, [1, 2]);
      console.info('%s is %d years and %j', 'Ann', 42.9, { ok: 1 });
      console.warn(new RangeError('careful'));
      console.error(Buffer.from('0102', 'hex'), 10n, new Date(0), function named() {});
    `);
    assert.deepEqual(outcome.logs, [
      { level: 'log', message: 'text 1 true null undefined {"a":[1,"x"]} [1,2]' },
      { level: 'log', message: 'Ann is 42.9 years and {"ok":1}' },
      { level: 'error', message: 'RangeError: careful' },
      { level: 'error', message: '<Buffer 01 02> 10n 1970-01-01T00:00:00.000Z [Function: named]' },
    ]);
  });

  test('at most 100 lines of at most 2,000 characters per message', async () => {
    const outcome = await run('for (let i = 0; i < 500; i++) console.log(String(i).padEnd(5000, "x"))');
    assert.equal(outcome.logs.length, 100);
    assert.ok(outcome.logs.every((line) => line.message.length === 2000));
    assert.ok(outcome.logs[99]?.message.startsWith('99xx'));
  });

  test('circular objects still print', async () => {
    const outcome = await run('const o = { a: 1 }; o.self = o; console.log(o)');
    assert.deepEqual(outcome.logs, [{ level: 'log', message: '[object Object]' }]);
  });

  test('lines logged before an error are kept', async () => {
    const outcome = await run('console.log("before"); throw new Error("boom")');
    assert.deepEqual(outcome, { ok: false, error: { kind: 'runtime', message: 'Error: boom' }, logs: [{ level: 'log', message: 'before' }] });
  });
});

describe('errors', () => {
  test('a syntax error names V8 message and line', async () => {
    const error = await failure('const a = 1;\nconst b = ;\n');
    assert.equal(error.kind, 'syntax');
    assert.equal(error.message, "SyntaxError: Unexpected token ';' (line 2)");
  });

  test('code cannot close the wrapper function early', async () => {
    const error = await failure('}); (function () {');
    assert.equal(error.kind, 'syntax');
  });

  test('a throw is a runtime error named after the error', async () => {
    assert.deepEqual(await failure('throw new TypeError("bad frame")'), { kind: 'runtime', message: 'TypeError: bad frame' });
    assert.deepEqual(await failure('null.x'), { kind: 'runtime', message: "TypeError: Cannot read properties of null (reading 'x')" });
    assert.deepEqual(await failure('throw "plain text"'), { kind: 'runtime', message: 'Error: plain text' });
    assert.deepEqual(await failure('undefinedFunction()'), { kind: 'runtime', message: 'ReferenceError: undefinedFunction is not defined' });
  });

  test('a result that is not an array is refused', async () => {
    assert.deepEqual(await failure('payload = { variable: "x" }'), { kind: 'result', message: 'parser result must be an array of records, got object' });
    assert.deepEqual(await failure('payload = null'), { kind: 'result', message: 'parser result must be an array of records, got null' });
    assert.deepEqual(await failure('payload = undefined'), { kind: 'result', message: 'parser result must be an array of records, got undefined' });
    assert.deepEqual(await failure('payload = "text"'), { kind: 'result', message: 'parser result must be an array of records, got string' });
  });

  test('a result that cannot be serialized is refused', async () => {
    const error = await failure('const r = { variable: "x" }; r.self = r; payload = [r]');
    assert.equal(error.kind, 'result');
    assert.match(error.message, /^parser result is not serializable: TypeError: Converting circular structure to JSON/);
  });

  test('one bad message does not disturb the next one of the same device', async () => {
    const key = 'recover';
    const code = 'if (payload[0].fail) throw new Error("no"); payload = [{ variable: "ok" }]';
    const bad = await sandbox.parse(key, code, device, { payload: [{ fail: true }], raw: Buffer.alloc(0) });
    const good = await sandbox.parse(key, code, device, { payload: [{ fail: false }], raw: Buffer.alloc(0) });
    assert.equal(bad.ok, false);
    assert.deepEqual(good, { ok: true, payload: [{ variable: 'ok' }], logs: [] });
  });
});

describe('a typical decoder', () => {
  test('hex frame to records with units', async () => {
    const code = `
      const frame = payload.find((r) => r.variable === 'payload');
      if (!frame) return;
      const bytes = Buffer.from(frame.value, 'hex');
      payload = [
        { variable: 'temperature', value: bytes.readInt16BE(0) / 100, unit: '°C' },
        { variable: 'humidity', value: bytes.readUInt8(2) / 2, unit: '%' },
        { variable: 'battery', value: bytes.readUInt16BE(3), unit: 'mV' },
      ];`;
    assert.deepEqual(await records(code, [{ variable: 'payload', value: 'f9c27a0e10' }]), [
      { variable: 'temperature', value: -15.98, unit: '°C' },
      { variable: 'humidity', value: 61, unit: '%' },
      { variable: 'battery', value: 3600, unit: 'mV' },
    ]);
  });
});

describe('input checks', () => {
  test('input that is not JSON data rejects the call', async () => {
    await assert.rejects(sandbox.parse('input', 'return', device, { payload: [{ value: 1n }], raw: Buffer.alloc(0) }), TypeError);
    // The device too, and as a rejection, not a synchronous throw.
    const odd = { ...device, params: [{ key: 'n', value: 1n as unknown as string, sent: false }] };
    await assert.rejects(sandbox.parse('input', 'return', odd, { payload: [], raw: Buffer.alloc(0) }), TypeError);
  });
});

describe('the sandbox clock (SPEC §4: UTC, whatever the server\'s zone)', () => {
  const CLOCK = `payload = [{ variable: 'text', value: new Date(0).toString() }, { variable: 'hour', value: new Date(0).getHours() }, { variable: 'plain', value: dayjs(0).format() }]`;

  test('runs in UTC by default', async () => {
    assert.deepEqual(await records(CLOCK), [
      { variable: 'text', value: 'Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)' },
      { variable: 'hour', value: 0 },
      { variable: 'plain', value: '1970-01-01T00:00:00+00:00' },
    ]);
  });

  test('the timezone option moves it (--parser-timezone); an unknown zone is refused', async () => {
    const saoPaulo = new ParserSandbox({ timeoutMs: 5000, timezone: 'America/Sao_Paulo' });
    try {
      const outcome = await saoPaulo.parse('clock', CLOCK, device, { payload: [], raw: Buffer.alloc(0) });
      assert.ok(outcome.ok, JSON.stringify(outcome));
      assert.deepEqual(outcome.payload.map((r) => (r as { value: unknown }).value), ['Wed Dec 31 1969 21:00:00 GMT-0300 (Brasilia Standard Time)', 21, '1969-12-31T21:00:00-03:00']);
    } finally {
      saoPaulo.dispose();
    }
    assert.throws(() => new ParserSandbox({ timezone: 'Europe/Atlantis' }), /timezone must be an IANA time zone/);
  });
});
