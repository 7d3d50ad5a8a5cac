import { isUtf8 } from 'node:buffer';

/**
 * Turns a raw message into record input (SPEC §4/§5 insert_bucket): a JSON record or array of
 * records is used as it is; anything else becomes one `payload` record holding the UTF-8 text, or
 * hex when the bytes are not valid UTF-8, with `metadata` when given (SPEC §4: a parser sees the
 * MQTT topic on it).
 */
export function payloadToRecordInput(payload: Buffer, metadata?: Record<string, unknown>): unknown {
  if (isUtf8(payload)) {
    const text = payload.toString('utf8');
    const first = firstNonSpace(text);
    if (first === 0x7b /* { */ || first === 0x5b /* [ */) {
      try {
        const parsed: unknown = JSON.parse(text);
        if (looksLikeRecords(parsed)) return parsed;
      } catch {
        // not JSON: falls through to the payload record
      }
    }
    return payloadRecord(text, metadata);
  }
  return payloadRecord(payload.toString('hex'), metadata);
}

function payloadRecord(value: string, metadata: Record<string, unknown> | undefined): unknown {
  return metadata === undefined ? { variable: 'payload', value } : { variable: 'payload', value, metadata };
}

/** The first character code that is not JSON whitespace, or -1. */
function firstNonSpace(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return c;
  }
  return -1;
}

/** A record (an object with `variable`) or a non-empty array of them. */
export function looksLikeRecords(value: unknown): boolean {
  if (!Array.isArray(value)) return isRecord(value);
  if (value.length === 0) return false;
  for (let i = 0; i < value.length; i++) if (!isRecord(value[i])) return false;
  return true;
}

function isRecord(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && 'variable' in value;
}
