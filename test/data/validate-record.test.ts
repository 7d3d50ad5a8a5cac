import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LIMITS, RecordError, generateRecordId, validateRecords, type RecordContext } from '../../src/data/validate-record.ts';

const NOW = Date.UTC(2024, 5, 1, 12, 0, 0);
const context: RecordContext = { deviceId: 'dev-1', now: NOW };

function one(record: Record<string, unknown>, ctx: RecordContext = context) {
  const [r] = validateRecords(record, ctx);
  assert.ok(r);
  return r;
}

/** Asserts the message is rejected with exactly this text, and that the error names index and field. */
function rejects(input: unknown, message: string): void {
  assert.throws(
    () => validateRecords(input, context),
    (error: unknown) => {
      assert.ok(error instanceof RecordError, `expected a RecordError, got ${String(error)}`);
      assert.equal(error.message, message);
      const [, index, field] = /^record (\d+): (\w+) /.exec(message) ?? [];
      assert.equal(error.index, Number(index));
      assert.equal(error.field, field);
      return true;
    },
  );
}

const FORBIDDEN_LIST = '(forbidden: * ? ! < > . - = $ and whitespace)';

describe('validateRecords: variable (SPEC §3)', () => {
  test('is stored lowercase', () => {
    assert.equal(one({ variable: 'Temperature_Room1', value: 1 }).variable, 'temperature_room1');
    assert.equal(one({ variable: 'ÉTAGE', value: 1 }).variable, 'étage');
  });

  test('is required, a string, not empty', () => {
    rejects({ value: 1 }, 'record 0: variable is required');
    rejects({ variable: null, value: 1 }, 'record 0: variable is required');
    rejects({ variable: 5, value: 1 }, 'record 0: variable must be a string');
    rejects({ variable: '', value: 1 }, 'record 0: variable must not be empty');
  });

  test('each forbidden character is named', () => {
    for (const ch of ['*', '?', '!', '<', '>', '.', '-', '=', '$']) {
      rejects({ variable: `a${ch}b`, value: 1 }, `record 0: variable must not contain "${ch}" ${FORBIDDEN_LIST}`);
    }
    for (const ws of [' ', '\t', '\n', '\r', '\u00a0']) {
      rejects({ variable: `a${ws}b`, value: 1 }, `record 0: variable must not contain whitespace ${FORBIDDEN_LIST}`);
    }
    assert.equal(one({ variable: 'a_b:c/d#1', value: 1 }).variable, 'a_b:c/d#1', 'other punctuation is allowed');
  });

  test('at most 100 characters', () => {
    assert.equal(LIMITS.variableLength, 100);
    assert.equal(one({ variable: 'V'.repeat(100), value: 1 }).variable, 'v'.repeat(100));
    rejects({ variable: 'v'.repeat(101), value: 1 }, 'record 0: variable must be at most 100 characters');
  });
});

describe('validateRecords: value', () => {
  test('string, number, boolean or null are kept as they are; absent is null', () => {
    for (const value of ['text', '', 0, -1.25, 1e300, true, false, null]) assert.equal(one({ variable: 'x', value }).value, value);
    assert.equal(one({ variable: 'x' }).value, null);
  });

  test('other types and non-finite numbers are rejected', () => {
    rejects({ variable: 'x', value: { a: 1 } }, 'record 0: value must be a string, number, boolean or null');
    rejects({ variable: 'x', value: [1] }, 'record 0: value must be a string, number, boolean or null');
    rejects({ variable: 'x', value: Infinity }, 'record 0: value must be a finite number');
    rejects({ variable: 'x', value: NaN }, 'record 0: value must be a finite number');
  });

  test('at most 6 KB serialised (the quotes count)', () => {
    assert.equal(LIMITS.valueBytes, 6144);
    assert.equal((one({ variable: 'x', value: 'a'.repeat(6142) }).value as string).length, 6142);
    rejects({ variable: 'x', value: 'a'.repeat(6143) }, 'record 0: value must be at most 6144 bytes serialised');
    // Bytes, not characters: 3,072 two-byte characters are 6,144 bytes before the quotes.
    rejects({ variable: 'x', value: 'é'.repeat(3072) }, 'record 0: value must be at most 6144 bytes serialised');
    assert.equal((one({ variable: 'x', value: 'é'.repeat(3071) }).value as string).length, 3071);
  });
});

describe('validateRecords: unit and group', () => {
  test('unit: optional string of at most 25 characters', () => {
    assert.equal(one({ variable: 'x', value: 1 }).unit, null);
    assert.equal(one({ variable: 'x', value: 1, unit: 'u'.repeat(25) }).unit, 'u'.repeat(25));
    rejects({ variable: 'x', value: 1, unit: 'u'.repeat(26) }, 'record 0: unit must be at most 25 characters');
    rejects({ variable: 'x', value: 1, unit: 5 }, 'record 0: unit must be a string');
  });

  test('group: optional string of at most 100 characters; serie is an alias; group wins over serie', () => {
    assert.equal(one({ variable: 'x', value: 1, group: 'g'.repeat(100) }).group, 'g'.repeat(100));
    rejects({ variable: 'x', value: 1, group: 'g'.repeat(101) }, 'record 0: group must be at most 100 characters');
    rejects({ variable: 'x', value: 1, group: true }, 'record 0: group must be a string');
    rejects({ variable: 'x', value: 1, group: { id: 1 } }, 'record 0: group must be a string');
    assert.equal(one({ variable: 'x', value: 1, serie: 'batch-7' }).group, 'batch-7');
    rejects({ variable: 'x', value: 1, serie: 's'.repeat(101) }, 'record 0: serie must be at most 100 characters');
    assert.equal(one({ variable: 'x', value: 1, group: 'g', serie: 's' }).group, 'g');
  });

  test('group and serie: a finite number is stored as its decimal string (decoders set serie: Date.now())', () => {
    assert.equal(one({ variable: 'x', value: 1, group: 7 }).group, '7');
    assert.equal(one({ variable: 'x', value: 1, serie: 1733859162123 }).group, '1733859162123');
    assert.equal(one({ variable: 'x', value: 1, group: -2.5 }).group, '-2.5');
    assert.equal(one({ variable: 'x', value: 1, group: 0 }).group, '0');
    assert.equal(one({ variable: 'x', value: 1, serie: 1e21 }).group, '1000000000000000000000', 'decimal digits, not 1e+21');
    assert.equal(one({ variable: 'x', value: 1, group: null, serie: 12 }).group, '12', 'a null group falls back to serie');
    rejects({ variable: 'x', value: 1, group: Number.NaN }, 'record 0: group must be a string or a finite number');
    rejects({ variable: 'x', value: 1, serie: Number.POSITIVE_INFINITY }, 'record 0: serie must be a string or a finite number');
    rejects({ variable: 'x', value: 1, group: 1e150 }, 'record 0: group must be at most 100 characters');
  });

  test('default group: one generated id shared by the records of one message, new per message', () => {
    const first = validateRecords([{ variable: 'a', value: 1 }, { variable: 'b', value: 2 }, { variable: 'c', value: 3, group: 'own' }], context);
    assert.match(first[0]!.group, /^[0-9a-f]{24}$/);
    assert.equal(first[1]!.group, first[0]!.group);
    assert.equal(first[2]!.group, 'own');
    const second = validateRecords([{ variable: 'a', value: 1 }], context);
    assert.notEqual(second[0]!.group, first[0]!.group);
  });
});

describe('validateRecords: time', () => {
  const at = (time: unknown) => one({ variable: 'x', value: 1, time }).time;
  const EXPECTED = Date.UTC(2023, 10, 14, 22, 13, 20); // 1,700,000,000 s

  test('default: the arrival time; created_at is always the arrival time', () => {
    const r = one({ variable: 'x', value: 1 });
    assert.equal(r.time, NOW);
    assert.equal(r.created_at, NOW);
    assert.equal(at(null), NOW);
    assert.equal(at(''), NOW);
    assert.equal(one({ variable: 'x', value: 1, time: 0 }).created_at, NOW);
  });

  test('ISO-8601 strings, with Z, with an offset, date only, with milliseconds', () => {
    assert.equal(at('2023-11-14T22:13:20Z'), EXPECTED);
    assert.equal(at('2023-11-15T00:13:20+02:00'), EXPECTED);
    assert.equal(at('2023-11-14T22:13:20.123Z'), EXPECTED + 123);
    assert.equal(at('2023-11-14'), Date.UTC(2023, 10, 14));
  });

  test('Unix seconds and milliseconds, as numbers or numeric strings', () => {
    assert.equal(at(1_700_000_000), EXPECTED);
    assert.equal(at(1_700_000_000.25), EXPECTED + 250);
    assert.equal(at(1_700_000_000_000), EXPECTED);
    assert.equal(at('1700000000'), EXPECTED);
    assert.equal(at('1700000000000'), EXPECTED);
    assert.equal(at(0), 0);
    assert.equal(at(99_999_999_999), 99_999_999_999_000, 'below 1e11: seconds');
    assert.equal(at(100_000_000_000), 100_000_000_000, 'from 1e11: milliseconds');
  });

  test('Date objects', () => {
    assert.equal(at(new Date(EXPECTED)), EXPECTED);
    rejects({ variable: 'x', value: 1, time: new Date(NaN) }, 'record 0: time is an invalid Date');
  });

  test('anything else is rejected, naming the field', () => {
    rejects({ variable: 'x', value: 1, time: 'yesterday' }, 'record 0: time "yesterday" is not an ISO-8601 date or a Unix time');
    rejects({ variable: 'x', value: 1, time: '2023-13-45T99:00:00Z' }, 'record 0: time "2023-13-45T99:00:00Z" is not an ISO-8601 date or a Unix time');
    rejects({ variable: 'x', value: 1, time: -5 }, 'record 0: time must be a non-negative Unix time');
    rejects({ variable: 'x', value: 1, time: true }, 'record 0: time must be an ISO-8601 string or a Unix time in seconds or milliseconds');
    rejects({ variable: 'x', value: 1, time: { at: 1 } }, 'record 0: time must be an ISO-8601 string or a Unix time in seconds or milliseconds');
  });
});

describe('validateRecords: location', () => {
  const loc = (location: unknown) => one({ variable: 'x', value: 1, location }).location;

  test('{lat, lng}, {lat, lon} and GeoJSON Points all become GeoJSON Points [lng, lat]', () => {
    assert.deepEqual(loc({ lat: 10.5, lng: -20.25 }), { type: 'Point', coordinates: [-20.25, 10.5] });
    assert.deepEqual(loc({ lat: 10.5, lon: -20.25 }), { type: 'Point', coordinates: [-20.25, 10.5] });
    assert.deepEqual(loc({ type: 'Point', coordinates: [-20.25, 10.5] }), { type: 'Point', coordinates: [-20.25, 10.5] });
    assert.equal(loc(undefined), null);
    assert.equal(loc(null), null);
  });

  test('the ranges are inclusive: ±90 latitude, ±180 longitude', () => {
    assert.deepEqual(loc({ lat: 90, lng: 180 }), { type: 'Point', coordinates: [180, 90] });
    assert.deepEqual(loc({ lat: -90, lng: -180 }), { type: 'Point', coordinates: [-180, -90] });
    rejects({ variable: 'x', value: 1, location: { lat: 90.0001, lng: 0 } }, 'record 0: location latitude must be a number from -90 to 90');
    rejects({ variable: 'x', value: 1, location: { lat: -91, lng: 0 } }, 'record 0: location latitude must be a number from -90 to 90');
    rejects({ variable: 'x', value: 1, location: { lat: 0, lng: 180.5 } }, 'record 0: location longitude must be a number from -180 to 180');
    rejects({ variable: 'x', value: 1, location: { type: 'Point', coordinates: [-181, 0] } }, 'record 0: location longitude must be a number from -180 to 180');
    rejects({ variable: 'x', value: 1, location: { type: 'Point', coordinates: [0, 95] } }, 'record 0: location latitude must be a number from -90 to 90');
  });

  test('malformed locations are rejected', () => {
    rejects({ variable: 'x', value: 1, location: 'here' }, 'record 0: location must be {lat, lng} or a GeoJSON Point');
    rejects({ variable: 'x', value: 1, location: [1, 2] }, 'record 0: location must be {lat, lng} or a GeoJSON Point');
    rejects({ variable: 'x', value: 1, location: { type: 'Point', coordinates: [1] } }, 'record 0: location GeoJSON Point needs coordinates [lng, lat]');
    rejects({ variable: 'x', value: 1, location: { lat: '1', lng: 2 } }, 'record 0: location latitude must be a number from -90 to 90');
    rejects({ variable: 'x', value: 1, location: { lat: 1 } }, 'record 0: location longitude must be a number from -180 to 180');
  });
});

describe('validateRecords: metadata', () => {
  test('an optional object, kept as it is', () => {
    assert.deepEqual(one({ variable: 'x', value: 1, metadata: { a: 1, b: { c: [true] } } }).metadata, { a: 1, b: { c: [true] } });
    assert.equal(one({ variable: 'x', value: 1 }).metadata, null);
    rejects({ variable: 'x', value: 1, metadata: [1] }, 'record 0: metadata must be an object');
    rejects({ variable: 'x', value: 1, metadata: 'x' }, 'record 0: metadata must be an object');
    rejects({ variable: 'x', value: 1, metadata: { big: 1n } }, 'record 0: metadata must be JSON-serialisable');
  });

  test('at most 10 KB serialised', () => {
    assert.equal(LIMITS.metadataBytes, 10240);
    // {"k":"…"} is 8 bytes plus the text.
    assert.ok(one({ variable: 'x', value: 1, metadata: { k: 'a'.repeat(10232) } }).metadata);
    rejects({ variable: 'x', value: 1, metadata: { k: 'a'.repeat(10233) } }, 'record 0: metadata must be at most 10240 bytes serialised');
  });

  test("context metadata (e.g. mqtt_topic) is merged in; the record's own keys win; the limit counts the merge", () => {
    const ctx = { ...context, metadata: { mqtt_topic: 'sensors/t', source: 'action' } };
    assert.deepEqual(one({ variable: 'x', value: 1 }, ctx).metadata, { mqtt_topic: 'sensors/t', source: 'action' });
    assert.deepEqual(one({ variable: 'x', value: 1, metadata: { source: 'device', n: 1 } }, ctx).metadata, { mqtt_topic: 'sensors/t', source: 'device', n: 1 });
    assert.throws(() => validateRecords({ variable: 'x', value: 1, metadata: { k: 'a'.repeat(10232) } }, ctx), /^RecordError: record 0: metadata must be at most 10240 bytes serialised$/);
  });

  test('context metadata: copied once per message, or shared as it is when frozen; a record carrying that very object gets it too', () => {
    const mutable = { mqtt_topic: 'a' };
    const copied = validateRecords([{ variable: 'x', value: 1 }, { variable: 'y', value: 2 }], { ...context, metadata: mutable });
    assert.notEqual(copied[0]!.metadata, mutable, 'the caller may change its object later');
    assert.equal(copied[0]!.metadata, copied[1]!.metadata, 'one copy per message');
    mutable.mqtt_topic = 'changed';
    assert.deepEqual(copied[0]!.metadata, { mqtt_topic: 'a' });

    const frozen = Object.freeze({ mqtt_topic: 'b' });
    const shared = validateRecords([{ variable: 'x', value: 1 }, { variable: 'payload', value: 'hi', metadata: frozen }], { ...context, metadata: frozen });
    assert.equal(shared[0]!.metadata, frozen);
    assert.equal(shared[1]!.metadata, frozen);
    assert.deepEqual(validateRecords({ variable: 'x', value: 1, metadata: { n: 1 } }, { ...context, metadata: frozen })[0]!.metadata, { mqtt_topic: 'b', n: 1 }, 'a record\'s own metadata is still merged');
  });
});

describe('validateRecords: messages', () => {
  test('one record or an array; every record gets id, device, created_at', () => {
    const single = validateRecords({ variable: 'x', value: 1 }, context);
    assert.equal(single.length, 1);
    const many = validateRecords([{ variable: 'a', value: 1 }, { variable: 'b', value: 2 }], context);
    assert.deepEqual(many.map((r) => [r.variable, r.device, r.created_at]), [['a', 'dev-1', NOW], ['b', 'dev-1', NOW]]);
    assert.match(many[0]!.id, /^[0-9a-f]{24}$/);
    assert.notEqual(many[0]!.id, many[1]!.id);
  });

  test('unknown fields are ignored', () => {
    const r = one({ variable: 'x', value: 1, origin: 'abc', serie_extra: 1 });
    assert.deepEqual(Object.keys(r).sort(), ['created_at', 'device', 'group', 'id', 'location', 'metadata', 'time', 'unit', 'value', 'variable']);
  });

  test('a bad record at index 2 rejects the whole message, naming index 2 and the field', () => {
    const message = [{ variable: 'a', value: 1 }, { variable: 'b', value: 2 }, { variable: 'c', value: 3, unit: 'u'.repeat(26) }, { variable: 'd', value: 4 }];
    rejects(message, 'record 2: unit must be at most 25 characters');
    rejects([{ variable: 'a' }, { variable: 'b' }, { variable: 'c.d' }], `record 2: variable must not contain "." ${FORBIDDEN_LIST}`);
    rejects([{ variable: 'a' }, { variable: 'b' }, { variable: 'c', location: { lat: 100, lng: 0 } }], 'record 2: location latitude must be a number from -90 to 90');
  });

  test('non-object records and empty arrays are rejected', () => {
    rejects([{ variable: 'a' }, 5], 'record 1: record must be an object');
    rejects(null, 'record 0: record must be an object');
    rejects('text', 'record 0: record must be an object');
    rejects([[{ variable: 'a' }]], 'record 0: record must be an object');
    rejects([], 'record 0: message is an empty array');
  });

  test('generated ids are 24 hex digits and unique', () => {
    const ids = new Set(Array.from({ length: 10_000 }, generateRecordId));
    assert.equal(ids.size, 10_000);
    for (const id of [...ids].slice(0, 100)) assert.match(id, /^[0-9a-f]{24}$/);
  });

  test('a generated id starts with its creation second, and ids of one second still differ', () => {
    const t = Date.UTC(2026, 10, 25, 12, 0, 0, 500);
    const a = generateRecordId(t);
    const b = generateRecordId(t);
    assert.equal(a.slice(0, 8), (t / 1000 - 0.5).toString(16));
    assert.notEqual(a, b);
    assert.equal(a.slice(0, 18), b.slice(0, 18));
    assert.equal(generateRecordId(t + 1000).slice(0, 8), (t / 1000 + 0.5).toString(16));
  });
});
