/**
 * The text frames the sandbox process and its parent exchange over the child's stdin and stdout
 * (process-link.ts, process-host.ts): one line per item, fields split by tabs, the last field
 * running to the end of the line. Every field is JSON text or a number, and JSON text never holds
 * a raw newline or tab, so no escaping is needed. One write carries a whole batch: per message
 * this costs a string concatenation on each side, where Node's IPC channel serialized an object.
 *
 * Parent → child:
 *   K <slot> <key JSON>        the number a key (device id) goes by in this child, sent once
 *   C <slot> <code JSON>       the key's code, sent before its first request and when it changes
 *   D <slot> <device JSON>     the key's device (wire.ts `deviceText`), likewise
 *   P <id> <slot> <wire>       run one message (wire.ts)
 *   I <slot>                   drop the key's isolate
 * Child → parent:
 *   O <id> <outcome text>      the driver's outcome, unparsed (replies.ts checks it in the parent)
 *   E <id> <message JSON>      the request failed in the engine
 *   S <stats JSON>             counters, after each batch of results
 */

/** Splits a stream of text chunks into lines, keeping an unfinished tail for the next chunk. */
export class LineReader {
  #tail = '';

  /** The complete lines in `chunk` (with what was left of earlier chunks). */
  push(chunk: string): string[] {
    const text = this.#tail + chunk;
    const end = text.lastIndexOf('\n');
    if (end === -1) {
      this.#tail = text;
      return [];
    }
    this.#tail = text.slice(end + 1);
    return text.slice(0, end).split('\n');
  }
}

/** The fields of a line after its one-letter tag: `count` fields, the last running to the end of the line. */
export function lineFields(line: string, count: number): string[] | undefined {
  const fields: string[] = [];
  let start = 2;
  for (let i = 1; i < count; i++) {
    const tab = line.indexOf('\t', start);
    if (tab === -1) return undefined;
    fields.push(line.slice(start, tab));
    start = tab + 1;
  }
  fields.push(line.slice(start));
  return fields;
}
