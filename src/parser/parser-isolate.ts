/**
 * One isolated-vm isolate running one parser script: the prelude, the compiled script, and
 * references to the in-isolate driver's functions. Only async isolated-vm calls run parser code, so
 * the event loop never waits on a script.
 *
 * What isolated-vm does at the limits (5.x): a timeout terminates the running call and leaves the
 * isolate usable; going over the memory limit disposes the isolate, and the call rejects.
 */
import ivm from 'isolated-vm';
import { preludeSource } from './prelude.ts';
import { decodeProgress, encodeOutcome, splitReply } from './replies.ts';
import { memoryMessage, syntaxMessage, timeoutMessage } from './errors.ts';
import { DRIVER_GLOBAL, type DriverConfig } from './prelude/protocol.ts';
import type { ParserErrorKind, ParserLog } from './types.ts';

export interface IsolateLimits {
  timeoutMs: number;
  memoryMb: number;
  maxResultBytes: number;
}

/** Counts live isolates for ParserSandbox.stats. */
export interface IsolateCounter {
  isolatesCreated: number;
  isolatesAlive: number;
}

/** How one call into the isolate ended. */
export type CallResult =
  /**
   * The driver answered; it may have run fewer messages than it was sent (time or size budget).
   * Outcomes are the driver's text (replies.ts `decodeOutcomeText` checks one where it is used).
   */
  | { status: 'done'; outcomes: string[] }
  /** Interrupted: the outcomes that finished, then the running message's logs and running time. */
  | { status: 'timeout'; done: string[]; logs: ParserLog[]; elapsedMs: number }
  /** The isolate is gone (memory limit) or its driver was broken by the script; nothing is known. */
  | { status: 'lost'; error: { kind: ParserErrorKind; message: string } };

// Our own prelude gets a fixed allowance; a user's time limit may be set lower than it needs.
const PRELUDE_TIMEOUT_MS = 10_000;
const SCRIPT_NAME = 'parser.js';

export class ParserIsolate {
  readonly code: string;
  #compileError: { kind: ParserErrorKind; message: string } | undefined;
  #isolate: ivm.Isolate;
  #run: ivm.Reference | undefined;
  #progress: ivm.Reference | undefined;
  #limits: IsolateLimits;
  #counter: IsolateCounter;
  #counted = true;

  private constructor(code: string, isolate: ivm.Isolate, limits: IsolateLimits, counter: IsolateCounter) {
    this.code = code;
    this.#isolate = isolate;
    this.#limits = limits;
    this.#counter = counter;
    counter.isolatesCreated++;
    counter.isolatesAlive++;
  }

  /**
   * Creates an isolate with the prelude and compiles `code` in it. Rejects only for failures of
   * the sandbox itself (the prelude); a script that does not compile yields `compileError`.
   */
  static async create(code: string, limits: IsolateLimits, counter: IsolateCounter): Promise<ParserIsolate> {
    const prelude = await preludeSource();
    const self = new ParserIsolate(code, new ivm.Isolate({ memoryLimit: limits.memoryMb }), limits, counter);
    try {
      await self.#load(prelude, code);
    } catch (error) {
      self.dispose();
      throw error;
    }
    return self;
  }

  /** Set when the script could not be compiled; every message gets this error without a call. */
  get compileError(): { kind: ParserErrorKind; message: string } | undefined {
    return this.#compileError;
  }

  /**
   * Messages start only within this much of a call's beginning, and a call may run for the time
   * limit plus this: whichever message is cut off has then had at least its whole limit, and a
   * first message at most 10% more.
   */
  get #budgetMs(): number {
    return Math.max(1, Math.floor(this.#limits.timeoutMs / 10));
  }

  get alive(): boolean {
    return !this.#isolate.isDisposed;
  }

  async #load(prelude: string, code: string): Promise<void> {
    const isolate = this.#isolate;
    const context = await isolate.createContext();
    const script = await isolate.compileScript(prelude, { filename: 'bucketmq-prelude.js' });
    await script.run(context, { timeout: PRELUDE_TIMEOUT_MS });
    script.release();
    const driver: ivm.Reference = await context.global.get(DRIVER_GLOBAL, { reference: true });
    await context.global.delete(DRIVER_GLOBAL);
    const init: ivm.Reference = await driver.get('init', { reference: true });
    this.#run = await driver.get('run', { reference: true });
    this.#progress = await driver.get('progress', { reference: true });
    driver.release();

    const config: DriverConfig = {
      maxResultBytes: this.#limits.maxResultBytes,
      memoryMb: this.#limits.memoryMb,
      budgetMs: this.#budgetMs,
      outputBudget: this.#limits.maxResultBytes,
    };
    let reply: unknown;
    try {
      reply = await init.apply(undefined, [code, JSON.stringify(config)], { timeout: this.#limits.timeoutMs });
    } catch (error) {
      // Out of time or memory while compiling: fail this batch, but let the next one try again
      // in a new isolate rather than caching what may have been a passing overload.
      this.#compileError = this.#failure(error);
      this.dispose();
      return;
    } finally {
      init.release();
    }
    if (reply !== '') {
      this.#compileError = { kind: 'syntax', message: await this.#syntaxMessage(reply, code) };
    }
  }

  /**
   * The driver reports V8's message without a position (the Function constructor gives none);
   * compiling the same body as a script, without running it, gets the line.
   */
  async #syntaxMessage(reply: unknown, code: string): Promise<string> {
    let message = 'SyntaxError: invalid code';
    try {
      const parsed = JSON.parse(String(reply)) as { m?: unknown };
      if (typeof parsed.m === 'string') message = parsed.m;
    } catch {
      // Keep the generic message.
    }
    try {
      const script = await this.#isolate.compileScript(`(function () {${code}\n})`, { filename: SCRIPT_NAME });
      script.release();
    } catch (error) {
      const found = /^(.*) \[parser\.js:(\d+):\d+\]$/s.exec(error instanceof Error ? error.message : '');
      if (found?.[1] !== undefined && found[2] !== undefined) return syntaxMessage(found[1], Number(found[2]));
    }
    return message;
  }

  /** Runs a JSON batch (see prelude/protocol.ts) of at most `count` messages. */
  async call(batchJson: string, count: number): Promise<CallResult> {
    const run = this.#run;
    if (run === undefined || !this.alive) return { status: 'lost', error: { kind: 'runtime', message: 'parser isolate is gone' } };
    let reply: unknown;
    try {
      reply = await run.apply(undefined, [batchJson], { timeout: this.#limits.timeoutMs + this.#budgetMs });
    } catch (error) {
      if (!this.alive) return { status: 'lost', error: this.#failure(error) };
      if (isTimeout(error)) return this.#interrupted(count);
      // The driver itself threw: the script tampered with something it relies on.
      return this.#broken(this.#failure(error).message);
    }
    const decoded = splitReply(reply, count);
    if (decoded === undefined) return this.#broken('parser broke the sandbox driver');
    // Retired: the lane takes a new isolate for the next message.
    if (decoded.retire) this.dispose();
    return { status: 'done', outcomes: decoded.outcomes };
  }

  async #interrupted(count: number): Promise<CallResult> {
    let reply: unknown;
    try {
      reply = await this.#progress?.apply(undefined, [], { timeout: this.#limits.timeoutMs });
    } catch (error) {
      return this.alive ? this.#broken(this.#failure(error).message) : { status: 'lost', error: this.#failure(error) };
    }
    const progress = decodeProgress(reply, count);
    if (progress === undefined) return this.#broken('parser broke the sandbox driver');
    if (progress.retire) this.dispose();
    // Every message finished and the time went after the driver returned: promise jobs a script
    // queued run then (e.g. a promise loop). The outcomes stand.
    const done = progress.done.map(encodeOutcome);
    if (done.length === count) return { status: 'done', outcomes: done };
    return { status: 'timeout', done, logs: progress.logs, elapsedMs: progress.elapsedMs };
  }

  #broken(message: string): CallResult {
    // A driver that answers nonsense cannot be trusted with another message.
    this.dispose();
    return { status: 'lost', error: { kind: 'runtime', message } };
  }

  /** Classifies a rejected isolate call; a disposed isolate is counted as gone. */
  #failure(error: unknown): { kind: ParserErrorKind; message: string } {
    if (!this.alive) {
      this.#uncount();
      return { kind: 'memory', message: memoryMessage(this.#limits.memoryMb) };
    }
    if (isTimeout(error)) return { kind: 'timeout', message: timeoutMessage(this.#limits.timeoutMs) };
    const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return { kind: 'runtime', message: text };
  }

  dispose(): void {
    this.#uncount();
    if (!this.#isolate.isDisposed) this.#isolate.dispose();
  }

  #uncount(): void {
    if (!this.#counted) return;
    this.#counted = false;
    this.#counter.isolatesAlive--;
  }
}

function isTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === 'Script execution timed out.';
}
