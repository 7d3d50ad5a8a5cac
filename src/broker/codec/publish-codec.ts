import { isUtf8 } from 'node:buffer';
import { ProtocolViolation, malformed, protocolError } from '../errors.ts';
import { ReasonCode } from '../reason-codes.ts';
import type { MessageProperties, UserProperty } from '../message.ts';
import { readString, readVarint } from './wire-reader.ts';

/**
 * PUBLISH is the hot packet, so it has its own codec instead of mqtt-packet's generic one: decoding
 * makes one pass with no intermediate objects, user properties keep their order (MQTT 5 §3.3.2.3.7,
 * which mqtt-packet folds into an object), and encoding writes one buffer sized up front.
 */

/** Property identifiers used by PUBLISH (MQTT 5 §2.2.2.2). */
const Prop = {
  PayloadFormatIndicator: 0x01,
  MessageExpiryInterval: 0x02,
  ContentType: 0x03,
  ResponseTopic: 0x08,
  CorrelationData: 0x09,
  SubscriptionIdentifier: 0x0b,
  TopicAlias: 0x23,
  UserProperty: 0x26,
} as const;

export interface DecodedPublish {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  dup: boolean;
  packetId: number;
  properties: MessageProperties | null;
  topicAlias: number;
}

export function decodePublish(frame: Buffer, bodyOffset: number, protocolVersion: number): DecodedPublish {
  const flags = frame[0]! & 0x0f;
  const qos = (flags >> 1) & 0x03;
  if (qos === 3) throw malformed('PUBLISH with QoS 3');
  const end = frame.length;
  let pos = bodyOffset;
  if (pos + 2 > end) throw malformed('PUBLISH too short for its topic length');
  const topicLength = frame.readUInt16BE(pos);
  pos += 2;
  if (pos + topicLength > end) throw malformed('PUBLISH topic runs past the packet');
  const topic = frame.toString('utf8', pos, pos + topicLength);
  // MQTT-1.5.4-1: ill-formed UTF-8 is a Malformed Packet. Node decodes it as U+FFFD, so only a topic
  // holding one pays the full check (wire-reader.ts decodeUtf8, inlined here: the hot path).
  if (topic.includes('\uFFFD') && !isUtf8(frame.subarray(pos, pos + topicLength))) throw malformed('PUBLISH topic name is not valid UTF-8');
  pos += topicLength;
  let packetId = 0;
  if (qos > 0) {
    if (pos + 2 > end) throw malformed('PUBLISH too short for its packet identifier');
    packetId = frame.readUInt16BE(pos);
    if (packetId === 0) throw protocolError('PUBLISH with packet identifier 0');
    pos += 2;
  }
  let properties: MessageProperties | null = null;
  let topicAlias = 0;
  if (protocolVersion === 5) {
    const [length, lengthBytes] = readVarint(frame, pos, end);
    pos += lengthBytes;
    const propsEnd = pos + length;
    if (propsEnd > end) throw malformed('PUBLISH properties run past the packet');
    if (length > 0) {
      properties = {};
      let userProperties: UserProperty[] | undefined;
      let seen = 0;
      while (pos < propsEnd) {
        const id = frame[pos++]!;
        if (id !== Prop.UserProperty) {
          // Known ids are < 32 except topic alias (0x23); fold it to bit 19 so no two collide.
          const bit = id < 32 ? 1 << id : 1 << (id - 16);
          if (seen & bit) throw protocolError(`PUBLISH property 0x${id.toString(16)} appears twice`);
          seen |= bit;
        }
        switch (id) {
          case Prop.PayloadFormatIndicator: {
            if (pos + 1 > propsEnd) throw malformed('truncated payload format indicator');
            const v = frame[pos++];
            if (v !== 0 && v !== 1) throw protocolError('payload format indicator must be 0 or 1');
            properties.payloadFormatIndicator = v;
            break;
          }
          case Prop.MessageExpiryInterval:
            if (pos + 4 > propsEnd) throw malformed('truncated message expiry interval');
            properties.messageExpiryInterval = frame.readUInt32BE(pos);
            pos += 4;
            break;
          case Prop.ContentType: {
            const [s, n] = readString(frame, pos, propsEnd, 'PUBLISH content type');
            properties.contentType = s;
            pos += n;
            break;
          }
          case Prop.ResponseTopic: {
            const [s, n] = readString(frame, pos, propsEnd, 'PUBLISH response topic');
            if (s.length === 0 || s.includes('+') || s.includes('#')) throw protocolError('response topic must be a valid topic name');
            properties.responseTopic = s;
            pos += n;
            break;
          }
          case Prop.CorrelationData: {
            if (pos + 2 > propsEnd) throw malformed('truncated correlation data');
            const n = frame.readUInt16BE(pos);
            if (pos + 2 + n > propsEnd) throw malformed('truncated correlation data');
            properties.correlationData = Buffer.from(frame.subarray(pos + 2, pos + 2 + n));
            pos += 2 + n;
            break;
          }
          case Prop.TopicAlias:
            if (pos + 2 > propsEnd) throw malformed('truncated topic alias');
            topicAlias = frame.readUInt16BE(pos);
            // MQTT 5 §3.3.2.3.4: alias 0 is not permitted (0 below also means "no alias").
            if (topicAlias === 0) throw new ProtocolViolation(ReasonCode.TopicAliasInvalid, 'topic alias 0 is not permitted');
            pos += 2;
            break;
          case Prop.UserProperty: {
            const [name, n1] = readString(frame, pos, propsEnd, 'PUBLISH user property name');
            const [value, n2] = readString(frame, pos + n1, propsEnd, 'PUBLISH user property value');
            (userProperties ??= []).push([name, value]);
            pos += n1 + n2;
            break;
          }
          case Prop.SubscriptionIdentifier:
            throw protocolError('a client must not send a subscription identifier in PUBLISH');
          default:
            throw malformed(`unknown PUBLISH property 0x${id.toString(16)}`);
        }
      }
      if (userProperties) properties.userProperties = userProperties;
      // A packet whose only property is the alias carries no message properties.
      if (seen === 1 << (Prop.TopicAlias - 16) && !userProperties) properties = null;
    }
  }
  // Copy the payload out of the socket chunk: messages outlive the read (queues, retained) and a
  // slice would pin the whole 64 KiB chunk in memory.
  const payload = Buffer.from(frame.subarray(pos, end));
  return { topic, payload, qos: qos as 0 | 1 | 2, retain: (flags & 1) === 1, dup: (flags & 8) === 8, packetId, properties, topicAlias };
}

function varintSize(value: number): number {
  return value < 128 ? 1 : value < 16_384 ? 2 : value < 2_097_152 ? 3 : 4;
}

function writeVarint(buf: Buffer, pos: number, value: number): number {
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    buf[pos++] = byte;
  } while (value > 0);
  return pos;
}

function writeString(buf: Buffer, pos: number, value: string, byteLength: number): number {
  buf.writeUInt16BE(byteLength, pos);
  buf.write(value, pos + 2, byteLength, 'utf8');
  return pos + 2 + byteLength;
}

/** What varies per delivery of one message. */
export interface PublishEncoding {
  /** '' when a topic alias already known to the receiver stands for it. */
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  dup: boolean;
  packetId: number;
  /** 3/4 encode identically; 5 adds properties. */
  protocolVersion: number;
  properties: MessageProperties | null;
  /** Remaining message expiry in seconds (v5), or -1 to omit. */
  messageExpiry: number;
  subscriptionIds: readonly number[] | null;
  topicAlias: number;
}

function propertiesLength(e: PublishEncoding): number {
  let n = 0;
  const p = e.properties;
  if (p !== null) {
    if (p.payloadFormatIndicator !== undefined) n += 2;
    if (p.contentType !== undefined) n += 3 + Buffer.byteLength(p.contentType);
    if (p.responseTopic !== undefined) n += 3 + Buffer.byteLength(p.responseTopic);
    if (p.correlationData !== undefined) n += 3 + p.correlationData.length;
    if (p.userProperties !== undefined) {
      for (const [k, v] of p.userProperties) n += 5 + Buffer.byteLength(k) + Buffer.byteLength(v);
    }
  }
  if (e.messageExpiry >= 0) n += 5;
  if (e.topicAlias > 0) n += 3;
  if (e.subscriptionIds !== null) for (const id of e.subscriptionIds) n += 1 + varintSize(id);
  return n;
}

/** Encodes a PUBLISH into one buffer. */
export function encodePublish(e: PublishEncoding): Buffer {
  const topicBytes = Buffer.byteLength(e.topic);
  const propsLength = e.protocolVersion === 5 ? propertiesLength(e) : -1;
  const remaining = 2 + topicBytes + (e.qos > 0 ? 2 : 0) + (propsLength >= 0 ? varintSize(propsLength) + propsLength : 0) + e.payload.length;
  const buf = Buffer.allocUnsafe(1 + varintSize(remaining) + remaining);
  buf[0] = 0x30 | (e.dup ? 8 : 0) | (e.qos << 1) | (e.retain ? 1 : 0);
  let pos = writeVarint(buf, 1, remaining);
  pos = writeString(buf, pos, e.topic, topicBytes);
  if (e.qos > 0) {
    buf.writeUInt16BE(e.packetId, pos);
    pos += 2;
  }
  if (propsLength >= 0) {
    pos = writeVarint(buf, pos, propsLength);
    const p = e.properties;
    if (p !== null && p.payloadFormatIndicator !== undefined) {
      buf[pos++] = Prop.PayloadFormatIndicator;
      buf[pos++] = p.payloadFormatIndicator;
    }
    if (e.messageExpiry >= 0) {
      buf[pos++] = Prop.MessageExpiryInterval;
      buf.writeUInt32BE(e.messageExpiry, pos);
      pos += 4;
    }
    if (p !== null) {
      if (p.contentType !== undefined) {
        buf[pos++] = Prop.ContentType;
        pos = writeString(buf, pos, p.contentType, Buffer.byteLength(p.contentType));
      }
      if (p.responseTopic !== undefined) {
        buf[pos++] = Prop.ResponseTopic;
        pos = writeString(buf, pos, p.responseTopic, Buffer.byteLength(p.responseTopic));
      }
      if (p.correlationData !== undefined) {
        buf[pos++] = Prop.CorrelationData;
        buf.writeUInt16BE(p.correlationData.length, pos);
        pos += 2 + p.correlationData.copy(buf, pos + 2);
      }
    }
    if (e.topicAlias > 0) {
      buf[pos++] = Prop.TopicAlias;
      buf.writeUInt16BE(e.topicAlias, pos);
      pos += 2;
    }
    if (e.subscriptionIds !== null) {
      for (const id of e.subscriptionIds) {
        buf[pos++] = Prop.SubscriptionIdentifier;
        pos = writeVarint(buf, pos, id);
      }
    }
    if (p !== null && p.userProperties !== undefined) {
      for (const [k, v] of p.userProperties) {
        buf[pos++] = Prop.UserProperty;
        pos = writeString(buf, pos, k, Buffer.byteLength(k));
        pos = writeString(buf, pos, v, Buffer.byteLength(v));
      }
    }
  }
  e.payload.copy(buf, pos);
  return buf;
}

/** Offset of the packet identifier inside an encoded QoS>0 PUBLISH, for patching shared encodings. */
export function packetIdOffset(encoded: Buffer): number {
  let pos = 1;
  while ((encoded[pos]! & 0x80) !== 0) pos++;
  pos++;
  return pos + 2 + encoded.readUInt16BE(pos);
}
