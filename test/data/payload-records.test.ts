import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { payloadToRecordInput } from '../../src/data/payload-records.ts';
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

  test('JSON that is not records becomes one payload record holding the text', () => {
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
