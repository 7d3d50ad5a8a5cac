/**
 * The cheapest MQTT reader we can write: it walks fixed headers (type byte + remaining length) and
 * hands each complete packet to the sink as (first byte, buffer, body offset, body length) without
 * decoding anything. The load generator must never be the bottleneck, so this deliberately knows
 * nothing about MQTT beyond MQTT 3.1.1 §2.2 (fixed header) — the sink reads what little it needs
 * (a PUBLISH packet id, a CONNACK return code) straight from the buffer.
 *
 * A packet split across TCP chunks is copied out as a small tail and glued to the next chunk (the
 * chunk itself may be a reused read buffer); packets in this benchmark are ~80 bytes, so the tail
 * never grows past one packet.
 */

/** Receives each whole packet. `buf[bodyStart .. bodyStart + bodyLength)` is the variable header + payload. */
export interface FrameSink {
  onFrame(firstByte: number, buf: Buffer, bodyStart: number, bodyLength: number): void;
}

/** Packet types (MQTT 3.1.1 §2.2.1), as the high nibble of the first byte. */
export const PacketType = {
  connack: 2,
  publish: 3,
  puback: 4,
  suback: 9,
  pingresp: 13,
} as const;

export class FrameWalker {
  readonly #sink: FrameSink;
  #tail: Buffer | null = null;

  constructor(sink: FrameSink) {
    this.#sink = sink;
  }

  feed(chunk: Buffer): void {
    const buf = this.#tail === null ? chunk : Buffer.concat([this.#tail, chunk]);
    this.#tail = null;
    const end = buf.length;
    let pos = 0;
    while (pos < end) {
      // Remaining length: 1..4 bytes, 7 bits each, least significant first (§2.2.3).
      let i = pos + 1;
      let length = 0;
      let multiplier = 1;
      let complete = false;
      while (i < end) {
        const byte = buf[i++] as number;
        length += (byte & 0x7f) * multiplier;
        if ((byte & 0x80) === 0) {
          complete = true;
          break;
        }
        multiplier *= 128;
      }
      if (!complete || i + length > end) break;
      this.#sink.onFrame(buf[pos] as number, buf, i, length);
      pos = i + length;
    }
    if (pos < end) this.#tail = Buffer.from(buf.subarray(pos));
  }
}
