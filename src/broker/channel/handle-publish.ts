import type { ClientInfo } from '../client-info.ts';
import type { DecodedPublish } from '../codec/publish-codec.ts';
import { ProtocolViolation, protocolError } from '../errors.ts';
import type { Message } from '../message.ts';
import { ReasonCode, isFailure } from '../reason-codes.ts';
import { checkTopicName, isSysTopic } from '../routing/topic.ts';
import type { Channel } from './channel.ts';
import type { HeldAck } from './ack-queue.ts';

/**
 * Inbound PUBLISH as a pipeline that stops at the first reason code (STYLE habit 7):
 * topic alias → topic check → duplicate QoS 2 → receive maximum → not $SYS → authorization → route (the
 * acknowledgement of a QoS 1/2 publish waits for the store writes it caused, see Broker.publishWrites)
 * → onPublish hook (which may hold the acknowledgement until the platform has made data durable).
 * The acknowledgement itself, its order and its codes, is the channel's AckQueue's (ack-queue.ts).
 */
export function handlePublish(channel: Channel, p: DecodedPublish): void {
  const broker = channel.broker;
  const session = channel.session!;
  const v5 = channel.protocolVersion === 5;
  channel.stats.publishReceived[p.qos]!++;

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
    channel.acks.acknowledgeResent(p.packetId);
    return;
  }
  if (p.qos > 0) {
    if (v5 && channel.acks.unacknowledged + session.inboundQos2.size >= broker.limits.receiveMaximum) {
      throw new ProtocolViolation(ReasonCode.ReceiveMaximumExceeded, `more than ${broker.limits.receiveMaximum} unacknowledged QoS 1/2 publishes`);
    }
    channel.acks.received();
  }

  const expiry = p.properties?.messageExpiryInterval;
  const message: Message = {
    topic,
    payload: p.payload,
    qos: p.qos,
    retain: p.retain,
    properties: p.properties,
    expiresAt: expiry !== undefined ? broker.clock.now() + expiry * 1000 : 0,
    origin: session.key,
  };
  const client = channel.client!;
  if (isSysTopic(topic)) {
    // $SYS is the broker's own (MQTT 5 §4.7.2); like Mosquitto, a client may not publish there.
    refuse(channel, client, message, p.packetId, ReasonCode.NotAuthorized);
    return;
  }
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
  const pending = p.qos > 0 ? channel.acks.reserve(p.qos, p.packetId) : null;
  verdict.then(
    (code) => {
      if (isFailure(code)) refuse(channel, client, message, p.packetId, code, pending);
      else route(channel, client, message, p.packetId, pending);
    },
    () => refuse(channel, client, message, p.packetId, ReasonCode.UnspecifiedError, pending),
  );
}

function refuse(channel: Channel, client: ClientInfo, message: Message, packetId: number, code: number, pending: HeldAck | null = null): void {
  const reason = `publish refused (reason 0x${code.toString(16)})`;
  channel.broker.stats.dropped(client.namespace, reason);
  channel.broker.emit('message.dropped', client, message, reason);
  channel.acks.refuse(message.qos, packetId, code, pending);
}

function route(channel: Channel, client: ClientInfo, message: Message, packetId: number, pending: HeldAck | null = null): void {
  const broker = channel.broker;
  broker.publish(client.namespace, message, client);
  if (message.qos > 0 && broker.publishWrites !== 0) {
    // SPEC §2: what this publish wrote (its retained message, its copies queued for persistent
    // sessions) is durable before the PUBACK/PUBREC. The held ack waits for those store batches and
    // for the hook's verdict, whichever comes last; the hook's hold() gets this same slot.
    pending ??= channel.acks.reserve(message.qos, packetId);
    broker.awaitWrites(pending);
  }
  const onPublish = broker.hooks.onPublish;
  if (onPublish !== undefined) channel.acks.runHook(onPublish, client, message, packetId, pending);
  else if (message.qos > 0) channel.acks.answer(message.qos, packetId, ReasonCode.Success, pending);
}
