import { EventEmitter } from 'node:events';
import type http from 'node:http';
import type https from 'node:https';
import { DEFAULT_LIMITS, type BrokerLimits, type BrokerOptions } from './broker-options.ts';
import { Channel, ChannelState } from './channel/channel.ts';
import type { HeldAck } from './channel/ack-queue.ts';
import { fromStoredWill, toStoredWill, type Will } from './channel/will.ts';
import { fromStoredClient, toStoredClient, type ClientInfo } from './client-info.ts';
import type { BrokerEvents, BrokerHooks, DeliveryFilter, DisconnectCause } from './hooks.ts';
import type { Message } from './message.ts';
import { ReasonCode, isFailure } from './reason-codes.ts';
import { MemoryRetainedStore } from './retained/memory-retained-store.ts';
import { RetainedIndex } from './retained/retained-index.ts';
import type { RetainedStore } from './retained/retained-store.ts';
import { Router } from './routing/router.ts';
import type { ParsedFilter } from './routing/topic.ts';
import type { SharedGroup } from './routing/topic-trie.ts';
import { MemorySessionStore } from './session/memory-session-store.ts';
import { Session, sessionKey, type EncodingCache, type SessionObserver, type Subscription } from './session/session.ts';
import type { SessionStore, SubscriptionOptions } from './session/session-store.ts';
import { recheckSubscriptions } from './session/subscription-checks.ts';
import { KeyedTimers } from './timers/keyed-timers.ts';
import { TakeoverGuard } from './timers/takeover-guard.ts';
import { listenTcp, listenTls, type TcpListenOptions, type TlsListenOptions } from './transport/tcp.ts';
import type { Listener, Transport } from './transport/transport.ts';
import { attachWebSocket, listenWs } from './transport/ws.ts';

const NEVER_EXPIRES = 0xffffffff;
/** `publishWrites` bits: the stores a publish wrote to. */
const WROTE_RETAINED = 1;
const WROTE_SESSIONS = 2;

export interface BrokerCounters {
  connections: number;
  messagesIn: number;
  /** Subscriber deliveries started (a message to three subscribers counts three). */
  deliveries: number;
  dropped: number;
}

/**
 * An embeddable MQTT 3.1/3.1.1/5 broker. Knows nothing of devices or SQL: the platform plugs in
 * through `hooks`, the event stream and the two stores.
 *
 * The core of a publish, in order: store retained, match routes, hand each matching session the
 * message (one shared object; encodings shared per tick), count. What it wrote to a store is noted
 * (`publishWrites`) so the publisher's PUBACK/PUBREC can wait until it is durable (`awaitWrites`).
 */
export class Broker extends EventEmitter<BrokerEvents> implements SessionObserver {
  readonly limits: BrokerLimits;
  readonly hooks: BrokerHooks;
  readonly counters: BrokerCounters = { connections: 0, messagesIn: 0, deliveries: 0, dropped: 0 };
  readonly #sessions = new Map<string, Session>();
  readonly #channels = new Set<Channel>();
  readonly #router = new Router();
  readonly #retained = new Map<string, RetainedIndex>();
  readonly #sessionStore: SessionStore;
  readonly #retainedStore: RetainedStore;
  readonly #listeners: Listener[] = [];
  readonly #wills: KeyedTimers<Will>;
  readonly #expiries: KeyedTimers<Session>;
  readonly #takeovers: TakeoverGuard;
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
    this.#sessionStore = options.sessionStore ?? new MemorySessionStore();
    this.#retainedStore = options.retainedStore ?? new MemoryRetainedStore();
    this.#takeovers = new TakeoverGuard(this.limits.takeoverLimit, this.limits.takeoverBackoffMs);
    this.#wills = new KeyedTimers((key, will) => {
      // Forget the stored will first: its removal and the copies it queues commit in one batch.
      this.#sessions.get(key)?.saveWill(null);
      this.publishWill(will);
    });
    this.#expiries = new KeyedTimers((_key, session) => {
      if (session.link === null && this.#sessions.get(session.key) === session) this.endSession(session);
    });
  }

  /** True when someone listens for per-delivery events (checked on the hot path). */
  get tracingDeliveries(): boolean {
    return this.listenerCount('message.delivered') > 0;
  }

  /**
   * Loads persisted retained messages and sessions; call once before listening. Timers that ran
   * while the process was down are caught up (SPEC §2): a session whose expiry passed is deleted, a
   * delayed will whose delay passed (or whose session expired) is published now, once, after every
   * session is back so persistent subscribers get it; the others are scheduled for what is left.
   */
  async start(): Promise<void> {
    for (const { namespace, message } of await this.#retainedStore.loadAll()) this.#retainedIndex(namespace).set(message);
    const now = Date.now();
    const due: Will[] = [];
    for (const stored of await this.#sessionStore.loadAll()) {
      // A session that was connected when the process stopped counts as disconnected from now.
      const disconnectedAt = stored.disconnectedAt || now;
      const will = stored.will === null ? null : fromStoredWill(stored.namespace, stored.will, this.hooks.restoreClient);
      if (stored.expiryInterval !== NEVER_EXPIRES && disconnectedAt + stored.expiryInterval * 1000 <= now) {
        // The session ended while we were down, and with it the will delay (MQTT 5 §3.1.3.2.2).
        this.#sessionStore.deleteSession(stored.key);
        if (will !== null) due.push(will);
        continue;
      }
      const session = new Session(stored.namespace, stored.clientId, stored.expiryInterval, this.#sessionStore, this, this.limits);
      session.restore({ ...stored, disconnectedAt });
      for (const [filter, options] of stored.subscriptions) {
        const group = filter.startsWith('$share/') ? filter.split('/', 2)[1]! : null;
        const topicFilter = group === null ? filter : filter.slice('$share/'.length + group.length + 1);
        const sub: Subscription = { session, filter, topicFilter, group, options, deliver: null };
        session.subscriptions.set(filter, sub);
        this.#router.add(session.namespace, sub);
      }
      // Rows stored before sessions kept their client were granted without delivery filters.
      if (stored.client !== null) {
        await recheckSubscriptions(this.hooks, fromStoredClient(stored.namespace, stored.client, this.hooks.restoreClient), session.subscriptions.values());
      }
      this.#sessions.set(session.key, session);
      this.#scheduleExpiry(session, disconnectedAt);
      if (will === null) {
        session.saveWill(null); // dropped by restoreClient, if there was one
        continue;
      }
      const wait = disconnectedAt + Math.min(will.delay, stored.expiryInterval) * 1000 - now;
      if (wait > 0) {
        this.#wills.schedule(session.key, wait, will);
      } else {
        session.saveWill(null);
        due.push(will);
      }
    }
    for (const will of due) this.publishWill(will);
  }

  // ---- listeners -------------------------------------------------------------------------------

  accept(transport: Transport): Channel {
    const channel = new Channel(this, transport);
    if (this.#closing) {
      transport.destroy();
      channel.close('server-shutdown');
      return channel;
    }
    this.#channels.add(channel);
    this.counters.connections++;
    return channel;
  }

  async listenTcp(options: TcpListenOptions): Promise<Listener> {
    return this.#track(await listenTcp(this, options));
  }

  async listenTls(options: TlsListenOptions): Promise<Listener> {
    return this.#track(await listenTls(this, options));
  }

  /** MQTT over WebSocket (path /mqtt) on its own port; TLS options make it WSS. */
  async listenWs(options: TcpListenOptions | TlsListenOptions): Promise<Listener> {
    return this.#track(await listenWs(this, options));
  }

  /** MQTT over WebSocket on an existing HTTP(S) server (e.g. the API's). */
  attachWebSocket(server: http.Server | https.Server, path = '/mqtt'): void {
    attachWebSocket(server, this, path);
  }

  #track(listener: Listener): Listener {
    this.#listeners.push(listener);
    return listener;
  }

  // ---- sessions --------------------------------------------------------------------------------

  /**
   * Takes over any live connection of the same client id in the namespace (MQTT 5 §3.1.4: the old
   * one gets DISCONNECT 0x8E), then resumes or replaces its session.
   */
  openSession(channel: Channel, client: ClientInfo, cleanStart: boolean, expiryInterval: number): { session: Session; sessionPresent: boolean } | { refused: number; reasonString: string } {
    const { namespace, clientId } = client;
    const key = sessionKey(namespace, clientId);
    const now = Date.now();
    const blockedUntil = this.#takeovers.blockedUntil(key, now);
    if (blockedUntil > 0) {
      return { refused: ReasonCode.ConnectionRateExceeded, reasonString: `client id "${clientId}" is taken over in a loop; refused for ${Math.ceil((blockedUntil - now) / 1000)} s` };
    }
    const previous = this.#sessions.get(key);
    if (previous?.link instanceof Channel && previous.link !== channel) {
      const old = previous.link;
      const verdict = this.#takeovers.record(key, now);
      if (verdict.startedBlock) {
        this.emit('client.takeover-storm', { namespace, clientId, addresses: [old.remoteAddress, channel.remoteAddress], blockedUntil: verdict.blockedUntil });
      }
      old.kick(ReasonCode.SessionTakenOver, 'takeover', `client id taken over by ${channel.remoteAddress}`);
    }
    const existing = this.#sessions.get(key);
    if (existing !== undefined && !cleanStart) {
      // A new connection to the session before the will delay ends cancels the will (§3.1.3.2.2).
      this.#wills.cancel(key);
      this.#expiries.cancel(key);
      const wasPersistent = existing.persistent;
      existing.expiryInterval = expiryInterval;
      existing.owner = toStoredClient(client);
      // The subscriptions were granted to the previous owner (maybe another device of the namespace).
      void recheckSubscriptions(this.hooks, client, existing.subscriptions.values());
      if (!wasPersistent) existing.saveAll();
      else existing.save();
      return { session: existing, sessionPresent: true };
    }
    if (existing !== undefined) this.endSession(existing);
    const session = new Session(namespace, clientId, expiryInterval, this.#sessionStore, this, this.limits);
    session.owner = toStoredClient(client);
    this.#sessions.set(key, session);
    session.save();
    return { session, sessionPresent: false };
  }

  /**
   * Called once a CONNECT is accepted: a will with a delay is stored with its persistent session,
   * so that a restart, or a crash, does not lose it (MQTT 5 §3.1.3.2.2); a will left by an earlier
   * connection is removed.
   */
  keepWill(session: Session, will: Will | null): void {
    session.saveWill(will !== null && Math.min(will.delay, session.expiryInterval) > 0 ? toStoredWill(will) : null);
  }

  /** Ends a session: its subscriptions leave the router and a pending will is published now. */
  endSession(session: Session): void {
    if (this.#sessions.get(session.key) !== session) return;
    this.#sessions.delete(session.key);
    this.#expiries.cancel(session.key);
    for (const sub of session.subscriptions.values()) this.#router.remove(session.namespace, sub);
    session.discard();
    const will = this.#wills.cancel(session.key);
    if (will !== undefined) this.publishWill(will);
  }

  #scheduleExpiry(session: Session, disconnectedAt: number): void {
    if (session.expiryInterval === NEVER_EXPIRES) return;
    const delay = disconnectedAt + session.expiryInterval * 1000 - Date.now();
    this.#expiries.schedule(session.key, delay, session);
  }

  /** Called by a channel when its connection ends, exactly once. */
  connectionClosed(channel: Channel, wasConnected: boolean, cause: DisconnectCause, reasonCode: number | undefined, detail: string | undefined): void {
    this.#channels.delete(channel);
    if (!wasConnected) return;
    const session = channel.session!;
    const client = channel.client!;
    const will = channel.will;
    channel.will = null;
    const ownsSession = session.link === channel;
    if (ownsSession) session.detach();
    let willWaits = false;
    if (will !== null && cause !== 'server-shutdown') {
      const delay = Math.min(will.delay, session.expiryInterval);
      if (delay === 0 || !ownsSession) this.publishWill(will);
      else {
        this.#wills.schedule(session.key, delay * 1000, will);
        willWaits = true;
      }
    }
    // A will discarded (normal DISCONNECT, server shutdown) or published leaves the store; a waiting
    // one stays there from CONNECT, its delay counted from the disconnectedAt saved below.
    if (ownsSession && !willWaits) session.saveWill(null);
    if (ownsSession) {
      if (session.expiryInterval === 0) {
        this.endSession(session);
      } else {
        session.disconnectedAt = Date.now();
        session.save();
        this.#scheduleExpiry(session, session.disconnectedAt);
      }
    }
    this.emit('client.disconnect', client, { cause, reasonCode, detail });
  }

  /** Publishes a will, through the same authorization as a live publish. */
  publishWill(will: Will): void {
    const expiry = will.message.properties?.messageExpiryInterval;
    const message: Message = expiry !== undefined ? { ...will.message, expiresAt: Date.now() + expiry * 1000 } : will.message;
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

  /**
   * Sends the retained messages matching a new subscription (always with the retain flag), each
   * passing the subscription's delivery filter when it has one.
   */
  sendRetained(session: Session, topicFilter: string, options: SubscriptionOptions, deliver: DeliveryFilter | null = null): void {
    const index = this.#retained.get(session.namespace);
    if (index === undefined) return;
    const now = Date.now();
    const subscriptionIds = options.subscriptionId !== 0 ? [options.subscriptionId] : null;
    for (const message of index.match(topicFilter)) {
      if (message.expiresAt !== 0 && message.expiresAt <= now) {
        index.delete(message.topic);
        this.#retainedStore.delete(session.namespace, message.topic);
        continue;
      }
      if (deliver !== null && !deliver.allows(message.topic)) {
        this.messageDropped(session, message, deliver.reason);
        continue;
      }
      session.offer(message, Math.min(message.qos, options.qos) as 0 | 1 | 2, true, subscriptionIds, null);
    }
  }

  // ---- publishing ------------------------------------------------------------------------------

  /**
   * Publishes into a namespace: updates the retained set, then delivers to every matching
   * subscription. `from` is null for messages the platform publishes itself.
   */
  publish(namespace: string, message: Message, from: ClientInfo | null = null): number {
    this.counters.messagesIn++;
    const enclosing = this.#writes;
    this.#writes = 0;
    if (message.retain) this.#storeRetained(namespace, message);
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

  #storeRetained(namespace: string, message: Message): void {
    const index = this.#retainedIndex(namespace);
    if (message.payload.length === 0) {
      // MQTT 5 §3.3.1.3: an empty retained payload clears the topic's retained message.
      if (index.delete(message.topic)) {
        this.#retainedStore.delete(namespace, message.topic);
        this.#writes |= WROTE_RETAINED;
      }
      return;
    }
    index.set(message);
    this.#retainedStore.set(namespace, message);
    this.#writes |= WROTE_RETAINED;
  }

  #retainedIndex(namespace: string): RetainedIndex {
    let index = this.#retained.get(namespace);
    if (index === undefined) this.#retained.set(namespace, (index = new RetainedIndex()));
    return index;
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
        messageExpiry = Math.ceil((message.expiresAt - Date.now()) / 1000);
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
      this.counters.deliveries += delivered;
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
    if (this.listenerCount('message.dropped') > 0) {
      const link = session.link;
      const who = link instanceof Channel && link.client !== null ? link.client : { clientId: session.clientId, namespace: session.namespace };
      this.emit('message.dropped', who, message, reason);
    }
  }

  // ---- administration --------------------------------------------------------------------------

  /** Connected clients. */
  *clients(): IterableIterator<ClientInfo> {
    for (const channel of this.#channels) if (channel.client !== null && channel.state === ChannelState.Connected) yield channel.client;
  }

  /**
   * Disconnects every connected client the predicate selects (v5: DISCONNECT with the reason code
   * and string). Used by the platform for revocation; returns how many were cut.
   */
  disconnectClients(select: (client: ClientInfo) => boolean, reasonCode: number, reasonString?: string, cause: DisconnectCause = 'administrative'): number {
    let n = 0;
    // Iterating a Set while kick() deletes from it is safe: deleted entries are simply skipped.
    for (const channel of this.#channels) {
      if (channel.client === null || channel.state !== ChannelState.Connected || !select(channel.client)) continue;
      channel.kick(reasonCode, cause, reasonString);
      n++;
    }
    return n;
  }

  /** Sessions known to the broker (connected or not). */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  retainedCount(namespace = ''): number {
    return this.#retained.get(namespace)?.size ?? 0;
  }

  /**
   * Stops accepting, disconnects every client (v5: 0x8B server shutting down), and flushes the
   * stores. Persistent sessions stay in the store with their queued messages.
   */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    const stopping = this.#listeners.map((l) => l.close());
    const channels = [...this.#channels];
    for (const channel of channels) channel.kick(ReasonCode.ServerShuttingDown, 'server-shutdown', 'server shutting down');
    // Let the DISCONNECTs leave before the sockets go.
    await new Promise((resolve) => setImmediate(resolve));
    for (const channel of channels) channel.transport.destroy();
    await Promise.all(stopping);
    this.#wills.clear();
    this.#expiries.clear();
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
