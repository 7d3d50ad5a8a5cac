import type { CachedDevice, DeviceCache } from '../data/device-cache.ts';
import type { ParseJob, ParseStep } from '../data/ingest.ts';
import { RejectedMessageError } from '../data/rejected-message.ts';
import type { RecordError } from '../data/validate-record.ts';
import type { InspectorBus } from '../inspector/inspector-bus.ts';
import type { OutcomeReceiver, ParserSandbox } from './sandbox.ts';
import { StatusError } from '../status-error.ts';
import type { ParseOutcome, ParserDevice, ParserErrorKind, ParserInput, ParserLog } from './types.ts';

/** A device as a parser script sees it (SPEC §4): id, name, tags, params. */
export function parserDevice(device: Pick<CachedDevice, 'id' | 'name' | 'tags' | 'params'>): ParserDevice {
  return {
    id: device.id,
    name: device.name,
    tags: device.tags.map((t) => ({ key: t.key, value: t.value })),
    params: device.params.map((p) => ({ key: p.key, value: p.value, sent: p.sent })),
  };
}

/** A payload parser refused a message (SPEC §4): it threw, timed out, ran out of memory or returned no array. */
export class ParserError extends RejectedMessageError {
  override readonly name = 'ParserError';
  readonly kind: ParserErrorKind;

  constructor(kind: ParserErrorKind, message: string) {
    super(`payload parser: ${message}`);
    this.kind = kind;
  }
}

/**
 * Too many messages are waiting for the parser sandbox: this one was not run. Not the message's
 * fault (a retry later may succeed), so MQTT v3 senders get no ack and resend; HTTP gets 503.
 */
export class ParserBusyError extends StatusError {
  constructor(pending: number) {
    super(503, `payload parsers are busy: ${pending} messages are waiting; try again shortly`);
  }
}

/** Messages waiting for (or in) the sandbox at most, across devices; beyond it new ones are refused. */
const DEFAULT_MAX_PENDING = 50_000;

/**
 * The data path's parser step (SPEC §4): finds a device's parser in the device cache, runs it in the
 * sandbox (which batches a device's queued messages into one call), and reports the parser's console
 * output and errors to the inspector as `parser.log` and `parser.error` events.
 *
 * Backpressure: QoS 0 publishes and HTTP requests are not bounded by any in-flight window, so the
 * messages out in the sandbox are counted and capped (`maxPending`) instead of queueing without limit.
 */
export class PayloadParsers implements ParseStep, OutcomeReceiver<ParseJob> {
  readonly #sandbox: ParserSandbox;
  readonly #devices: DeviceCache;
  readonly #inspector: InspectorBus;
  /** What the script sees as `device`, per cache entry (a changed device gets a new entry). */
  readonly #views = new WeakMap<CachedDevice, ParserDevice>();

  readonly #maxPending: number;
  #pending = 0;
  /** Messages a parser did not turn into records, by cause (ParserErrorKind, 'busy', 'sandbox'), for metrics. */
  readonly errors = new Map<string, number>();

  constructor(sandbox: ParserSandbox, devices: DeviceCache, inspector: InspectorBus, options: { maxPending?: number } = {}) {
    this.#sandbox = sandbox;
    this.#devices = devices;
    this.#inspector = inspector;
    this.#maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
  }

  has(deviceId: string): boolean {
    return this.#devices.get(deviceId)?.payloadParser != null;
  }

  submit(job: ParseJob, input: ParserInput): void {
    const device = this.#devices.get(job.deviceId);
    const code = device?.payloadParser;
    if (device == null || code == null) {
      job.parsed(input.payload);
      return;
    }
    if (this.#pending >= this.#maxPending) {
      this.#countError('busy');
      job.failed(new ParserBusyError(this.#pending));
      return;
    }
    this.#pending++;
    this.#sandbox.submit(job.deviceId, code, this.#view(device), input, this, job);
  }

  /** The sandbox's answer for `job` (OutcomeReceiver). */
  outcome(job: ParseJob, outcome: ParseOutcome): void {
    this.#pending--;
    this.#report(job.deviceId, outcome.logs);
    if (outcome.ok) {
      job.parsed(outcome.payload);
      return;
    }
    const { kind, message } = outcome.error;
    this.#countError(kind);
    this.#inspector.publish(job.deviceId, 'parser.error', job.via === undefined ? { kind, message } : { kind, message, via: job.via });
    job.failed(new ParserError(kind, message));
  }

  /** The sandbox could not run `job` (OutcomeReceiver). */
  failure(job: ParseJob, error: Error): void {
    this.#pending--;
    this.#countError('sandbox');
    job.failed(error);
  }

  rejected(deviceId: string, error: RecordError, via: string | undefined): void {
    this.#countError('validation');
    this.#inspector.publish(deviceId, 'parser.error', { kind: 'validation', message: `the parser's result is not valid: ${error.message}`, ...(via === undefined ? {} : { via }) });
  }

  /** Forgets a device's compiled parser (deleted device, or its code changed). */
  invalidate(deviceId: string): void {
    this.#sandbox.invalidate(deviceId);
  }

  #countError(cause: string): void {
    this.errors.set(cause, (this.errors.get(cause) ?? 0) + 1);
  }

  #view(device: CachedDevice): ParserDevice {
    let view = this.#views.get(device);
    if (view === undefined) {
      view = parserDevice(device);
      this.#views.set(device, view);
    }
    return view;
  }

  #report(deviceId: string, logs: ParserLog[]): void {
    for (let i = 0; i < logs.length; i++) this.#inspector.publish(deviceId, 'parser.log', { level: logs[i]!.level, message: logs[i]!.message });
  }
}

