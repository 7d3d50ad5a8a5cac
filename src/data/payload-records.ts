import { isUtf8 } from 'node:buffer';

/**
 * What a raw message holds (SPEC §4/§5 insert_bucket): JSON records (a record or an array of them),
 * used as they are; otherwise its UTF-8 text, or its bytes as hex when they are not valid UTF-8,
 * which become one `payload` record (`payloadRecord`).
 */
export type PayloadContent = { kind: 'records'; records: unknown } | { kind: 'text' | 'hex'; value: string };

export function readPayload(payload: Buffer): PayloadContent {
  if (!isUtf8(payload)) return { kind: 'hex', value: payload.toString('hex') };
  const text = payload.toString('utf8');
  const first = firstNonSpace(text);
  if (first === 0x7b /* { */ || first === 0x5b /* [ */) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (looksLikeRecords(parsed)) return { kind: 'records', records: parsed };
    } catch {
      // not JSON: falls through to the payload record
    }
  }
  return { kind: 'text', value: text };
}

/**
 * A raw message as record input: its records, or one `payload` record holding its text or hex, with
 * `metadata` when given (SPEC §4: a parser sees the MQTT topic on it).
 */
export function payloadToRecordInput(payload: Buffer, metadata?: Record<string, unknown>): unknown {
  const content = readPayload(payload);
  return content.kind === 'records' ? content.records : payloadRecord(content.value, metadata);
}

/** The one record a message that is not records becomes. */
export function payloadRecord(value: string, metadata: Record<string, unknown> | undefined): Record<string, unknown> {
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
