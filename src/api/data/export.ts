/**
 * Bucket exports (SPEC §9, issue 5): CSV or a JSON array, streamed from BucketStore.stream page by
 * page, so an export of any size holds only one chunk in memory. Chunks of about CHUNK_BYTES keep
 * the number of socket writes low; Readable.from gives backpressure (the store is not read faster
 * than the client downloads) and stops the store's iteration if the client goes away.
 */
import { Readable } from 'node:stream';
import type { DataRecord } from '../../data/record.ts';
import { toRecordJson } from '../../data/record.ts';

export type ExportFormat = 'csv' | 'json';

export const EXPORT_FORMATS: readonly ExportFormat[] = ['csv', 'json'];

export const CSV_COLUMNS = ['id', 'device', 'variable', 'value', 'unit', 'time', 'group', 'lat', 'lng', 'metadata', 'created_at'] as const;

const CHUNK_BYTES = 64 * 1024;

export const EXPORT_CONTENT_TYPES: Record<ExportFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  json: 'application/json; charset=utf-8',
};

export function exportStream(records: AsyncIterable<DataRecord>, format: ExportFormat): Readable {
  return Readable.from(format === 'csv' ? csvChunks(records) : jsonChunks(records), { objectMode: false });
}

async function* csvChunks(records: AsyncIterable<DataRecord>): AsyncGenerator<string> {
  let chunk = CSV_COLUMNS.join(',') + '\r\n';
  for await (const record of records) {
    chunk += csvRow(record);
    if (chunk.length >= CHUNK_BYTES) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk.length > 0) yield chunk;
}

async function* jsonChunks(records: AsyncIterable<DataRecord>): AsyncGenerator<string> {
  let chunk = '[';
  let first = true;
  for await (const record of records) {
    chunk += (first ? '\n' : ',\n') + JSON.stringify(toRecordJson(record));
    first = false;
    if (chunk.length >= CHUNK_BYTES) {
      yield chunk;
      chunk = '';
    }
  }
  yield chunk + (first ? ']\n' : '\n]\n');
}

/** One CSV line (RFC 4180: CRLF line ends; fields with a comma, quote or line break are quoted). */
export function csvRow(r: DataRecord): string {
  const fields = [
    r.id,
    r.device,
    r.variable,
    r.value === null ? '' : String(r.value),
    r.unit ?? '',
    new Date(r.time).toISOString(),
    r.group,
    r.location === null ? '' : String(r.location.coordinates[1]),
    r.location === null ? '' : String(r.location.coordinates[0]),
    r.metadata === null ? '' : JSON.stringify(r.metadata),
    new Date(r.created_at).toISOString(),
  ];
  return fields.map(csvField).join(',') + '\r\n';
}

const NEEDS_QUOTES = /[",\r\n]/;

export function csvField(text: string): string {
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
