import { malformed } from '../errors.ts';
import type { UserProperty } from '../message.ts';
import { readString, readVarint } from './wire-reader.ts';

/**
 * The user properties of an MQTT 5 CONNECT in wire order: the CONNECT's own (handed to the
 * authenticate hook) and its will's (published with the will). mqtt-packet folds user properties
 * into an object, which loses the relative order of different names; MQTT 5 §3.3.2.3.7 requires the
 * order to be kept when a message is forwarded, and a will is a message.
 *
 * Runs after mqtt-packet has accepted the frame, so only the properties' lengths matter here; any
 * inconsistency still throws malformed rather than reading past the frame.
 */
export interface ConnectUserProperties {
  connect: UserProperty[] | undefined;
  will: UserProperty[] | undefined;
}

const WILL_FLAG = 0x04;
const USER_PROPERTY = 0x26;

/** Bytes of a fixed-size property value (MQTT 5 §2.2.2.2), by identifier. */
const FIXED_SIZE: ReadonlyMap<number, number> = new Map([
  [0x01, 1], [0x17, 1], [0x19, 1], [0x24, 1], [0x25, 1], [0x28, 1], [0x29, 1], [0x2a, 1],
  [0x13, 2], [0x21, 2], [0x22, 2], [0x23, 2],
  [0x02, 4], [0x11, 4], [0x18, 4], [0x27, 4],
]);

/** Properties whose value is a string or binary data: a 2-byte length, then the bytes. */
const LENGTH_PREFIXED: ReadonlySet<number> = new Set([0x03, 0x08, 0x09, 0x12, 0x15, 0x16, 0x1a, 0x1c, 0x1f]);

const SUBSCRIPTION_IDENTIFIER = 0x0b;

export function readConnectUserProperties(frame: Buffer, bodyOffset: number): ConnectUserProperties {
  const end = frame.length;
  let pos = bodyOffset;
  if (pos + 2 > end) throw malformed('CONNECT too short for its protocol name');
  pos += 2 + frame.readUInt16BE(pos); // protocol name
  if (pos + 4 > end) throw malformed('CONNECT too short for its variable header');
  const flags = frame[pos + 1]!;
  pos += 4; // level, flags, keep alive
  const [connect, connectBytes] = readUserProperties(frame, pos, end);
  pos += connectBytes;
  if ((flags & WILL_FLAG) === 0) return { connect, will: undefined };
  const [, clientIdBytes] = readString(frame, pos, end, 'CONNECT client identifier');
  pos += clientIdBytes;
  const [will] = readUserProperties(frame, pos, end);
  return { connect, will };
}

/** The user properties of the property block at `pos`, in order, and the block's size in bytes. */
function readUserProperties(frame: Buffer, pos: number, end: number): [UserProperty[] | undefined, number] {
  const [length, lengthBytes] = readVarint(frame, pos, end);
  const start = pos;
  pos += lengthBytes;
  const blockEnd = pos + length;
  if (blockEnd > end) throw malformed('CONNECT properties run past the packet');
  let pairs: UserProperty[] | undefined;
  while (pos < blockEnd) {
    const id = frame[pos++]!;
    if (id === USER_PROPERTY) {
      const [name, n1] = readString(frame, pos, blockEnd, 'CONNECT user property name');
      const [value, n2] = readString(frame, pos + n1, blockEnd, 'CONNECT user property value');
      (pairs ??= []).push([name, value]);
      pos += n1 + n2;
    } else if (LENGTH_PREFIXED.has(id)) {
      // Skipped by its length, not decoded: binary values (correlation or authentication data) are no UTF-8.
      if (pos + 2 > blockEnd || pos + 2 + frame.readUInt16BE(pos) > blockEnd) throw malformed('CONNECT property runs past its block');
      pos += 2 + frame.readUInt16BE(pos);
    } else if (id === SUBSCRIPTION_IDENTIFIER) {
      pos += readVarint(frame, pos, blockEnd)[1];
    } else {
      const size = FIXED_SIZE.get(id);
      if (size === undefined) throw malformed(`unknown CONNECT property 0x${id.toString(16)}`);
      pos += size;
    }
  }
  if (pos !== blockEnd) throw malformed('CONNECT property runs past its property block');
  return [pairs, blockEnd - start];
}
