import type { ISubscribePacket, IUnsubscribePacket, Packet } from 'mqtt-packet';
import { protocolError } from '../errors.ts';
import type { DeliveryFilter, SubscribeVerdict } from '../hooks.ts';
import { ReasonCode, SubackFailureV3, isFailure } from '../reason-codes.ts';
import { parseSubscriptionFilter, type ParsedFilter } from '../routing/topic.ts';
import type { SubscriptionOptions } from '../session/session-store.ts';
import type { Channel } from './channel.ts';

interface Request {
  filter: string;
  parsed: ParsedFilter;
  options: SubscriptionOptions;
}

/**
 * SUBSCRIBE (MQTT 5 §3.8): validates each filter, asks the authorization hook (which may answer
 * asynchronously), applies the grants in order, sends SUBACK, then the retained messages each
 * subscription's retain handling asks for.
 */
export function handleSubscribe(channel: Channel, packet: ISubscribePacket): void {
  const broker = channel.broker;
  const v5 = channel.protocolVersion === 5;
  const subscriptionId = packet.properties?.subscriptionIdentifier;
  if (subscriptionId !== undefined && (typeof subscriptionId !== 'number' || subscriptionId === 0)) {
    throw protocolError('subscription identifier must be 1..268435455');
  }
  if (packet.subscriptions.length === 0) throw protocolError('SUBSCRIBE without topic filters');
  const invalid = v5 ? ReasonCode.TopicFilterInvalid : SubackFailureV3;
  const results: Array<SubscribeVerdict | Promise<SubscribeVerdict>> = [];
  const requests: Array<Request | null> = [];
  const authorize = broker.hooks.authorizeSubscribe;
  let asynchronous = false;
  for (const sub of packet.subscriptions) {
    const parsed = parseSubscriptionFilter(sub.topic, broker.limits);
    if (typeof parsed === 'string') {
      results.push(invalid);
      requests.push(null);
      continue;
    }
    if (parsed.group !== null && sub.nl === true) throw protocolError('no-local on a shared subscription');
    const qos = sub.qos;
    const options: SubscriptionOptions = {
      qos,
      noLocal: v5 && sub.nl === true,
      retainAsPublished: v5 && sub.rap === true,
      retainHandling: v5 ? ((sub.rh ?? 0) as 0 | 1 | 2) : 0,
      subscriptionId: subscriptionId ?? 0,
    };
    requests.push({ filter: sub.topic, parsed, options });
    if (authorize === undefined) {
      results.push(qos);
      continue;
    }
    let verdict: SubscribeVerdict | Promise<SubscribeVerdict>;
    try {
      verdict = authorize(channel.client!, sub.topic, qos);
    } catch {
      verdict = ReasonCode.UnspecifiedError;
    }
    if (verdict instanceof Promise) {
      asynchronous = true;
      verdict = verdict.catch(() => ReasonCode.UnspecifiedError);
    }
    results.push(verdict);
  }
  if (!asynchronous) {
    complete(channel, packet.messageId!, requests, results as SubscribeVerdict[]);
    return;
  }
  void Promise.all(results).then((codes) => complete(channel, packet.messageId!, requests, codes));
}

function complete(channel: Channel, messageId: number, requests: Array<Request | null>, verdicts: SubscribeVerdict[]): void {
  if (channel.session === null || channel.client === null) return;
  const v5 = channel.protocolVersion === 5;
  const broker = channel.broker;
  const granted: number[] = [];
  const fresh: boolean[] = [];
  const filters: Array<DeliveryFilter | null> = [];
  for (let i = 0; i < requests.length; i++) {
    const request = requests[i];
    const verdict = verdicts[i]!;
    let code = typeof verdict === 'number' ? verdict : verdict.qos;
    const deliver = typeof verdict === 'number' ? null : verdict.deliver;
    filters.push(deliver);
    if (request === null || request === undefined) {
      granted.push(code);
      fresh.push(false);
      continue;
    }
    if (isFailure(code)) {
      if (!v5) code = SubackFailureV3;
      granted.push(code);
      fresh.push(false);
      continue;
    }
    // The cap is checked here, where subscriptions are added, so it holds within one packet and
    // across SUBSCRIBEs whose authorization ran concurrently.
    const session = channel.session;
    if (!session.subscriptions.has(request.filter) && session.subscriptions.size >= broker.limits.maxSubscriptions) {
      granted.push(v5 ? ReasonCode.QuotaExceeded : SubackFailureV3);
      fresh.push(false);
      continue;
    }
    // The hook may downgrade the QoS, never raise it.
    const qos = Math.min(code, request.options.qos) as 0 | 1 | 2;
    request.options.qos = qos;
    fresh.push(broker.subscribe(channel.session, request.filter, request.parsed, request.options, deliver));
    granted.push(qos);
  }
  channel.writePacket({ cmd: 'suback', messageId, granted } as Packet);
  broker.emit('client.subscribe', channel.client, requests.map((r, i) => ({ filter: r?.filter ?? '', qos: r?.options.qos ?? 0, result: granted[i]! })));
  for (let i = 0; i < requests.length; i++) {
    const request = requests[i];
    if (request === null || request === undefined || isFailure(granted[i]!)) continue;
    const { retainHandling } = request.options;
    // Retained messages are not sent for shared subscriptions (MQTT 5 §4.8.2).
    if (request.parsed.group !== null || retainHandling === 2 || (retainHandling === 1 && !fresh[i])) continue;
    broker.retainer.sendOnSubscribe(channel.session, request.parsed.filter, request.options, filters[i] ?? null);
  }
}

/** UNSUBSCRIBE (MQTT 5 §3.10): v5 gets a reason code per filter. */
export function handleUnsubscribe(channel: Channel, packet: IUnsubscribePacket): void {
  const codes: number[] = [];
  for (const filter of packet.unsubscriptions) {
    codes.push(channel.broker.unsubscribe(channel.session!, filter) ? ReasonCode.Success : ReasonCode.NoSubscriptionExisted);
  }
  const unsuback = channel.protocolVersion === 5
    ? { cmd: 'unsuback', messageId: packet.messageId, granted: codes }
    : { cmd: 'unsuback', messageId: packet.messageId };
  channel.writePacket(unsuback as Packet);
  channel.broker.emit('client.unsubscribe', channel.client!, packet.unsubscriptions);
}
