import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parsedParserPayload, parserInput, payloadToRecordInput } from '../../src/data/payload-records.ts';
import { validateRecords } from '../../src/data/validate-record.ts';

const input = (payload: string | Buffer | number[]): unknown =>
  payloadToRecordInput(typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload));

describe('payloadToRecordInput (SPEC §5 insert_bucket)', () => {
  test('a JSON record is used as it is', () => {
    assert.deepEqual(input('{"variable":"temperature","value":21.5,"unit":"C"}'), { variable: 'temperature', value: 21.5, unit: 'C' });
    assert.deepEqual(input('  \n{"variable":"x","value":null,"metadata":{"a":1}}  '), { variable: 'x', value: null, metadata: { a: 1 } });
  });

  test('a JSON array of records is used as it is', () => {
    assert.deepEqual(input('[{"variable":"a","value":1},{"variable":"b","value":"two"}]'), [{ variable: 'a', value: 1 }, { variable: 'b', value: 'two' }]);
  });

  test('without a parser, JSON that is not records becomes one payload record holding the text (nothing is lost)', () => {
    for (const text of ['{"temp":21}', '[1,2,3]', '[]', '[{"variable":"a"},{"temp":1}]', '"just a string"', '42', 'true', 'null']) {
      assert.deepEqual(input(text), { variable: 'payload', value: text }, text);
    }
  });

  test('broken JSON and plain text are stored as UTF-8 text', () => {
    assert.deepEqual(input('{"variable":"a",'), { variable: 'payload', value: '{"variable":"a",' });
    assert.deepEqual(input('0a1b'), { variable: 'payload', value: '0a1b' });
    assert.deepEqual(input('température 21 °C'), { variable: 'payload', value: 'température 21 °C' });
    assert.deepEqual(input(''), { variable: 'payload', value: '' });
  });

  test('bytes that are not UTF-8 are stored as hex', () => {
    assert.deepEqual(input([0xff, 0xfe, 0x00, 0x1b]), { variable: 'payload', value: 'fffe001b' });
    assert.deepEqual(input([0xc3]), { variable: 'payload', value: 'c3' }, 'a truncated multi-byte character');
  });

  test('valid UTF-8 control bytes stay text', () => {
    assert.deepEqual(input([0x0a, 0x1b]), { variable: 'payload', value: '\n\u001b' });
  });

  test('the result passes validation (a payload record is a valid record)', () => {
    const [r] = validateRecords(input([0xde, 0xad, 0xbe, 0xef]), { deviceId: 'd', now: 1, metadata: { mqtt_topic: 'raw/x' } });
    assert.equal(r?.variable, 'payload');
    assert.equal(r?.value, 'deadbeef');
    assert.deepEqual(r?.metadata, { mqtt_topic: 'raw/x' });
  });
});

describe('parserInput: what a payload parser sees (SPEC §4)', () => {
  const topic = { mqtt_topic: 'devices/42/up' };
  const seen = (text: string | number[], metadata: Record<string, unknown> | undefined = topic) =>
    parserInput(typeof text === 'string' ? Buffer.from(text) : Buffer.from(text), metadata);

  test('JSON records arrive as sent, a single record wrapped', () => {
    assert.deepStrictEqual(seen('{"variable":"t","value":1}').payload, [{ variable: 't', value: 1 }]);
    assert.deepStrictEqual(seen('[{"variable":"t","value":1},{"variable":"h"}]').payload, [{ variable: 't', value: 1 }, { variable: 'h' }]);
  });

  test('a JSON object arrives parsed as [object], with metadata.mqtt_topic', () => {
    const input = seen('{"IMEI":"1112","battery":3.59,"1":[0,0,1,-409.5,"2000/01/01 07:14:11"]}');
    assert.deepStrictEqual(input.payload, [{ IMEI: '1112', battery: 3.59, 1: [0, 0, 1, -409.5, '2000/01/01 07:14:11'], metadata: topic }]);
    assert.equal(input.carrier, undefined);
    assert.equal(input.raw.toString(), '{"IMEI":"1112","battery":3.59,"1":[0,0,1,-409.5,"2000/01/01 07:14:11"]}');
  });

  test('a JSON array arrives as it is; object items get the topic merged into their own metadata, other items pass unchanged', () => {
    assert.deepStrictEqual(seen('[{"bn":"142143","bt":1733859162},{"n":"battery","u":"%EL","v":100,"metadata":{"port":2}},7,"x",[1]]').payload, [
      { bn: '142143', bt: 1733859162, metadata: topic },
      { n: 'battery', u: '%EL', v: 100, metadata: { port: 2, mqtt_topic: 'devices/42/up' } },
      7,
      'x',
      [1],
    ]);
    assert.deepStrictEqual(seen('[]').payload, []);
  });

  test('the topic wins over an mqtt_topic the message claims; metadata that is not an object is replaced', () => {
    assert.deepStrictEqual(seen('{"a":1,"metadata":{"mqtt_topic":"forged","k":1}}').payload, [{ a: 1, metadata: { mqtt_topic: 'devices/42/up', k: 1 } }]);
    assert.deepStrictEqual(seen('{"a":1,"metadata":"text"}').payload, [{ a: 1, metadata: topic }]);
  });

  test('without metadata (an HTTP body) JSON items are not touched', () => {
    assert.deepStrictEqual(parserInput(Buffer.from('{"a":1}'), undefined).payload, [{ a: 1 }]);
  });

  test('text, JSON scalars, broken JSON and binary become the payload record, carried as text or hex', () => {
    for (const text of ['21.5', '"on"', 'true', 'null', '{"a":', 'hello']) {
      const input = seen(text);
      assert.deepStrictEqual(input.payload, [{ variable: 'payload', value: text, metadata: topic }], text);
      assert.equal(input.carrier, 'text');
    }
    const binary = seen([0xff, 0x00, 0x1b]);
    assert.deepStrictEqual(binary.payload, [{ variable: 'payload', value: 'ff001b', metadata: topic }]);
    assert.equal(binary.carrier, 'hex');
  });

  test('parsed JSON (an HTTP body) gives the same payload as its bytes, and null for a scalar', () => {
    for (const text of ['{"a":1}', '[{"n":"t","v":1},2]', '{"variable":"t","value":1}', '[]']) {
      assert.deepStrictEqual(parsedParserPayload(JSON.parse(text), topic), seen(text).payload, text);
    }
    for (const scalar of [42, 'on', true, null]) assert.equal(parsedParserPayload(scalar, topic), null);
  });
});
