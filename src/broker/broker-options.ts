import type { Clock } from './clock.ts';
import type { BrokerHooks } from './hooks.ts';
import type { RetainedStore } from './retained/retained-store.ts';
import type { SessionStore } from './session/session-store.ts';

/** Engine limits. Every value has a unit and a default; see DEFAULT_LIMITS. */
export interface BrokerLimits {
  /** Largest packet accepted, bytes (checked from the fixed header before the body is buffered). */
  maximumPacketSize: number;
  /** Time a new connection has to send CONNECT, ms. */
  connectTimeoutMs: number;
  /** Outbound QoS 1/2 messages in flight per session (further capped by the client's receive maximum). */
  maxInflight: number;
  /** Inbound QoS 1/2 publishes a client may have unacknowledged (our receive maximum, MQTT 5 §3.2.2.3.3). */
  receiveMaximum: number;
  /**
   * Inbound QoS 1/2 publishes of one client whose acknowledgement a hook still holds (the platform is
   * storing them). At this many the broker stops reading the client's socket, and reads again once
   * half of them are acknowledged: TCP flow control then slows the client down, where a v3 client (no
   * receive maximum) could otherwise queue work without bound. The default equals receiveMaximum, so
   * a v3 client gets the bound a v5 client is told.
   */
  maxHeldAcks: number;
  /** Messages queued per session beyond those in flight. When full, the oldest QoS 0 goes first, then new messages are dropped. */
  maxQueued: number;
  /**
   * Payload and topic bytes queued per session beyond those in flight, beside `maxQueued`: many
   * offline sessions with large messages would otherwise hold memory without bound. Same policy.
   */
  maxQueuedBytes: number;
  /** Bytes buffered on a socket above which QoS 0 messages to that client are dropped (slow consumer). */
  maxSocketBufferBytes: number;
  /** Topic name / filter length, UTF-8 bytes. */
  maxTopicLength: number;
  /** Topic levels. */
  maxTopicDepth: number;
  /** Subscriptions per session. */
  maxSubscriptions: number;
  /** Topic aliases a client may use towards us (MQTT 5 Topic Alias Maximum). */
  topicAliasMaximum: number;
  /** Server keep alive override, seconds; 0 = accept the client's value. */
  serverKeepAlive: number;
  /**
   * Largest keep alive a client may use, seconds; 0 = no cap (Mosquitto's `max_keepalive`). A v5
   * client asking for more, or for 0, is told this value as Server Keep Alive and held to it; a v3
   * client is refused with CONNACK 0x02, since v3 has no way to tell it (what Mosquitto 2 does).
   */
  maxKeepalive: number;
  /** Upper bound on session expiry, seconds (also applied to v3 clean=false sessions). */
  maxSessionExpiry: number;
  /** Takeovers of one client id allowed per minute before it is refused (takeover storm). */
  takeoverLimit: number;
  /** How long a storming client id is refused, ms. */
  takeoverBackoffMs: number;
}

export const DEFAULT_LIMITS: BrokerLimits = {
  maximumPacketSize: 256 * 1024,
  connectTimeoutMs: 10_000,
  maxInflight: 1000,
  receiveMaximum: 1000,
  maxHeldAcks: 1000,
  maxQueued: 10_000,
  maxQueuedBytes: 16 * 1024 * 1024,
  maxSocketBufferBytes: 8 * 1024 * 1024,
  maxTopicLength: 65_535,
  maxTopicDepth: 128,
  maxSubscriptions: 1000,
  topicAliasMaximum: 65_535,
  serverKeepAlive: 0,
  maxKeepalive: 0,
  maxSessionExpiry: 0xffffffff,
  takeoverLimit: 10,
  takeoverBackoffMs: 60_000,
};

export interface BrokerOptions {
  hooks?: BrokerHooks;
  limits?: Partial<BrokerLimits>;
  sessionStore?: SessionStore;
  retainedStore?: RetainedStore;
  /** Time for every timer and expiry of the engine (clock.ts). Default: systemClock (Date.now, global timers). */
  clock?: Clock;
}
