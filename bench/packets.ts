/**
 * Every packet the load generator sends, encoded once with mqtt-packet's `generate` before the clock
 * starts. The hot path only writes slices of these buffers, so per-message generator cost is a
 * pointer bump, not an encode. All clients speak MQTT 3.1.1, which all three brokers support.
 */
import { generate } from 'mqtt-packet';

export interface Credentials {
  username?: string;
  password?: string;
}

export function encodeConnect(clientId: string, credentials: Credentials): Buffer {
  return generate({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: true,
    clientId,
    // Keepalive 0 disables it (MQTT 3.1.1 §3.1.2.10), so no PINGREQ traffic skews the counts.
    keepalive: 0,
    ...(credentials.username === undefined ? {} : { username: credentials.username }),
    ...(credentials.password === undefined ? {} : { password: Buffer.from(credentials.password) }),
  });
}

export function encodeSubscribe(filter: string, qos: 0 | 1, messageId: number): Buffer {
  return generate({ cmd: 'subscribe', messageId, subscriptions: [{ topic: filter, qos }] });
}

export function encodeDisconnect(): Buffer {
  return generate({ cmd: 'disconnect' });
}

/** A 64-byte (or any size) payload of printable bytes, so brokers that preview payloads see text. */
export function makePayload(bytes: number): Buffer {
  const payload = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) payload[i] = 0x61 + (i % 26);
  return payload;
}

/** `count` copies of one QoS 0 PUBLISH back to back: a chunk the publisher writes in one call. */
export function encodeQos0Chunk(topic: string, payload: Buffer, count: number): { chunk: Buffer; packetBytes: number } {
  const packet = generate({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false });
  const chunk = Buffer.allocUnsafe(packet.length * count);
  for (let i = 0; i < count; i++) packet.copy(chunk, i * packet.length);
  return { chunk, packetBytes: packet.length };
}

/**
 * QoS 1 PUBLISH packets for packet ids 1..ringSize back to back, so a run of consecutive ids is one
 * contiguous slice: packet id `k` starts at `(k - 1) * packetBytes`.
 */
export function encodeQos1Ring(topic: string, payload: Buffer, ringSize: number): { ring: Buffer; packetBytes: number } {
  const first = generate({ cmd: 'publish', topic, payload, qos: 1, messageId: 1, retain: false, dup: false });
  const ring = Buffer.allocUnsafe(first.length * ringSize);
  for (let id = 1; id <= ringSize; id++) {
    const packet = generate({ cmd: 'publish', topic, payload, qos: 1, messageId: id, retain: false, dup: false });
    if (packet.length !== first.length) throw new Error('QoS 1 packets must all have the same length');
    packet.copy(ring, (id - 1) * first.length);
  }
  return { ring, packetBytes: first.length };
}
