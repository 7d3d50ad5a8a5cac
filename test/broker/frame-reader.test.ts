/**
 * Unit tests of the stream framer (src/broker/codec/frame-reader.ts): MQTT fixed header and
 * remaining length (MQTT 5 §2.1.4, a variable byte integer of at most 4 bytes), frames split across
 * chunks, and the maximum packet size checked from the fixed header alone (SPEC §2 limits).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqttPacket from 'mqtt-packet';
import { FrameReader, type FrameSink } from '../../src/broker/codec/frame-reader.ts';
import { ReasonCode } from '../../src/broker/reason-codes.ts';
import { varint } from './wire-bytes.ts';

class Sink implements FrameSink {
  readonly frames: Array<{ frame: Buffer; bodyOffset: number }> = [];
  readonly errors: Array<{ reasonCode: number; message: string }> = [];
  onFrame(frame: Buffer, bodyOffset: number): void {
    // Copy: the reader may hand out slices of a chunk the caller reuses.
    this.frames.push({ frame: Buffer.from(frame), bodyOffset });
  }
  onFrameError(reasonCode: number, message: string): void {
    this.errors.push({ reasonCode, message });
  }
}

function publish(topic: string, payloadBytes: number, qos: 0 | 1 = 0): Buffer {
  const payload = Buffer.alloc(payloadBytes, 0x61);
  return mqttPacket.generate({ cmd: 'publish', topic, payload, qos, retain: false, dup: false, messageId: qos > 0 ? 7 : undefined });
}

/** A sample of packets whose remaining lengths take 1, 2 and 3 bytes, plus a zero-length one. */
function samplePackets(): Buffer[] {
  return [
    mqttPacket.generate({ cmd: 'pingreq' }), // remaining length 0
    publish('a/b', 10), // 1-byte length
    publish('t', 200, 1), // 2-byte length
    mqttPacket.generate({ cmd: 'puback', messageId: 42 }),
    publish('big', 20_000), // 3-byte length
    publish('', 0), // tiny
  ];
}

function headerLength(packet: Buffer): number {
  let i = 1;
  while ((packet[i]! & 0x80) !== 0) i++;
  return i + 1;
}

describe('FrameReader', () => {
  test('one whole frame in one chunk: handed on as is, with the body offset', () => {
    const sink = new Sink();
    const reader = new FrameReader(sink, 1 << 20);
    const p = publish('x/y', 5);
    reader.push(p);
    assert.equal(sink.frames.length, 1);
    assert.deepEqual(sink.frames[0]!.frame, p);
    assert.equal(sink.frames[0]!.bodyOffset, 2);
    assert.deepEqual(sink.errors, []);
  });

  test('many frames in one chunk are all delivered in order', () => {
    const sink = new Sink();
    const reader = new FrameReader(sink, 1 << 20);
    const packets: Buffer[] = [];
    for (let i = 0; i < 500; i++) packets.push(publish(`t/${i}`, i % 50, (i % 2) as 0 | 1));
    packets.push(...samplePackets());
    reader.push(Buffer.concat(packets));
    assert.equal(sink.frames.length, packets.length);
    for (let i = 0; i < packets.length; i++) {
      assert.deepEqual(sink.frames[i]!.frame, packets[i], `frame ${i}`);
      assert.equal(sink.frames[i]!.bodyOffset, headerLength(packets[i]!), `body offset ${i}`);
    }
    assert.deepEqual(sink.errors, []);
  });

  test('a stream split at every byte boundary yields the same frames', () => {
    const packets = samplePackets();
    const stream = Buffer.concat(packets);
    for (let cut = 1; cut < stream.length; cut++) {
      const sink = new Sink();
      const reader = new FrameReader(sink, 1 << 20);
      reader.push(stream.subarray(0, cut));
      reader.push(stream.subarray(cut));
      assert.equal(sink.frames.length, packets.length, `cut at ${cut}`);
      for (let i = 0; i < packets.length; i++) {
        if (!sink.frames[i]!.frame.equals(packets[i]!) || sink.frames[i]!.bodyOffset !== headerLength(packets[i]!)) {
          assert.fail(`cut at ${cut}: frame ${i} differs`);
        }
      }
      assert.equal(sink.errors.length, 0);
    }
  });

  test('three-way splits around every header byte and byte-by-byte feeding', () => {
    const packets = samplePackets();
    const stream = Buffer.concat(packets);
    // Every pair of cuts inside the first 40 bytes and around the 3-byte-length publish.
    const start = packets.slice(0, 4).reduce((n, p) => n + p.length, 0);
    const points = [...Array(40).keys()].map((i) => i + 1).concat([start - 1, start, start + 1, start + 2, start + 3, start + 4, start + 5]);
    for (const a of points) {
      for (const b of points) {
        if (b <= a || b >= stream.length) continue;
        const sink = new Sink();
        const reader = new FrameReader(sink, 1 << 20);
        reader.push(stream.subarray(0, a));
        reader.push(stream.subarray(a, b));
        reader.push(stream.subarray(b));
        assert.equal(sink.frames.length, packets.length, `cuts at ${a},${b}`);
        assert.ok(sink.frames.every((f, i) => f.frame.equals(packets[i]!)), `cuts at ${a},${b}`);
      }
    }
    const sink = new Sink();
    const reader = new FrameReader(sink, 1 << 20);
    for (let i = 0; i < stream.length; i++) reader.push(stream.subarray(i, i + 1));
    assert.equal(sink.frames.length, packets.length);
    assert.ok(sink.frames.every((f, i) => f.frame.equals(packets[i]!) && f.bodyOffset === headerLength(packets[i]!)));
  });

  test('a chunk that ends a partial frame and carries more frames (and a partial header)', () => {
    const packets = [publish('a', 300), publish('b', 3), publish('c', 200)];
    const stream = Buffer.concat(packets);
    const sink = new Sink();
    const reader = new FrameReader(sink, 1 << 20);
    // First chunk: half of packet 0. Second: rest of 0, all of 1, first byte of 2's length.
    const cut1 = 150;
    const cut2 = packets[0]!.length + packets[1]!.length + 2;
    reader.push(stream.subarray(0, cut1));
    assert.equal(sink.frames.length, 0);
    reader.push(stream.subarray(cut1, cut2));
    assert.equal(sink.frames.length, 2);
    reader.push(stream.subarray(cut2));
    assert.equal(sink.frames.length, 3);
    assert.ok(sink.frames.every((f, i) => f.frame.equals(packets[i]!)));
  });

  test('maximum packet size is enforced from the fixed header alone', () => {
    const sink = new Sink();
    const reader = new FrameReader(sink, 1000);
    // PUBLISH header claiming 100 MB: 0x30, then 100_000_000 as a variable byte integer. No body.
    const header = Buffer.from([0x30, ...varint(100_000_000)]);
    reader.push(header);
    assert.equal(sink.frames.length, 0);
    assert.equal(sink.errors.length, 1, 'rejected without waiting for the body');
    assert.equal(sink.errors[0]!.reasonCode, ReasonCode.PacketTooLarge);
    // After the error the reader is stopped: further bytes produce nothing.
    reader.push(publish('a', 1));
    assert.equal(sink.frames.length, 0);
    assert.equal(sink.errors.length, 1);
  });

  test('max size rejection when the header itself is split across chunks', () => {
    const sink = new Sink();
    const reader = new FrameReader(sink, 1000);
    const header = Buffer.from([0x30, ...varint(5_000_000)]);
    reader.push(header.subarray(0, 2));
    assert.equal(sink.errors.length, 0);
    reader.push(header.subarray(2));
    assert.equal(sink.errors.length, 1);
    assert.equal(sink.errors[0]!.reasonCode, ReasonCode.PacketTooLarge);
  });

  test('the limit counts the whole packet: exactly the limit passes, one byte more fails', () => {
    const at = publish('t', 100);
    const sink = new Sink();
    const reader = new FrameReader(sink, at.length);
    reader.push(at);
    assert.equal(sink.frames.length, 1);
    assert.equal(sink.errors.length, 0);
    const over = publish('t', 101);
    reader.push(over.subarray(0, 2));
    assert.equal(sink.errors.length, 1);
    assert.equal(sink.errors[0]!.reasonCode, ReasonCode.PacketTooLarge);
  });

  test('the maximum can be changed after construction', () => {
    const sink = new Sink();
    const reader = new FrameReader(sink, 1 << 20);
    reader.maxPacketSize = 10;
    reader.push(publish('topic', 20));
    assert.equal(sink.errors[0]?.reasonCode, ReasonCode.PacketTooLarge);
  });

  test('a remaining length with 5 continuation bytes is malformed', () => {
    const sink = new Sink();
    const reader = new FrameReader(sink, 1 << 30);
    reader.push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00, 0x00]));
    assert.equal(sink.frames.length, 0);
    assert.equal(sink.errors.length, 1);
    assert.equal(sink.errors[0]!.reasonCode, ReasonCode.MalformedPacket);
  });

  test('a malformed length fed one byte at a time is still detected', () => {
    const sink = new Sink();
    const reader = new FrameReader(sink, 1 << 30);
    for (const b of [0x30, 0x80, 0x80, 0x80, 0x80, 0x01]) reader.push(Buffer.from([b]));
    assert.equal(sink.errors.length, 1);
    assert.equal(sink.errors[0]!.reasonCode, ReasonCode.MalformedPacket);
  });

  test('the largest 4-byte length (268,435,455) is a well-formed header, refused only by size', () => {
    const sink = new Sink();
    const reader = new FrameReader(sink, 1 << 30);
    reader.push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]));
    // 1 GiB limit: accepted as a header and waiting for the body, no error.
    assert.equal(sink.errors.length, 0);
    reader.stop();
    const sink2 = new Sink();
    const reader2 = new FrameReader(sink2, 256 * 1024);
    reader2.push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]));
    assert.equal(sink2.errors[0]?.reasonCode, ReasonCode.PacketTooLarge);
  });

  test('frames before an error in the same chunk are delivered, nothing after it', () => {
    const sink = new Sink();
    const reader = new FrameReader(sink, 500);
    const good = publish('ok', 10);
    reader.push(Buffer.concat([good, good, Buffer.from([0x30, ...varint(10_000)]), good]));
    assert.equal(sink.frames.length, 2);
    assert.equal(sink.errors.length, 1);
  });

  test('hold and release: no frame is handed on while held, and every frame comes out once, in order, whatever the chunking', () => {
    const packets = Array.from({ length: 60 }, (_, i) => samplePackets()[i % 6]!);
    const stream = Buffer.concat(packets);
    for (const chunkSize of [1, 3, 7, 64, 1000, stream.length]) {
      const delivered: Buffer[] = [];
      let reader: FrameReader;
      let held = false;
      const sink: FrameSink = {
        onFrame(frame) {
          assert.equal(held, false, 'no frame while held');
          delivered.push(Buffer.from(frame));
          // Hold after every 4th frame, as a channel does when its held acknowledgements reach the cap.
          if (delivered.length % 4 === 0) {
            held = true;
            reader.hold();
          }
        },
        onFrameError(_code, message) {
          assert.fail(message);
        },
      };
      reader = new FrameReader(sink, 1 << 20);
      for (let pos = 0; pos < stream.length; pos += chunkSize) {
        reader.push(stream.subarray(pos, pos + chunkSize));
        // Released now and then, between and during chunks.
        if (held && (pos / chunkSize) % 2 === 0) {
          held = false;
          reader.release();
        }
      }
      while (held) {
        held = false;
        reader.release();
      }
      assert.deepEqual(delivered, packets, `chunks of ${chunkSize} bytes`);
    }
  });
});
