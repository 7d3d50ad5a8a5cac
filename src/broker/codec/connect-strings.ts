import { malformed } from '../errors.ts';
import { readString, readVarint } from './wire-reader.ts';

/**
 * The UTF-8 strings of a CONNECT (client identifier, will topic, user name) checked on the wire
 * (MQTT 5 §1.5.4, MQTT-1.5.4-1 and -2: ill-formed UTF-8 or U+0000 is a Malformed Packet; 3.1.1
 * §1.5.3: close the connection). mqtt-packet decodes them leniently, turning bad bytes into U+FFFD,
 * so `handleConnect` calls this only when a decoded one holds U+FFFD or U+0000: a well-formed CONNECT
 * pays one search per string. Runs after mqtt-packet accepted the frame's layout.
 */
export function checkConnectStrings(frame: Buffer, bodyOffset: number, version: 3 | 4 | 5): void {
  const end = frame.length;
  let pos = bodyOffset;
  pos += readString(frame, pos, end, 'CONNECT protocol name')[1];
  if (pos + 4 > end) throw malformed('CONNECT too short for its variable header');
  const flags = frame[pos + 1]!;
  pos += 4; // level, flags, keep alive
  if (version === 5) pos += skipProperties(frame, pos, end);
  pos += checked(frame, pos, end, 'CONNECT client identifier');
  if ((flags & WILL_FLAG) !== 0) {
    if (version === 5) pos += skipProperties(frame, pos, end);
    pos += checked(frame, pos, end, 'CONNECT will topic');
    pos += binaryBytes(frame, pos, end);
  }
  if ((flags & USERNAME_FLAG) !== 0) checked(frame, pos, end, 'CONNECT user name');
}

const WILL_FLAG = 0x04;
const USERNAME_FLAG = 0x80;

/** The string's size in bytes, once it is known to be well-formed UTF-8 without U+0000. */
function checked(frame: Buffer, pos: number, end: number, what: string): number {
  const [value, bytes] = readString(frame, pos, end, what);
  if (value.includes('\u0000')) throw malformed(`${what} contains U+0000`);
  return bytes;
}

function skipProperties(frame: Buffer, pos: number, end: number): number {
  const [length, lengthBytes] = readVarint(frame, pos, end);
  return lengthBytes + length;
}

function binaryBytes(frame: Buffer, pos: number, end: number): number {
  if (pos + 2 > end) throw malformed('CONNECT will payload is truncated');
  return 2 + frame.readUInt16BE(pos);
}
