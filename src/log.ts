/**
 * Logger factory. bucketmq logs with pino: one JSON object per line (`json`, for log shippers) or a
 * short human line (`text`, the default for people running `npm start`). Secrets never reach the
 * output: the fields listed in REDACT_PATHS are censored by pino before a line is written, so a
 * careless `log.info({ connect })` cannot leak a device token (SPEC §1: tokens never appear in logs).
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

const SECRET_FIELDS = ['password', 'token', 'secret', 'authorization', 'apiKey', 'api_key'];

/**
 * Paths pino censors. pino's `*` matches one level, so each secret field is listed at the top level
 * and two levels down (`{ password }`, `{ connect: { password } }`, `{ req: { headers: { token } } }`).
 */
export const REDACT_PATHS: readonly string[] = SECRET_FIELDS.flatMap((field) => [
  field,
  `*.${field}`,
  `*.*.${field}`,
]).concat(['*.headers["device-token"]', '*.headers.cookie']);

export const REDACTED = '[redacted]';

export interface LoggerOptions {
  level: LogLevel;
  /** Default `text`. */
  format?: LogFormat;
  /** Where lines go; default stdout (synchronous, so nothing is lost on process.exit). */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const out = options.destination ?? pino.destination({ dest: 1, sync: true });
  const destination = options.format === 'json' ? out : new TextLines(out);
  return pino(
    {
      level: options.level,
      // json keeps pino's pid/hostname (useful once several nodes ship logs); text drops them.
      ...(options.format === 'json' ? {} : { base: null }),
      redact: { paths: [...REDACT_PATHS], censor: REDACTED },
    },
    destination,
  );
}

/**
 * Characters that must not reach an operator's terminal raw: C0 controls (ESC starts escape
 * sequences that recolour, retitle or rewrite the screen), DEL, C1 controls (U+009B is a one-character
 * CSI), and the Unicode line separators and bidirectional overrides that make a line read as
 * something else. Client ids, usernames and topics are chosen by clients, so they may hold any of them.
 */
const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const UNSAFE_ALL = new RegExp(UNSAFE_CHARS.source, 'g');
/** A value written bare: no whitespace, quotes or unsafe characters. */
const BARE = new RegExp(`^[^\\s"${UNSAFE_CHARS.source.slice(1, -1)}]*$`);

/** Writes each unsafe character as a JSON-style \uXXXX escape. */
export function escapeControl(text: string): string {
  return UNSAFE_CHARS.test(text) ? text.replace(UNSAFE_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) : text;
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };

/**
 * Turns pino's JSON lines into `2024-05-01T10:00:00.000Z INFO  message key=value`. Parsing each line
 * again costs a little, which only matters at debug/trace levels; production log pipelines use `json`.
 */
class TextLines implements DestinationStream {
  readonly #out: DestinationStream;

  constructor(out: DestinationStream) {
    this.#out = out;
  }

  write(line: string): void {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.#out.write(line);
      return;
    }
    const { level, time, msg, err, ...fields } = record;
    // Every part that can hold client-chosen text is escaped (issue 14: an ESC in a client id reached
    // the operator's terminal). JSON.stringify escapes C0 controls only, hence escapeControl after it.
    let text = `${new Date(Number(time)).toISOString()} ${LEVEL_NAMES[Number(level)] ?? String(level)} ${escapeControl(String(msg ?? ''))}`;
    for (const [key, value] of Object.entries(fields)) {
      text += ` ${escapeControl(key)}=${typeof value === 'string' && BARE.test(value) ? value : escapeControl(JSON.stringify(value) ?? String(value))}`;
    }
    if (err !== undefined) {
      const stack = (err as { stack?: unknown }).stack;
      text += typeof stack === 'string' ? `\n  ${stack.split('\n').map(escapeControl).join('\n  ')}` : ` err=${escapeControl(JSON.stringify(err))}`;
    }
    this.#out.write(`${text}\n`);
  }
}
