import { hexBytes, makeDevice, type DecoderFixture } from './fixture.ts';

/**
 * Decoders that set `time` (dayjs with timezones, `Date` objects) and `location`.
 */

const DAYJS_LOCAL_TIMESTAMP = `
// The datalogger stamps readings with Sao Paulo wall-clock time, without an offset.
payload = payload.map((item) => {
  if (item.metadata && item.metadata.local_time) {
    const local = dayjs.tz(item.metadata.local_time, 'America/Sao_Paulo');
    return { ...item, time: local.toISOString(), group: local.format('YYYYMMDDHHmm') };
  }
  return item;
});
`;

const DAYJS_NOW_TZ = `
const tz = 'America/Sao_Paulo';
const ts = payload.find((x) => x.variable === 'ts');
if (ts) {
  const local = dayjs.unix(ts.value).tz(tz);
  const now = dayjs().tz(tz);
  payload = [
    { variable: 'reading_time', value: local.format('YYYY-MM-DD HH:mm:ss'), time: local.toDate() },
    { variable: 'reading_hour', value: local.hour() },
    { variable: 'weekday', value: local.format('dddd') },
    { variable: 'utc_offset', value: local.utcOffset(), unit: 'min' },
    { variable: 'business_hours', value: local.day() >= 1 && local.day() <= 5 && local.hour() >= 8 && local.hour() < 18 },
    { variable: 'delayed', value: now.diff(local, 'hour') > 24 },
    { variable: 'offset_now', value: now.utcOffset() === -180 },
  ];
}
`;

const HISTORY_WITH_DATES = `
// Buffered history: start uint32 BE (unix s) | count | interval uint16 BE (s) | count x int16 BE temperature /10
const data = payload.find((x) => x.variable === 'payload');
const buffer = Buffer.from(data.value, 'hex');
const start = buffer.readUInt32BE(0);
const count = buffer.readUInt8(4);
const interval = buffer.readUInt16BE(5);

const records = [];
for (let i = 0; i < count; i++) {
  const ts = start + i * interval;
  records.push({
    variable: 'temperature',
    value: buffer.readInt16BE(7 + i * 2) / 10,
    unit: '°C',
    time: new Date(ts * 1000),
    serie: String(ts),
  });
}
records.push({ variable: 'samples', value: count, time: new Date(start * 1000) });
payload = records;
`;

const OWNTRACKS = `
// OwnTracks app, topic owntracks/<user>/<device>
const msg = payload[0];
const time = new Date(msg.tst * 1000);
const user = msg.metadata.mqtt_topic.split('/')[1];
const connection = { w: 'wifi', m: 'mobile', o: 'offline' };

payload = [
  { variable: 'location', value: user, location: { lat: msg.lat, lng: msg.lon }, time, metadata: { accuracy: msg.acc } },
  { variable: 'battery', value: msg.batt, unit: '%', time },
  { variable: 'connection', value: connection[msg.conn], time },
  { variable: 'tracker_id', value: msg.tid, time },
];
`;

export const timeAndLocationDecoders: DecoderFixture[] = [
  {
    name: 'dayjs.tz: device-local Sao Paulo timestamps to ISO time (with and without the 2018 DST)',
    code: DAYJS_LOCAL_TIMESTAMP,
    raw: JSON.stringify([
      { variable: 'level', value: 1.25, unit: 'm', metadata: { local_time: '2024-03-15 14:30:00' } },
      { variable: 'level', value: 1.5, unit: 'm', metadata: { local_time: '2018-12-01 10:00:00' } },
      { variable: 'logger_status', value: 'ok' },
    ]),
    topic: 'river/station-4/log',
    device: makeDevice({ name: 'River station 4' }),
    expected: {
      ok: true,
      payload: [
        { variable: 'level', value: 1.25, unit: 'm', metadata: { local_time: '2024-03-15 14:30:00' }, time: '2024-03-15T17:30:00.000Z', group: '202403151430' },
        // Brazil observed daylight saving time (UTC-2) until February 2019
        { variable: 'level', value: 1.5, unit: 'm', metadata: { local_time: '2018-12-01 10:00:00' }, time: '2018-12-01T12:00:00.000Z', group: '201812011000' },
        { variable: 'logger_status', value: 'ok' },
      ],
    },
  },
  {
    name: 'dayjs().tz() and dayjs.unix().tz(): local wall-clock values, Date time from toDate()',
    code: DAYJS_NOW_TZ,
    raw: '[{"variable":"ts","value":1700000000}]',
    topic: 'lab/clock-1',
    device: makeDevice(),
    expected: {
      ok: true,
      payload: [
        // 1700000000 is 2023-11-14T22:13:20Z, a Tuesday, 19:13:20 in Sao Paulo (UTC-3)
        { variable: 'reading_time', value: '2023-11-14 19:13:20', time: '2023-11-14T22:13:20.000Z' },
        { variable: 'reading_hour', value: 19 },
        { variable: 'weekday', value: 'Tuesday' },
        { variable: 'utc_offset', value: -180, unit: 'min' },
        { variable: 'business_hours', value: false },
        { variable: 'delayed', value: true },
        { variable: 'offset_now', value: true },
      ],
    },
  },
  {
    name: 'history frame: Date objects as time, serie per sample',
    code: HISTORY_WITH_DATES,
    raw: hexBytes('66669980 03 0258 00d7 00d2 fff1'),
    topic: 'cold-chain/logger-9',
    device: makeDevice(),
    expected: {
      ok: true,
      payload: [
        { variable: 'temperature', value: 21.5, unit: '°C', time: '2024-06-10T06:13:20.000Z', serie: '1718000000' },
        { variable: 'temperature', value: 21, unit: '°C', time: '2024-06-10T06:23:20.000Z', serie: '1718000600' },
        { variable: 'temperature', value: -1.5, unit: '°C', time: '2024-06-10T06:33:20.000Z', serie: '1718001200' },
        { variable: 'samples', value: 3, time: '2024-06-10T06:13:20.000Z' },
      ],
    },
  },
  {
    name: 'OwnTracks JSON: location {lat, lng} from lat/lon, Date time, topic-derived value',
    code: OWNTRACKS,
    raw: '{"_type":"location","acc":12,"alt":8,"batt":64,"bs":1,"conn":"w","lat":-22.906847,"lon":-43.172896,"tid":"jd","tst":1718000000,"vac":3,"vel":0}',
    topic: 'owntracks/joao/pixel7',
    device: makeDevice({ name: 'Joao phone' }),
    expected: {
      ok: true,
      payload: [
        {
          variable: 'location',
          value: 'joao',
          location: { lat: -22.906847, lng: -43.172896 },
          time: '2024-06-10T06:13:20.000Z',
          metadata: { accuracy: 12 },
        },
        { variable: 'battery', value: 64, unit: '%', time: '2024-06-10T06:13:20.000Z' },
        { variable: 'connection', value: 'wifi', time: '2024-06-10T06:13:20.000Z' },
        { variable: 'tracker_id', value: 'jd', time: '2024-06-10T06:13:20.000Z' },
      ],
    },
  },
];
