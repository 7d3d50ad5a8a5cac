/**
 * What the data path needs to know about a publishing device (account, type, tags, active, parser), kept in
 * memory so a publish costs a Map lookup instead of a database query. Entries are dropped when the
 * registry says a device changed or was revoked; and the whole cache is forgotten every `maxAgeMs`
 * so that edits made by another process on the same database (the CLI) show within that time.
 */
import type { DeviceType, ParamItem, TagItem } from '../tenancy/model.ts';
import type { Registry, Revocation } from '../tenancy/registry.ts';
import { tagKey, type ScopedDevice } from '../actions/action-index.ts';

export interface CachedDevice extends ScopedDevice {
  readonly id: string;
  readonly accountId: string;
  readonly type: DeviceType;
  readonly active: boolean;
  readonly name: string;
  readonly tags: readonly TagItem[];
  readonly params: readonly ParamItem[];
  /** The device's payload parser source (SPEC §4), or null. */
  readonly payloadParser: string | null;
}

export interface DeviceCacheOptions {
  /** Milliseconds after which every entry is forgotten. Default 5,000. */
  maxAgeMs?: number;
  /** Entries kept at most; beyond it the cache starts over. Default 100,000. */
  maxEntries?: number;
}

export class DeviceCache {
  readonly #registry: Registry;
  readonly #maxEntries: number;
  /** null = known not to exist. */
  #entries = new Map<string, CachedDevice | null>();
  readonly #timer: NodeJS.Timeout;
  readonly #onChanged = (deviceId: string): void => {
    this.#entries.delete(deviceId);
  };
  readonly #onRevoked = (revocation: Revocation): void => {
    if (revocation.kind !== 'token-deleted') this.#entries.delete(revocation.deviceId);
  };

  constructor(registry: Registry, options: DeviceCacheOptions = {}) {
    this.#registry = registry;
    this.#maxEntries = options.maxEntries ?? 100_000;
    registry.on('device-changed', this.#onChanged);
    registry.on('revoked', this.#onRevoked);
    this.#timer = setInterval(() => this.clear(), options.maxAgeMs ?? 5_000);
    this.#timer.unref();
  }

  /** The device, or null when it does not exist. */
  get(deviceId: string): CachedDevice | null {
    const hit = this.#entries.get(deviceId);
    if (hit !== undefined) return hit;
    const device = this.#registry.deviceById(deviceId);
    const entry: CachedDevice | null = device === null
      ? null
      : {
        id: device.id,
        accountId: device.account_id,
        type: device.type,
        active: device.active,
        name: device.name,
        tags: device.tags,
        params: device.params,
        payloadParser: device.payload_parser === null || device.payload_parser.trim() === '' ? null : device.payload_parser,
        tagSet: new Set(device.tags.map(tagKey)),
      };
    if (this.#entries.size >= this.#maxEntries) this.#entries = new Map();
    this.#entries.set(deviceId, entry);
    return entry;
  }

  clear(): void {
    this.#entries = new Map();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#registry.off('device-changed', this.#onChanged);
    this.#registry.off('revoked', this.#onRevoked);
  }
}
