/**
 * Parser sandbox benchmark (SPEC §4): how fast device parser scripts run in isolated-vm.
 *
 *   npx tsx bench/parser-sandbox.ts [--seconds 2] [--devices 8] [--window 256]
 *
 * The script is a typical hex decoder: a 7-byte frame (temperature int16BE / 100, humidity
 * uint8 / 2, battery uint16BE mV) into 3 records with units. Rows:
 * - isolate creation: a new isolate with the prelude (Buffer, dayjs, console, driver) and the
 *   script compiled, in this process.
 * - per call: one message at a time (each awaited before the next), so every message is its own
 *   isolate call; in-process engine and the ParserSandbox child process (adds the IPC round trip).
 * - batched: `--window` messages of one device issued together, so they share isolate calls.
 * - throughput: `--devices` devices each keeping `--window` messages in flight through
 *   ParserSandbox (closed loop) for `--seconds`; messages/s.
 *
 * Runs are short on purpose: this is a shared 2-core machine.
 */
import { parseArgs } from 'node:util';
import { ParserEngine } from '../src/parser/engine.ts';
import { ParserIsolate } from '../src/parser/parser-isolate.ts';
import { preludeSource } from '../src/parser/prelude.ts';
import { ParserSandbox } from '../src/parser/sandbox.ts';
import type { ParseOutcome, ParserDevice, ParserInput } from '../src/parser/types.ts';
import { deviceText, wireMessage } from '../src/parser/wire.ts';

const DECODER = `
const frame = payload.find((record) => record.variable === 'payload');
if (!frame) return;
const bytes = Buffer.from(frame.value, 'hex');
payload = [
  { variable: 'temperature', value: bytes.readInt16BE(0) / 100, unit: '°C' },
  { variable: 'humidity', value: bytes.readUInt8(2) / 2, unit: '%' },
  { variable: 'battery', value: bytes.readUInt16BE(3), unit: 'mV' },
];`;

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '2' },
    devices: { type: 'string', default: '8' },
    window: { type: 'string', default: '256' },
  },
});
const seconds = Number(args.seconds);
const deviceCount = Number(args.devices);
const window = Number(args.window);

function device(i: number): ParserDevice {
  return { id: `bench-${i}`, name: `bench device ${i}`, tags: [{ key: 'kind', value: 'bench' }], params: [{ key: 'offset', value: '0', sent: false }] };
}

function input(n: number): ParserInput {
  const raw = Buffer.alloc(7);
  raw.writeInt16BE(2000 + (n % 500), 0);
  raw.writeUInt8(80 + (n % 40), 2);
  raw.writeUInt16BE(3600 - (n % 300), 3);
  raw.writeUInt16BE(n & 0xffff, 5);
  return { payload: [{ variable: 'payload', value: raw.toString('hex'), metadata: { mqtt_topic: 'bench/frames' } }], raw };
}

function check(outcome: ParseOutcome): void {
  if (!outcome.ok || outcome.payload.length !== 3) throw new Error(`unexpected outcome ${JSON.stringify(outcome)}`);
}

function format(value: number, digits = 1): string {
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

interface Parser {
  parse(key: string, code: string, device: ParserDevice, input: ParserInput): Promise<ParseOutcome>;
}

const engineParser = (engine: ParserEngine): Parser => ({
  parse: (key, code, dev, message) => engine.parseWire(key, code, deviceText(dev), wireMessage(message)),
});

/** Messages one after another: µs per message. */
async function perCall(parser: Parser, key: string, ms: number): Promise<number> {
  const dev = device(0);
  check(await parser.parse(key, DECODER, dev, input(0)));
  let n = 0;
  const started = performance.now();
  while (performance.now() - started < ms) check(await parser.parse(key, DECODER, dev, input(n++)));
  return ((performance.now() - started) * 1000) / n;
}

/** `window` messages of one device at a time: µs per message. */
async function batched(parser: Parser, key: string, ms: number): Promise<number> {
  const dev = device(0);
  check(await parser.parse(key, DECODER, dev, input(0)));
  let n = 0;
  const started = performance.now();
  while (performance.now() - started < ms) {
    const outcomes = await Promise.all(Array.from({ length: window }, () => parser.parse(key, DECODER, dev, input(n++))));
    outcomes.forEach(check);
  }
  return ((performance.now() - started) * 1000) / n;
}

/** Closed loop: each device keeps `window` messages in flight. Messages per second. */
async function throughput(parser: Parser, ms: number): Promise<number> {
  const devices = Array.from({ length: deviceCount }, (_, i) => device(i));
  await Promise.all(devices.map((dev) => parser.parse(dev.id, DECODER, dev, input(0)).then(check)));
  let done = 0;
  const started = performance.now();
  const deadline = started + ms;
  const lane = async (dev: ParserDevice): Promise<void> => {
    let n = 0;
    while (performance.now() < deadline) {
      check(await parser.parse(dev.id, DECODER, dev, input(n++)));
      done++;
    }
  };
  await Promise.all(devices.flatMap((dev) => Array.from({ length: window }, () => lane(dev))));
  return (done * 1000) / (performance.now() - started);
}

async function isolateCreation(count: number): Promise<number> {
  await preludeSource();
  const counter = { isolatesCreated: 0, isolatesAlive: 0 };
  const limits = { timeoutMs: 1000, memoryMb: 32, maxResultBytes: 1 << 20 };
  (await ParserIsolate.create(DECODER, limits, counter)).dispose();
  const started = performance.now();
  for (let i = 0; i < count; i++) (await ParserIsolate.create(DECODER, limits, counter)).dispose();
  return (performance.now() - started) / count;
}

const ms = seconds * 1000;
const rows: Array<[string, string]> = [];

const preludeStarted = performance.now();
await preludeSource();
rows.push(['prelude build (esbuild, once per process)', `${format(performance.now() - preludeStarted)} ms`]);
rows.push(['isolate creation (prelude + compile)', `${format(await isolateCreation(20), 2)} ms`]);

const engine = new ParserEngine();
try {
  rows.push(['per call, in-process engine', `${format(await perCall(engineParser(engine), 'per-call', ms / 2))} µs/msg`]);
  rows.push([`batched (${window} at once), in-process engine`, `${format(await batched(engineParser(engine), 'batched', ms / 2), 2)} µs/msg`]);
  rows.push([`throughput, in-process engine (${deviceCount} devices x ${window})`, `${format(await throughput(engineParser(engine), ms), 0)} msg/s`]);
} finally {
  engine.dispose();
}

const sandbox = new ParserSandbox();
try {
  rows.push(['per call, ParserSandbox (child process)', `${format(await perCall(sandbox, 'per-call', ms / 2))} µs/msg`]);
  rows.push([`batched (${window} at once), ParserSandbox`, `${format(await batched(sandbox, 'batched', ms / 2), 2)} µs/msg`]);
  rows.push([`throughput, ParserSandbox (${deviceCount} devices x ${window})`, `${format(await throughput(sandbox, ms), 0)} msg/s`]);
  const stats = sandbox.stats;
  rows.push(['ParserSandbox messages per isolate call', format(stats.messages / stats.calls)]);
} finally {
  sandbox.dispose();
}

const width = Math.max(...rows.map(([label]) => label.length));
for (const [label, value] of rows) console.log(`${label.padEnd(width)}  ${value}`);
