import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { validateRecords } from '../../src/data/validate-record.ts';
import { ParserSandbox, type ParserInput } from '../../src/parser/sandbox.ts';
import { decoders } from './decoders/index.ts';

/**
 * A corpus of real-world payload parsers (SPEC §4), each run in one shared sandbox against a
 * message, with the exact final `payload` and console lines it must produce. Every successful
 * result must also be storable (SPEC §3).
 */

/**
 * The parser input the platform builds from a message (SPEC §4): JSON holding a record or an array
 * of records is that array (a single record wrapped); anything else is one `payload` record holding
 * the UTF-8 text, or hex when the bytes are not valid UTF-8, with the topic in its metadata.
 */
function parserInput(raw: Buffer, topic: string): ParserInput {
  if (isUtf8(raw)) {
    const text = raw.toString('utf8');
    const records = jsonRecords(text);
    if (records !== null) return { payload: records, raw };
    return { payload: [{ variable: 'payload', value: text, metadata: { mqtt_topic: topic } }], raw };
  }
  return { payload: [{ variable: 'payload', value: raw.toString('hex'), metadata: { mqtt_topic: topic } }], raw };
}

function jsonRecords(text: string): unknown[] | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  const isRecord = (v: unknown): boolean => typeof v === 'object' && v !== null && !Array.isArray(v) && 'variable' in v;
  if (Array.isArray(parsed)) return parsed.length > 0 && parsed.every(isRecord) ? parsed : null;
  return isRecord(parsed) ? [parsed] : null;
}

describe('parser input builder', () => {
  test('JSON records pass through, a single record is wrapped, no metadata is added', () => {
    assert.deepStrictEqual(parserInput(Buffer.from('{"variable":"t","value":1}'), 'a/b').payload, [{ variable: 't', value: 1 }]);
    assert.deepStrictEqual(parserInput(Buffer.from('[{"variable":"t","value":1},{"variable":"h"}]'), 'a/b').payload, [
      { variable: 't', value: 1 },
      { variable: 'h' },
    ]);
  });

  test('other JSON and text become one payload record with the topic; invalid UTF-8 becomes hex', () => {
    assert.deepStrictEqual(parserInput(Buffer.from('{"t":1}'), 'a/b').payload, [{ variable: 'payload', value: '{"t":1}', metadata: { mqtt_topic: 'a/b' } }]);
    assert.deepStrictEqual(parserInput(Buffer.from('0a1b'), 'x').payload, [{ variable: 'payload', value: '0a1b', metadata: { mqtt_topic: 'x' } }]);
    assert.deepStrictEqual(parserInput(Buffer.from([0xff, 0x00, 0x1b]), 'x').payload, [{ variable: 'payload', value: 'ff001b', metadata: { mqtt_topic: 'x' } }]);
  });
});

describe('decoder corpus (SPEC §4)', () => {
  const sandbox = new ParserSandbox();
  after(() => sandbox.dispose());

  test('the corpus holds at least 24 decoders with unique names', () => {
    assert.ok(decoders.length >= 24, `only ${decoders.length} decoders`);
    assert.equal(new Set(decoders.map((d) => d.name)).size, decoders.length);
  });

  for (const fixture of decoders) {
    test(fixture.name, async () => {
      const raw = typeof fixture.raw === 'string' ? Buffer.from(fixture.raw) : fixture.raw;
      const outcome = await sandbox.parse(fixture.key ?? fixture.name, fixture.code, fixture.device, parserInput(raw, fixture.topic));
      const expected = fixture.expected;
      if (expected.ok) {
        assert.ok(outcome.ok, `parser failed: ${outcome.ok ? '' : `${outcome.error.kind}: ${outcome.error.message}`}`);
        assert.deepStrictEqual(outcome.payload, expected.payload);
        assert.deepStrictEqual(outcome.logs, expected.logs ?? []);
        // every decoder must produce storable records (SPEC §3); throws RecordError otherwise
        const stored = validateRecords(outcome.payload, { deviceId: 'd1', now: Date.now() });
        assert.equal(stored.length, expected.payload.length);
      } else {
        assert.equal(outcome.ok, false, `parser succeeded with ${JSON.stringify(outcome.ok ? outcome.payload : null)}`);
        assert.ok(!outcome.ok);
        assert.equal(outcome.error.kind, expected.error.kind, `error was ${outcome.error.kind}: ${outcome.error.message}`);
        assert.ok(outcome.error.message.includes(expected.error.includes), `message ${JSON.stringify(outcome.error.message)} lacks ${JSON.stringify(expected.error.includes)}`);
        assert.deepStrictEqual(outcome.logs, expected.logs ?? []);
      }
    });
  }
});
