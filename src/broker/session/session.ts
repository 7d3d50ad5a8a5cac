import type { ClientInfo, StoredClient } from '../client-info.ts';
import type { Clock } from '../clock.ts';
import type { DeliveryFilter, DisconnectCause } from '../hooks.ts';
import type { Message } from '../message.ts';
import type { Outbound } from './outbound.ts';
import { OutboundQueue, outboundBytes } from './outbound-queue.ts';
import type { SessionStore, StoredSession, StoredWill, SubscriptionOptions } from './session-store.ts';

export interface Subscription {
  readonly session: Session;
  /** As the client sent it, `$share/...` included: the key in the session's subscription map. */
  readonly filter: string;
  /** The part matched against topics. */
  readonly topicFilter: string;
  readonly group: string | null;
  readonly options: SubscriptionOptions;
  /**
   * Asked per message when the grant came with one; null (the common case) = every message.
   * Replaced when the session's subscriptions are asked again (subscription-checks.ts).
   */
  deliver: DeliveryFilter | null;
}

/**
 * A per-tick cache of one message's encodings, shared by every subscriber it goes to in that
 * tick, so fan-out encodes once per variant instead of once per subscriber.
 */
export interface EncodingCache {
  /** Remaining expiry in seconds for v5 (-1: none), computed once per dispatch. */
  readonly messageExpiry: number;
  readonly encoded: Array<Buffer | undefined>;
}

/** Session expiry interval meaning "never" (MQTT 5 §3.1.2.11.2; what v3 persistent sessions get). */
export const NEVER_EXPIRES = 0xffff_ffff;

/** The collections of every session that has none of its own yet (see Session); never written. */
const NO_SUBSCRIPTIONS: ReadonlyMap<string, Subscription> = new Map();
const NO_INFLIGHT: ReadonlyMap<number, Outbound> = new Map();
const NO_PACKET_IDS: ReadonlySet<number> = new Set();

/**
 * How a session reaches its client while connected; implemented by the channel. Also what the
 * session registry and dispatch need of a connection, so they never depend on the channel itself.
 */
export interface SessionLink {
  /** QoS 1/2 messages that may be in flight: min(our limit, the client's receive maximum). */
  readonly sendQuota: number;
  /** The connected client (set before the session attaches). */
  readonly client: ClientInfo | null;
  readonly remoteAddress: string;
  /** False when the message cannot be sent to this client (larger than its maximum packet size). */
  sendPublish(message: Message, qos: 0 | 1 | 2, packetId: number, retain: boolean, dup: boolean, subscriptionIds: number[] | null, cache: EncodingCache | null): boolean;
  sendPubrel(packetId: number): void;
  /** True when the client is so far behind that QoS 0 messages should be dropped. */
  congested(): boolean;
  /** Server-initiated disconnect (v5: DISCONNECT with the reason code, MQTT 5 §3.14); the session stays. */
  kick(reasonCode: number, cause: DisconnectCause, reasonString?: string): void;
}

/** What a session reports upward (the broker turns it into events and counters). */
export interface SessionObserver {
  /** The broker's clock: queued and retained messages expire by it (MQTT 5 §3.3.2.3.3). */
  readonly clock: Clock;
  messageDropped(session: Session, message: Message, reason: string): void;
  /** A QoS 1/2 message for this session went to the store: its publisher's ack waits for it (SPEC §2). */
  messageStored(): void;
}

/**
 * MQTT session state (MQTT 5 §4.1): subscriptions, outbound messages queued or in flight, and
 * inbound QoS 2 packet ids awaiting PUBREL. Outlives its connection when the expiry interval is
 * non-zero; only then is it written to the session store.
 */
export class Session {
  readonly key: string;
  readonly namespace: string;
  readonly clientId: string;
  /** Seconds; 0 = ends with the connection; NEVER_EXPIRES. */
  expiryInterval: number;
  /** Epoch ms of the last disconnect; 0 while connected. */
  disconnectedAt = 0;
  /** The client that last connected, as stored with the session (its subscriptions are re-checked for it after a restart). */
  owner: StoredClient | null = null;
  readonly queue = new OutboundQueue();
  link: SessionLink | null = null;
  /** Set by the broker's dispatch to merge overlapping subscriptions without a per-publish Map. */
  matchStamp = 0;
  matchQos = 0;
  matchRetain = false;
  matchSubscriptionIds: number[] | null = null;

  // Created on first use: most sessions never have an inbound QoS 2 id, many never subscribe or get
  // a QoS 1/2 delivery, and three empty collections cost ~0.5 KB (issue 15). Until then each is the
  // shared empty one, so readers stay monomorphic and need no null check; only writers create.
  #subscriptions = NO_SUBSCRIPTIONS as Map<string, Subscription>;
  #inflight = NO_INFLIGHT as Map<number, Outbound>;
  #inboundQos2 = NO_PACKET_IDS as Set<number>;
  readonly #store: SessionStore;
  readonly #observer: SessionObserver;
  readonly #caps: QueueCaps;
  #nextPacketId = 1;
  #seq = 0;
  /** Whether the store holds anything of this session (so ending it must delete). */
  #written = false;
  /** Whether the store holds a will of this session. */
  #willStored = false;

  constructor(namespace: string, clientId: string, expiryInterval: number, store: SessionStore, observer: SessionObserver, caps: QueueCaps) {
    this.namespace = namespace;
    this.clientId = clientId;
    this.key = sessionKey(namespace, clientId);
    this.expiryInterval = expiryInterval;
    this.#store = store;
    this.#observer = observer;
    this.#caps = caps;
  }

  /** By filter as the client sent it. */
  get subscriptions(): ReadonlyMap<string, Subscription> {
    return this.#subscriptions;
  }

  /** Outbound QoS 1/2 messages sent and not yet acknowledged, by packet id. */
  get inflight(): ReadonlyMap<number, Outbound> {
    return this.#inflight;
  }

  /** Inbound QoS 2 packet ids received and not yet released (PUBREL). */
  get inboundQos2(): ReadonlySet<number> {
    return this.#inboundQos2;
  }

  get persistent(): boolean {
    return this.expiryInterval > 0;
  }

  /** Writes the session row (expiry, disconnect time) when the session is persistent. */
  save(): void {
    if (!this.persistent) return;
    this.#written = true;
    this.#store.saveSession({ key: this.key, namespace: this.namespace, clientId: this.clientId, expiryInterval: this.expiryInterval, disconnectedAt: this.disconnectedAt, client: this.owner });
  }

  /** Writes everything (row, subscriptions, owed messages): used when a session becomes persistent. */
  saveAll(): void {
    if (!this.persistent) return;
    this.save();
    for (const sub of this.#subscriptions.values()) this.#store.setSubscription(this.key, sub.filter, sub.options);
    for (const entry of this.#inflight.values()) this.#persistAdd(entry);
    for (const entry of this.queue) this.#persistAdd(entry);
    for (const id of this.#inboundQos2) this.#store.addInboundQos2(this.key, id);
  }

  /** Stores the session's delayed will (persistent sessions only), or with null removes a stored one. */
  saveWill(will: StoredWill | null): void {
    if (will === null) {
      if (!this.#willStored) return;
      this.#willStored = false;
      this.#store.setWill(this.key, null);
      return;
    }
    if (!this.persistent) return;
    this.#written = true;
    this.#willStored = true;
    this.#store.setWill(this.key, will);
  }

  addSubscription(sub: Subscription): void {
    this.restoreSubscription(sub);
    if (this.persistent) this.#store.setSubscription(this.key, sub.filter, sub.options);
  }

  /** A subscription loaded from the store (start-up): kept, not written again. */
  restoreSubscription(sub: Subscription): void {
    if (this.#subscriptions === NO_SUBSCRIPTIONS) this.#subscriptions = new Map();
    this.#subscriptions.set(sub.filter, sub);
  }

  removeSubscription(filter: string): Subscription | undefined {
    const sub = this.#subscriptions.get(filter);
    if (sub === undefined) return undefined;
    this.#subscriptions.delete(filter);
    if (this.persistent) this.#store.deleteSubscription(this.key, filter);
    return sub;
  }

  /** Takes a message matched by one or more of this session's subscriptions. */
  offer(message: Message, qos: 0 | 1 | 2, retain: boolean, subscriptionIds: number[] | null, cache: EncodingCache | null): void {
    const link = this.link;
    if (qos === 0) {
      if (link !== null) {
        if (link.congested()) this.#observer.messageDropped(this, message, 'client is not reading (socket buffer full)');
        else link.sendPublish(message, 0, 0, retain, false, subscriptionIds, cache);
        return;
      }
      this.#enqueue({ seq: ++this.#seq, message, qos, subscriptionIds, retain, packetId: 0, state: 'queued', stored: false });
      return;
    }
    const entry: Outbound = { seq: ++this.#seq, message, qos, subscriptionIds, retain, packetId: 0, state: 'queued', stored: false };
    if (link !== null && this.queue.length === 0 && this.#inflight.size < link.sendQuota) {
      this.#send(link, entry, cache);
      return;
    }
    this.#enqueue(entry);
  }

  /** PUBACK from the client. Returns false for an unknown packet id. */
  acknowledgePuback(packetId: number): boolean {
    const entry = this.#inflight.get(packetId);
    if (entry === undefined || entry.qos !== 1) return false;
    this.#complete(entry);
    return true;
  }

  /** PUBREC from the client: answer PUBREL (or drop the message on a failure code). */
  acknowledgePubrec(packetId: number, failed: boolean): boolean {
    const entry = this.#inflight.get(packetId);
    if (entry === undefined || entry.qos !== 2) return false;
    if (failed) {
      this.#complete(entry);
      return true;
    }
    if (entry.state !== 'pubrel') {
      entry.state = 'pubrel';
      if (this.persistent) this.#store.updateOutbound(this.key, entry.seq, packetId, 'pubrel');
    }
    this.link?.sendPubrel(packetId);
    return true;
  }

  /** PUBCOMP from the client. */
  acknowledgePubcomp(packetId: number): boolean {
    const entry = this.#inflight.get(packetId);
    if (entry === undefined || entry.state !== 'pubrel') return false;
    this.#complete(entry);
    return true;
  }

  /** Connects the session to a channel; resends what was in flight (DUP) and drains the queue. */
  attach(link: SessionLink): void {
    this.link = link;
    this.disconnectedAt = 0;
    for (const entry of this.#inflight.values()) {
      if (entry.state === 'pubrel') link.sendPubrel(entry.packetId);
      else link.sendPublish(entry.message, entry.qos, entry.packetId, entry.retain, true, entry.subscriptionIds, null);
    }
    this.drain();
  }

  detach(): void {
    this.link = null;
  }

  /** Moves queued messages into flight while the client has send quota. */
  drain(): void {
    const link = this.link;
    if (link === null) return;
    const now = this.#observer.clock.now();
    while (this.queue.length > 0) {
      const head = this.queue.peek()!;
      if (head.qos > 0 && this.#inflight.size >= link.sendQuota) return;
      this.queue.shift();
      if (head.message.expiresAt !== 0 && head.message.expiresAt <= now) {
        if (head.qos > 0 && this.persistent) this.#store.removeOutbound(this.key, head.seq);
        this.#observer.messageDropped(this, head.message, 'expired while queued');
        continue;
      }
      if (head.qos === 0) link.sendPublish(head.message, 0, 0, head.retain, false, head.subscriptionIds, null);
      else this.#send(link, head, null);
    }
  }

  /** Restores state loaded from the store (start-up). */
  restore(stored: StoredSession): void {
    this.#written = true;
    this.#willStored = stored.will !== null;
    this.disconnectedAt = stored.disconnectedAt;
    this.owner = stored.client;
    for (const entry of stored.outbound) {
      const restored: Outbound = { ...entry, subscriptionIds: entry.subscriptionIds.length > 0 ? entry.subscriptionIds : null, stored: true };
      if (entry.packetId !== 0 && entry.state !== 'queued') this.#setInflight(restored);
      else this.queue.push({ ...restored, state: 'queued', packetId: 0 });
      if (entry.seq > this.#seq) this.#seq = entry.seq;
    }
    for (const id of stored.inboundQos2) this.#addInboundQos2(id);
  }

  addInboundQos2(packetId: number): void {
    this.#addInboundQos2(packetId);
    if (this.persistent) this.#store.addInboundQos2(this.key, packetId);
  }

  removeInboundQos2(packetId: number): boolean {
    if (!this.#inboundQos2.delete(packetId)) return false;
    if (this.persistent) this.#store.removeInboundQos2(this.key, packetId);
    return true;
  }

  /** Forgets everything owed (session end). The caller removes subscriptions from the router. */
  discard(): void {
    this.#inflight = NO_INFLIGHT as Map<number, Outbound>;
    this.queue.clear();
    this.#inboundQos2 = NO_PACKET_IDS as Set<number>;
    this.#subscriptions = NO_SUBSCRIPTIONS as Map<string, Subscription>;
    this.#willStored = false;
    if (this.#written) this.#store.deleteSession(this.key);
  }

  #send(link: SessionLink, entry: Outbound, cache: EncodingCache | null): void {
    const packetId = this.#allocatePacketId();
    entry.packetId = packetId;
    entry.state = 'publish';
    this.#setInflight(entry);
    if (this.persistent) {
      if (entry.stored) this.#store.updateOutbound(this.key, entry.seq, packetId, 'publish');
      else this.#persistAdd(entry);
    }
    if (!link.sendPublish(entry.message, entry.qos, packetId, entry.retain, false, entry.subscriptionIds, cache)) {
      // MQTT 5 §3.1.2.11.4: a message too large for the client is discarded as if delivered.
      this.#complete(entry);
      this.#observer.messageDropped(this, entry.message, 'larger than the client maximum packet size');
    }
  }

  #persistAdd(entry: Outbound): void {
    if (entry.qos === 0) return;
    entry.stored = true;
    this.#store.addOutbound(this.key, {
      seq: entry.seq,
      message: entry.message,
      qos: entry.qos,
      subscriptionIds: entry.subscriptionIds ?? [],
      retain: entry.retain,
      packetId: entry.packetId,
      state: entry.state,
    });
    this.#observer.messageStored();
  }

  /**
   * Queues `entry` within the session's caps (count and bytes): while it does not fit, the oldest
   * QoS 0 message makes room; when no QoS 0 is left, the new message is dropped. O(1) per message
   * dropped (outbound-queue.ts).
   */
  #enqueue(entry: Outbound): void {
    const { maxQueued, maxQueuedBytes } = this.#caps;
    const size = outboundBytes(entry);
    while (this.queue.length >= maxQueued || this.queue.bytes + size > maxQueuedBytes) {
      const full = this.queue.length >= maxQueued ? `${maxQueued} messages` : `${maxQueuedBytes} bytes`;
      const oldest = size > maxQueuedBytes ? undefined : this.queue.removeOldestQos0();
      if (oldest === undefined) {
        this.#observer.messageDropped(this, entry.message, `session queue full (${full})`);
        return;
      }
      this.#observer.messageDropped(this, oldest.message, `session queue full (${full}), oldest QoS 0 dropped`);
    }
    this.queue.push(entry);
    if (this.persistent) this.#persistAdd(entry);
  }

  #setInflight(entry: Outbound): void {
    if (this.#inflight === NO_INFLIGHT) this.#inflight = new Map();
    this.#inflight.set(entry.packetId, entry);
  }

  #addInboundQos2(packetId: number): void {
    if (this.#inboundQos2 === NO_PACKET_IDS) this.#inboundQos2 = new Set();
    this.#inboundQos2.add(packetId);
  }

  #complete(entry: Outbound): void {
    this.#inflight.delete(entry.packetId);
    if (this.persistent) this.#store.removeOutbound(this.key, entry.seq);
    this.drain();
  }

  #allocatePacketId(): number {
    for (let i = 0; i < 65_535; i++) {
      const id = this.#nextPacketId;
      this.#nextPacketId = id === 65_535 ? 1 : id + 1;
      if (!this.#inflight.has(id)) return id;
    }
    throw new Error(`session ${this.clientId}: no free packet identifier`);
  }
}

/** How much a session may queue beyond what is in flight (BrokerLimits). */
export interface QueueCaps {
  readonly maxQueued: number;
  readonly maxQueuedBytes: number;
}

export function sessionKey(namespace: string, clientId: string): string {
  return namespace + '\u0000' + clientId;
}
