import { makeDevice, type DecoderFixture } from './fixture.ts';

/**
 * Decoders for JSON messages: reshaping device JSON into records, LoRaWAN network-server uplinks,
 * dropping and rewriting variables, and reading the device's params and tags.
 */

const JSON_RESHAPE = `
// A JSON object arrives parsed, as payload[0], with the topic in its metadata.
const json = payload[0];
if (json && json.ts !== undefined) {
  try {
    // topic is building/<floor>/air
    const floor = json.metadata.mqtt_topic.split('/')[1];
    const group = 'air-' + json.ts;
    const time = json.ts;
    const metadata = { floor };
    payload = [
      { variable: 'temperature', value: json.temp, unit: '°C', group, time, metadata },
      { variable: 'humidity', value: json.hum, unit: '%', group, time, metadata },
      { variable: 'pressure', value: json.press, unit: 'hPa', group, time, metadata },
      { variable: 'co2', value: json.co2, unit: 'ppm', group, time, metadata },
      { variable: 'air_quality', value: json.co2 < 800 ? 'good' : json.co2 < 1200 ? 'moderate' : 'poor', group, time, metadata },
    ];
  } catch (e) {
    console.error(e.message);
    payload = [{ variable: 'parse_error', value: e.message }];
  }
}
`;

const TTN_V3_UPLINK = `
// The Things Stack v3 uplink forwarded as-is: decode frm_payload (base64) here.
const ignore_vars = ['fport'];

// The uplink JSON arrives parsed, as payload[0].
const uplink = payload.find((x) => x.uplink_message);
if (uplink) {
  const msg = uplink.uplink_message;
  if (msg && msg.frm_payload) {
    const bytes = Buffer.from(msg.frm_payload, 'base64');
    const group = uplink.end_device_ids.device_id + '-' + msg.f_cnt;
    const time = uplink.received_at;
    const gateway = msg.rx_metadata[0];
    payload = [
      { variable: 'temperature', value: bytes.readInt16BE(0) / 100, unit: '°C' },
      { variable: 'humidity', value: bytes.readUInt8(2) / 2, unit: '%' },
      { variable: 'battery', value: bytes.readUInt16BE(3) / 1000, unit: 'V' },
      { variable: 'rssi', value: gateway.rssi, unit: 'dBm', metadata: { gateway: gateway.gateway_ids.gateway_id } },
      { variable: 'snr', value: gateway.snr, unit: 'dB' },
      { variable: 'spreading_factor', value: msg.settings.data_rate.lora.spreading_factor },
      { variable: 'frequency', value: Number(msg.settings.frequency) / 1e6, unit: 'MHz' },
      { variable: 'fport', value: msg.f_port },
      { variable: 'dev_eui', value: uplink.end_device_ids.dev_eui.toLowerCase() },
    ].map((x) => ({ ...x, group, time }));
  }
}

payload = payload.filter((x) => !ignore_vars.includes(x.variable));
`;

const DROP_VARIABLES = `
// The gateway forwards radio details we do not want to store.
const ignore_vars = ['rssi', 'snr', 'fcnt', 'frequency', 'gateway_eui'];

payload = payload.filter((x) => !ignore_vars.includes(x.variable));
`;

const MUTATE_IN_PLACE = `
// Convert Fahrenheit readings in place and drop the debug variable; payload is never reassigned.
payload.forEach((item) => {
  if (item.variable.startsWith('temp_f')) {
    item.value = Math.round((((item.value - 32) * 5) / 9) * 10) / 10;
    item.variable = item.variable.replace('temp_f', 'temp_c');
    item.unit = '°C';
  }
});

const debugIndex = payload.findIndex((x) => x.variable === 'debug');
if (debugIndex !== -1) payload.splice(debugIndex, 1);

payload.push({ variable: 'converted', value: true });
`;

const DEVICE_PARAMS = `
// Calibration offset and serie come from the device's configuration params.
const offsetParam = device.params.find((param) => param.key === 'temp_offset');
const offset = offsetParam ? Number(offsetParam.value) : 0;
const serieParam = device.params.find((param) => param.key === 'serie');
const siteTag = device.tags.find((tag) => tag.key === 'site');

payload = payload.map((x) => {
  if (x.variable === 'temperature') {
    return {
      ...x,
      value: x.value + offset,
      serie: serieParam.value,
      metadata: { site: siteTag ? siteTag.value : 'unknown', offset: offset, device_name: device.name, device_id: device.id },
    };
  }
  return x;
});
payload.push({ variable: 'calibrated', value: offset !== 0, serie: serieParam.value });
`;

const STRINGS_AND_BOOLEANS = `
const state = payload[0];

// empty the array and refill it: same array object
payload.length = 0;
payload.push(
  { variable: 'door_open', value: state.door === 'open' },
  { variable: 'relay_on', value: Boolean(state.relay) },
  { variable: 'alarm', value: state.alarm === true || state.alarm === 'true' },
  { variable: 'mode', value: state.mode.toLowerCase() },
  { variable: 'firmware', value: 'v' + state.fw },
  { variable: 'summary', value: 'Door ' + state.door + ', relay ' + (state.relay ? 'on' : 'off') },
  { variable: 'last_error', value: null }
);
`;

const ttnUplink = {
  end_device_ids: {
    device_id: 'eui-70b3d57ed0051234',
    application_ids: { application_id: 'farm-sensors' },
    dev_eui: '70B3D57ED0051234',
    join_eui: '0000000000000000',
  },
  correlation_ids: ['as:up:01HWQ8K3Y2', 'gs:uplink:01HWQ8K3XZ'],
  received_at: '2024-05-01T12:00:00.123456789Z',
  uplink_message: {
    session_key_id: 'AY8n2w0f1Qb1dZfZ1f2Y3w==',
    f_port: 2,
    f_cnt: 42,
    frm_payload: '/BiLC7g=',
    rx_metadata: [{ gateway_ids: { gateway_id: 'gw-barn-1', eui: 'B827EBFFFE8B01DD' }, rssi: -87, channel_rssi: -87, snr: 7.25 }],
    settings: { data_rate: { lora: { bandwidth: 125000, spreading_factor: 7, coding_rate: '4/5' } }, frequency: '868100000' },
    consumed_airtime: '0.056576s',
  },
};

export const jsonDecoders: DecoderFixture[] = [
  {
    name: 'JSON object reshaped into variables with units, shared group, time and topic metadata',
    code: JSON_RESHAPE,
    raw: '{"temp":21.5,"hum":48,"press":1013.2,"co2":612,"ts":1718000000}',
    topic: 'building/floor2/air',
    device: makeDevice({ name: 'Air monitor F2' }),
    expected: {
      ok: true,
      payload: [
        { variable: 'temperature', value: 21.5, unit: '°C', group: 'air-1718000000', time: 1718000000, metadata: { floor: 'floor2' } },
        { variable: 'humidity', value: 48, unit: '%', group: 'air-1718000000', time: 1718000000, metadata: { floor: 'floor2' } },
        { variable: 'pressure', value: 1013.2, unit: 'hPa', group: 'air-1718000000', time: 1718000000, metadata: { floor: 'floor2' } },
        { variable: 'co2', value: 612, unit: 'ppm', group: 'air-1718000000', time: 1718000000, metadata: { floor: 'floor2' } },
        { variable: 'air_quality', value: 'good', group: 'air-1718000000', time: 1718000000, metadata: { floor: 'floor2' } },
      ],
    },
  },
  {
    name: 'TTN v3 uplink JSON: base64 frm_payload decoded, radio metadata, group per frame counter',
    code: TTN_V3_UPLINK,
    raw: JSON.stringify(ttnUplink),
    topic: 'v3/farm-sensors@ttn/devices/eui-70b3d57ed0051234/up',
    device: makeDevice({ name: 'Barn sensor' }),
    expected: {
      ok: true,
      payload: [
        { variable: 'temperature', value: -10, unit: '°C' },
        { variable: 'humidity', value: 69.5, unit: '%' },
        { variable: 'battery', value: 3, unit: 'V' },
        { variable: 'rssi', value: -87, unit: 'dBm', metadata: { gateway: 'gw-barn-1' } },
        { variable: 'snr', value: 7.25, unit: 'dB' },
        { variable: 'spreading_factor', value: 7 },
        { variable: 'frequency', value: 868.1, unit: 'MHz' },
        { variable: 'dev_eui', value: '70b3d57ed0051234' },
      ].map((x) => ({ ...x, group: 'eui-70b3d57ed0051234-42', time: '2024-05-01T12:00:00.123456789Z' })),
    },
  },
  {
    name: 'drops ignored variables from a JSON record array',
    code: DROP_VARIABLES,
    raw: JSON.stringify([
      { variable: 'temperature', value: 22.1, unit: '°C' },
      { variable: 'rssi', value: -71 },
      { variable: 'snr', value: 9.5 },
      { variable: 'fcnt', value: 1234 },
      { variable: 'humidity', value: 55, unit: '%' },
      { variable: 'gateway_eui', value: 'b827ebfffe8b01dd' },
    ]),
    topic: 'gateway/b827ebfffe8b01dd/up',
    device: makeDevice(),
    expected: {
      ok: true,
      payload: [
        { variable: 'temperature', value: 22.1, unit: '°C' },
        { variable: 'humidity', value: 55, unit: '%' },
      ],
    },
  },
  {
    name: 'mutates payload in place: forEach edits, splice, push',
    code: MUTATE_IN_PLACE,
    raw: JSON.stringify([
      { variable: 'temp_f', value: 212, unit: 'F' },
      { variable: 'debug', value: 'boot=3' },
      { variable: 'temp_f2', value: 32, unit: 'F', metadata: { probe: 'outside' } },
    ]),
    topic: 'kitchen/oven-1',
    device: makeDevice(),
    expected: {
      ok: true,
      payload: [
        { variable: 'temp_c', value: 100, unit: '°C' },
        { variable: 'temp_c2', value: 0, unit: '°C', metadata: { probe: 'outside' } },
        { variable: 'converted', value: true },
      ],
    },
  },
  {
    name: 'device.params calibration offset and serie, device.tags and name in metadata (single JSON record)',
    code: DEVICE_PARAMS,
    raw: '{"variable":"temperature","value":24,"unit":"C"}',
    topic: 'freezers/2',
    device: makeDevice({
      id: '65f0c0ffee0000000000f002',
      name: 'Freezer 2',
      tags: [
        { key: 'site', value: 'warehouse-3' },
        { key: 'type', value: 'thermometer' },
      ],
      params: [
        { key: 'temp_offset', value: '-1.5', sent: false },
        { key: 'serie', value: 'room-12', sent: true },
      ],
    }),
    expected: {
      ok: true,
      payload: [
        {
          variable: 'temperature',
          value: 22.5,
          unit: 'C',
          serie: 'room-12',
          metadata: { site: 'warehouse-3', offset: -1.5, device_name: 'Freezer 2', device_id: '65f0c0ffee0000000000f002' },
        },
        { variable: 'calibrated', value: true, serie: 'room-12' },
      ],
    },
  },
  {
    name: 'string, boolean and null values; payload emptied and refilled in place',
    code: STRINGS_AND_BOOLEANS,
    raw: '{"door":"open","relay":1,"alarm":"false","mode":"AUTO","fw":"1.4.2"}',
    topic: 'access/gate-2/state',
    device: makeDevice(),
    expected: {
      ok: true,
      payload: [
        { variable: 'door_open', value: true },
        { variable: 'relay_on', value: true },
        { variable: 'alarm', value: false },
        { variable: 'mode', value: 'auto' },
        { variable: 'firmware', value: 'v1.4.2' },
        { variable: 'summary', value: 'Door open, relay on' },
        { variable: 'last_error', value: null },
      ],
    },
  },
];
