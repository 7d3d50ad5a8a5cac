import { isUtf8 } from 'node:buffer';
import { malformed } from '../errors.ts';

/** MQTT's variable byte integer at `pos` (MQTT 5 §1.5.5), bounded by `end`; throws malformed. */
export function readVarint(buf: Buffer, pos: number, end: number): [value: number, bytes: number] {
  let value = 0;
  let multiplier = 1;
  for (let i = 0; i < 4; i++) {
    if (pos + i >= end) throw malformed('truncated variable byte integer');
    const byte = buf[pos + i]!;
    value += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) return [value, i + 1];
    multiplier *= 128;
  }
  throw malformed('variable byte integer longer than 4 bytes');
}

/**
 * Decodes `buf[start, end)` as UTF-8, refusing ill-formed bytes (MQTT-1.5.4-1; MQTT 5 §1.5.4: a
 * Malformed Packet; 3.1.1 §1.5.3: close the connection). Node decodes ill-formed sequences as
 * U+FFFD, so the full check runs only when one appears: a well-formed string pays one search.
 */
export function decodeUtf8(buf: Buffer, start: number, end: number, what: string): string {
  const value = buf.toString('utf8', start, end);
  if (value.includes('\uFFFD') && !isUtf8(buf.subarray(start, end))) throw malformed(`${what} is not valid UTF-8`);
  return value;
}

/** A UTF-8 string with its 2-byte length at `pos` (MQTT 5 §1.5.4), bounded by `end`; throws malformed. */
export function readString(buf: Buffer, pos: number, end: number, what = 'a string'): [value: string, bytes: number] {
  if (pos + 2 > end) throw malformed(`truncated string (${what})`);
  const n = buf.readUInt16BE(pos);
  if (pos + 2 + n > end) throw malformed(`truncated string (${what})`);
  return [decodeUtf8(buf, pos + 2, pos + 2 + n, what), 2 + n];
}
