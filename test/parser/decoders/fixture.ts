/**
 * Shape of a decoder fixture: a payload parser written the way hosted-service users write them, the
 * message it receives, and the exact outcome the sandbox must produce (SPEC §4).
 */

import type { ParserDevice, ParserErrorKind, ParserLog } from '../../../src/parser/types.ts';

export type FixtureDevice = ParserDevice;
export type LogLine = ParserLog;

export type ExpectedOutcome =
  | {
      ok: true;
      /** The exact final `payload` as JSON data (a `Date` is its ISO string, `undefined` fields are gone). */
      payload: unknown[];
      /** Exact console lines; none when omitted. */
      logs?: LogLine[];
    }
  | {
      ok: false;
      /** `includes` is a substring the error message must contain. */
      error: { kind: ParserErrorKind; includes: string };
      logs?: LogLine[];
    };

export interface DecoderFixture {
  name: string;
  /**
   * Sandbox cache key; defaults to `name`. Fixtures that run the same code share a key so the
   * second run exercises a cached parser (a top-level `const` must not clash on the next message).
   */
  key?: string;
  code: string;
  /** The message bytes; a string is its UTF-8 bytes. */
  raw: Buffer | string;
  topic: string;
  device: FixtureDevice;
  expected: ExpectedOutcome;
}

export function makeDevice(overrides: Partial<FixtureDevice> = {}): FixtureDevice {
  return { id: '65f0c0ffee0000000000d001', name: 'Sensor', tags: [], params: [], ...overrides };
}

/** Bytes from a hex string written with spaces between fields for readability. */
export function hexBytes(spaced: string): Buffer {
  return Buffer.from(spaced.replace(/\s+/g, ''), 'hex');
}
