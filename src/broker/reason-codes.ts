/**
 * MQTT reason codes, named. MQTT 5 §2.4 lists which packets may carry each one; v3.1.1
 * CONNACK return codes live in `ConnackV3`. Logic compares against these names, never bare numbers.
 */
export const ReasonCode = {
  Success: 0x00, // CONNACK PUBACK PUBREC PUBREL PUBCOMP UNSUBACK AUTH; also "Normal disconnection", "Granted QoS 0"
  GrantedQos1: 0x01, // SUBACK
  GrantedQos2: 0x02, // SUBACK
  DisconnectWithWill: 0x04, // DISCONNECT (client to server)
  NoMatchingSubscribers: 0x10, // PUBACK PUBREC
  NoSubscriptionExisted: 0x11, // UNSUBACK
  UnspecifiedError: 0x80, // CONNACK PUBACK PUBREC SUBACK UNSUBACK DISCONNECT
  MalformedPacket: 0x81, // CONNACK DISCONNECT
  ProtocolError: 0x82, // CONNACK DISCONNECT
  ImplementationSpecificError: 0x83, // CONNACK PUBACK PUBREC SUBACK UNSUBACK DISCONNECT
  UnsupportedProtocolVersion: 0x84, // CONNACK
  ClientIdentifierNotValid: 0x85, // CONNACK
  BadUserNameOrPassword: 0x86, // CONNACK
  NotAuthorized: 0x87, // CONNACK PUBACK PUBREC SUBACK UNSUBACK DISCONNECT
  ServerUnavailable: 0x88, // CONNACK
  ServerBusy: 0x89, // CONNACK DISCONNECT
  Banned: 0x8a, // CONNACK
  ServerShuttingDown: 0x8b, // DISCONNECT
  BadAuthenticationMethod: 0x8c, // CONNACK DISCONNECT
  KeepAliveTimeout: 0x8d, // DISCONNECT
  SessionTakenOver: 0x8e, // DISCONNECT
  TopicFilterInvalid: 0x8f, // SUBACK UNSUBACK DISCONNECT
  TopicNameInvalid: 0x90, // CONNACK PUBACK PUBREC DISCONNECT
  PacketIdentifierInUse: 0x91, // PUBACK PUBREC SUBACK UNSUBACK
  PacketIdentifierNotFound: 0x92, // PUBREL PUBCOMP
  ReceiveMaximumExceeded: 0x93, // DISCONNECT
  TopicAliasInvalid: 0x94, // DISCONNECT
  PacketTooLarge: 0x95, // CONNACK DISCONNECT
  MessageRateTooHigh: 0x96, // DISCONNECT
  QuotaExceeded: 0x97, // CONNACK PUBACK PUBREC SUBACK DISCONNECT
  AdministrativeAction: 0x98, // DISCONNECT
  PayloadFormatInvalid: 0x99, // CONNACK PUBACK PUBREC DISCONNECT
  RetainNotSupported: 0x9a, // CONNACK DISCONNECT
  QosNotSupported: 0x9b, // CONNACK DISCONNECT
  UseAnotherServer: 0x9c, // CONNACK DISCONNECT
  ServerMoved: 0x9d, // CONNACK DISCONNECT
  SharedSubscriptionsNotSupported: 0x9e, // SUBACK DISCONNECT
  ConnectionRateExceeded: 0x9f, // CONNACK DISCONNECT
  MaximumConnectTime: 0xa0, // DISCONNECT
  SubscriptionIdentifiersNotSupported: 0xa1, // SUBACK DISCONNECT
  WildcardSubscriptionsNotSupported: 0xa2, // SUBACK DISCONNECT
} as const;
export type ReasonCode = (typeof ReasonCode)[keyof typeof ReasonCode];

/** MQTT 3.1.1 §3.2.2.3 CONNACK return codes. */
export const ConnackV3 = {
  Accepted: 0x00,
  UnacceptableProtocolVersion: 0x01,
  IdentifierRejected: 0x02,
  ServerUnavailable: 0x03,
  BadUserNameOrPassword: 0x04,
  NotAuthorized: 0x05,
} as const;

/** v3 SUBACK failure return code (MQTT 3.1.1 §3.9.3). */
export const SubackFailureV3 = 0x80;

/** Maps a v5 CONNACK reason code onto the closest v3 return code. */
export function connackCodeForV3(code: number): number {
  switch (code) {
    case ReasonCode.Success: return ConnackV3.Accepted;
    case ReasonCode.UnsupportedProtocolVersion: return ConnackV3.UnacceptableProtocolVersion;
    case ReasonCode.ClientIdentifierNotValid: return ConnackV3.IdentifierRejected;
    case ReasonCode.BadUserNameOrPassword: return ConnackV3.BadUserNameOrPassword;
    case ReasonCode.NotAuthorized: case ReasonCode.Banned: case ReasonCode.BadAuthenticationMethod:
      return ConnackV3.NotAuthorized;
    default: return ConnackV3.ServerUnavailable;
  }
}

/** True when a reason code reports failure (MQTT 5 §2.4: values 0x80 and above). */
export function isFailure(code: number): boolean {
  return code >= 0x80;
}
