import { malformed, protocolError } from '../errors.ts';
import type { UserProperty } from '../message.ts';
import { readString, readVarint } from './wire-reader.ts';

/**
 * A strict reader of the MQTT 5 property section (§2.2.2) for the packets we decode ourselves
 * besides PUBLISH: acknowledgements, SUBSCRIBE and UNSUBSCRIBE. mqtt-packet accepts any property
 * in any packet, folds duplicates into arrays and lets values run past the property length; the
 * spec makes each of those an error:
 *  - an identifier unknown, or not valid for the packet type, is a Malformed Packet (§2.2.2.2);
 *  - a value that runs past the property length is a Malformed Packet (§2.2.2.1);
 *  - a property other than User Property given twice is a Protocol Error (e.g. §3.4.2.2.2,
 *    §3.8.2.1.2: "It is a Protocol Error to include the ... more than once").
 */

const enum Type {
  Byte,
  TwoByteInteger,
  FourByteInteger,
  VariableByteInteger,
  String,
  Binary,
  StringPair,
}

/** Every property of MQTT 5 §2.2.2.2: identifier → [name, data type]. */
const PROPERTIES: ReadonlyMap<number, readonly [string, Type]> = new Map([
  [0x01, ['payload format indicator', Type.Byte]],
  [0x02, ['message expiry interval', Type.FourByteInteger]],
  [0x03, ['content type', Type.String]],
  [0x08, ['response topic', Type.String]],
  [0x09, ['correlation data', Type.Binary]],
  [0x0b, ['subscription identifier', Type.VariableByteInteger]],
  [0x11, ['session expiry interval', Type.FourByteInteger]],
  [0x12, ['assigned client identifier', Type.String]],
  [0x13, ['server keep alive', Type.TwoByteInteger]],
  [0x15, ['authentication method', Type.String]],
  [0x16, ['authentication data', Type.Binary]],
  [0x17, ['request problem information', Type.Byte]],
  [0x18, ['will delay interval', Type.FourByteInteger]],
  [0x19, ['request response information', Type.Byte]],
  [0x1a, ['response information', Type.String]],
  [0x1c, ['server reference', Type.String]],
  [0x1f, ['reason string', Type.String]],
  [0x21, ['receive maximum', Type.TwoByteInteger]],
  [0x22, ['topic alias maximum', Type.TwoByteInteger]],
  [0x23, ['topic alias', Type.TwoByteInteger]],
  [0x24, ['maximum QoS', Type.Byte]],
  [0x25, ['retain available', Type.Byte]],
  [0x26, ['user property', Type.StringPair]],
  [0x27, ['maximum packet size', Type.FourByteInteger]],
  [0x28, ['wildcard subscription available', Type.Byte]],
  [0x29, ['subscription identifier available', Type.Byte]],
  [0x2a, ['shared subscription available', Type.Byte]],
]);

export const PropertyId = {
  SubscriptionIdentifier: 0x0b,
  ReasonString: 0x1f,
  UserProperty: 0x26,
} as const;

/** What one packet's property section held (only what our handlers use is kept). */
export interface ControlProperties {
  subscriptionIdentifier?: number;
  reasonString?: string;
  userProperties?: UserProperty[];
}

/**
 * Reads the property length at `pos` and the properties after it, allowing only `allowed`
 * identifiers (`packet` names the packet in error messages). Returns the properties (null when the
 * section is empty) and where the section ends.
 */
export function readProperties(buf: Buffer, pos: number, end: number, packet: string, allowed: readonly number[]): { properties: ControlProperties | null; end: number } {
  if (pos >= end) throw malformed(`${packet} without its property length`);
  const [length, lengthBytes] = readVarint(buf, pos, end);
  pos += lengthBytes;
  const propsEnd = pos + length;
  if (propsEnd > end) throw malformed(`${packet} properties run past the packet`);
  if (length === 0) return { properties: null, end: propsEnd };
  const properties: ControlProperties = {};
  const seen = new Set<number>();
  while (pos < propsEnd) {
    const id = buf[pos++]!;
    const known = PROPERTIES.get(id);
    if (known === undefined) throw malformed(`${packet} with unknown property 0x${id.toString(16)}`);
    const [name, type] = known;
    if (!allowed.includes(id)) throw malformed(`${packet} may not carry the ${name} property (0x${id.toString(16)})`);
    if (id !== PropertyId.UserProperty) {
      if (seen.has(id)) throw protocolError(`${packet} carries the ${name} property more than once`);
      seen.add(id);
    }
    switch (type) {
      case Type.VariableByteInteger: {
        const [value, n] = readVarint(buf, pos, propsEnd);
        if (id === PropertyId.SubscriptionIdentifier) properties.subscriptionIdentifier = value;
        pos += n;
        break;
      }
      case Type.String: {
        const [value, n] = readString(buf, pos, propsEnd, `${packet} ${name}`);
        if (id === PropertyId.ReasonString) properties.reasonString = value;
        pos += n;
        break;
      }
      case Type.StringPair: {
        const [key, n1] = readString(buf, pos, propsEnd, `${packet} user property name`);
        const [value, n2] = readString(buf, pos + n1, propsEnd, `${packet} user property value`);
        (properties.userProperties ??= []).push([key, value]);
        pos += n1 + n2;
        break;
      }
      default:
        // No packet we read with this allows the fixed-size or binary types; a table entry for one
        // would be a bug of ours, not of the client's.
        throw new Error(`readProperties: no reader for the ${name} property`);
    }
  }
  return { properties, end: propsEnd };
}
