/**
 * The wire format between the host and the in-isolate driver. Only strings cross the boundary:
 * one JSON text in and one out per call, so no host object, function or reference is ever
 * reachable from parser code.
 *
 * In:  `{"d": device as JSON text, "m": [message, ...]}`, the messages of one device. A message is
 *      `{"p": payload, "r": raw bytes as base64}`, or, when it is not records, `{"x": its bytes as
 *      hex}` or `{"s": its UTF-8 text}` with `"m": metadata` if any, from which the driver builds
 *      the one `payload` record the script sees (`[{variable: "payload", value, metadata}]`) and
 *      `raw_payload`. The driver decodes the bytes and `d` only when a script reads `raw_payload`
 *      or `device` (each message gets its own copy).
 * Out: a line `0` or `1` (retire: the host must replace the isolate, see WireProgress), then one
 *      WireOutcome JSON per line for each message run, in order; the driver may stop early (time or
 *      size budget) and the host sends the rest in another call. Outcomes travel on as text to the
 *      process that asked, which is the one that parses and checks them.
 */
import type { ParserErrorKind } from '../types.ts';

/** 0 = log (log, info, debug), 1 = error (error, warn). */
export type WireLog = [level: 0 | 1, message: string];

export type WireOutcome =
  | { ok: true; p: unknown[]; l: WireLog[] }
  | { ok: false; k: ParserErrorKind; m: string; l: WireLog[] };

/** What the host reads back after it interrupted a call: finished outcomes and the logs of the message that was running. */
export interface WireProgress {
  done: WireOutcome[];
  l: WireLog[];
  /** How long the interrupted message had been running, in milliseconds. */
  ms: number;
  /** A script left globals that cannot be reset: the isolate must not run another message. */
  retire: boolean;
}

export interface DriverConfig {
  maxResultBytes: number;
  memoryMb: number;
  /**
   * The driver starts no further message once a call has run this long; the host continues the
   * batch in a new call. The host allows a call the time limit plus this budget, so a message
   * still running when the call is cut off has had its whole time limit.
   */
  budgetMs: number;
  /** Nor once the outcomes of a call add up to this many characters. */
  outputBudget: number;
}

/** Console capture limits (per message). */
export const LOG_LINES_MAX = 100;
export const LOG_LINE_CHARS_MAX = 2000;
/** Error messages are cut to this length too: a script can throw a 10 MB message. */
export const ERROR_CHARS_MAX = 2000;

/** The global the prelude leaves its driver in; the host takes references to it and deletes it before any parser code runs. */
export const DRIVER_GLOBAL = '__bucketmqDriver';
