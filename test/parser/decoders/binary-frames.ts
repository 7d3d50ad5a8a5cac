import { hexBytes, makeDevice, type DecoderFixture } from './fixture.ts';

/**
 * Decoders for binary sensor frames: hex text or raw bytes read with Buffer, DataView, BigInt, bit
 * masks and signed conversions, in the styles of TagoIO's, Milesight's and Dragino's published parsers.
 */

/** TagoIO's template: find the payload variable, decode it with Buffer, concat, filter ignored vars. */
const TAGO_TEMPLATE_TH = `
// Add ignorable variables in this array.
const ignore_vars = ['rf_chain', 'channel', 'modulation', 'app_id', 'dev_id', 'gtw_trusted'];

/**
 * Frame: temperature int16 BE (/100), humidity uint8 (/2), battery uint16 BE in mV.
 */
function parsePayload(payload_raw) {
  try {
    const buffer = Buffer.from(payload_raw, 'hex');
    const data = [
      { variable: 'temperature', value: buffer.readInt16BE(0) / 100, unit: '°C' },
      { variable: 'humidity', value: buffer.readUInt8(2) / 2, unit: '%' },
      { variable: 'battery', value: buffer.readUInt16BE(3) / 1000, unit: 'V' },
    ];
    return data;
  } catch (e) {
    console.error('Parser error: ' + e.message);
    return [{ variable: 'parse_error', value: e.message }];
  }
}

const payload_raw = payload.find((x) => x.variable === 'payload_raw' || x.variable === 'payload' || x.variable === 'data');
if (payload_raw) {
  // Get a unique serie for the incoming data.
  const { value, serie, time } = payload_raw;

  // Parse the payload_raw to JSON format (it comes in a String format)
  if (value) {
    payload = payload.concat(parsePayload(value).map((x) => ({ ...x, serie, time })));
  }
}

payload = payload.filter((x) => !ignore_vars.includes(x.variable));
`;

const ENERGY_METER = `
/* Energy meter, message type 0x01:
   [0] type | [1..8] active energy Wh, uint64 BE | [9..10] voltage x10 | [11..18] pulse counter uint64 BE */
const raw = payload.find((x) => x.variable === 'payload');
if (raw) {
  const buffer = Buffer.from(raw.value, 'hex');
  const msgType = buffer.readUInt8(0);
  if (msgType === 0x01) {
    const energyWh = buffer.readBigUInt64BE(1);
    const voltage = buffer.readUInt16BE(9) / 10;
    const pulses = buffer.readBigUInt64BE(11);
    payload = [
      { variable: 'energy_total', value: Number(energyWh) / 1000, unit: 'kWh' },
      { variable: 'energy_wh', value: energyWh.toString(), unit: 'Wh' },
      { variable: 'voltage', value: voltage, unit: 'V' },
      // beyond 2^53: keep it exact as a string
      { variable: 'pulse_count', value: pulses.toString() },
      { variable: 'pulse_count_high', value: Number(pulses >> BigInt(32)) },
      { variable: 'pulse_count_is_safe', value: pulses <= BigInt(Number.MAX_SAFE_INTEGER) },
    ];
  }
}
`;

const FLOAT_SENSOR = `
function bytesToFloat32(bytes, littleEndian) {
  var buf = new ArrayBuffer(4);
  var view = new DataView(buf);
  bytes.forEach(function (b, i) {
    view.setUint8(i, b);
  });
  return view.getFloat32(0, littleEndian);
}

const data = payload.find((x) => x.variable === 'payload');
if (data) {
  const bytes = Buffer.from(data.value, 'hex');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const temperature = view.getFloat32(0); // big endian
  const pressure = view.getFloat32(4, true); // little endian
  const supply = bytesToFloat32(Array.from(bytes.slice(8, 12)), false);
  const words = new Uint16Array([view.getUint16(0), view.getUint16(2)]);

  payload = [
    { variable: 'temperature', value: temperature, unit: '°C' },
    { variable: 'pressure', value: pressure, unit: 'hPa' },
    { variable: 'supply_voltage', value: Number(supply.toFixed(2)), unit: 'V' },
    { variable: 'supply_voltage_raw', value: supply },
    { variable: 'temperature_words', value: words[0] + ' ' + words[1] },
  ];
}
`;

const CAYENNE_LPP = `
// Cayenne Low Power Payload: repeated [channel][type][data]
const ignore_vars = [];

function decodeLPP(bytes) {
  const out = [];
  let i = 0;
  while (i < bytes.length) {
    const channel = bytes[i++];
    const type = bytes[i++];
    switch (type) {
      case 0x00: // digital input
        out.push({ variable: \`digital_input_\${channel}\`, value: bytes[i] });
        i += 1;
        break;
      case 0x01: // digital output
        out.push({ variable: \`digital_output_\${channel}\`, value: bytes[i] });
        i += 1;
        break;
      case 0x02: // analog input, 0.01 signed
        out.push({ variable: \`analog_input_\${channel}\`, value: bytes.readInt16BE(i) / 100 });
        i += 2;
        break;
      case 0x65: // illuminance, 1 lux unsigned
        out.push({ variable: \`luminosity_\${channel}\`, value: bytes.readUInt16BE(i), unit: 'lux' });
        i += 2;
        break;
      case 0x67: // temperature, 0.1 °C signed
        out.push({ variable: \`temperature_\${channel}\`, value: bytes.readInt16BE(i) / 10, unit: '°C' });
        i += 2;
        break;
      case 0x68: // humidity, 0.5 % unsigned
        out.push({ variable: \`humidity_\${channel}\`, value: bytes[i] / 2, unit: '%' });
        i += 1;
        break;
      case 0x73: // barometer, 0.1 hPa unsigned
        out.push({ variable: \`barometric_pressure_\${channel}\`, value: bytes.readUInt16BE(i) / 10, unit: 'hPa' });
        i += 2;
        break;
      case 0x88: { // GPS: lat, lng 0.0001 ° signed, altitude 0.01 m signed, 3 bytes each
        const lat = bytes.readIntBE(i, 3) / 10000;
        const lng = bytes.readIntBE(i + 3, 3) / 10000;
        const alt = bytes.readIntBE(i + 6, 3) / 100;
        out.push({ variable: \`gps_\${channel}\`, value: \`\${lat},\${lng}\`, location: { lat, lng } });
        out.push({ variable: \`altitude_\${channel}\`, value: alt, unit: 'm' });
        i += 9;
        break;
      }
      default:
        throw new Error(\`Unknown LPP type 0x\${type.toString(16)} on channel \${channel}\`);
    }
  }
  return out;
}

const payload_raw = payload.find((x) => x.variable === 'payload_raw' || x.variable === 'payload');
if (payload_raw) {
  try {
    const buffer = Buffer.from(payload_raw.value, 'hex');
    payload = decodeLPP(buffer);
  } catch (e) {
    console.error(e.message);
    payload = [{ variable: 'parse_error', value: e.message }];
  }
}
payload = payload.filter((x) => !ignore_vars.includes(x.variable));
`;

/** Milesight's published decoder style (channel id + channel type, little endian), wrapped TagoIO style. */
const MILESIGHT_EM300 = `
const ignore_vars = ['payload', 'fport', 'gateway', 'fcnt'];

function readUInt16LE(bytes) {
  var value = (bytes[1] << 8) + bytes[0];
  return value & 0xffff;
}

function readInt16LE(bytes) {
  var ref = readUInt16LE(bytes);
  return ref > 0x7fff ? ref - 0x10000 : ref;
}

function milesightDeviceDecode(bytes) {
  var decoded = {};
  for (var i = 0; i < bytes.length; ) {
    var channel_id = bytes[i++];
    var channel_type = bytes[i++];
    // IPSO VERSION
    if (channel_id === 0xff && channel_type === 0x01) {
      decoded.ipso_version = 'v' + ((bytes[i] & 0xf0) >> 4) + '.' + (bytes[i] & 0x0f);
      i += 1;
    }
    // BATTERY
    else if (channel_id === 0x01 && channel_type === 0x75) {
      decoded.battery = bytes[i];
      i += 1;
    }
    // TEMPERATURE
    else if (channel_id === 0x03 && channel_type === 0x67) {
      // ℃
      decoded.temperature = readInt16LE(bytes.slice(i, i + 2)) / 10;
      i += 2;
    }
    // HUMIDITY
    else if (channel_id === 0x04 && channel_type === 0x68) {
      decoded.humidity = bytes[i] / 2;
      i += 1;
    }
    // MAGNET
    else if (channel_id === 0x05 && channel_type === 0x00) {
      decoded.magnet_status = bytes[i] === 0 ? 'close' : 'open';
      i += 1;
    } else {
      break;
    }
  }
  return decoded;
}

const units = { battery: '%', temperature: '°C', humidity: '%RH' };

const payload_raw = payload.find((x) => x.variable === 'payload_raw' || x.variable === 'payload' || x.variable === 'data');
const fcnt = payload.find((x) => x.variable === 'fcnt');
if (payload_raw) {
  try {
    const group = fcnt ? String(fcnt.value) : undefined;
    const decoded = milesightDeviceDecode(Buffer.from(payload_raw.value, 'hex'));
    const data = Object.keys(decoded).map((key) => ({ variable: key, value: decoded[key], unit: units[key], group }));
    payload = payload.concat(data);
  } catch (e) {
    console.error(e);
    payload = [{ variable: 'parse_error', value: e.message }];
  }
}

payload = payload.filter((x) => !ignore_vars.includes(x.variable));
`;

/** Dragino LHT65 published decoder (returns strings from toFixed), wrapped for TagoIO. */
const DRAGINO_LHT65 = `
function Decoder(bytes, port) {
  var value = ((bytes[0] << 8) | bytes[1]) & 0x3fff;
  var batV = value / 1000; //Battery,units:V

  var bat_status = ['Ultra Low', 'Low', 'OK', 'Good'][bytes[0] >> 6];

  value = (bytes[2] << 8) | bytes[3];
  if (bytes[2] & 0x80) {
    value |= 0xffff0000;
  }
  var temp_SHT = (value / 100).toFixed(2); //SHT20,temperature,units:

  value = (bytes[4] << 8) | bytes[5];
  var hum_SHT = (value / 10).toFixed(1); //SHT20,Humidity,units:%

  var ext = bytes[6] & 0x7f;
  var ext_sensor = { 0: 'No external sensor', 1: 'Temperature Sensor', 4: 'Interrupt Sensor send', 5: 'Illumination Sensor' }[ext];

  value = (bytes[7] << 8) | bytes[8];
  if (bytes[7] & 0x80) {
    value |= 0xffff0000;
  }
  var temp_ds = (value / 100).toFixed(2); //DS18B20,temperature,units:

  return {
    BatV: batV,
    Bat_status: bat_status,
    TempC_DS: temp_ds,
    TempC_SHT: temp_SHT,
    Hum_SHT: hum_SHT,
    Ext_sensor: ext_sensor,
  };
}

const units = { BatV: 'V', TempC_DS: '°C', TempC_SHT: '°C', Hum_SHT: '%' };
const hex = payload.find((x) => x.variable === 'payload');
if (hex) {
  const decoded = Decoder(Buffer.from(hex.value, 'hex'), 2);
  payload = Object.keys(decoded).map((key) => ({ variable: key, value: decoded[key], unit: units[key] }));
}
`;

const GPS_TRACKER = `
// Tracker frame (14 bytes): flags | lat int32 BE 1e-6 | lng int32 BE 1e-6 | altitude int16 m | speed km/h | satellites | battery %
// flags: bit0 GPS fix, bit1 moving, bit7 low battery
const buf = raw_payload;
if (buf.length < 14) throw new Error('short frame: ' + buf.length + ' bytes');

const flags = buf[0];
const lat = buf.readInt32BE(1) / 1e6;
const lng = buf.readInt32BE(5) / 1e6;

payload = [
  { variable: 'location', value: lat + ',' + lng, location: { lat: lat, lng: lng } },
  { variable: 'altitude', value: buf.readInt16BE(9), unit: 'm' },
  { variable: 'speed', value: buf.readUInt8(11), unit: 'km/h' },
  { variable: 'satellites', value: buf.readUInt8(12) },
  { variable: 'battery', value: buf.readUInt8(13), unit: '%' },
  { variable: 'gps_fix', value: (flags & 0x01) === 0x01 },
  { variable: 'moving', value: (flags & 0x02) !== 0 },
  { variable: 'low_battery', value: !!(flags & 0x80) },
];
`;

const PEOPLE_COUNTER_RAW = `
// The counter sends a compact binary frame. Its bytes happen to be valid text, so the
// 'payload' variable holds garbage characters: decode raw_payload instead.
if (raw_payload[0] !== 0x02) {
  throw new Error('unexpected frame type ' + raw_payload[0]);
}
payload = [
  { variable: 'people_count', value: raw_payload.readUInt16BE(1) },
  { variable: 'error_count', value: raw_payload.readUInt16BE(3) },
  { variable: 'board_temperature', value: raw_payload.readInt8(5), unit: '°C' },
  { variable: 'raw_hex', value: raw_payload.toString('hex') },
  { variable: 'frame_size', value: raw_payload.length, unit: 'bytes' },
];
`;

const VAR_BUFFER_SHIM = `
// Buffer polyfill copied from an old decoder that ran in a browser.
var Buffer = {
  from: function (str, encoding) {
    if (encoding !== 'hex') throw new Error('polyfill supports hex only');
    var bytes = [];
    for (var i = 0; i < str.length; i += 2) bytes.push(parseInt(str.substr(i, 2), 16));
    bytes.readUInt16BE = function (offset) {
      return (this[offset] << 8) | this[offset + 1];
    };
    bytes.readInt16BE = function (offset) {
      var v = this.readUInt16BE(offset);
      return v & 0x8000 ? v - 0x10000 : v;
    };
    return bytes;
  },
};

var frame = Buffer.from(payload[0].value, 'hex');
payload = [
  { variable: 'soil_moisture', value: frame.readUInt16BE(0) / 10, unit: '%' },
  { variable: 'soil_temperature', value: frame.readInt16BE(2) / 10, unit: '°C' },
  { variable: 'soil_ec', value: frame.readUInt16BE(4), unit: 'uS/cm' },
  // kept while migrating: shows which Buffer decoded the frame
  { variable: 'decoded_by', value: Array.isArray(frame) ? 'polyfill' : 'builtin' },
];
`;

const FUNCTION_BUFFER_CHIRPSTACK = `
// Helper pasted from a ChirpStack codec: turns a hex string into a byte array.
function Buffer(hex) {
  var bytes = [];
  for (var c = 0; c < hex.length; c += 2) bytes.push(parseInt(hex.substr(c, 2), 16));
  return bytes;
}

// ChirpStack v4 / TTN v3 codec, unchanged
function decodeUplink(input) {
  var bytes = input.bytes;
  var temp = (bytes[0] << 8) | bytes[1];
  if (temp > 0x7fff) temp -= 0x10000;
  return {
    data: {
      temperature: temp / 10,
      co2: (bytes[2] << 8) | bytes[3],
      door_open: bytes[4] === 1,
    },
    warnings: [],
    errors: [],
  };
}

var decoded = decodeUplink({ bytes: Buffer(payload[0].value), fPort: 1 });
var units = { temperature: '°C', co2: 'ppm' };
payload = Object.keys(decoded.data).map(function (key) {
  return { variable: key, value: decoded.data[key], unit: units[key] };
});
`;

const SLOPPY_TEXT_PROTOCOL = `
// Old firmware sends "T=21.4;H=40;B=87;S=OK;A=0"
str = payload[0].value;
parts = str.split(';');
result = [];
for (i = 0; i < parts.length; i++) {
  kv = parts[i].split('=');
  key = kv[0];
  val = kv[1];
  if (key == 'T') result.push({ variable: 'temperature', value: parseFloat(val), unit: 'C' });
  else if (key == 'H') result.push({ variable: 'humidity', value: parseInt(val), unit: '%' });
  else if (key == 'B') result.push({ variable: 'battery', value: parseInt(val), unit: '%' });
  else if (key == 'S') result.push({ variable: 'status', value: val });
  else if (key == 'A') result.push({ variable: 'alarm', value: val == 1 });
}
payload = result;
`;

export const binaryFrameDecoders: DecoderFixture[] = [
  {
    name: 'TagoIO template: hex frame, int16 BE temperature /100, humidity, battery',
    key: 'tago-template-th',
    code: TAGO_TEMPLATE_TH,
    raw: '09298b0e10',
    topic: 'devices/th-01/up',
    device: makeDevice({ name: 'TH-01' }),
    expected: {
      ok: true,
      payload: [
        { variable: 'payload', value: '09298b0e10', metadata: { mqtt_topic: 'devices/th-01/up' } },
        { variable: 'temperature', value: 23.45, unit: '°C' },
        { variable: 'humidity', value: 69.5, unit: '%' },
        { variable: 'battery', value: 3.6, unit: 'V' },
      ],
    },
  },
  {
    name: 'TagoIO template again (cached parser): short frame caught into parse_error',
    key: 'tago-template-th',
    code: TAGO_TEMPLATE_TH,
    raw: '0929',
    topic: 'devices/th-01/up',
    device: makeDevice({ name: 'TH-01' }),
    expected: {
      ok: true,
      payload: [
        { variable: 'payload', value: '0929', metadata: { mqtt_topic: 'devices/th-01/up' } },
        { variable: 'parse_error', value: 'Trying to access beyond buffer length' },
      ],
      logs: [{ level: 'error', message: 'Parser error: Trying to access beyond buffer length' }],
    },
  },
  {
    name: 'energy meter: readBigUInt64BE counters to Number and string',
    code: ENERGY_METER,
    // binary, not valid UTF-8: arrives as hex
    raw: hexBytes('01 0000001cbe991a14 08fc 0020000000000001'),
    topic: 'meters/em-7/up',
    device: makeDevice({ name: 'EM-7' }),
    expected: {
      ok: true,
      payload: [
        { variable: 'energy_total', value: 123456789.012, unit: 'kWh' },
        { variable: 'energy_wh', value: '123456789012', unit: 'Wh' },
        { variable: 'voltage', value: 230, unit: 'V' },
        { variable: 'pulse_count', value: '9007199254740993' },
        { variable: 'pulse_count_high', value: 2097152 },
        { variable: 'pulse_count_is_safe', value: false },
      ],
    },
  },
  {
    name: 'DataView: float32 big and little endian, toFixed rounding',
    code: FLOAT_SENSOR,
    raw: hexBytes('41ac0000 00507d44 40533333'),
    topic: 'plant/line-2/pt-100',
    device: makeDevice(),
    expected: {
      ok: true,
      payload: [
        { variable: 'temperature', value: 21.5, unit: '°C' },
        { variable: 'pressure', value: 1013.25, unit: 'hPa' },
        { variable: 'supply_voltage', value: 3.3, unit: 'V' },
        { variable: 'supply_voltage_raw', value: 3.299999952316284 },
        { variable: 'temperature_words', value: '16812 0' },
      ],
    },
  },
  {
    name: 'Cayenne LPP: channel/type loop with signed values and GPS',
    code: CAYENNE_LPP,
    raw: hexBytes('01 67 ffd7  02 68 61  03 00 64  04 01 01  05 02 015e  06 88 06765f f2960a 0003e8  07 73 294c  08 65 01f4'),
    topic: 'lpp/node-3',
    device: makeDevice(),
    expected: {
      ok: true,
      payload: [
        { variable: 'temperature_1', value: -4.1, unit: '°C' },
        { variable: 'humidity_2', value: 48.5, unit: '%' },
        { variable: 'digital_input_3', value: 100 },
        { variable: 'digital_output_4', value: 1 },
        { variable: 'analog_input_5', value: 3.5 },
        { variable: 'gps_6', value: '42.3519,-87.9094', location: { lat: 42.3519, lng: -87.9094 } },
        { variable: 'altitude_6', value: 10, unit: 'm' },
        { variable: 'barometric_pressure_7', value: 1057.2, unit: 'hPa' },
        { variable: 'luminosity_8', value: 500, unit: 'lux' },
      ],
    },
  },
  {
    name: 'Cayenne LPP: unknown type caught into parse_error with console.error',
    code: CAYENNE_LPP,
    key: 'Cayenne LPP: channel/type loop with signed values and GPS',
    raw: hexBytes('01 67 00e1  09 7e 00'),
    topic: 'lpp/node-3',
    device: makeDevice(),
    expected: {
      ok: true,
      payload: [{ variable: 'parse_error', value: 'Unknown LPP type 0x7e on channel 9' }],
      logs: [{ level: 'error', message: 'Unknown LPP type 0x7e on channel 9' }],
    },
  },
  {
    name: 'Milesight EM300 style: channel id/type, little-endian signed, bit masks, network-server records',
    code: MILESIGHT_EM300,
    raw: JSON.stringify([
      { variable: 'payload', value: 'ff0101017564' + '03679cff' + '046871' + '050001' },
      { variable: 'fport', value: 85 },
      { variable: 'fcnt', value: 311 },
      { variable: 'rssi', value: -67, unit: 'dBm' },
      { variable: 'snr', value: 8.5, unit: 'dB' },
      { variable: 'gateway', value: '24e124fffef1a2b3' },
    ]),
    topic: 'milesight/em300-th/uplink',
    device: makeDevice({ name: 'EM300-TH cold room' }),
    expected: {
      ok: true,
      payload: [
        { variable: 'rssi', value: -67, unit: 'dBm' },
        { variable: 'snr', value: 8.5, unit: 'dB' },
        { variable: 'ipso_version', value: 'v0.1', group: '311' },
        { variable: 'battery', value: 100, unit: '%', group: '311' },
        { variable: 'temperature', value: -10, unit: '°C', group: '311' },
        { variable: 'humidity', value: 56.5, unit: '%RH', group: '311' },
        { variable: 'magnet_status', value: 'open', group: '311' },
      ],
    },
  },
  {
    name: 'Dragino LHT65: bit masks, sign extension with |= 0xffff0000, toFixed strings',
    code: DRAGINO_LHT65,
    raw: hexBytes('cbf6 ff06 0376 01 0add 7fff'),
    topic: 'dragino/lht65/up',
    device: makeDevice({ name: 'LHT65 freezer' }),
    expected: {
      ok: true,
      payload: [
        { variable: 'BatV', value: 3.062, unit: 'V' },
        { variable: 'Bat_status', value: 'Good' },
        { variable: 'TempC_DS', value: '27.81', unit: '°C' },
        { variable: 'TempC_SHT', value: '-2.50', unit: '°C' },
        { variable: 'Hum_SHT', value: '88.6', unit: '%' },
        { variable: 'Ext_sensor', value: 'Temperature Sensor' },
      ],
    },
  },
  {
    name: 'GPS tracker from raw_payload: lat/lng int32 / 1e6 to location, flag booleans',
    code: GPS_TRACKER,
    raw: hexBytes('03 fe98a5c8 fd386ea4 02f8 2a 09 57'),
    topic: 'trackers/tk-19/data',
    device: makeDevice({ name: 'Truck 19' }),
    expected: {
      ok: true,
      payload: [
        { variable: 'location', value: '-23.55052,-46.633308', location: { lat: -23.55052, lng: -46.633308 } },
        { variable: 'altitude', value: 760, unit: 'm' },
        { variable: 'speed', value: 42, unit: 'km/h' },
        { variable: 'satellites', value: 9 },
        { variable: 'battery', value: 87, unit: '%' },
        { variable: 'gps_fix', value: true },
        { variable: 'moving', value: true },
        { variable: 'low_battery', value: false },
      ],
    },
  },
  {
    name: 'raw_payload: binary frame whose bytes are valid UTF-8',
    code: PEOPLE_COUNTER_RAW,
    raw: hexBytes('02 007b 0005 1e'),
    topic: 'counters/door-a',
    device: makeDevice(),
    expected: {
      ok: true,
      payload: [
        { variable: 'people_count', value: 123 },
        { variable: 'error_count', value: 5 },
        { variable: 'board_temperature', value: 30, unit: '°C' },
        { variable: 'raw_hex', value: '02007b00051e' },
        { variable: 'frame_size', value: 6, unit: 'bytes' },
      ],
    },
  },
  {
    name: 'top-level var Buffer polyfill overrides the provided Buffer',
    code: VAR_BUFFER_SHIM,
    raw: '0172ffce04d2',
    topic: 'farm/soil-4',
    device: makeDevice(),
    expected: {
      ok: true,
      payload: [
        { variable: 'soil_moisture', value: 37, unit: '%' },
        { variable: 'soil_temperature', value: -5, unit: '°C' },
        { variable: 'soil_ec', value: 1234, unit: 'uS/cm' },
        { variable: 'decoded_by', value: 'polyfill' },
      ],
    },
  },
  {
    name: 'top-level function Buffer(hex) declaration with a ChirpStack decodeUplink',
    code: FUNCTION_BUFFER_CHIRPSTACK,
    raw: '00fa01c201',
    topic: 'chirpstack/app/1/device/a84041000181c2f1/event/up',
    device: makeDevice(),
    expected: {
      ok: true,
      payload: [
        { variable: 'temperature', value: 25, unit: '°C' },
        { variable: 'co2', value: 450, unit: 'ppm' },
        { variable: 'door_open', value: true },
      ],
    },
  },
  {
    name: 'sloppy mode: undeclared assignments, == comparisons, string and boolean values',
    code: SLOPPY_TEXT_PROTOCOL,
    raw: 'T=21.4;H=40;B=87;S=OK;A=0',
    topic: 'legacy/unit-12',
    device: makeDevice(),
    expected: {
      ok: true,
      payload: [
        { variable: 'temperature', value: 21.4, unit: 'C' },
        { variable: 'humidity', value: 40, unit: '%' },
        { variable: 'battery', value: 87, unit: '%' },
        { variable: 'status', value: 'OK' },
        { variable: 'alarm', value: false },
      ],
    },
  },
];
