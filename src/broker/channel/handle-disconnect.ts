import type { IDisconnectPacket } from 'mqtt-packet';
import { protocolError } from '../errors.ts';
import { ReasonCode } from '../reason-codes.ts';
import type { Channel } from './channel.ts';

/** DISCONNECT from the client (MQTT 5 §3.14): normal (will discarded) or 0x04 (will published). */
export function handleDisconnect(channel: Channel, packet: IDisconnectPacket): void {
  const session = channel.session!;
  const newExpiry = packet.properties?.sessionExpiryInterval;
  if (newExpiry !== undefined) {
    // MQTT 5 §3.14.2.2.2: a session that was to end with the connection cannot be extended here.
    if (session.expiryInterval === 0 && newExpiry !== 0) throw protocolError('session expiry cannot be set on DISCONNECT when CONNECT had 0');
    session.expiryInterval = Math.min(newExpiry, channel.broker.limits.maxSessionExpiry);
  }
  const withWill = packet.reasonCode === ReasonCode.DisconnectWithWill;
  if (!withWill) channel.will = null;
  channel.close(withWill ? 'client-with-will' : 'client', packet.reasonCode ?? ReasonCode.Success);
}
