import { makeDevice, type DecoderFixture } from './fixture.ts';

/**
 * Decoders that log, return early, or fail: console capture, top-level `return`, thrown errors,
 * syntax errors and a `payload` that is not an array when the script ends.
 */

const TANK_WITH_LOGS = `
console.log('Parser started for', device.name);
const raw = payload.find((x) => x.variable === 'payload');
console.log('Raw:', raw.value);

const bytes = Buffer.from(raw.value, 'hex');
console.log(\`Frame length: \${bytes.length}\`);

const battery = bytes[0];
const distance = bytes.readUInt16BE(1); // cm from the sensor down to the liquid
const height = Number(device.params.find((p) => p.key === 'tank_height_cm').value);
const level = height - distance;
console.log('Level (cm):', level, 'of', height);
if (battery < 20) console.error('Battery low: ' + battery + '%');

payload = [
  { variable: 'level', value: level, unit: 'cm' },
  { variable: 'level_percent', value: Math.round((level / height) * 100), unit: '%' },
  { variable: 'battery', value: battery, unit: '%' },
];
`;

const PEOPLE_COUNTER_EARLY_RETURN = `
// Frame types: 0x00 heartbeat (nothing to decode: keep the raw record), 0x01 counts.
const raw = payload.find((x) => x.variable === 'payload');
if (!raw) return;

const bytes = Buffer.from(raw.value, 'hex');
if (bytes[0] === 0x00) {
  return;
}

const peopleIn = bytes.readUInt16BE(1);
const peopleOut = bytes.readUInt16BE(3);
payload = [
  { variable: 'people_in', value: peopleIn },
  { variable: 'people_out', value: peopleOut },
  { variable: 'occupancy', value: peopleIn - peopleOut },
];
`;

const STRICT_LENGTH_CHECK = `
const raw = payload.find((x) => x.variable === 'payload');
console.log('decoding ' + raw.value);
const bytes = Buffer.from(raw.value, 'hex');
if (bytes.length !== 6) {
  throw new Error(\`Invalid frame length \${bytes.length}, expected 6\`);
}
payload = [{ variable: 'pressure', value: bytes.readUInt32BE(0) / 100, unit: 'Pa' }];
`;

const JSON_WITHOUT_GUARD = `
const data = JSON.parse(payload[0].value);
payload = [{ variable: 'temperature', value: data.t, unit: '°C' }];
`;

const MISSING_BRACE = `
const raw = payload.find((x) => x.variable === 'payload');
if (raw) {
  payload = [{ variable: 'temperature', value: Number(raw.value) }];
`;

const OBJECT_NOT_ARRAY = `
const raw = payload.find((x) => x.variable === 'payload');
// forgot the array brackets
payload = { variable: 'temperature', value: Number(raw.value), unit: '°C' };
`;

const FORGOT_RETURN = `
function parse(records) {
  const raw = records.find((x) => x.variable === 'payload');
  const result = [{ variable: 'humidity', value: Number(raw.value), unit: '%' }];
  // missing: return result;
}
payload = parse(payload);
`;

const OPTIONAL_FIELDS_IMPLICIT_GLOBALS = `
// Firmware 1.x sends only the fields that changed: "T=21.4;H=40", then "T=22"
parts = payload[0].value.split(';');
for (i = 0; i < parts.length; i++) {
  kv = parts[i].split('=');
  if (kv[0] == 'T') temp = parseFloat(kv[1]);
  if (kv[0] == 'H') hum = parseInt(kv[1]);
}
payload = [];
if (typeof temp != 'undefined') payload.push({ variable: 'temperature', value: temp, unit: 'C' });
if (typeof hum != 'undefined') payload.push({ variable: 'humidity', value: hum, unit: '%' });
`;

const THROW_STRING = `
var hex = payload[0].value;
if (!/^[0-9a-fA-F]+$/.test(hex)) throw 'Invalid payload: expected hex, got ' + hex;
payload = [{ variable: 'counter', value: parseInt(hex, 16) }];
`;

const VAR_PAYLOAD_REDECLARED = `
var payload = payload.filter(function (x) { return x.variable !== 'debug'; });
payload.push({ variable: 'records_kept', value: payload.length });
`;

export const controlFlowDecoders: DecoderFixture[] = [
  {
    name: 'console.log and console.error lines are captured in order',
    code: TANK_WITH_LOGS,
    raw: '0f01f4',
    topic: 'tanks/7/up',
    device: makeDevice({ name: 'Tank sensor 7', params: [{ key: 'tank_height_cm', value: '600', sent: false }] }),
    expected: {
      ok: true,
      payload: [
        { variable: 'level', value: 100, unit: 'cm' },
        { variable: 'level_percent', value: 17, unit: '%' },
        { variable: 'battery', value: 15, unit: '%' },
      ],
      logs: [
        { level: 'log', message: 'Parser started for Tank sensor 7' },
        { level: 'log', message: 'Raw: 0f01f4' },
        { level: 'log', message: 'Frame length: 3' },
        { level: 'log', message: 'Level (cm): 100 of 600' },
        { level: 'error', message: 'Battery low: 15%' },
      ],
    },
  },
  {
    name: 'top-level return: heartbeat frame keeps the raw record',
    key: 'people-counter-early-return',
    code: PEOPLE_COUNTER_EARLY_RETURN,
    raw: '00',
    topic: 'counters/hall/up',
    device: makeDevice(),
    expected: {
      ok: true,
      payload: [{ variable: 'payload', value: '00', metadata: { mqtt_topic: 'counters/hall/up' } }],
    },
  },
  {
    name: 'top-level return parser (cached): count frame is decoded',
    key: 'people-counter-early-return',
    code: PEOPLE_COUNTER_EARLY_RETURN,
    raw: '01 0030 0011'.replace(/ /g, ''),
    topic: 'counters/hall/up',
    device: makeDevice(),
    expected: {
      ok: true,
      payload: [
        { variable: 'people_in', value: 48 },
        { variable: 'people_out', value: 17 },
        { variable: 'occupancy', value: 31 },
      ],
    },
  },
  {
    name: 'throws on bad input: runtime error with the message, logs before the throw kept',
    code: STRICT_LENGTH_CHECK,
    raw: '0102',
    topic: 'pumps/p-3/up',
    device: makeDevice(),
    expected: {
      ok: false,
      error: { kind: 'runtime', includes: 'Invalid frame length 2, expected 6' },
      logs: [{ level: 'log', message: 'decoding 0102' }],
    },
  },
  {
    name: 'throw of a plain string: a runtime error carrying the string',
    code: THROW_STRING,
    raw: 'zz01',
    topic: 'counters/c-9',
    device: makeDevice(),
    expected: { ok: false, error: { kind: 'runtime', includes: 'Invalid payload: expected hex, got zz01' } },
  },
  {
    name: 'JSON.parse of a non-JSON message: a runtime error, not a syntax error',
    code: JSON_WITHOUT_GUARD,
    raw: 'OK',
    topic: 'sensors/t-1',
    device: makeDevice(),
    expected: { ok: false, error: { kind: 'runtime', includes: 'is not valid JSON' } },
  },
  {
    name: 'missing closing brace: a syntax error',
    code: MISSING_BRACE,
    raw: '21.5',
    topic: 'sensors/t-1',
    device: makeDevice(),
    // the exact V8 message depends on how the sandbox compiles the script: only the kind is fixed
    expected: { ok: false, error: { kind: 'syntax', includes: '' } },
  },
  {
    name: 'payload left as a single object: a result error',
    code: OBJECT_NOT_ARRAY,
    raw: '21.5',
    topic: 'sensors/t-1',
    device: makeDevice(),
    expected: { ok: false, error: { kind: 'result', includes: 'array' } },
  },
  {
    name: 'payload left undefined by a helper that forgot to return: a result error',
    code: FORGOT_RETURN,
    raw: '48',
    topic: 'sensors/h-1',
    device: makeDevice(),
    expected: { ok: false, error: { kind: 'result', includes: 'array' } },
  },
  {
    name: 'var payload = payload.filter(...) redeclaring the global',
    code: VAR_PAYLOAD_REDECLARED,
    raw: '[{"variable":"temperature","value":20.5},{"variable":"debug","value":"ok"},{"variable":"humidity","value":51}]',
    topic: 'sensors/th-4',
    device: makeDevice(),
    expected: {
      ok: true,
      payload: [
        { variable: 'temperature', value: 20.5 },
        { variable: 'humidity', value: 51 },
        { variable: 'records_kept', value: 2 },
      ],
    },
  },
  {
    name: 'implicit globals, first message: both optional fields present',
    key: 'optional-fields-implicit-globals',
    code: OPTIONAL_FIELDS_IMPLICIT_GLOBALS,
    raw: 'T=21.4;H=40',
    topic: 'legacy/unit-7',
    device: makeDevice(),
    expected: {
      ok: true,
      payload: [
        { variable: 'temperature', value: 21.4, unit: 'C' },
        { variable: 'humidity', value: 40, unit: '%' },
      ],
    },
  },
  {
    // Each message is decoded on its own, as on the hosted service: an implicit global set while
    // decoding an earlier message must not be visible (else the result depends on message history
    // and on whether the device's isolate was evicted in between).
    name: 'implicit globals, next message of the same device: nothing carries over from the previous one',
    key: 'optional-fields-implicit-globals',
    code: OPTIONAL_FIELDS_IMPLICIT_GLOBALS,
    raw: 'T=22',
    topic: 'legacy/unit-7',
    device: makeDevice(),
    expected: {
      ok: true,
      payload: [{ variable: 'temperature', value: 22, unit: 'C' }],
    },
  },
];
