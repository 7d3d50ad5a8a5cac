/** One user property pair. Kept as an ordered list: MQTT 5 §3.3.2.3.7 requires order to be preserved. */
export type UserProperty = [name: string, value: string];

/** MQTT 5 PUBLISH properties that travel with a message from publisher to subscribers. */
export interface MessageProperties {
  payloadFormatIndicator?: 0 | 1;
  /** Seconds, as the publisher sent it; the remaining lifetime is computed from `Message.expiresAt`. */
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
  userProperties?: UserProperty[];
}

/**
 * An application message inside the broker. Immutable once routed: one object is shared by every
 * subscriber, queue entry and retained slot, so nothing may mutate it after creation.
 */
export interface Message {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: 0 | 1 | 2;
  readonly retain: boolean;
  /** null when the message carries no MQTT 5 properties (the common, fast case). */
  readonly properties: MessageProperties | null;
  /** Epoch ms after which the message must not be delivered; 0 = never expires. */
  readonly expiresAt: number;
  /** Session key of the publishing client ('' for broker-originated), used for no-local. */
  readonly origin: string;
}
