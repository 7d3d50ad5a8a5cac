import { isUtf8 } from 'node:buffer';

/**
 * Turns a raw message into record input (SPEC §4/§5 insert_bucket): a JSON record or array of
 * records is used as it is; anything else becomes one `payload` record holding the UTF-8 text, or
 * hex when the bytes are not valid UTF-8.
 */
export function payloadToRecordInput(payload: Buffer): unknown {
  if (isUtf8(payload)) {
    const text = payload.toString('utf8');
    const first = text.trimStart()[0];
    if (first === '{' || first === '[') {
      try {
        const parsed: unknown = JSON.parse(text);
        if (looksLikeRecords(parsed)) return parsed;
      } catch {
        // not JSON: falls through to the payload record
      }
    }
    return { variable: 'payload', value: text };
  }
  return { variable: 'payload', value: payload.toString('hex') };
}

function looksLikeRecords(value: unknown): boolean {
  const isRecord = (v: unknown): boolean => typeof v === 'object' && v !== null && !Array.isArray(v) && 'variable' in v;
  return Array.isArray(value) ? value.length > 0 && value.every(isRecord) : isRecord(value);
}
