/**
 * The live inspector's event stream (SPEC §6): per device, events in real time plus the last
 * `historySize` kept, so whoever opens the inspector sees recent history first. Producers (the
 * parser runtime today; the broker, actions, rate limits and the HTTP data API as they join) call
 * `publish`; the console and API sockets `subscribe`.
 *
 * History is a ring per device; a device nobody has opened costs only its ring.
 */
export interface InspectorEvent {
  /** Epoch ms. */
  time: number;
  deviceId: string;
  type: string;
  data: Record<string, unknown>;
}

export type InspectorListener = (event: InspectorEvent) => void;

export interface InspectorBusOptions {
  /** Events kept per device; default 500 (SPEC §6). */
  historySize?: number;
  /** Clock, epoch ms; default Date.now. */
  now?: () => number;
}

class Ring {
  readonly events: InspectorEvent[] = [];
  next = 0;
}

export class InspectorBus {
  readonly #historySize: number;
  readonly #now: () => number;
  readonly #history = new Map<string, Ring>();
  readonly #listeners = new Map<string, Set<InspectorListener>>();

  constructor(options: InspectorBusOptions = {}) {
    this.#historySize = options.historySize ?? 500;
    this.#now = options.now ?? Date.now;
  }

  publish(deviceId: string, type: string, data: Record<string, unknown>): void {
    const event: InspectorEvent = { time: this.#now(), deviceId, type, data };
    let ring = this.#history.get(deviceId);
    if (ring === undefined) {
      ring = new Ring();
      this.#history.set(deviceId, ring);
    }
    if (ring.events.length < this.#historySize) ring.events.push(event);
    else ring.events[ring.next] = event;
    ring.next = (ring.next + 1) % this.#historySize;
    const listeners = this.#listeners.get(deviceId);
    if (listeners === undefined) return;
    for (const listener of listeners) listener(event);
  }

  /** The device's kept events, oldest first. */
  history(deviceId: string): InspectorEvent[] {
    const ring = this.#history.get(deviceId);
    if (ring === undefined) return [];
    if (ring.events.length < this.#historySize) return ring.events.slice();
    return [...ring.events.slice(ring.next), ...ring.events.slice(0, ring.next)];
  }

  /** Live events of one device from now on; returns the unsubscribe function. */
  subscribe(deviceId: string, listener: InspectorListener): () => void {
    let listeners = this.#listeners.get(deviceId);
    if (listeners === undefined) {
      listeners = new Set();
      this.#listeners.set(deviceId, listeners);
    }
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0 && this.#listeners.get(deviceId) === listeners) this.#listeners.delete(deviceId);
    };
  }

  /** Forgets a device (deleted): its history and listeners. */
  forget(deviceId: string): void {
    this.#history.delete(deviceId);
    this.#listeners.delete(deviceId);
  }
}
