/** Hand-encoding helpers for wire tests that build packets byte by byte (independent of our codec). */

/** MQTT variable byte integer (MQTT 5 §1.5.5). */
export function varint(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    out.push(byte);
  } while (value > 0);
  return out;
}

/** MQTT UTF-8 string: two length bytes, then the bytes. */
export function str(s: string): number[] {
  const b = Buffer.from(s);
  return [b.length >> 8, b.length & 0xff, ...b];
}
