/**
 * ParserSandbox: runs device parser scripts (SPEC §4) in isolated-vm isolates, in a child process.
 *
 * Why a child process: isolated-vm turns a gradual heap overrun into a disposed isolate, but one
 * allocation larger than the heap's remaining room reaches V8's fatal out-of-memory handler, which
 * aborts the process that hosts the isolate. Ordinary code does it: a Set or Map of millions of
 * entries, or an object with a million keys, grows its hash table in one such step. (The prelude
 * guards the obvious single-step cases, prelude/allocation-guards.ts, but cannot catch them all.)
 * Here that process is the child: the parent restarts it and blames the script.
 *
 * Blame: the requests that were out when the child died are sent again, one key at a time, each
 * key alone in a fresh child, while new requests wait. A key whose requests kill the child again is
 * the culprit: its requests fail with kind 'memory' and its code is quarantined until it changes
 * (or `invalidate`), so one parser cannot keep the sandbox restarting. Everyone else's requests get
 * their normal outcome.
 *
 * Requests made in the same event-loop turn travel in one write (pipe-frames.ts); the child batches
 * them further per key into single isolate calls (lane.ts).
 */
import { memoryMessage } from './errors.ts';
import { resolveOptions } from './options.ts';
import { BROKEN_DRIVER, decodeOutcomeText } from './replies.ts';
import { ParserProcess, type WireRequest } from './process-link.ts';
import { RequestTable } from './request-table.ts';
import { deviceText, wireMessage } from './wire.ts';
import type { ParseOutcome, ParserDevice, ParserInput, SandboxOptions, SandboxStats } from './types.ts';

export type { ParseOutcome, ParserDevice, ParserErrorKind, ParserInput, ParserLog, SandboxOptions } from './types.ts';

export interface ParserSandboxStats extends SandboxStats {
  /** Times the sandbox process died under a script and was restarted. */
  crashes: number;
  /** Seconds from hand-off to outcome, summed over the messages that got one from the sandbox (queueing included). */
  runSeconds: number;
}

/**
 * Hears how the messages it submitted ended. One receiver serves every message of its kind; `tag` is
 * the caller's own per-message object, so a message in flight costs no closure or promise.
 */
export interface OutcomeReceiver<T> {
  /** The script's outcome (including its own failures: throw, timeout, memory, bad result). */
  outcome(tag: T, outcome: ParseOutcome): void;
  /** The sandbox could not run the message: disposed, failed to start, or input that is not JSON data. */
  failure(tag: T, error: Error): void;
}

/** One message in the sandbox's hands; it is also what the process link writes (WireRequest). */
class Request implements WireRequest {
  readonly id: number;
  readonly key: string;
  readonly code: string;
  /** `deviceText`: the same string while the device is unchanged. */
  readonly device: string;
  readonly wire: string;
  readonly receiver: OutcomeReceiver<unknown>;
  readonly tag: unknown;
  sendCode = false;
  sendDevice = false;
  /** performance.now() at hand-off, for `stats.runSeconds`. */
  readonly sentAt = performance.now();

  constructor(id: number, key: string, code: string, device: string, wire: string, receiver: OutcomeReceiver<unknown>, tag: unknown) {
    this.id = id;
    this.key = key;
    this.code = code;
    this.device = device;
    this.wire = wire;
    this.receiver = receiver;
    this.tag = tag;
  }
}

/** What the current child was last sent for one key. */
interface SentToChild {
  code: string;
  device: string;
}

/** `parse`'s receiver: settles the promise whose resolving functions are the tag. */
const PROMISE_RECEIVER: OutcomeReceiver<PromiseCallbacks> = {
  outcome(tag, outcome) {
    tag.resolve(outcome);
  },
  failure(tag, error) {
    tag.reject(error);
  },
};

interface PromiseCallbacks {
  resolve(outcome: ParseOutcome): void;
  reject(error: Error): void;
}

/** Resolves with the requests that were still out when the child died (empty if all finished). */
interface Probe {
  remaining: number;
  resolve(victims: Request[]): void;
}

const NO_STATS: SandboxStats = { isolatesCreated: 0, isolatesAlive: 0, calls: 0, messages: 0 };
/** After the child failed to start, calls fail at once for this long rather than each spawning one. */
const START_RETRY_MS = 1000;

export class ParserSandbox {
  #options: Required<SandboxOptions>;
  #process: ParserProcess | undefined;
  /** The code and the device the current child was last sent, per key. */
  #sent = new Map<string, SentToChild>();
  #inflight = new RequestTable<Request>();
  #outbox: Request[] = [];
  #flushQueued = false;
  #recovering = false;
  #probe: Probe | undefined;
  /** Keys whose code crashed the child, with that code. */
  #quarantine = new Map<string, string>();
  #nextId = 1;
  /** Counters of children that are gone, plus outcomes decided here. */
  #past: ParserSandboxStats = { ...NO_STATS, crashes: 0, runSeconds: 0 };
  #child: SandboxStats = NO_STATS;
  #disposed = false;
  #startFailure: { error: Error; until: number } | undefined;

  readonly #onQuarantine: ((key: string) => void) | undefined;

  /** `onQuarantine`: a key's code crashed the sandbox process and is stopped until it changes (for the operator's log). */
  constructor(options: SandboxOptions = {}, events: { onQuarantine?: (key: string) => void } = {}) {
    this.#options = resolveOptions(options);
    this.#onQuarantine = events.onQuarantine;
  }

  get stats(): ParserSandboxStats {
    const past = this.#past;
    const child = this.#child;
    return {
      isolatesCreated: past.isolatesCreated + child.isolatesCreated,
      isolatesAlive: child.isolatesAlive,
      calls: past.calls + child.calls,
      messages: past.messages + child.messages,
      crashes: past.crashes,
      runSeconds: past.runSeconds,
    };
  }

  /** Runs `code` for one message of device `key`; never rejects for anything the script does. */
  parse(key: string, code: string, device: ParserDevice, input: ParserInput): Promise<ParseOutcome> {
    return new Promise<ParseOutcome>((resolve, reject) => this.submit(key, code, device, input, PROMISE_RECEIVER, { resolve, reject }));
  }

  /** `parse` for a caller that hears the result through `receiver` (called once, possibly before this returns). */
  submit<T>(key: string, code: string, device: ParserDevice, input: ParserInput, receiver: OutcomeReceiver<T>, tag: T): void {
    if (this.#disposed) {
      receiver.failure(tag, new Error('parser sandbox is disposed'));
      return;
    }
    const quarantined = this.#quarantined(key, code);
    if (quarantined !== undefined) {
      receiver.outcome(tag, quarantined);
      return;
    }
    let wire: string;
    let text: string;
    try {
      wire = wireMessage(input);
      text = deviceText(device);
    } catch (error) {
      receiver.failure(tag, error instanceof Error ? error : new Error(String(error)));
      return;
    }
    this.#outbox.push(new Request(this.#nextId++, key, code, text, wire, receiver as OutcomeReceiver<unknown>, tag));
    this.#scheduleFlush();
  }

  /** Drops the cached isolate of `key` (device deleted or code changed); a call in flight finishes first. */
  invalidate(key: string): void {
    this.#quarantine.delete(key);
    this.#sent.delete(key);
    this.#process?.invalidate(key);
  }

  /** Stops the sandbox process; calls in flight and later calls reject. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#process?.kill();
    this.#process = undefined;
    const error = new Error('parser sandbox is disposed');
    for (const request of this.#inflight.drain()) fail(request, error);
    for (const request of this.#outbox) fail(request, error);
    this.#outbox = [];
    this.#probe?.resolve([]);
  }

  #quarantined(key: string, code: string): ParseOutcome | undefined {
    const quarantined = this.#quarantine.get(key);
    if (quarantined === undefined) return undefined;
    if (quarantined !== code) {
      this.#quarantine.delete(key);
      return undefined;
    }
    this.#past.messages++;
    return this.#crashOutcome();
  }

  #crashOutcome(): ParseOutcome {
    const message = `${memoryMessage(this.#options.memoryMb)}: it crashed the sandbox and is stopped until its code changes`;
    return { ok: false, error: { kind: 'memory', message }, logs: [] };
  }

  #scheduleFlush(): void {
    if (this.#flushQueued || this.#recovering) return;
    this.#flushQueued = true;
    // At the end of the event-loop turn rather than of the current task: every socket read of the
    // turn joins one pipe write, and each write wakes the sandbox process (bench:ingest parser row,
    // 3 alternations: sandbox process CPU -15% per message, machine -5%).
    setImmediate(() => {
      this.#flushQueued = false;
      if (this.#recovering || this.#disposed || this.#outbox.length === 0) return;
      const failure = this.#startFailure;
      if (failure !== undefined && performance.now() < failure.until) {
        for (const request of this.#outbox) fail(request, failure.error);
        this.#outbox = [];
        return;
      }
      const requests: Request[] = [];
      for (const request of this.#outbox) {
        // A key may have been quarantined while its request waited out a recovery.
        const quarantined = this.#quarantined(request.key, request.code);
        if (quarantined === undefined) requests.push(request);
        else settle(request, quarantined);
      }
      this.#outbox = [];
      if (requests.length > 0) this.#send(requests);
    });
  }

  #send(requests: Request[]): void {
    const child = (this.#process ??= this.#spawn());
    for (let i = 0; i < requests.length; i++) {
      const request = requests[i] as Request;
      this.#inflight.set(request.id, request);
      const sent = this.#sent.get(request.key);
      if (sent === undefined) {
        this.#sent.set(request.key, { code: request.code, device: request.device });
        request.sendCode = true;
        request.sendDevice = true;
        continue;
      }
      // A request sent again after a crash decides afresh.
      request.sendCode = sent.code !== request.code;
      request.sendDevice = sent.device !== request.device;
      sent.code = request.code;
      sent.device = request.device;
    }
    child.sendRequests(requests);
    child.setActive(true);
  }

  #spawn(): ParserProcess {
    const child: ParserProcess = new ParserProcess(this.#options, {
      onOutcome: (id, outcome) => {
        const request = this.#settled(child, id);
        if (request === undefined) return;
        this.#past.runSeconds += (performance.now() - request.sentAt) / 1000;
        settle(request, this.#decode(request.key, outcome));
      },
      onError: (id, message) => {
        const request = this.#settled(child, id);
        if (request !== undefined) fail(request, new Error(message));
      },
      onStats: (stats) => {
        if (child === this.#process) this.#child = stats;
      },
      onExit: (ready, detail) => this.#onExit(child, ready, detail),
    });
    return child;
  }

  /** Takes request `id` out of the in-flight set when its answer came from the current child. */
  #settled(child: ParserProcess, id: number): Request | undefined {
    if (child !== this.#process) return undefined;
    const request = this.#inflight.take(id);
    if (request === undefined) return undefined;
    if (this.#inflight.size === 0) child.setActive(false);
    const probe = this.#probe;
    if (probe !== undefined && --probe.remaining <= 0) {
      this.#probe = undefined;
      probe.resolve([]);
    }
    return request;
  }

  /** A reply that is not an outcome means the script broke its isolate's driver: the isolate is replaced. */
  #decode(key: string, text: string): ParseOutcome {
    const outcome = decodeOutcomeText(text);
    if (outcome !== undefined) return outcome;
    this.invalidate(key);
    return BROKEN_DRIVER;
  }

  #onExit(child: ParserProcess, ready: boolean, detail: string): void {
    if (child !== this.#process) return;
    this.#process = undefined;
    this.#sent.clear();
    const gone = this.#child;
    this.#past.isolatesCreated += gone.isolatesCreated;
    this.#past.calls += gone.calls;
    this.#past.messages += gone.messages;
    this.#child = NO_STATS;
    const victims = this.#inflight.drain();

    if (!ready) {
      // Not a script's doing: the sandbox itself cannot start. Report it to every caller waiting.
      const error = new Error(`parser sandbox process failed to start${detail === '' ? '' : `: ${detail}`}`);
      this.#startFailure = { error, until: performance.now() + START_RETRY_MS };
      for (const request of victims) fail(request, error);
      this.#probe?.resolve([]);
      this.#probe = undefined;
      return;
    }
    this.#past.crashes++;
    const probe = this.#probe;
    if (probe !== undefined) {
      this.#probe = undefined;
      probe.resolve(victims);
    } else if (victims.length > 0) {
      void this.#recover(victims);
    }
  }

  /** Finds which key's requests killed the child, rerunning each key's alone. */
  async #recover(victims: Request[]): Promise<void> {
    this.#recovering = true;
    const byKey = new Map<string, Request[]>();
    for (const request of victims) {
      const group = byKey.get(request.key);
      if (group === undefined) byKey.set(request.key, [request]);
      else group.push(request);
    }
    if (byKey.size === 1) {
      this.#condemn(victims);
    } else {
      for (const group of byKey.values()) {
        if (this.#disposed) return;
        const lost = await this.#runAlone(group);
        if (lost.length > 0) this.#condemn(lost);
      }
    }
    this.#recovering = false;
    this.#scheduleFlush();
  }

  #runAlone(group: Request[]): Promise<Request[]> {
    return new Promise<Request[]>((resolve) => {
      this.#probe = { remaining: group.length, resolve };
      this.#send(group);
    });
  }

  #condemn(requests: Request[]): void {
    for (const request of requests) {
      if (!this.#quarantine.has(request.key)) this.#onQuarantine?.(request.key);
      this.#quarantine.set(request.key, request.code);
      this.#past.messages++;
      settle(request, this.#crashOutcome());
    }
  }
}

function settle(request: Request, outcome: ParseOutcome): void {
  request.receiver.outcome(request.tag, outcome);
}

function fail(request: Request, error: Error): void {
  request.receiver.failure(request.tag, error);
}
