/**
 * The in-isolate half of the sandbox: compiles a device's parser once, then runs batches of
 * messages through it. Each message gets freshly set provided globals and leaves the global object
 * as it found it (global-baseline.ts); its result is serialized inside the isolate, so an oversized
 * result is refused before anything is copied out.
 *
 * Outcomes accumulate in `done` while a call runs. When the host interrupts a call at the time
 * limit it reads them back with `progress()`, so the messages that finished are not run again.
 */
import type { Buffer as BufferClass } from 'buffer';
import type dayjsFn from 'dayjs';
import { GUARD_MESSAGE, installAllocationGuards } from './allocation-guards.ts';
import { createConsole } from './console.ts';
import { captureGlobals, definesGlobalsUntrapped, type GlobalBaseline } from './global-baseline.ts';
import {
  ERROR_CHARS_MAX,
  type DriverConfig,
  type WireLog,
} from './protocol.ts';
import { memoryMessage, notArrayMessage, syntaxMessage, tooLargeMessage, unserializableMessage } from '../errors.ts';

// Captured at prelude time: a parser that replaces JSON or Date must not change how the driver
// works. (What it can still break, e.g. by patching Array.prototype, only touches its own
// device's isolate, and the host checks every reply.)
const { parse, stringify } = JSON;
const isArray = Array.isArray;
const now = Date.now;
const FunctionClass = Function;
const StringOf = String;
const RangeErrorClass = RangeError;
const defineProperty = Reflect.defineProperty;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const globals = globalThis as unknown as Record<string, unknown>;

/** The globals set before every message (SPEC §4). */
const PROVIDED_GLOBALS = ['payload', 'raw_payload', 'device', 'Buffer', 'dayjs', 'console'] as const;

/** Parameter through which the wrapper reports how the script ended; see `compile`. */
const SINK = '__bucketmqSink';

interface Sink {
  /** Set by the wrapper's own tail: the script ran to its end rather than returning early. */
  end?: boolean;
  /** The wrapper's mapped `arguments` (param mode): index 0 is the live `payload` binding. */
  args?: ArrayLike<unknown>;
}

type Wrapped = (this: void, payload: unknown, sink: Sink) => unknown;

/** One message (prelude/protocol.ts): records and base64 bytes, or a payload record's hex or text with its metadata. */
interface WireMessage {
  p?: unknown[];
  r?: string;
  x?: string;
  s?: string;
  m?: Record<string, unknown>;
}

interface WireBatch {
  /** The device as JSON text, for every message of the batch. */
  d: string;
  m: WireMessage[];
}

export interface Driver {
  /** Compiles `code`; returns '' or the JSON `{k, m}` of the syntax error. */
  init(code: string, configJson: string): string;
  /** Runs a JSON batch; returns the retire flag (0/1), then one outcome per line (possibly fewer than messages). */
  run(batchJson: string): string;
  /** After an interrupted `run`: `{"done": outcomes, "l": logs, "ms": running time, "retire": boolean}`. */
  progress(): string;
}

export function createDriver(BufferImpl: typeof BufferClass, dayjs: typeof dayjsFn): Driver {
  let wrapped: Wrapped | undefined;
  let baseline: GlobalBaseline | undefined;
  let paramMode = false;
  let config: DriverConfig = { maxResultBytes: 1 << 20, memoryMb: 32, budgetMs: 250, outputBudget: 1 << 20 };
  let done: string[] = [];
  let currentLogs: WireLog[] = [];
  let currentStarted = 0;
  /** Set when a script left the global object in a state that cannot be undone. */
  let retire = false;
  const console = createConsole(() => currentLogs, BufferImpl);
  /** How the current message's `raw_payload` text is encoded. */
  let rawEncoding: 'base64' | 'hex' | 'utf8' = 'base64';
  const raw = lazyGlobal('raw_payload', (text) => BufferImpl.from(text, rawEncoding));
  const deviceGlobal = lazyGlobal('device', parse);

  return {
    init(code, configJson) {
      config = parse(configJson) as DriverConfig;
      installAllocationGuards(config.memoryMb * 1024 * 1024);
      const compiled = compile(code);
      if (typeof compiled === 'string') return stringify({ k: 'syntax', m: compiled });
      wrapped = compiled.fn;
      paramMode = compiled.paramMode;
      raw.install();
      deviceGlobal.install();
      baseline = captureGlobals(PROVIDED_GLOBALS, definesGlobalsUntrapped(code));
      return '';
    },

    run(batchJson) {
      const started = now();
      // Promise jobs of the previous call ran after it returned and may have set globals.
      const stuck = baseline?.restore();
      if (stuck !== undefined) throw new Error(`global ${stuck} cannot be reset`);
      const lost = restoreLazy();
      if (lost !== undefined) throw new Error(`global ${lost} cannot be reset`);
      const { d: device, m: batch } = parse(batchJson) as WireBatch;
      done = [];
      let output = 0;
      for (let i = 0; i < batch.length; i++) {
        // One clock read per message: it starts this message and checks the call's budget.
        currentStarted = i === 0 ? started : now();
        if (i > 0 && (currentStarted - started >= config.budgetMs || output >= config.outputBudget)) break;
        currentLogs = [];
        const outcome = runOne(batch[i] as WireMessage, device);
        done[done.length] = outcome;
        output += outcome.length;
        if (retire) break;
      }
      // One outcome per line (JSON text never holds a raw newline), so the host can hand each one
      // on without parsing the whole reply.
      return `${retire ? 1 : 0}\n${done.join('\n')}`;
    },

    progress() {
      return `{"done":[${done.join(',')}],"l":${stringify(currentLogs)},"ms":${now() - currentStarted},"retire":${retire}}`;
    },
  };

  /** The name of a lazy global that could not be put back, if any. */
  function restoreLazy(): string | undefined {
    if (!raw.restore()) return 'raw_payload';
    if (!deviceGlobal.restore()) return 'device';
    return undefined;
  }

  function runOne(message: WireMessage, device: string): string {
    const outcome = decode(message, device);
    // Undo what the script did to the global object before the next message sees it; a global
    // that cannot be removed fails the message that made it, not the next one.
    const stuck = baseline?.restore() ?? restoreLazy();
    if (stuck === undefined) return outcome;
    // This isolate can no longer give the next message a clean global object: the host replaces it.
    retire = true;
    return failure('runtime', `parser left a global that cannot be removed: ${clip(stuck)}`, currentLogs);
  }

  function decode(message: WireMessage, device: string): string {
    const logs = currentLogs;
    if (wrapped === undefined) return failure('runtime', 'parser is not compiled', logs);
    let input: unknown[];
    let rawText: string;
    if (message.x !== undefined || message.s !== undefined) {
      // A message that is not records: the one `payload` record, rebuilt from its bytes' text (SPEC §4).
      rawEncoding = message.x !== undefined ? 'hex' : 'utf8';
      rawText = (message.x ?? message.s) as string;
      input = [message.m === undefined ? { variable: 'payload', value: rawText } : { variable: 'payload', value: rawText, metadata: message.m }];
    } else {
      rawEncoding = 'base64';
      rawText = message.r ?? '';
      input = message.p ?? [];
    }
    let result: unknown;
    try {
      // Reset every provided global: nothing a previous message did to them carries over.
      globals.payload = input;
      raw.reset(rawText);
      deviceGlobal.reset(device);
      globals.Buffer = BufferImpl;
      globals.dayjs = dayjs;
      globals.console = console;
      const sink: Sink = {};
      const returned = wrapped(input, sink);
      if (sink.end) {
        result = returned;
      } else if (paramMode && sink.args !== undefined) {
        // Early `return`: the wrapper's tail did not run, but the mapped arguments object still
        // shows the final value of the `payload` parameter.
        result = sink.args[0];
      } else {
        result = globals.payload;
      }
      // Param mode shadows the global; honour a script that wrote `globalThis.payload = ...`.
      if (paramMode && result === input && globals.payload !== input) result = globals.payload;
    } catch (error) {
      if (isAllocationFailure(error)) return failure('memory', memoryMessage(config.memoryMb), logs);
      return failure('runtime', describe(error), logs);
    }
    return serialize(result, logs);
  }

  function serialize(result: unknown, logs: WireLog[]): string {
    if (!isArray(result)) return failure('result', notArrayMessage(typeName(result)), logs);
    let json: string;
    try {
      json = stringify(result);
    } catch {
      try {
        // Typically a BigInt (readBigUInt64BE): retry, turning BigInts into numbers or strings.
        json = stringify(result, bigintReplacer);
      } catch (error) {
        return failure('result', unserializableMessage(describe(error)), logs);
      }
    }
    // UTF-8 takes at most 3 bytes per UTF-16 unit, so only count when it could be over.
    if (json.length * 3 > config.maxResultBytes) {
      const bytes = utf8Length(json);
      if (bytes > config.maxResultBytes) return failure('result', tooLargeMessage(bytes, config.maxResultBytes), logs);
    }
    return `{"ok":true,"p":${json},"l":${logs.length === 0 ? '[]' : stringify(logs)}}`;
  }

  /**
   * Compiles the script as a function body, which allows top-level `return` and keeps the script
   * sloppy-mode; the Function constructor parses the body on its own, so code cannot close the
   * wrapper early. The preferred form takes `payload` as a parameter, so `var payload =
   * payload.filter(...)` sees the input (a var redeclaring a parameter keeps its value); it
   * publishes its mapped `arguments`, whose index 0 follows the parameter, so an early `return`
   * still yields the latest `payload`. A script that declares `let`/`const payload` cannot take the
   * parameter (SyntaxError), so it falls back to a form that reads the global.
   */
  function compile(code: string): { fn: Wrapped; paramMode: boolean } | string {
    const tail = `\n;${SINK}.end = true; return payload;`;
    try {
      // On the first line so the script's line numbers stay as written.
      const fn = new FunctionClass('payload', SINK, `${SINK}.args = arguments;${code}${tail}`) as Wrapped;
      return { fn, paramMode: true };
    } catch {
      // Fall through: the global form either compiles or reports the script's own syntax error.
    }
    try {
      const fn = new FunctionClass('__bucketmqUnused', SINK, `${code}${tail}`) as Wrapped;
      return { fn, paramMode: false };
    } catch (error) {
      return syntaxMessage(clip(errorMessage(error)));
    }
  }
}

interface LazyGlobal {
  install(): void;
  /** The next message's value, as the text it is decoded from. */
  reset(text: string): void;
  /** Puts the accessor back if a script deleted or redefined it; false if that is impossible. */
  restore(): boolean;
}

/**
 * A provided global decoded from its wire text only when a script reads it: most decoders read
 * `payload` alone, and decoding `raw_payload` (base64) and `device` (JSON) for every message cost
 * several microseconds a message. It is an accessor on the global object that behaves as a plain
 * variable (reads, assignments), reset for every message.
 */
function lazyGlobal(name: string, decode: (text: string) => unknown): LazyGlobal {
  let text = '';
  let value: unknown;
  let decoded = false;
  let probing = false;
  let probed = false;
  const property: PropertyDescriptor = {
    get() {
      if (probing) {
        probed = true;
        return undefined;
      }
      if (!decoded) {
        value = decode(text);
        decoded = true;
      }
      return value;
    },
    set(next: unknown) {
      value = next;
      decoded = true;
    },
    enumerable: true,
    configurable: true,
  };
  /** Whether the global still is this accessor: reading it in probe mode reaches our getter. */
  const intact = (): boolean => {
    probing = true;
    probed = false;
    try {
      void globals[name];
    } catch {
      // A getter the script defined threw: not ours.
    } finally {
      probing = false;
    }
    return probed;
  };
  return {
    install() {
      defineProperty(globals, name, property);
    },
    reset(next) {
      text = next;
      value = undefined;
      decoded = false;
    },
    restore() {
      return intact() || (defineProperty(globals, name, property) && intact());
    },
  };
}

function failure(kind: string, message: string, logs: WireLog[]): string {
  return stringify({ ok: false, k: kind, m: message, l: logs });
}

/** `${name}: ${message}` for errors; thrown non-errors read as `Error: <String(value)>`. */
function describe(error: unknown): string {
  try {
    if ((typeof error === 'object' && error !== null) || typeof error === 'function') {
      const { name, message } = error as { name?: unknown; message?: unknown };
      if (message !== undefined) return clip(`${StringOf(name ?? 'Error')}: ${StringOf(message)}`);
    }
    return clip(`Error: ${StringOf(error)}`);
  } catch {
    return 'Error: (unprintable exception)';
  }
}

function errorMessage(error: unknown): string {
  try {
    return StringOf((error as { message?: unknown }).message);
  } catch {
    return 'invalid code';
  }
}

function clip(text: string): string {
  return text.length > ERROR_CHARS_MAX ? text.slice(0, ERROR_CHARS_MAX) : text;
}

/** isolated-vm refuses ArrayBuffer allocations past the isolate's limit with this RangeError; our guards throw one too. */
function isAllocationFailure(error: unknown): boolean {
  if (!(error instanceof RangeErrorClass)) return false;
  return error.message === 'Array buffer allocation failed' || error.message === GUARD_MESSAGE;
}

function typeName(value: unknown): string {
  return value === null ? 'null' : typeof value;
}

function bigintReplacer(_key: string, value: unknown): unknown {
  if (typeof value !== 'bigint') return value;
  return value <= MAX_SAFE && value >= MIN_SAFE ? Number(value) : StringOf(value);
}

function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const low = text.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}
