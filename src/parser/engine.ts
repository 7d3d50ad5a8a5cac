/**
 * The sandbox engine, in the process that runs it: one cached isolate per key (device), messages
 * batched per key, a time and memory limit per message. Nothing a script does rejects
 * `parseWire` or blocks the event loop.
 *
 * ParserSandbox runs this engine in a child process (see sandbox.ts) because a V8 fatal
 * out-of-memory error in an isolate takes its whole process down; the engine is usable directly
 * where that risk is accepted (benchmarks, tools).
 */
import { IsolateCache } from './isolate-cache.ts';
import { Lane, type LaneContext, type PendingMessage } from './lane.ts';

export type { PendingMessage } from './lane.ts';
import { ParserIsolate, type IsolateLimits } from './parser-isolate.ts';
import { resolveOptions } from './options.ts';
import { BROKEN_DRIVER, decodeOutcomeText } from './replies.ts';
import type { ParseOutcome, SandboxOptions, SandboxStats } from './types.ts';

export class ParserEngine {
  #stats: SandboxStats = { isolatesCreated: 0, isolatesAlive: 0, calls: 0, messages: 0 };
  #cache: IsolateCache;
  #lanes = new Map<string, Lane>();
  #laneContext: LaneContext;
  #disposed = false;

  constructor(options: SandboxOptions = {}) {
    const resolved = resolveOptions(options);
    const limits: IsolateLimits = {
      timeoutMs: resolved.timeoutMs,
      memoryMb: resolved.memoryMb,
      maxResultBytes: resolved.maxResultBytes,
    };
    this.#cache = new IsolateCache(resolved.maxIsolates, (code) => ParserIsolate.create(code, limits, this.#stats));
    this.#laneContext = {
      cache: this.#cache,
      timeoutMs: resolved.timeoutMs,
      maxBatch: resolved.maxBatch,
      stats: this.#stats,
      isDisposed: () => this.#disposed,
      onIdle: (key) => this.#lanes.delete(key),
    };
  }

  /** A copy of the counters. */
  get stats(): SandboxStats {
    return { ...this.#stats };
  }

  /** Runs `code` for one message already serialized by `wireMessage`, for the device `deviceText` wrote. */
  async parseWire(key: string, code: string, device: string, wire: string): Promise<ParseOutcome> {
    const outcome = decodeOutcomeText(await this.parseWireText(key, code, device, wire));
    if (outcome !== undefined) return outcome;
    // The script broke its isolate's driver: the next message gets a new isolate.
    this.invalidate(key);
    return BROKEN_DRIVER;
  }

  /**
   * `parseWire` with the outcome left in the driver's text form, unparsed: the sandbox process hands
   * it on to its parent as it is, and the parent checks it (replies.ts `decodeOutcomeText`).
   */
  parseWireText(key: string, code: string, device: string, wire: string): Promise<string> {
    return new Promise<string>((resolve, reject) => this.submit(key, { code, device, wire, resolve, reject }));
  }

  /** `parseWireText` for a caller that settles its own messages (the sandbox process: no promise per message). */
  submit(key: string, message: PendingMessage): void {
    if (this.#disposed) {
      message.reject(new Error('parser sandbox is disposed'));
      return;
    }
    let lane = this.#lanes.get(key);
    if (lane === undefined) {
      lane = new Lane(key, this.#laneContext);
      this.#lanes.set(key, lane);
    }
    lane.enqueue(message);
  }

  /** Drops the cached isolate of `key`; a call in flight finishes first. */
  invalidate(key: string): void {
    this.#cache.invalidate(key);
  }

  /** Releases all isolates; calls in flight and later calls reject. */
  dispose(): void {
    this.#disposed = true;
    this.#cache.close();
  }
}
