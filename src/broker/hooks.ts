import type { ClientInfo } from './client-info.ts';
import type { Message, UserProperty } from './message.ts';

/** The CONNECT as the platform sees it when deciding whether to let a client in. */
export interface ConnectRequest {
  readonly clientId: string;
  readonly username: string | undefined;
  readonly password: Buffer | undefined;
  readonly protocolVersion: 3 | 4 | 5;
  readonly remoteAddress: string;
  readonly transport: ClientInfo['transport'];
  readonly cleanStart: boolean;
  readonly keepalive: number;
  readonly userProperties: UserProperty[] | undefined;
}

export type AuthenticateResult =
  | { readonly ok: true; readonly namespace?: string; readonly data?: unknown }
  | { readonly ok: false; readonly reasonCode: number; readonly reasonString?: string };

/**
 * How the platform plugs into the engine. Every hook is optional; a missing hook allows. A hook may
 * answer synchronously (fast path, no promise allocated) or with a promise.
 */
export interface BrokerHooks {
  /** Decides a CONNECT. Default: everyone in, namespace ''. */
  authenticate?(request: ConnectRequest): AuthenticateResult | Promise<AuthenticateResult>;
  /** Returns a reason code: Success, or a failure (e.g. NotAuthorized, QuotaExceeded) that drops the publish. */
  authorizePublish?(client: ClientInfo, message: Message): number | Promise<number>;
  /**
   * Returns the QoS to grant (0..2, may downgrade) or a failure reason code (>= 0x80); or a
   * `SubscribeGrant` when only some of the topics the filter matches may be delivered.
   */
  authorizeSubscribe?(client: ClientInfo, filter: string, qos: 0 | 1 | 2): SubscribeVerdict | Promise<SubscribeVerdict>;
  /**
   * Runs after a publish is routed. A returned promise holds the PUBACK/PUBREC until it settles:
   * resolve with nothing or Success to acknowledge, a failure code to refuse (v5 gets that code; v3
   * gets no acknowledgement so the client retries). A rejection counts as UnspecifiedError.
   * Instead of a promise, a hook may take the acknowledgement with `acks.hold()` and settle it later
   * (what it returns is then ignored): no promise or closure per message on a busy data path.
   */
  onPublish?(client: ClientInfo, message: Message, acks: AckControl): void | number | Promise<void | number>;
  /**
   * A delayed will outlives the process (MQTT 5 §3.1.3.2.2; SPEC §2): after a restart it comes back
   * with the client it was set by, `data` parsed from the JSON it was stored as. Return the client to
   * publish it as (`data` rebuilt, credentials checked again), or null to drop the will. Runs during
   * `Broker.start`. Default: the client as stored.
   */
  restoreClient?(client: ClientInfo): ClientInfo | null;
}

/**
 * Decides, per message, whether a granted subscription may receive it. Kept on the subscription
 * and asked at delivery: live dispatch (before an offline session queues it), each candidate of a
 * shared group, and retained messages sent on subscribe. A withheld message is reported as
 * `message.dropped` with `reason`. Decided once at SUBSCRIBE: a subscription without one pays a
 * single null check per message.
 */
export interface DeliveryFilter {
  /** The `message.dropped` reason for a withheld message (e.g. 'acl'). */
  readonly reason: string;
  allows(topic: string): boolean;
}

/** A granted subscription whose messages are checked one by one at delivery. */
export interface SubscribeGrant {
  readonly qos: 0 | 1 | 2;
  readonly deliver: DeliveryFilter | null;
}

/** authorizeSubscribe's answer: a granted QoS or failure code, or a grant with a delivery filter. */
export type SubscribeVerdict = number | SubscribeGrant;

/** A QoS 1/2 publish's acknowledgement, taken by an onPublish hook. */
export interface PublishAck {
  /** Once: Success to acknowledge, a failure code to refuse (v5 gets the code; v3 gets nothing and resends). */
  settle(code: number): void;
}

/** What onPublish may do with the acknowledgement of the publish it is handling. */
export interface AckControl {
  /** Takes the acknowledgement (its place among the client's acknowledgements is kept); null for QoS 0. Only during the hook call. */
  hold(): PublishAck | null;
}

/** Why a connection ended, as reported on the event stream. */
export type DisconnectCause =
  | 'client' // DISCONNECT from the client
  | 'client-with-will' // v5 DISCONNECT 0x04
  | 'connection-lost' // socket closed without DISCONNECT
  | 'keepalive-timeout'
  | 'connect-timeout'
  | 'takeover'
  | 'protocol-error'
  | 'packet-too-large'
  | 'not-authorized'
  | 'administrative' // kicked by the platform
  | 'revoked' // its credentials were revoked or expired
  | 'rate-limit'
  | 'server-shutdown';

export interface BrokerEvents {
  'client.connect': [client: ClientInfo, detail: { cleanStart: boolean; keepalive: number; sessionExpiry: number; will: { topic: string; qos: number; retain: boolean; delay: number } | null }];
  'client.connack': [request: ConnectRequest, detail: { reasonCode: number; sessionPresent: boolean; reasonString?: string }];
  'client.subscribe': [client: ClientInfo, subscriptions: Array<{ filter: string; qos: number; result: number }>];
  'client.unsubscribe': [client: ClientInfo, filters: string[]];
  'client.disconnect': [client: ClientInfo, detail: { cause: DisconnectCause; reasonCode?: number; detail?: string }];
  /**
   * A protocol violation or malformed input; the connection is closed. `client` is null before
   * CONNECT. `fault` is set when the error was the broker's own (reason 0x83): a bug to log and fix.
   */
  'client.error': [client: ClientInfo | null, detail: { remoteAddress: string; reasonCode: number; message: string; fault?: unknown }];
  'message.publish': [client: ClientInfo | null, message: Message];
  'message.delivered': [client: ClientInfo, message: Message, qos: number];
  /** A client id is being taken over in a loop and is refused until `blockedUntil` (SPEC §2). */
  'client.takeover-storm': [detail: { namespace: string; clientId: string; addresses: [previous: string, next: string]; blockedUntil: number }];
  /** A message not delivered to a subscriber (queue full, expired, too large for the client, ...). */
  'message.dropped': [client: ClientInfo | { clientId: string; namespace: string }, message: Message, reason: string];
}
