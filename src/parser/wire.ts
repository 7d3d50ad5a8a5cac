/**
 * Serializes one message for the in-isolate driver (see prelude/protocol.ts). Done once, where
 * `parse` is called, so input that is not JSON data is refused there and the bytes can cross a
 * process boundary as one string.
 */
import type { ParserDevice, ParserInput } from './types.ts';

/**
 * Device JSON (as a JSON string literal) by device object: callers pass the same object for every
 * message of an unchanged device (payload-parsers.ts), so it is serialized once, not per message.
 */
const deviceJson = new WeakMap<ParserDevice, string>();

/**
 * `{"p": payload, "r": raw bytes as base64, "d": device JSON as a string}`; throws for input that is
 * not JSON data. The device travels as text so the isolate parses it only for scripts that read it.
 */
export function wireMessage(device: ParserDevice, input: ParserInput): string {
  if (!Array.isArray(input.payload)) throw new TypeError('parser input payload must be an array');
  // JSON.stringify throws on BigInt and cycles: a caller bug, reported as a rejection.
  const payload = JSON.stringify(input.payload);
  let d = deviceJson.get(device);
  if (d === undefined) {
    d = JSON.stringify(JSON.stringify(device));
    deviceJson.set(device, d);
  }
  return `{"p":${payload},"r":"${input.raw.toString('base64')}","d":${d}}`;
}
