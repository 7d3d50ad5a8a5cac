/**
 * How an inspector event looks outside the process (SPEC §6): one JSON object per event, the same in
 * the REST listing and on the live WebSocket stream:
 * `{"time": ISO-8601, "device": id, "kind": one of INSPECTOR_KINDS, "connection": {...} | null, "data": {...}}`.
 * `connection` names the MQTT connection an event belongs to (client id, address, listener), null for
 * events that have none (an HTTP request, a parser run).
 *
 * Cost: `toWire` copies five references and formats one date; `wireJson` stringifies each event once
 * however many viewers it is sent to.
 */
import type { InspectorEvent } from './inspector-bus.ts';

export interface WireEvent {
  time: string;
  device: string;
  kind: string;
  connection: Record<string, unknown> | null;
  data: Record<string, unknown>;
}

// NOTE(issue 16): the bus's events still carry `type` ('parser.log') and no connection while their
// production is rewritten; this is the one place that reads them. Once every event has `kind` and
// `connection`, read those directly and drop the `type` fallback.
type BusEvent = InspectorEvent & { kind?: string; connection?: Record<string, unknown> | null };

export function kindOf(event: InspectorEvent): string {
  const { kind, type } = event as BusEvent;
  return kind ?? type.replace('.', '_');
}

export function toWire(event: InspectorEvent): WireEvent {
  return {
    time: new Date(event.time).toISOString(),
    device: event.deviceId,
    kind: kindOf(event),
    connection: (event as BusEvent).connection ?? null,
    data: event.data,
  };
}

// One slot, not a WeakMap: the bus hands an event to all of its listeners in one synchronous loop, so
// the second viewer of an event always finds it here, and no JSON outlives that loop (a WeakMap
// would keep the text of a watched device's whole history alive as long as its ring holds the events).
let lastEvent: InspectorEvent | null = null;
let lastJson = '';

/** The event as JSON text, computed once for all viewers of it. */
export function wireJson(event: InspectorEvent): string {
  if (event !== lastEvent) {
    lastJson = JSON.stringify(toWire(event));
    lastEvent = event;
  }
  return lastJson;
}
