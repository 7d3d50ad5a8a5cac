/**
 * Decodes and checks what the in-isolate driver sends back. The driver runs next to untrusted code
 * that can tamper with built-ins, so nothing in a reply is taken on trust: its shape is checked and
 * log lines are capped again here.
 */
import type { ParseOutcome, ParserErrorKind, ParserLog } from './types.ts';
import { ERROR_CHARS_MAX, LOG_LINES_MAX, LOG_LINE_CHARS_MAX, type WireLog, type WireProgress } from './prelude/protocol.ts';

/** What a message gets when the driver's text for it is not an outcome: the script tampered with the driver. */
export const BROKEN_DRIVER: ParseOutcome = Object.freeze({ ok: false, error: Object.freeze({ kind: 'runtime', message: 'parser broke the sandbox driver' }), logs: Object.freeze([]) as unknown as ParserLog[] }) as ParseOutcome;

const KINDS: ReadonlySet<string> = new Set<ParserErrorKind>(['syntax', 'runtime', 'timeout', 'memory', 'result']);

/**
 * JSON.parse already makes `"__proto__"` an own data property rather than a prototype, but a
 * record carrying one would still pollute whatever later copies it with Object.assign; drop such
 * keys. Only replies that mention the key pay for the reviver.
 */
function parseJson(text: string): unknown {
  return text.includes('"__proto__"') ? JSON.parse(text, dropProtoKeys) : JSON.parse(text);
}

function dropProtoKeys(key: string, value: unknown): unknown {
  return key === '__proto__' ? undefined : value;
}

/**
 * A `run` reply split into its outcomes, still as text (each is checked by `decodeOutcomeText` where
 * it is used), or undefined when it is not what the driver writes.
 */
export function splitReply(text: unknown, max: number): { outcomes: string[]; retire: boolean } | undefined {
  if (typeof text !== 'string') return undefined;
  const lines = text.split('\n');
  const flag = lines[0];
  if ((flag !== '0' && flag !== '1') || lines.length < 2 || lines.length - 1 > max) return undefined;
  const outcomes = lines.slice(1);
  return { outcomes, retire: flag === '1' };
}

/** One outcome as the driver writes it, checked; undefined when it is not one. */
export function decodeOutcomeText(text: string): ParseOutcome | undefined {
  let value: unknown;
  try {
    value = parseJson(text);
  } catch {
    return undefined;
  }
  return decodeOutcome(value);
}

/** The driver's text form of an outcome decided outside the isolate (timeouts, lost isolates, compile errors). */
export function encodeOutcome(outcome: ParseOutcome): string {
  const l: WireLog[] = outcome.logs.map((log) => [log.level === 'error' ? 1 : 0, log.message]);
  return JSON.stringify(outcome.ok ? { ok: true, p: outcome.payload, l } : { ok: false, k: outcome.error.kind, m: outcome.error.message, l });
}

/** A `progress` reply: outcomes finished before an interrupt, and the interrupted message's logs and running time. */
export function decodeProgress(text: unknown, max: number): { done: ParseOutcome[]; logs: ParserLog[]; elapsedMs: number; retire: boolean } | undefined {
  const wire = parseObject(text) as Partial<WireProgress> | undefined;
  if (wire === undefined || !Array.isArray(wire.done) || wire.done.length > max) return undefined;
  if (typeof wire.ms !== 'number' || typeof wire.retire !== 'boolean') return undefined;
  const done = decodeList(wire.done);
  const logs = decodeLogs(wire.l);
  return done === undefined || logs === undefined ? undefined : { done, logs, elapsedMs: wire.ms, retire: wire.retire };
}

function parseObject(text: unknown): object | undefined {
  if (typeof text !== 'string') return undefined;
  try {
    const value: unknown = parseJson(text);
    return typeof value === 'object' && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}

function decodeList(list: unknown[]): ParseOutcome[] | undefined {
  const outcomes: ParseOutcome[] = new Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const outcome = decodeOutcome(list[i]);
    if (outcome === undefined) return undefined;
    outcomes[i] = outcome;
  }
  return outcomes;
}

function decodeOutcome(value: unknown): ParseOutcome | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const wire = value as { ok?: unknown; p?: unknown; k?: unknown; m?: unknown; l?: unknown };
  const logs = decodeLogs(wire.l);
  if (logs === undefined) return undefined;
  if (wire.ok === true && Array.isArray(wire.p)) return { ok: true, payload: wire.p, logs };
  if (wire.ok === false && typeof wire.k === 'string' && KINDS.has(wire.k) && typeof wire.m === 'string') {
    return { ok: false, error: { kind: wire.k as ParserErrorKind, message: clip(wire.m, ERROR_CHARS_MAX) }, logs };
  }
  return undefined;
}

function decodeLogs(value: unknown): ParserLog[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const count = Math.min(value.length, LOG_LINES_MAX);
  const logs: ParserLog[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const line: unknown = value[i];
    if (!Array.isArray(line) || typeof line[1] !== 'string') return undefined;
    logs[i] = { level: line[0] === 1 ? 'error' : 'log', message: clip(line[1], LOG_LINE_CHARS_MAX) };
  }
  return logs;
}

function clip(text: string, max: number): string {
  return text.length > max ? text.slice(0, max) : text;
}
