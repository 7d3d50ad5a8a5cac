/**
 * Public types of the parser sandbox (SPEC §4): what a device's parser script sees and what comes
 * back from one run.
 */

export interface SandboxOptions {
  /** Per-message time limit in milliseconds. Default 1000. */
  timeoutMs?: number;
  /** Per-isolate heap limit in MiB (isolated-vm's minimum is 8). Default 32. */
  memoryMb?: number;
  /** Least-recently-used cap on cached isolates (one per key). Default 256. */
  maxIsolates?: number;
  /** Cap on one message's serialized (UTF-8 JSON) result in bytes. Default 1 MiB. */
  maxResultBytes?: number;
  /** Messages run in one isolate call at most. Default 256. */
  maxBatch?: number;
  /**
   * IANA time zone of the sandbox's clock (`TZ` of its process): what `Date#toString`, `getHours` and
   * a plain `dayjs()` show. Default 'UTC', as the hosted service, whatever the server's own zone.
   */
  timezone?: string;
}

export interface ParserDevice {
  id: string;
  name: string;
  tags: Array<{ key: string; value: string }>;
  params: Array<{ key: string; value: string; sent: boolean }>;
}

export interface ParserInput {
  /** The records array the script sees as the global `payload`. Must be JSON data. */
  payload: unknown[];
  /** The original message bytes, seen by the script as the global `raw_payload` (a Buffer). */
  raw: Buffer;
  /**
   * Set when `payload` is the one `payload` record made from `raw` (payload-records.ts
   * `payloadRecord`), its value being `raw` as UTF-8 text or as hex: the message then crosses to the
   * sandbox as that text alone, and the sandbox rebuilds both globals from it.
   */
  carrier?: 'text' | 'hex';
}

/** One console line; warn is reported as error and info/debug as log. */
export interface ParserLog {
  level: 'log' | 'error';
  message: string;
}

export type ParserErrorKind = 'syntax' | 'runtime' | 'timeout' | 'memory' | 'result';

export type ParseOutcome =
  | { ok: true; payload: unknown[]; logs: ParserLog[] }
  | { ok: false; error: { kind: ParserErrorKind; message: string }; logs: ParserLog[] };

export interface SandboxStats {
  /** Isolates created since construction, including rebuilds after a memory overrun. */
  isolatesCreated: number;
  /** Isolates currently holding memory. */
  isolatesAlive: number;
  /** Calls into an isolate that ran messages (one per batch, plus reruns after a timeout). */
  calls: number;
  /** Messages that produced an outcome. */
  messages: number;
}
