/**
 * Serializes one message for the in-isolate driver (see prelude/protocol.ts). Done once, where
 * `parse` is called, so input that is not JSON data is refused there and the bytes can cross a
 * process boundary as one string.
 */
import type { ParserDevice, ParserInput } from './types.ts';

/**
 * Device JSON by device object: callers pass the same object for every message of an unchanged
 * device (payload-parsers.ts), so it is serialized once, and the same string goes with every
 * message, which lets the sandbox send it once per device and once per isolate call.
 */
const deviceJson = new WeakMap<ParserDevice, string>();

/** The device as JSON text, the same string for the same device object. */
export function deviceText(device: ParserDevice): string {
  let text = deviceJson.get(device);
  if (text === undefined) {
    text = JSON.stringify(device);
    deviceJson.set(device, text);
  }
  return text;
}

/**
 * `{"p": payload, "r": raw bytes as base64}`, or for a payload record carrying its raw bytes
 * (`input.carrier`) `{"x": hex}` or `{"s": text}` with its metadata as `"m"` (prelude/protocol.ts).
 * Throws for input that is not JSON data.
 */
export function wireMessage(input: ParserInput): string {
  if (!Array.isArray(input.payload)) throw new TypeError('parser input payload must be an array');
  if (input.carrier !== undefined) {
    const record = input.payload[0] as { value: string; metadata?: Record<string, unknown> };
    const metadata = record.metadata === undefined ? '' : `,"m":${JSON.stringify(record.metadata)}`;
    // Hex needs no escaping; text does.
    return input.carrier === 'hex' ? `{"x":"${record.value}"${metadata}}` : `{"s":${JSON.stringify(record.value)}${metadata}}`;
  }
  // JSON.stringify throws on BigInt and cycles: a caller bug, reported as a rejection.
  return `{"p":${JSON.stringify(input.payload)},"r":"${input.raw.toString('base64')}"}`;
}
