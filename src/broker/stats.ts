/**
 * The broker's traffic figures as plain numbers, read by whoever reports them (Prometheus at scrape
 * time, the $SYS publisher every interval): nothing here knows a metrics library.
 *
 * Rules: one `NamespaceStats` per namespace, looked up once when a client connects (a channel keeps
 * it; connections not yet authenticated count in `unauthenticated`), so the hot path is a `+=` on an
 * object it already holds. Whole-broker figures are sums over namespaces, made when read. Counters
 * only grow; `connected` goes up and down.
 *
 * Cost: per packet, one or two additions; per CONNECT and close, one Map lookup. Drops, which may come
 * in floods (a slow consumer), add one to a Map entry keyed by their reason string.
 */
import type { ClientInfo } from './client-info.ts';
import type { Session } from './session/session.ts';

export class NamespaceStats {
  /** Connected clients now. */
  connected = 0;
  /** Most clients connected at once. */
  connectedMaximum = 0;
  bytesReceived = 0;
  bytesSent = 0;
  /** MQTT packets of every type. */
  packetsReceived = 0;
  packetsSent = 0;
  /** PUBLISH packets by QoS (index 0..2). */
  readonly publishReceived = new Float64Array(3);
  readonly publishSent = new Float64Array(3);
  /** Messages not delivered to a subscriber, and publishes refused: by reason as reported. */
  readonly dropped = new Map<string, number>();

  droppedTotal(): number {
    let n = 0;
    for (const count of this.dropped.values()) n += count;
    return n;
  }
}

/** Drop causes as metrics name them: a reason string (hooks.ts `message.dropped`) mapped to a small fixed set. */
export type DropCause = 'queue_full' | 'slow_consumer' | 'expired' | 'too_large' | 'publish_refused' | 'acl' | 'other';

export function dropCause(reason: string): DropCause {
  if (reason.startsWith('session queue full')) return 'queue_full';
  if (reason.startsWith('client is not reading')) return 'slow_consumer';
  if (reason.startsWith('expired')) return 'expired';
  if (reason.startsWith('larger than')) return 'too_large';
  if (reason.startsWith('publish refused')) return 'publish_refused';
  if (reason === 'acl') return 'acl';
  return 'other';
}

export class BrokerStats {
  /** Before CONNECT is accepted a connection belongs to no namespace: its bytes and packets land here. */
  readonly unauthenticated = new NamespaceStats();
  readonly #namespaces = new Map<string, NamespaceStats>();
  /** Connected clients by `transport/protocolVersion` (e.g. `tcp/5`). */
  readonly #connections = new Map<string, number>();

  /** The namespace's figures, created on first use (a namespace's counters live as long as the broker). */
  namespace(name: string): NamespaceStats {
    let stats = this.#namespaces.get(name);
    if (stats === undefined) this.#namespaces.set(name, (stats = new NamespaceStats()));
    return stats;
  }

  namespaces(): IterableIterator<[string, NamespaceStats]> {
    return this.#namespaces.entries();
  }

  /** Every namespace and the unauthenticated connections, for whole-broker sums. */
  *all(): IterableIterator<NamespaceStats> {
    yield this.unauthenticated;
    yield* this.#namespaces.values();
  }

  /** Connected clients by listener kind and protocol version. */
  connections(): IterableIterator<[key: string, count: number]> {
    return this.#connections.entries();
  }

  clientConnected(client: ClientInfo, stats: NamespaceStats): void {
    if (++stats.connected > stats.connectedMaximum) stats.connectedMaximum = stats.connected;
    const key = `${client.transport}/${client.protocolVersion}`;
    this.#connections.set(key, (this.#connections.get(key) ?? 0) + 1);
  }

  clientDisconnected(client: ClientInfo): void {
    this.namespace(client.namespace).connected--;
    const key = `${client.transport}/${client.protocolVersion}`;
    this.#connections.set(key, (this.#connections.get(key) ?? 1) - 1);
  }

  dropped(namespace: string, reason: string): void {
    const dropped = this.namespace(namespace).dropped;
    dropped.set(reason, (dropped.get(reason) ?? 0) + 1);
  }
}

/** What the sessions of one namespace hold now, counted by walking them (O(sessions), at read time). */
export interface SessionFigures {
  sessions: number;
  /** Persistent sessions whose client is not connected (Mosquitto's clients/disconnected). */
  disconnected: number;
  subscriptions: number;
  /** Messages waiting for their client, not yet sent. */
  queued: number;
  /** QoS 1/2 messages sent and not yet acknowledged. */
  inflight: number;
}

export function sessionFigures(sessions: Iterable<Session>): Map<string, SessionFigures> {
  const out = new Map<string, SessionFigures>();
  for (const session of sessions) {
    let figures = out.get(session.namespace);
    if (figures === undefined) out.set(session.namespace, (figures = { sessions: 0, disconnected: 0, subscriptions: 0, queued: 0, inflight: 0 }));
    figures.sessions++;
    if (session.link === null) figures.disconnected++;
    figures.subscriptions += session.subscriptions.size;
    figures.queued += session.queue.length;
    figures.inflight += session.inflight.size;
  }
  return out;
}
