import type { CachedDevice, DeviceCache } from '../data/device-cache.ts';
import type { ParseStep } from '../data/ingest.ts';
import { RejectedMessageError } from '../data/rejected-message.ts';
import type { RecordError } from '../data/validate-record.ts';
import type { InspectorBus } from '../inspector/inspector-bus.ts';
import type { ParserSandbox } from './sandbox.ts';
import type { ParserDevice, ParserErrorKind, ParserLog } from './types.ts';

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
 * The data path's parser step (SPEC §4): finds a device's parser in the device cache, runs it in the
 * sandbox (which batches a device's queued messages into one call), and reports the parser's console
 * output and errors to the inspector as `parser.log` and `parser.error` events.
 */
export class PayloadParsers implements ParseStep {
  readonly #sandbox: ParserSandbox;
  readonly #devices: DeviceCache;
  readonly #inspector: InspectorBus;
  /** What the script sees as `device`, per cache entry (a changed device gets a new entry). */
  readonly #views = new WeakMap<CachedDevice, ParserDevice>();

  constructor(sandbox: ParserSandbox, devices: DeviceCache, inspector: InspectorBus) {
    this.#sandbox = sandbox;
    this.#devices = devices;
    this.#inspector = inspector;
  }

  has(deviceId: string): boolean {
    return this.#devices.get(deviceId)?.payloadParser != null;
  }

  async parse(deviceId: string, payload: unknown[], raw: Buffer, via: string | undefined): Promise<unknown> {
    const device = this.#devices.get(deviceId);
    const code = device?.payloadParser;
    if (device == null || code == null) return payload;
    const outcome = await this.#sandbox.parse(deviceId, code, this.#view(device), { payload, raw });
    this.#report(deviceId, outcome.logs);
    if (!outcome.ok) {
      this.#inspector.publish(deviceId, 'parser.error', { kind: outcome.error.kind, message: outcome.error.message, ...(via === undefined ? {} : { via }) });
      throw new ParserError(outcome.error.kind, outcome.error.message);
    }
    return outcome.payload;
  }

  rejected(deviceId: string, error: RecordError, via: string | undefined): void {
    this.#inspector.publish(deviceId, 'parser.error', { kind: 'validation', message: `the parser's result is not valid: ${error.message}`, ...(via === undefined ? {} : { via }) });
  }

  /** Forgets a device's compiled parser (deleted device, or its code changed). */
  invalidate(deviceId: string): void {
    this.#sandbox.invalidate(deviceId);
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
    for (const log of logs) this.#inspector.publish(deviceId, 'parser.log', { level: log.level, message: log.message });
  }
}

