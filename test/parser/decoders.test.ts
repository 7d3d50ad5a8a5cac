import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parserInput } from '../../src/data/payload-records.ts';
import { validateRecords } from '../../src/data/validate-record.ts';
import { ParserSandbox } from '../../src/parser/sandbox.ts';
import { decoders } from './decoders/index.ts';

/**
 * A corpus of real-world payload parsers (SPEC §4), each run in one shared sandbox against a
 * message, with the exact final `payload` and console lines it must produce. Every successful
 * result must also be storable (SPEC §3).
 */

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
      const outcome = await sandbox.parse(fixture.key ?? fixture.name, fixture.code, fixture.device, parserInput(raw, { mqtt_topic: fixture.topic }));
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
