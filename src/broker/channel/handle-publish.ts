import type { ClientInfo } from '../client-info.ts';
import { PacketType } from '../codec/packet-type.ts';
import type { DecodedPublish } from '../codec/publish-codec.ts';
import { ProtocolViolation, protocolError } from '../errors.ts';
import type { Message } from '../message.ts';
import { ReasonCode, isFailure } from '../reason-codes.ts';
import { checkTopicName } from '../routing/topic.ts';
import type { Channel } from './channel.ts';

/**
 * Inbound PUBLISH as a pipeline that stops at the first reason code (STYLE habit 7):
 * topic alias → topic check → duplicate QoS 2 → receive maximum → authorization → route →
 * onPublish hook (which may hold the acknowledgement until the platform has made data durable).
 */
export function handlePublish(channel: Channel, p: DecodedPublish): void {
  const broker = channel.broker;
  const session = channel.session!;
  const v5 = channel.protocolVersion === 5;

  let topic = p.topic;
  if (p.topicAlias !== 0) {
    if (!v5 || p.topicAlias > broker.limits.topicAliasMaximum) {
      throw new ProtocolViolation(ReasonCode.TopicAliasInvalid, `topic alias ${p.topicAlias} is outside 1..${broker.limits.topicAliasMaximum}`);
    }
    if (topic.length === 0) {
      const known = channel.aliasesIn?.get(p.topicAlias);
      if (known === undefined) throw protocolError(`topic alias ${p.topicAlias} was never set`);
      topic = known;
    } else {
      (channel.aliasesIn ??= new Map()).set(p.topicAlias, topic);
    }
  }
  const problem = checkTopicName(topic, broker.limits);
  if (problem !== null) throw new ProtocolViolation(ReasonCode.TopicNameInvalid, problem);

  if (p.qos === 2 && session.inboundQos2.has(p.packetId)) {
    // A resent QoS 2 publish we already took: acknowledge again, deliver nothing (MQTT 5 §4.3.3).
    channel.sendAck(PacketType.Pubrec, p.packetId, ReasonCode.Success);
    channel.unacknowledged++;
    return;
  }
  if (p.qos > 0) {
    if (v5 && channel.unacknowledged + session.inboundQos2.size >= broker.limits.receiveMaximum) {
      throw new ProtocolViolation(ReasonCode.ReceiveMaximumExceeded, `more than ${broker.limits.receiveMaximum} unacknowledged QoS 1/2 publishes`);
    }
    channel.unacknowledged++;
  }

  const expiry = p.properties?.messageExpiryInterval;
  const message: Message = {
    topic,
    payload: p.payload,
    qos: p.qos,
    retain: p.retain,
    properties: p.properties,
    expiresAt: expiry !== undefined ? Date.now() + expiry * 1000 : 0,
    origin: session.key,
  };
  const client = channel.client!;
  const authorize = broker.hooks.authorizePublish;
  if (authorize === undefined) {
    route(channel, client, message, p.packetId);
    return;
  }
  const verdict = authorize(client, message);
  if (typeof verdict === 'number') {
    if (isFailure(verdict)) refuse(channel, client, message, p.packetId, verdict);
    else route(channel, client, message, p.packetId);
    return;
  }
  // Reserve the ack's place so acks stay in arrival order while the hook runs.
  const ackType = p.qos === 2 ? PacketType.Pubrec : PacketType.Puback;
  const pending = p.qos > 0 ? channel.deferAck(ackType, p.packetId, null) : null;
  verdict.then(
    (code) => {
      if (isFailure(code)) refuse(channel, client, message, p.packetId, code, pending);
      else route(channel, client, message, p.packetId, pending);
    },
    () => refuse(channel, client, message, p.packetId, ReasonCode.UnspecifiedError, pending),
  );
}

type PendingAck = ReturnType<Channel['deferAck']>;

function refuse(channel: Channel, client: ClientInfo, message: Message, packetId: number, code: number, pending: PendingAck | null = null): void {
  channel.broker.emit('message.dropped', client, message, `publish refused (reason 0x${code.toString(16)})`);
  if (message.qos === 0) return;
  // v3 has no way to say no: acknowledge so the client does not resend a publish that will never pass.
  const ackCode = channel.protocolVersion === 5 ? code : ReasonCode.Success;
  const type = message.qos === 2 ? PacketType.Pubrec : PacketType.Puback;
  if (pending !== null) channel.settleAck(pending, ackCode);
  else channel.sendAck(type, packetId, ackCode);
}

function route(channel: Channel, client: ClientInfo, message: Message, packetId: number, pending: PendingAck | null = null): void {
  const broker = channel.broker;
  broker.publish(client.namespace, message, client);
  const onPublish = broker.hooks.onPublish;
  let outcome: void | number | Promise<void | number> = undefined;
  if (onPublish !== undefined) {
    try {
      outcome = onPublish(client, message);
    } catch {
      outcome = ReasonCode.UnspecifiedError;
    }
  }
  if (message.qos === 0) return;
  const type = message.qos === 2 ? PacketType.Pubrec : PacketType.Puback;
  if (!(outcome instanceof Promise)) {
    const code = outcome ?? ReasonCode.Success;
    if (pending !== null) settle(channel, pending, message, packetId, code);
    else if (!isFailure(code)) {
      if (message.qos === 2) channel.session!.addInboundQos2(packetId);
      channel.sendAck(type, packetId, code);
    } else {
      settle(channel, channel.deferAck(type, packetId, null), message, packetId, code);
    }
    return;
  }
  const slot = pending ?? channel.deferAck(type, packetId, null);
  outcome.then(
    (code) => settle(channel, slot, message, packetId, code ?? ReasonCode.Success),
    () => settle(channel, slot, message, packetId, ReasonCode.UnspecifiedError),
  );
}

/** Settles a held acknowledgement. A v3 client gets no ack on failure, so it publishes again. */
function settle(channel: Channel, pending: PendingAck, message: Message, packetId: number, code: number): void {
  if (isFailure(code)) {
    channel.settleAck(pending, channel.protocolVersion === 5 ? code : -2);
    return;
  }
  if (message.qos === 2 && channel.session !== null) channel.session.addInboundQos2(packetId);
  channel.settleAck(pending, code);
}
