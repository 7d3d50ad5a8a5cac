/**
 * The `console` a parser script sees: each call formats its arguments roughly as Node does
 * (strings as-is, plain objects and arrays as JSON, everything else through String) and appends
 * one line to the current message's log. Runs inside the isolate.
 */
import type { Buffer as BufferClass } from 'buffer';
import { LOG_LINES_MAX, LOG_LINE_CHARS_MAX, type WireLog } from './protocol.ts';

// Captured at prelude time so a script that replaces these globals does not change how logs read.
const stringify = JSON.stringify;
const freeze = Object.freeze;
const StringOf = String;
const NumberOf = Number;
const isNaNOf = Number.isNaN;
const DateClass = Date;
const ErrorClass = Error;
const dateToISOString = Date.prototype.toISOString;

const BUFFER_BYTES_SHOWN = 50;

export interface ParserConsole {
  log(...args: unknown[]): void;
  info(...args: unknown[]): void;
  debug(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

/**
 * The console of one isolate, writing to whichever message's log `lines()` returns. It is frozen,
 * so a script cannot patch it for the messages after its own (a fresh one per message cost about
 * a microsecond each); a script may still replace the global `console`, which the driver resets.
 */
export function createConsole(lines: () => WireLog[], BufferImpl: typeof BufferClass): ParserConsole {
  const write = (level: 0 | 1, args: unknown[]): void => {
    const log = lines();
    // Past the cap, skip the formatting too: a loop that logs big objects should cost nothing more.
    if (log.length >= LOG_LINES_MAX) return;
    let line: string;
    try {
      line = formatArgs(args, BufferImpl);
    } catch {
      line = '[unprintable]';
    }
    log[log.length] = [level, line.length > LOG_LINE_CHARS_MAX ? line.slice(0, LOG_LINE_CHARS_MAX) : line];
  };
  return freeze({
    log: (...args: unknown[]) => write(0, args),
    info: (...args: unknown[]) => write(0, args),
    debug: (...args: unknown[]) => write(0, args),
    warn: (...args: unknown[]) => write(1, args),
    error: (...args: unknown[]) => write(1, args),
  });
}

/** Node's util.format subset: %s %d %i %f %j %o %O %% in a leading string, then the rest joined by spaces. */
function formatArgs(args: unknown[], BufferImpl: typeof BufferClass): string {
  let next = 0;
  let out = '';
  const first = args[0];
  if (typeof first === 'string' && first.includes('%') && args.length > 1) {
    next = 1;
    out = first.replace(/%([sdifjoO%])/g, (match, spec: string) => {
      if (spec === '%') return '%';
      if (next >= args.length) return match;
      const value = args[next++];
      switch (spec) {
        case 's':
          return typeof value === 'string' ? value : inspect(value, BufferImpl);
        case 'd':
          return typeof value === 'bigint' ? `${value}n` : StringOf(NumberOf(value));
        case 'i':
          return typeof value === 'bigint' ? `${value}n` : StringOf(Math.trunc(NumberOf(value)));
        case 'f':
          return StringOf(NumberOf(value));
        default:
          return inspect(value, BufferImpl);
      }
    });
  }
  for (; next < args.length; next++) {
    const piece = inspect(args[next], BufferImpl);
    out = out === '' && next === 0 ? piece : `${out} ${piece}`;
    if (out.length > LOG_LINE_CHARS_MAX) break;
  }
  return out;
}

function inspect(value: unknown, BufferImpl: typeof BufferClass): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'bigint':
      return `${value}n`;
    case 'function':
      return `[Function: ${(value as { name?: unknown }).name || '(anonymous)'}]`;
    case 'object':
      if (value === null) return 'null';
      if (value instanceof DateClass) {
        return isNaNOf(value.getTime()) ? 'Invalid Date' : dateToISOString.call(value);
      }
      if (value instanceof ErrorClass) return `${value.name}: ${value.message}`;
      if (BufferImpl.isBuffer(value)) return inspectBuffer(value);
      return inspectObject(value);
    default:
      return StringOf(value);
  }
}

function inspectBuffer(buffer: BufferClass): string {
  const shown = buffer.subarray(0, BUFFER_BYTES_SHOWN).toString('hex').replace(/(..)(?!$)/g, '$1 ');
  const more = buffer.length - BUFFER_BYTES_SHOWN;
  return more > 0 ? `<Buffer ${shown} ... ${more} more bytes>` : `<Buffer ${shown}>`;
}

function inspectObject(value: object): string {
  try {
    return stringify(value, bigintAsText) ?? StringOf(value);
  } catch {
    // Circular structures and throwing getters: fall back to what String gives.
    try {
      return StringOf(value);
    } catch {
      return '[object]';
    }
  }
}

function bigintAsText(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? `${value}n` : value;
}
