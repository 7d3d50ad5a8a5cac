import { randomBytes } from 'node:crypto';
import type { IConnectPacket } from 'mqtt-packet';
import type { BrokerLimits } from '../broker-options.ts';
import type { ClientInfo } from '../client-info.ts';
import { decodeControl, encodeConnackAccepted, peekProtocolLevel } from '../codec/control-codec.ts';
import { checkConnectStrings } from '../codec/connect-strings.ts';
import { readConnectUserProperties, type ConnectUserProperties } from '../codec/connect-user-properties.ts';
import { PacketType } from '../codec/packet-type.ts';
import { ProtocolViolation, malformed, protocolError } from '../errors.ts';
import type { AuthenticateResult, ConnectRequest, DisconnectCause } from '../hooks.ts';
import type { Message, MessageProperties, UserProperty } from '../message.ts';
import { ConnackV3, ReasonCode, connackCodeForV3, isFailure } from '../reason-codes.ts';
import { checkTopicName } from '../routing/topic.ts';
import { NEVER_EXPIRES } from '../session/session.ts';
import { type Channel, ChannelState } from './channel.ts';
import type { Will } from './will.ts';

const NO_USER_PROPERTIES: ConnectUserProperties = { connect: undefined, will: undefined };

/** CONNECT (MQTT 5 §3.1): validation, authentication hook, takeover, session start or resume, CONNACK. */
export function handleConnect(channel: Channel, frame: Buffer, bodyOffset: number): void {
  const { name, level } = peekProtocolLevel(frame, bodyOffset);
  if ((name === 'MQTT' || name === 'MQIsdp') && level !== 3 && level !== 4 && level !== 5 && level !== 0x83 && level !== 0x84) {
    // MQTT 3.1.1 §3.1.2.2: answer an unknown level with return code 0x01, then close.
    channel.write(Buffer.from([PacketType.Connack << 4, 2, 0, ConnackV3.UnacceptableProtocolVersion]));
    channel.close('protocol-error', ReasonCode.UnsupportedProtocolVersion, `unsupported protocol level ${level}`);
    return;
  }
  const packet = decodeControl(frame, 0);
  if (packet.cmd !== 'connect') throw malformed('CONNECT did not decode as CONNECT');
  const version = (packet.protocolVersion ?? 4) as 3 | 4 | 5;
  channel.protocolVersion = version;
  const v5 = version === 5;
  const props = packet.properties;
  if (suspect(packet.clientId) || suspect(packet.username) || suspect(packet.will?.topic)) checkConnectStrings(frame, bodyOffset, version);
  const userProperties = v5 ? readConnectUserProperties(frame, bodyOffset) : NO_USER_PROPERTIES;

  if (v5 && props?.authenticationMethod !== undefined) {
    refuse(channel, connectRequest(channel, packet, packet.clientId, userProperties), ReasonCode.BadAuthenticationMethod, 'enhanced authentication is not supported', 'not-authorized');
    return;
  }
  let clientId = packet.clientId;
  let assignedClientId: string | undefined;
  const cleanStart = packet.clean !== false;
  if (clientId.length === 0) {
    if (!v5 && !cleanStart) {
      // MQTT 3.1.1 §3.1.3.1: an empty client id needs clean session.
      refuse(channel, connectRequest(channel, packet, clientId, userProperties), ReasonCode.ClientIdentifierNotValid, 'an empty client identifier requires clean session', 'protocol-error');
      return;
    }
    clientId = `bmq-${randomBytes(9).toString('base64url')}`;
    if (v5) assignedClientId = clientId;
  }
  const will = packet.will ? readWill(channel, packet.will, userProperties.will) : null;

  const limits = channel.broker.limits;
  let expiry = v5 ? props?.sessionExpiryInterval ?? 0 : cleanStart ? 0 : NEVER_EXPIRES;
  const requestedExpiry = expiry;
  if (expiry > limits.maxSessionExpiry) expiry = limits.maxSessionExpiry;

  if (v5) {
    if (props?.receiveMaximum === 0) throw protocolError('receive maximum must not be 0');
    if (props?.maximumPacketSize === 0) throw protocolError('maximum packet size must not be 0');
    channel.sendQuota = Math.min(limits.maxInflight, props?.receiveMaximum ?? 65_535);
    if (props?.maximumPacketSize !== undefined) channel.clientMaximumPacketSize = props.maximumPacketSize;
    channel.aliasOutMaximum = props?.topicAliasMaximum ?? 0;
  } else {
    channel.sendQuota = limits.maxInflight;
  }

  const request = connectRequest(channel, packet, clientId, userProperties);
  if (!v5 && exceedsMaxKeepalive(request.keepalive, limits.maxKeepalive)) {
    // v3 cannot be told a server keep alive; Mosquitto 2's max_keepalive refuses such a client with
    // "identifier rejected" (its handle_connect.c), and so do we, before any session is touched.
    const reasonString = `keep alive ${request.keepalive} s is not within the server's maximum of ${limits.maxKeepalive} s (0 = none is not allowed either)`;
    refuse(channel, request, ReasonCode.ClientIdentifierNotValid, reasonString, 'protocol-error');
    return;
  }
  const authenticate = channel.broker.hooks.authenticate;
  if (authenticate === undefined) {
    accept(channel, request, { ok: true }, will, expiry, requestedExpiry, assignedClientId);
    return;
  }
  let result: AuthenticateResult | Promise<AuthenticateResult>;
  try {
    result = authenticate(request);
  } catch (err) {
    result = { ok: false, reasonCode: ReasonCode.UnspecifiedError, reasonString: `authentication failed: ${(err as Error).message}` };
  }
  if (!(result instanceof Promise)) {
    accept(channel, request, result, will, expiry, requestedExpiry, assignedClientId);
    return;
  }
  channel.state = ChannelState.Authenticating;
  result.then(
    (outcome) => accept(channel, request, outcome, will, expiry, requestedExpiry, assignedClientId),
    (err: Error) => accept(channel, request, { ok: false, reasonCode: ReasonCode.UnspecifiedError, reasonString: `authentication failed: ${err.message}` }, will, expiry, requestedExpiry, assignedClientId),
  );
}

function accept(
  channel: Channel,
  request: ConnectRequest,
  outcome: AuthenticateResult,
  will: Omit<Will, 'client'> | null,
  expiry: number,
  requestedExpiry: number,
  assignedClientId: string | undefined,
): void {
  if (channel.state === ChannelState.Closed) return;
  const broker = channel.broker;
  if (!outcome.ok) {
    refuse(channel, request, isFailure(outcome.reasonCode) ? outcome.reasonCode : ReasonCode.NotAuthorized, outcome.reasonString, 'not-authorized');
    return;
  }
  const v5 = channel.protocolVersion === 5;
  const namespace = outcome.namespace ?? '';
  const client: ClientInfo = {
    clientId: request.clientId,
    namespace,
    username: request.username,
    protocolVersion: channel.protocolVersion,
    remoteAddress: channel.remoteAddress,
    transport: channel.transport.kind,
    data: outcome.data,
  };
  const opened = broker.sessions.open(channel, client, request.cleanStart, expiry);
  if ('refused' in opened) {
    // The only refusal of the registry: a client id taken over in a loop (takeover-guard.ts).
    refuse(channel, request, opened.refused, opened.reasonString, 'rate-limit');
    return;
  }
  const { session, sessionPresent } = opened;
  channel.client = client;
  channel.will = will === null ? null : { ...will, client, message: { ...will.message, origin: '' } };
  broker.sessions.keepWill(session, channel.will);
  channel.session = session;
  channel.state = ChannelState.Connected;
  channel.stats = broker.stats.namespace(namespace);
  broker.stats.clientConnected(client, channel.stats);

  const limits = broker.limits;
  const serverKeepAlive = v5 ? serverKeepAliveFor(request.keepalive, limits) : undefined;
  const keepalive = serverKeepAlive ?? request.keepalive;
  channel.lastActivity = broker.clock.now();
  channel.startKeepalive(keepalive);

  if (v5) {
    channel.writePacket({
      cmd: 'connack',
      sessionPresent,
      reasonCode: ReasonCode.Success,
      properties: {
        receiveMaximum: limits.receiveMaximum,
        maximumPacketSize: limits.maximumPacketSize,
        topicAliasMaximum: limits.topicAliasMaximum,
        retainAvailable: true,
        wildcardSubscriptionAvailable: true,
        subscriptionIdentifiersAvailable: true,
        sharedSubscriptionAvailable: true,
        ...(assignedClientId !== undefined ? { assignedClientIdentifier: assignedClientId } : {}),
        ...(serverKeepAlive !== undefined ? { serverKeepAlive } : {}),
        ...(expiry !== requestedExpiry ? { sessionExpiryInterval: expiry } : {}),
      },
    });
  } else {
    // MQTT 3.1 has no session-present flag: that CONNACK byte is reserved and must stay 0.
    channel.write(encodeConnackAccepted(sessionPresent && channel.protocolVersion === 4));
  }

  broker.emit('client.connack', request, { reasonCode: ReasonCode.Success, sessionPresent });
  broker.emit('client.connect', client, {
    cleanStart: request.cleanStart,
    keepalive,
    sessionExpiry: expiry,
    will: will === null ? null : { topic: will.message.topic, qos: will.message.qos, retain: will.message.retain, delay: will.delay },
  });
  session.attach(channel);
  channel.resumeHeldFrames();
}

/** A string mqtt-packet decoded that may hide ill-formed UTF-8 (U+FFFD) or holds U+0000. */
function suspect(value: string | undefined): boolean {
  return value !== undefined && (value.includes('\uFFFD') || value.includes('\u0000'));
}

/** Whether a requested keep alive breaks the --max-keepalive cap (0 = no cap); 0 means "none" and breaks it. */
function exceedsMaxKeepalive(keepalive: number, cap: number): boolean {
  return cap > 0 && (keepalive === 0 || keepalive > cap);
}

/**
 * The Server Keep Alive a v5 client is told (MQTT 5 §3.2.2.3.14; it must then use it, and we hold it
 * to 1.5x that), or undefined to keep its own: the configured override, then capped by maxKeepalive.
 */
function serverKeepAliveFor(requested: number, limits: BrokerLimits): number | undefined {
  const override = limits.serverKeepAlive > 0;
  let keepalive = override ? limits.serverKeepAlive : requested;
  if (exceedsMaxKeepalive(keepalive, limits.maxKeepalive)) keepalive = limits.maxKeepalive;
  return override || keepalive !== requested ? keepalive : undefined;
}

/** The CONNECT as hooks and the `client.connack` event see it. */
function connectRequest(channel: Channel, packet: IConnectPacket, clientId: string, userProperties: ConnectUserProperties): ConnectRequest {
  return {
    clientId,
    username: packet.username,
    password: packet.password,
    protocolVersion: channel.protocolVersion,
    remoteAddress: channel.remoteAddress,
    transport: channel.transport.kind,
    cleanStart: packet.clean !== false,
    keepalive: packet.keepalive ?? 0,
    userProperties: userProperties.connect,
  };
}

/**
 * Sends a refusing CONNACK and closes (MQTT 5 §3.2.2.2: a failure CONNACK ends the connection).
 * Every refusal is reported on `client.connack` with its own reason code, and closes with its own cause.
 */
function refuse(channel: Channel, request: ConnectRequest, reasonCode: number, reasonString: string | undefined, cause: DisconnectCause): void {
  channel.broker.emit('client.connack', request, { reasonCode, sessionPresent: false, reasonString });
  const v5 = channel.protocolVersion === 5;
  channel.writePacket(
    v5
      ? { cmd: 'connack', sessionPresent: false, reasonCode, properties: reasonString !== undefined ? { reasonString } : undefined }
      : { cmd: 'connack', sessionPresent: false, returnCode: connackCodeForV3(reasonCode) },
  );
  channel.close(cause, reasonCode, reasonString);
}

type ConnectWill = NonNullable<IConnectPacket['will']>;

/** `userProperties`: the will's, in wire order (connect-user-properties.ts). */
function readWill(channel: Channel, will: ConnectWill, userProperties: UserProperty[] | undefined): Omit<Will, 'client'> {
  const qos = will.qos ?? 0;
  if (qos > 2) throw malformed('will QoS 3');
  const problem = checkTopicName(will.topic, channel.broker.limits);
  if (problem !== null) throw new ProtocolViolation(ReasonCode.TopicNameInvalid, `will ${problem}`);
  const p = will.properties;
  let properties: MessageProperties | null = null;
  if (p !== undefined && channel.protocolVersion === 5) {
    properties = {};
    if (p.payloadFormatIndicator !== undefined) properties.payloadFormatIndicator = p.payloadFormatIndicator ? 1 : 0;
    if (p.messageExpiryInterval !== undefined) properties.messageExpiryInterval = p.messageExpiryInterval;
    if (p.contentType !== undefined) properties.contentType = p.contentType;
    if (p.responseTopic !== undefined) properties.responseTopic = p.responseTopic;
    if (p.correlationData !== undefined) properties.correlationData = Buffer.from(p.correlationData);
    if (userProperties !== undefined) properties.userProperties = userProperties;
    if (Object.keys(properties).length === 0) properties = null;
  }
  const payload = Buffer.from(will.payload);
  const message: Message = {
    topic: will.topic,
    payload,
    qos: qos as 0 | 1 | 2,
    retain: will.retain === true,
    properties,
    // The expiry clock of a will starts when it is published (MQTT 5 §3.1.3.2.4); see Broker.publishWill.
    expiresAt: 0,
    origin: '',
  };
  return { message, delay: channel.protocolVersion === 5 ? p?.willDelayInterval ?? 0 : 0 };
}
