import mqttPacket from 'mqtt-packet';
import type { Packet } from 'mqtt-packet';
import { malformed } from '../errors.ts';
import { PacketType } from './packet-type.ts';
import { PropertyId, readProperties } from './properties.ts';

/**
 * Decodes CONNECT and DISCONNECT with mqtt-packet (PUBLISH, acknowledgements, SUBSCRIBE and
 * UNSUBSCRIBE have their own codecs). One parser for the whole broker, not one per connection
 * (~1 KB each with its stream and listeners, issue 15): FrameReader hands over whole frames and
 * parsing is synchronous, so the parser is idle between calls. What it would carry from one frame
 * to the next is cleared after each: the protocol version is given per call (mqtt-packet keeps the
 * last CONNECT as its settings), and a frame it refused or did not finish resets it.
 */
const parser = mqttPacket.parser({}) as SharedParser;
let decoded: Packet | null = null;
let failure: Error | null = null;
parser.on('packet', (packet: Packet) => {
  decoded = packet;
});
parser.on('error', (err: Error) => {
  failure = err;
});

/** The parts of mqtt-packet's Parser its typings leave out. */
interface SharedParser extends ReturnType<typeof mqttPacket.parser> {
  settings: { protocolVersion?: number };
  _resetState(): void;
  _pos: number;
}

/** Back to "expecting a fixed header". `_resetState` leaves the read position of a failed frame, which the next length would be read at. */
function resetParser(): void {
  parser._resetState();
  parser._pos = 0;
}

/** mqtt-packet's settings per protocol version: v5 property parsing depends on it. */
const SETTINGS = [{}, {}, {}, { protocolVersion: 3 }, { protocolVersion: 4 }, { protocolVersion: 5 }];

/**
 * Decodes one complete frame (as cut by FrameReader) sent by a client that speaks `protocolVersion`
 * (0 for CONNECT, which carries its own). Whatever mqtt-packet refuses, or throws while parsing our
 * client's bytes, is the client's malformed packet (MQTT 5 §4.13), named with the packet type so the
 * reason string says what was wrong where.
 */
export function decodeControl(frame: Buffer, protocolVersion: number): Packet {
  const name = PACKET_NAMES[frame[0]! >> 4] ?? 'packet';
  parser.settings = SETTINGS[protocolVersion]!;
  let thrown: unknown = null;
  try {
    parser.parse(frame);
  } catch (err) {
    thrown = err;
  }
  // The parser reports through the listeners above, synchronously.
  const packet = decoded as Packet | null;
  const error = failure as Error | null;
  decoded = null;
  failure = null;
  parser.settings = SETTINGS[0]!;
  if (thrown !== null || error !== null || packet === null) resetParser();
  if (thrown !== null) throw malformed(`${name}: ${thrown instanceof Error ? thrown.message : String(thrown)}`);
  if (error !== null) throw malformed(`${name}: ${error.message}`);
  if (packet === null) throw malformed(`${name}: incomplete packet`);
  return packet;
}

const PACKET_NAMES = ['reserved packet type 0', 'CONNECT', 'CONNACK', 'PUBLISH', 'PUBACK', 'PUBREC', 'PUBREL', 'PUBCOMP', 'SUBSCRIBE', 'SUBACK', 'UNSUBSCRIBE', 'UNSUBACK', 'PINGREQ', 'PINGRESP', 'DISCONNECT', 'AUTH'];

const ACK_PROPERTIES = [PropertyId.ReasonString, PropertyId.UserProperty];

/**
 * Checks a PUBACK, PUBREC, PUBREL or PUBCOMP (MQTT 5 §3.4-3.7) and returns its packet identifier;
 * the reason code, if any, is the byte after it. By hand and without allocating: acknowledgements
 * are most of QoS 1/2 traffic. v5 may add a reason code, then properties (reason string, user
 * properties) that must fill the rest of the packet exactly; v3 is exactly the packet identifier.
 */
export function decodeAck(frame: Buffer, bodyOffset: number, protocolVersion: number): number {
  const type = frame[0]! >> 4;
  const name = PACKET_NAMES[type]!;
  const expectedFlags = type === PacketType.Pubrel ? 0x02 : 0x00;
  if ((frame[0]! & 0x0f) !== expectedFlags) throw malformed(`${name} with wrong header flags`);
  const end = frame.length;
  if (end < bodyOffset + 2) throw malformed(`${name} without a packet identifier`);
  if (protocolVersion < 5 && end !== bodyOffset + 2) throw malformed(`v3 ${name} with extra bytes`);
  if (end > bodyOffset + 3) {
    const read = readProperties(frame, bodyOffset + 3, end, name, ACK_PROPERTIES);
    if (read.end !== end) throw malformed(`${name} has bytes after its properties`);
  }
  return frame.readUInt16BE(bodyOffset);
}

/** Encodes a control packet (CONNACK, SUBACK, DISCONNECT, ...) with mqtt-packet. */
export function encodeControl(packet: Packet, protocolVersion: number): Buffer {
  return mqttPacket.generate(packet, { protocolVersion: protocolVersion as 3 | 4 | 5 });
}

const PINGRESP = Buffer.from([PacketType.Pingresp << 4, 0]);

/** v3's accepting CONNACKs, by session present (MQTT 3.1.1 §3.2): one per connection, so encoded once. */
const CONNACK_ACCEPTED = [Buffer.from([PacketType.Connack << 4, 2, 0, 0]), Buffer.from([PacketType.Connack << 4, 2, 1, 0])];

/** An accepting v3 CONNACK (return code 0). Shared bytes, never to be written to (like PINGRESP). */
export function encodeConnackAccepted(sessionPresent: boolean): Buffer {
  return CONNACK_ACCEPTED[sessionPresent ? 1 : 0]!;
}

export function encodePingresp(): Buffer {
  return PINGRESP;
}

/**
 * Encodes PUBACK, PUBREC, PUBREL or PUBCOMP. These are the bulk of QoS 1/2 traffic, so the success
 * case (and v3) is four bytes written by hand; v5 adds the reason code only when it is not Success
 * (MQTT 5 §3.4.2.1 allows omitting it), and a reason string goes through mqtt-packet.
 */
export function encodeAck(type: number, packetId: number, protocolVersion: number, reasonCode = 0, reasonString?: string): Buffer {
  const first = type === PacketType.Pubrel ? 0x62 : type << 4;
  if (protocolVersion < 5 || (reasonCode === 0 && reasonString === undefined)) return ackBytes(first, 2, packetId, 0);
  if (reasonString === undefined) return ackBytes(first, 3, packetId, reasonCode);
  const cmd = ackCommand(type);
  return mqttPacket.generate(
    { cmd, messageId: packetId, reasonCode, properties: { reasonString } } as Packet,
    { protocolVersion: 5 },
  );
}

/** An acknowledgement without properties, written byte by byte (no array per packet: one per QoS 1 message). */
function ackBytes(first: number, remaining: 2 | 3, packetId: number, reasonCode: number): Buffer {
  const bytes = Buffer.allocUnsafe(2 + remaining);
  bytes[0] = first;
  bytes[1] = remaining;
  bytes[2] = packetId >> 8;
  bytes[3] = packetId & 0xff;
  if (remaining === 3) bytes[4] = reasonCode;
  return bytes;
}

function ackCommand(type: number): 'puback' | 'pubrec' | 'pubrel' | 'pubcomp' {
  switch (type) {
    case PacketType.Puback: return 'puback';
    case PacketType.Pubrec: return 'pubrec';
    case PacketType.Pubrel: return 'pubrel';
    case PacketType.Pubcomp: return 'pubcomp';
    default: throw new Error(`not an acknowledgement packet type: ${type}`);
  }
}

/**
 * Reads the protocol name and level from a raw CONNECT before mqtt-packet sees it, so an unknown
 * level can be answered with CONNACK "unacceptable protocol version" (MQTT 3.1.1 §3.1.2.2) instead
 * of a bare close. Returns 0 when the frame is too short to tell.
 */
export function peekProtocolLevel(frame: Buffer, bodyOffset: number): { name: string; level: number } {
  if (frame.length < bodyOffset + 2) return { name: '', level: 0 };
  const nameLength = frame.readUInt16BE(bodyOffset);
  const levelAt = bodyOffset + 2 + nameLength;
  if (levelAt >= frame.length) return { name: '', level: 0 };
  return { name: frame.toString('latin1', bodyOffset + 2, levelAt), level: frame[levelAt]! };
}
