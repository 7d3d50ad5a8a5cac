import type { ISubscribePacket, ISubscription, IUnsubscribePacket, QoS } from 'mqtt-packet';
import { malformed, protocolError } from '../errors.ts';
import { PropertyId, readProperties } from './properties.ts';
import { decodeUtf8 } from './wire-reader.ts';

/**
 * SUBSCRIBE and UNSUBSCRIBE, decoded by hand to be as strict as the spec where mqtt-packet is lenient
 * (it lets a v5 packet omit its property length, accepts any property, takes an UNSUBSCRIBE without
 * filters, and decodes ill-formed UTF-8 as U+FFFD). The result has mqtt-packet's shape, which the
 * handlers take. Malformed Packet vs Protocol Error follows MQTT 5 §3.8 and §3.10.
 */

const SUBSCRIBE_PROPERTIES = [PropertyId.SubscriptionIdentifier, PropertyId.UserProperty];
const UNSUBSCRIBE_PROPERTIES = [PropertyId.UserProperty];

export function decodeSubscribe(frame: Buffer, bodyOffset: number, protocolVersion: number): ISubscribePacket {
  const end = frame.length;
  const { messageId, pos: afterId } = readHeader(frame, bodyOffset, 'SUBSCRIBE');
  let pos = afterId;
  const packet: ISubscribePacket = { cmd: 'subscribe', messageId, subscriptions: [] };
  if (protocolVersion === 5) {
    const read = readProperties(frame, pos, end, 'SUBSCRIBE', SUBSCRIBE_PROPERTIES);
    if (read.properties !== null) packet.properties = read.properties as ISubscribePacket['properties'];
    pos = read.end;
  }
  // MQTT 5 §3.8.3 / 3.1.1 §3.8.3 [MQTT-3.8.3-3]: at least one filter; none is a Protocol Error.
  if (pos === end) throw protocolError('SUBSCRIBE without topic filters');
  while (pos < end) {
    const [topic, n] = readFilter(frame, pos, end, 'SUBSCRIBE');
    pos += n;
    const index = packet.subscriptions.length + 1;
    if (pos >= end) throw malformed(`SUBSCRIBE topic filter ${index} without subscription options`);
    packet.subscriptions.push(readOptions(frame[pos++]!, topic, index, protocolVersion));
  }
  return packet;
}

export function decodeUnsubscribe(frame: Buffer, bodyOffset: number, protocolVersion: number): IUnsubscribePacket {
  const end = frame.length;
  const { messageId, pos: afterId } = readHeader(frame, bodyOffset, 'UNSUBSCRIBE');
  let pos = afterId;
  const packet: IUnsubscribePacket = { cmd: 'unsubscribe', messageId, unsubscriptions: [] };
  if (protocolVersion === 5) {
    const read = readProperties(frame, pos, end, 'UNSUBSCRIBE', UNSUBSCRIBE_PROPERTIES);
    if (read.properties !== null) packet.properties = read.properties as IUnsubscribePacket['properties'];
    pos = read.end;
  }
  // MQTT 5 §3.10.3 / 3.1.1 [MQTT-3.10.3-2]: at least one filter; none is a Protocol Error (v3: close).
  if (pos === end) throw protocolError('UNSUBSCRIBE without topic filters');
  while (pos < end) {
    const [topic, n] = readFilter(frame, pos, end, 'UNSUBSCRIBE');
    packet.unsubscriptions.push(topic);
    pos += n;
  }
  return packet;
}

/** Header flags 0b0010 (a Malformed Packet otherwise, MQTT 5 §2.1.3) and a non-zero packet identifier. */
function readHeader(frame: Buffer, bodyOffset: number, packet: string): { messageId: number; pos: number } {
  if ((frame[0]! & 0x0f) !== 0x02) throw malformed(`${packet} with header flags other than 0b0010`);
  if (bodyOffset + 2 > frame.length) throw malformed(`${packet} without a packet identifier`);
  const messageId = frame.readUInt16BE(bodyOffset);
  // MQTT-2.2.1-3 (v5 §2.2.1, 3.1.1 §2.3.1): SUBSCRIBE and UNSUBSCRIBE carry a non-zero identifier.
  if (messageId === 0) throw protocolError(`${packet} with packet identifier 0`);
  return { messageId, pos: bodyOffset + 2 };
}

function readFilter(frame: Buffer, pos: number, end: number, packet: string): [string, number] {
  if (pos + 2 > end) throw malformed(`${packet} topic filter length runs past the packet`);
  const n = frame.readUInt16BE(pos);
  if (pos + 2 + n > end) throw malformed(`${packet} topic filter runs past the packet`);
  return [decodeUtf8(frame, pos + 2, pos + 2 + n, `${packet} topic filter`), 2 + n];
}

/**
 * Subscription options (MQTT 5 §3.8.3.1): reserved bits set make a Malformed Packet
 * [MQTT-3.8.3-5]; QoS 3 and Retain Handling 3 are Protocol Errors. v3.1.1 has only the QoS bits
 * [MQTT-3.8.3-4]: anything else is malformed. Filters are named by position (1-based): the reason
 * string must stay short.
 */
function readOptions(options: number, topic: string, index: number, protocolVersion: number): ISubscription {
  const qos = (options & 0x03) as QoS;
  if (protocolVersion !== 5) {
    if ((options & 0xfc) !== 0) throw malformed(`SUBSCRIBE options of filter ${index} with reserved bits set`);
    if ((qos as number) === 3) throw malformed(`SUBSCRIBE filter ${index} with QoS 3`);
    return { topic, qos };
  }
  if ((options & 0xc0) !== 0) throw malformed(`SUBSCRIBE options of filter ${index} with reserved bits set`);
  if ((qos as number) === 3) throw protocolError(`SUBSCRIBE filter ${index} with maximum QoS 3`);
  const rh = (options >> 4) & 0x03;
  if (rh === 3) throw protocolError(`SUBSCRIBE filter ${index} with retain handling 3`);
  return { topic, qos, nl: (options & 0x04) !== 0, rap: (options & 0x08) !== 0, rh };
}
