/**
 * The wording of parser errors, in one place. These functions are bundled into the in-isolate
 * prelude as well, so the messages built inside the isolate (result checks) and on the host
 * (time and memory limits) read the same.
 */

export function timeoutMessage(timeoutMs: number): string {
  return `parser timed out after ${timeoutMs} ms`;
}

export function memoryMessage(memoryMb: number): string {
  return `parser exceeded the memory limit of ${memoryMb} MB`;
}

export function notArrayMessage(type: string): string {
  return `parser result must be an array of records, got ${type}`;
}

export function tooLargeMessage(bytes: number, limit: number): string {
  return `parser result is too large: ${bytes} bytes, limit ${limit}`;
}

export function unserializableMessage(reason: string): string {
  return `parser result is not serializable: ${reason}`;
}

/** A SyntaxError with its position when V8 gave one, e.g. "SyntaxError: Unexpected token ';' (line 2)". */
export function syntaxMessage(message: string, line?: number): string {
  return line === undefined ? `SyntaxError: ${message}` : `SyntaxError: ${message} (line ${line})`;
}
