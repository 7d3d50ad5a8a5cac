import { EventEmitter } from 'node:events';
import type http from 'node:http';
import type https from 'node:https';
import { DEFAULT_LIMITS, type BrokerLimits, type BrokerOptions } from './broker-options.ts';
import { systemClock, type Clock } from './clock.ts';
import type { Channel } from './channel/channel.ts';
import type { HeldAck } from './channel/ack-queue.ts';
import type { Will } from './channel/will.ts';
import type { ClientInfo } from './client-info.ts';
import { Connections } from './connections.ts';
import type { BrokerEvents, BrokerHooks, DeliveryFilter, DisconnectCause } from './hooks.ts';
import type { Message } from './message.ts';
import { isFailure } from './reason-codes.ts';
import { MemoryRetainedStore } from './retained/memory-retained-store.ts';
import { Retainer } from './retained/retainer.ts';
import type { RetainedStore } from './retained/retained-store.ts';
import { Router } from './routing/router.ts';
import type { ParsedFilter } from './routing/topic.ts';
import type { SharedGroup } from './routing/topic-trie.ts';
import { MemorySessionStore } from './session/memory-session-store.ts';
import type { EncodingCache, Session, SessionObserver, Subscription } from './session/session.ts';
import { SessionRegistry } from './session/session-registry.ts';
import type { SessionStore, SubscriptionOptions } from './session/session-store.ts';
import { BrokerStats } from './stats.ts';
import type { TcpListenOptions, TlsListenOptions } from './transport/tcp.ts';
import type { Listener } from './transport/transport.ts';

/** `publishWrites` bits: the stores a publish wrote to. */
const WROTE_RETAINED = 1;
const WROTE_SESSIONS = 2;

export interface BrokerCounters {
  /** Messages not delivered to a subscriber (counted even when no one listens for `message.dropped`). */
  dropped: number;
}

/**
 * An embeddable MQTT 3.1/3.1.1/5 broker. Knows nothing of devices or SQL: the platform plugs in
 * through `hooks`, the event stream and the two stores.
 *
 * This file is the core of a publish and the wiring of the parts: connections (connections.ts),
 * sessions and their timers (session/session-registry.ts), retained messages (retained/retainer.ts),
 * subscriptions (routing/router.ts). A publish, in order: store retained, match routes, hand each
 * matching session the message (one shared object; encodings shared per tick), count drops. What it
 * wrote to a store is noted (`publishWrites`) so the publisher's PUBACK/PUBREC can wait until it is
 * durable (`awaitWrites`).
 */
export class Broker extends EventEmitter<BrokerEvents> implements SessionObserver {
  readonly limits: BrokerLimits;
  readonly hooks: BrokerHooks;
  /** The engine's one source of time (clock.ts). */
  readonly clock: Clock;
  readonly counters: BrokerCounters = { dropped: 0 };
  /** Traffic per namespace, as plain numbers for metrics and $SYS (stats.ts). */
  readonly stats = new BrokerStats();
  /** Opens, takes over and ends sessions (called by handle-connect). */
  readonly sessions: SessionRegistry;
  /** Retained messages (handle-subscribe sends them). */
  readonly retainer: Retainer;
  readonly #connections: Connections;
  readonly #router = new Router();
  readonly #sessionStore: SessionStore;
  readonly #retainedStore: RetainedStore;
  // Reused per dispatch so routing a publish allocates nothing but the encodings it needs.
  readonly #matches: Subscription[] = [];
  readonly #groups: SharedGroup<Subscription>[] = [];
  readonly #unique: Session[] = [];
  readonly #withheld: Subscription[] = [];
  #dispatchDepth = 0;
  #stamp = 0;
  /** WROTE_* bits of the publish being routed (nested publishes add theirs). */
  #writes = 0;
  #publishWrites = 0;
  #closing = false;

  constructor(options: BrokerOptions = {}) {
    super();
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.hooks = options.hooks ?? {};
    this.clock = options.clock ?? systemClock;
    this.#sessionStore = options.sessionStore ?? new MemorySessionStore();
    this.#retainedStore = options.retainedStore ?? new MemoryRetainedStore();
    this.#connections = new Connections(this);
    this.sessions = new SessionRegistry(this, this.#sessionStore, this.#router);
    this.retainer = new Retainer(this.#retainedStore, this);
  }

  /** True when someone listens for per-delivery events (checked on the hot path). */
  get tracingDeliveries(): boolean {
    return this.listenerCount('message.delivered') > 0;
  }

  /**
   * Loads persisted sessions (catching up the timers that ran while the process was down,
   * session-registry.ts); call once before listening. Retained messages load per namespace on first
   * use (retainer.ts).
   */
  async start(): Promise<void> {
    await this.sessions.restore();
  }

  // ---- connections -----------------------------------------------------------------------------

  listenTcp(options: TcpListenOptions): Promise<Listener> {
    return this.#connections.listenTcp(options);
  }

  listenTls(options: TlsListenOptions): Promise<Listener> {
    return this.#connections.listenTls(options);
  }

  /** MQTT over WebSocket (path /mqtt) on its own port; TLS options make it WSS. */
  listenWs(options: TcpListenOptions | TlsListenOptions): Promise<Listener> {
    return this.#connections.listenWs(options);
  }

  /** MQTT over WebSocket on an existing HTTP(S) server (e.g. the API's). */
  attachWebSocket(server: http.Server | https.Server, path = '/mqtt'): void {
    this.#connections.attachWebSocket(server, path);
  }

  /** Called by a channel when its connection ends, exactly once. */
  connectionClosed(channel: Channel, wasConnected: boolean, cause: DisconnectCause, reasonCode: number | undefined, detail: string | undefined): void {
    this.#connections.closed(channel);
    if (!wasConnected) return;
    this.stats.clientDisconnected(channel.client!);
    const will = channel.will;
    channel.will = null;
    this.sessions.connectionClosed(channel, channel.session!, will, cause);
    this.emit('client.disconnect', channel.client!, { cause, reasonCode, detail });
  }

  /** Connected clients. */
  clients(): IterableIterator<ClientInfo> {
    return this.#connections.clients();
  }

  /**
   * Disconnects every connected client the predicate selects (v5: DISCONNECT with the reason code
   * and string). Used by the platform for revocation; returns how many were cut.
   */
  disconnectClients(select: (client: ClientInfo) => boolean, reasonCode: number, reasonString?: string, cause: DisconnectCause = 'administrative'): number {
    return this.#connections.disconnect(select, reasonCode, reasonString, cause);
  }

  /** Sessions known to the broker (connected or not). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Publishes a will, through the same authorization as a live publish. */
  publishWill(will: Will): void {
    const expiry = will.message.properties?.messageExpiryInterval;
    const message: Message = expiry !== undefined ? { ...will.message, expiresAt: this.clock.now() + expiry * 1000 } : will.message;
    const authorize = this.hooks.authorizePublish;
    if (authorize === undefined) {
      this.publish(will.client.namespace, message, will.client);
      return;
    }
    const verdict = authorize(will.client, message);
    if (typeof verdict === 'number') {
      if (!isFailure(verdict)) this.publish(will.client.namespace, message, will.client);
      return;
    }
    verdict.then((code) => {
      if (!isFailure(code)) this.publish(will.client.namespace, message, will.client);
    }, () => undefined);
  }

  // ---- subscriptions ---------------------------------------------------------------------------

  /** Adds or replaces a subscription; returns true when it is new (for retain handling 1). */
  subscribe(session: Session, filter: string, parsed: ParsedFilter, options: SubscriptionOptions, deliver: DeliveryFilter | null = null): boolean {
    const previous = session.subscriptions.get(filter);
    const sub: Subscription = { session, filter, topicFilter: parsed.filter, group: parsed.group, options, deliver };
    session.addSubscription(sub);
    this.#router.add(session.namespace, sub);
    return previous === undefined;
  }

  unsubscribe(session: Session, filter: string): boolean {
    const sub = session.removeSubscription(filter);
    if (sub === undefined) return false;
    this.#router.remove(session.namespace, sub);
    return true;
  }

  // ---- publishing ------------------------------------------------------------------------------

  /**
   * Publishes into a namespace: updates the retained set, then delivers to every matching
   * subscription. `from` is null for messages the platform publishes itself.
   */
  publish(namespace: string, message: Message, from: ClientInfo | null = null): number {
    const enclosing = this.#writes;
    this.#writes = 0;
    if (message.retain && this.retainer.store(namespace, message)) this.#writes |= WROTE_RETAINED;
    if (this.listenerCount('message.publish') > 0) this.emit('message.publish', from, message);
    const delivered = this.#dispatch(namespace, message);
    const wrote = this.#writes;
    this.#publishWrites = wrote;
    this.#writes = enclosing | wrote;
    return delivered;
  }

  /**
   * Non-zero when the last `publish` wrote to a store: its retained message, or a QoS 1/2 copy for a
   * persistent session. Read right after `publish`; 0 (no cost) for most publishes.
   */
  get publishWrites(): number {
    return this.#publishWrites;
  }

  /** Holds `ack` until what the last publish wrote is durable (SPEC §2), one wait per store. */
  awaitWrites(ack: HeldAck): void {
    const wrote = this.#publishWrites;
    if ((wrote & WROTE_RETAINED) !== 0) ack.awaitStore(this.#retainedStore);
    if ((wrote & WROTE_SESSIONS) !== 0) ack.awaitStore(this.#sessionStore);
  }

  messageStored(): void {
    this.#writes |= WROTE_SESSIONS;
  }

  #dispatch(namespace: string, message: Message): number {
    const trie = this.#router.trie(namespace);
    if (trie === undefined) return 0;
    // A re-entrant publish (from an event listener) gets its own buffers.
    const outer = this.#dispatchDepth++ === 0;
    const matches = outer ? this.#matches : [];
    const groups = outer ? this.#groups : [];
    try {
      matches.length = 0;
      groups.length = 0;
      trie.match(message.topic.split('/'), matches, groups);
      if (matches.length === 0 && groups.length === 0) return 0;
      let messageExpiry = -1;
      if (message.expiresAt !== 0) {
        messageExpiry = Math.ceil((message.expiresAt - this.clock.now()) / 1000);
        if (messageExpiry <= 0) return 0;
      }
      const cache: EncodingCache = { messageExpiry, encoded: [] };
      let delivered = 0;
      if (matches.length === 1) {
        const sub = matches[0]!;
        const o = sub.options;
        if (sub.deliver !== null && !sub.deliver.allows(message.topic)) {
          this.messageDropped(sub.session, message, sub.deliver.reason);
        } else if (!(o.noLocal && sub.session.key === message.origin)) {
          const qos = (o.qos < message.qos ? o.qos : message.qos) as 0 | 1 | 2;
          sub.session.offer(message, qos, o.retainAsPublished && message.retain, o.subscriptionId !== 0 ? [o.subscriptionId] : null, cache);
          delivered++;
        }
      } else if (matches.length > 1) {
        delivered += this.#deliverMerged(message, matches, outer ? this.#unique : [], outer ? this.#withheld : [], cache);
      }
      for (const group of groups) {
        const sub = pickSharedMember(group, message);
        if (sub === null) {
          // Every member's delivery filter withholds it: one drop for the group.
          const first = group.list()[0]!;
          this.messageDropped(first.session, message, first.deliver!.reason);
          continue;
        }
        const o = sub.options;
        const qos = (o.qos < message.qos ? o.qos : message.qos) as 0 | 1 | 2;
        sub.session.offer(message, qos, o.retainAsPublished && message.retain, o.subscriptionId !== 0 ? [o.subscriptionId] : null, cache);
        delivered++;
      }
      return delivered;
    } finally {
      this.#dispatchDepth--;
      matches.length = 0;
      groups.length = 0;
    }
  }

  /**
   * A client with overlapping subscriptions gets the message once, at the highest granted QoS,
   * with every matching subscription identifier (MQTT 5 §3.3.4). Sessions are stamped instead of
   * collected in a Map so that this costs no allocation per publish. A subscription whose delivery
   * filter withholds the message does not count; the session's drop is reported only when none of
   * its subscriptions took it.
   */
  #deliverMerged(message: Message, matches: Subscription[], unique: Session[], withheld: Subscription[], cache: EncodingCache): number {
    const stamp = ++this.#stamp;
    unique.length = 0;
    withheld.length = 0;
    for (let i = 0; i < matches.length; i++) {
      const sub = matches[i]!;
      const o = sub.options;
      const session = sub.session;
      if (o.noLocal && session.key === message.origin) continue;
      if (sub.deliver !== null && !sub.deliver.allows(message.topic)) {
        withheld.push(sub);
        continue;
      }
      const qos = o.qos < message.qos ? o.qos : message.qos;
      const retain = o.retainAsPublished && message.retain;
      if (session.matchStamp !== stamp) {
        session.matchStamp = stamp;
        session.matchQos = qos;
        session.matchRetain = retain;
        session.matchSubscriptionIds = o.subscriptionId !== 0 ? [o.subscriptionId] : null;
        unique.push(session);
      } else {
        if (qos > session.matchQos) session.matchQos = qos;
        if (retain) session.matchRetain = true;
        if (o.subscriptionId !== 0) (session.matchSubscriptionIds ??= []).push(o.subscriptionId);
      }
    }
    for (let i = 0; i < unique.length; i++) {
      const s = unique[i]!;
      s.offer(message, s.matchQos as 0 | 1 | 2, s.matchRetain, s.matchSubscriptionIds, cache);
    }
    if (withheld.length > 0) this.#reportWithheld(message, withheld, stamp);
    const n = unique.length;
    unique.length = 0;
    return n;
  }

  /** One drop per session that got nothing because its delivery filters withheld the message. */
  #reportWithheld(message: Message, withheld: Subscription[], stamp: number): void {
    for (let i = 0; i < withheld.length; i++) {
      const sub = withheld[i]!;
      if (sub.session.matchStamp === stamp) continue;
      sub.session.matchStamp = stamp;
      this.messageDropped(sub.session, message, sub.deliver!.reason);
    }
    withheld.length = 0;
  }

  messageDropped(session: Session, message: Message, reason: string): void {
    this.counters.dropped++;
    this.stats.dropped(session.namespace, reason);
    if (this.listenerCount('message.dropped') > 0) {
      const link = session.link;
      const who = link !== null && link.client !== null ? link.client : { clientId: session.clientId, namespace: session.namespace };
      this.emit('message.dropped', who, message, reason);
    }
  }

  // ---- shutdown --------------------------------------------------------------------------------

  /**
   * Stops accepting, disconnects every client (v5: 0x8B server shutting down), and flushes the
   * stores. Persistent sessions stay in the store with their queued messages.
   */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    await this.#connections.close();
    this.sessions.close();
    await Promise.all([this.#sessionStore.flush(), this.#retainedStore.flush()]);
  }
}

/**
 * One member of a shared group per message (MQTT 5 §4.8.2): round-robin over members that are
 * connected and have send quota, falling back to the next member in turn (whose session queues it).
 * Members whose delivery filter withholds the message are passed over; null when all of them do.
 */
function pickSharedMember(group: SharedGroup<Subscription>, message: Message): Subscription | null {
  const members = group.list();
  const n = members.length;
  const qos = message.qos;
  let fallback = -1;
  for (let i = 0; i < n; i++) {
    const index = (group.cursor + i) % n;
    const sub = members[index]!;
    if (sub.deliver !== null && !sub.deliver.allows(message.topic)) continue;
    const link = sub.session.link;
    if (link !== null && (qos === 0 || sub.session.inflight.size < link.sendQuota)) {
      group.cursor = index + 1;
      return sub;
    }
    if (fallback < 0) fallback = index;
  }
  if (fallback < 0) return null;
  group.cursor = fallback + 1;
  return members[fallback]!;
}
