import type { StoredClient } from '../client-info.ts';
import type { DurabilityBarrier } from '../durability.ts';
import type { Message } from '../message.ts';

/** Subscription options as granted (MQTT 5 §3.8.3.1); v3 subscriptions use the defaults. */
export interface SubscriptionOptions {
  qos: 0 | 1 | 2;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  /** MQTT 5 subscription identifier, 0 when absent. */
  subscriptionId: number;
}

/** An outbound message a session still owes its client: queued, or in flight awaiting an ack. */
export interface StoredOutbound {
  /** Monotonic per session; the key under which the store keeps the entry. */
  seq: number;
  message: Message;
  /** QoS the message is delivered with (min of publish QoS and granted QoS). */
  qos: 1 | 2;
  /** Subscription identifiers to send with it (MQTT 5 §3.3.4). */
  subscriptionIds: number[];
  /** Retain flag as it goes out (retain-as-published / retained delivery). */
  retain: boolean;
  /** 0 while queued; the packet id once sent. */
  packetId: number;
  /** 'publish': awaiting PUBACK/PUBREC; 'pubrel': PUBREC received, awaiting PUBCOMP. */
  state: 'queued' | 'publish' | 'pubrel';
}

/**
 * A will with a delay (MQTT 5 §3.1.3.2.2), kept with its session from CONNECT so that neither a
 * restart nor a crash loses it. Its delay runs from the session's `disconnectedAt` (from the start
 * of the next process when that is 0: the crash ended the connection).
 */
export interface StoredWill {
  /** The client as it connected; `data` is the JSON of `ClientInfo.data` (see BrokerHooks.restoreClient). */
  client: StoredClient;
  message: Message;
  /** Seconds, as the client asked (the broker takes the smaller of this and the session expiry). */
  delay: number;
}

/** The session row itself: what `saveSession` writes. */
export type SessionRow = Pick<StoredSession, 'key' | 'namespace' | 'clientId' | 'expiryInterval' | 'disconnectedAt' | 'client'>;

export interface StoredSession {
  /** namespace + '\u0000' + clientId. */
  key: string;
  namespace: string;
  clientId: string;
  /** Seconds; 0xFFFFFFFF = never expires. */
  expiryInterval: number;
  /** Epoch ms of the last disconnect, 0 while (or if last seen) connected. */
  disconnectedAt: number;
  /**
   * The client that last connected to the session (null in rows written before it was kept): after a
   * restart the broker asks authorizeSubscribe again for it, since the delivery filters a grant came
   * with are not stored.
   */
  client: StoredClient | null;
  subscriptions: Array<[filter: string, options: SubscriptionOptions]>;
  /** Ordered by seq. */
  outbound: StoredOutbound[];
  /** Inbound QoS 2 packet ids received (PUBREC sent) but not yet released by PUBREL. */
  inboundQos2: number[];
  /** The session's delayed will, or null. */
  will: StoredWill | null;
}

/**
 * Persistence for sessions that outlive their connection (v3 clean=false, v5 session expiry > 0).
 * Only such sessions are written. Mutations are fire-and-forget: a durable implementation batches
 * them (write-behind, one transaction per tick) so the QoS flow never waits on disk; `flush` forces
 * the batch out, and `whenDurable` tells a waiter (a publisher's PUBACK/PUBREC, SPEC §2) once the
 * mutations issued so far are committed. Implementations: `MemorySessionStore` (nothing survives a
 * restart) and `SqliteSessionStore`; both pass test/broker/session-store.contract.ts.
 */
export interface SessionStore extends DurabilityBarrier {
  /** Every stored session, with subscriptions and outbound messages, for start-up. */
  loadAll(): Promise<StoredSession[]>;
  /** Creates or replaces the session row (expiry, disconnectedAt); keeps subscriptions and messages. */
  saveSession(session: SessionRow): void;
  /** Removes the session, its subscriptions, its messages and its will. */
  deleteSession(key: string): void;
  setSubscription(key: string, filter: string, options: SubscriptionOptions): void;
  deleteSubscription(key: string, filter: string): void;
  /** Adds an outbound entry (state 'queued' or 'publish'). */
  addOutbound(key: string, entry: StoredOutbound): void;
  /** Records that an entry was sent (packet id assigned) or moved to 'pubrel'. */
  updateOutbound(key: string, seq: number, packetId: number, state: StoredOutbound['state']): void;
  removeOutbound(key: string, seq: number): void;
  addInboundQos2(key: string, packetId: number): void;
  removeInboundQos2(key: string, packetId: number): void;
  /** Stores (replacing) or, with null, removes the session's delayed will. */
  setWill(key: string, will: StoredWill | null): void;
  /** Resolves once every mutation issued so far is durable. */
  flush(): Promise<void>;
  close(): Promise<void>;
}
