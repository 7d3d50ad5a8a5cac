import { isUtf8 } from 'node:buffer';
import type { ParserInput } from '../parser/types.ts';

/**
 * What a raw message holds (SPEC §4/§5 insert_bucket):
 * - `records`: JSON records (a record or an array of them), used as they are;
 * - `json`: other JSON that is an object or an array (a device's own format, SenML, a network
 *   server's uplink), which a payload parser sees parsed and which is stored, without a parser, as
 *   the `payload` record of its text;
 * - `text` / `hex`: anything else, as UTF-8 text or, when the bytes are not valid UTF-8, as hex; it
 *   becomes one `payload` record (`payloadRecord`).
 * A JSON scalar (`42`, `"on"`) is text: only objects and arrays are a device's structured message.
 */
export type PayloadContent =
  | { kind: 'records'; records: unknown }
  | { kind: 'json'; json: object; text: string }
  | { kind: 'text' | 'hex'; value: string };

export function readPayload(payload: Buffer): PayloadContent {
  if (!isUtf8(payload)) return { kind: 'hex', value: payload.toString('hex') };
  const text = payload.toString('utf8');
  const first = firstNonSpace(text);
  if (first === 0x7b /* { */ || first === 0x5b /* [ */) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (looksLikeRecords(parsed)) return { kind: 'records', records: parsed };
      return { kind: 'json', json: parsed as object, text };
    } catch {
      // not JSON: falls through to the payload record
    }
  }
  return { kind: 'text', value: text };
}

/**
 * A raw message as record input for a device without a parser: its records, or one `payload` record
 * holding its text or hex, with `metadata` when given. Nothing of a message is lost for want of a parser.
 */
export function payloadToRecordInput(payload: Buffer, metadata?: Record<string, unknown>): unknown {
  const content = readPayload(payload);
  if (content.kind === 'records') return content.records;
  return payloadRecord(content.kind === 'json' ? content.text : content.value, metadata);
}

/**
 * A raw message as a payload parser sees it (SPEC §4): JSON records as sent; other JSON parsed (an
 * object as `[object]`, an array as it is), each object item with `metadata` merged into its own;
 * anything else the one `payload` record of its text or hex, which crosses to the sandbox as that
 * text alone (`carrier`).
 */
export function parserInput(bytes: Buffer, metadata: Record<string, unknown> | undefined): ParserInput {
  const content = readPayload(bytes);
  if (content.kind === 'records') return { payload: asArray(content.records), raw: bytes };
  if (content.kind === 'json') return { payload: jsonItems(content.json, metadata), raw: bytes };
  return { payload: [payloadRecord(content.value, metadata)], raw: bytes, carrier: content.kind };
}

/**
 * Parsed JSON (an HTTP body) as a payload parser's `payload`, as `parserInput` makes it from bytes;
 * null for a JSON scalar, which the parser sees as the `payload` record of its text.
 */
export function parsedParserPayload(value: unknown, metadata: Record<string, unknown> | undefined): unknown[] | null {
  if (looksLikeRecords(value)) return asArray(value);
  if (typeof value !== 'object' || value === null) return null;
  return jsonItems(value, metadata);
}

/** The one record a message that is not records becomes. */
export function payloadRecord(value: string, metadata: Record<string, unknown> | undefined): Record<string, unknown> {
  return metadata === undefined ? { variable: 'payload', value } : { variable: 'payload', value, metadata };
}

function asArray(records: unknown): unknown[] {
  return Array.isArray(records) ? records : [records];
}

/**
 * A JSON object or array as parser items: each object item gets `metadata` merged over its own, so
 * `metadata.mqtt_topic` is always the topic the message came on (a device cannot make a decoder
 * believe another). Items that are not objects (numbers, strings, nested arrays) pass unchanged.
 */
function jsonItems(json: object, metadata: Record<string, unknown> | undefined): unknown[] {
  const items: unknown[] = Array.isArray(json) ? json : [json];
  if (metadata === undefined) return items;
  const out: unknown[] = new Array(items.length);
  for (let i = 0; i < items.length; i++) out[i] = withMetadata(items[i], metadata);
  return out;
}

function withMetadata(item: unknown, metadata: Record<string, unknown>): unknown {
  if (!isPlainObject(item)) return item;
  const own = item.metadata;
  return { ...item, metadata: isPlainObject(own) ? { ...own, ...metadata } : { ...metadata } };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
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
  return isPlainObject(value) && 'variable' in value;
}
