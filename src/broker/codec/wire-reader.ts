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

/** A UTF-8 string with its 2-byte length at `pos` (MQTT 5 §1.5.4), bounded by `end`; throws malformed. */
export function readString(buf: Buffer, pos: number, end: number): [value: string, bytes: number] {
  if (pos + 2 > end) throw malformed('truncated string');
  const n = buf.readUInt16BE(pos);
  if (pos + 2 + n > end) throw malformed('truncated string');
  return [buf.toString('utf8', pos + 2, pos + 2 + n), 2 + n];
}
