import type { ClientInfo } from '../client-info.ts';
import { PacketType } from '../codec/packet-type.ts';
import type { DecodedPublish } from '../codec/publish-codec.ts';
import { ProtocolViolation, protocolError } from '../errors.ts';
import type { Message } from '../message.ts';
import { ReasonCode, isFailure } from '../reason-codes.ts';
import { checkTopicName } from '../routing/topic.ts';
import type { Channel } from './channel.ts';
import type { HeldAck } from './held-ack.ts';

/**
 * Inbound PUBLISH as a pipeline that stops at the first reason code (STYLE habit 7):
 * topic alias → topic check → duplicate QoS 2 → receive maximum → authorization → route (the
 * acknowledgement of a QoS 1/2 publish waits for the store writes it caused, see Broker.publishWrites)
 * → onPublish hook (which may hold the acknowledgement until the platform has made data durable).
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
  const pending = p.qos > 0 ? channel.holdAck(ackType, p.packetId, p.qos) : null;
  verdict.then(
    (code) => {
      if (isFailure(code)) refuse(channel, client, message, p.packetId, code, pending);
      else route(channel, client, message, p.packetId, pending);
    },
    () => refuse(channel, client, message, p.packetId, ReasonCode.UnspecifiedError, pending),
  );
}

function refuse(channel: Channel, client: ClientInfo, message: Message, packetId: number, code: number, pending: HeldAck | null = null): void {
  channel.broker.emit('message.dropped', client, message, `publish refused (reason 0x${code.toString(16)})`);
  if (message.qos === 0) return;
  // v3 has no way to say no: acknowledge so the client does not resend a publish that will never pass.
  const ackCode = channel.protocolVersion === 5 ? code : ReasonCode.Success;
  const type = message.qos === 2 ? PacketType.Pubrec : PacketType.Puback;
  if (pending !== null) channel.settleAck(pending, ackCode);
  else channel.sendAck(type, packetId, ackCode);
}

function route(channel: Channel, client: ClientInfo, message: Message, packetId: number, pending: HeldAck | null = null): void {
  const broker = channel.broker;
  broker.publish(client.namespace, message, client);
  const type = message.qos === 2 ? PacketType.Pubrec : PacketType.Puback;
  if (message.qos > 0 && broker.publishWrites !== 0) {
    // SPEC §2: what this publish wrote (its retained message, its copies queued for persistent
    // sessions) is durable before the PUBACK/PUBREC. The held ack waits for those store batches and
    // for the hook's verdict, whichever comes last; the hook's hold() gets this same slot.
    pending ??= channel.holdAck(type, packetId, message.qos);
    broker.awaitWrites(pending);
  }
  const onPublish = broker.hooks.onPublish;
  let outcome: void | number | Promise<void | number> = undefined;
  if (onPublish !== undefined) {
    const acks = channel.publishAcks;
    acks.open(type, packetId, message.qos, pending);
    let threw = false;
    try {
      outcome = onPublish(client, message, acks);
    } catch {
      threw = true;
      outcome = ReasonCode.UnspecifiedError;
    }
    const taken = acks.close();
    if (taken !== null) {
      // The hook holds the acknowledgement and settles it; had it thrown, it never would.
      if (threw) taken.settle(ReasonCode.UnspecifiedError);
      return;
    }
  }
  if (message.qos === 0) return;
  if (!(outcome instanceof Promise)) {
    const code = outcome ?? ReasonCode.Success;
    if (pending !== null) pending.settle(code);
    else if (!isFailure(code)) {
      if (message.qos === 2) channel.session!.addInboundQos2(packetId);
      channel.sendAck(type, packetId, code);
    } else {
      channel.holdAck(type, packetId, message.qos).settle(code);
    }
    return;
  }
  const slot = pending ?? channel.holdAck(type, packetId, message.qos);
  outcome.then(
    (code) => slot.settle(code ?? ReasonCode.Success),
    () => slot.settle(ReasonCode.UnspecifiedError),
  );
}
