import { ReasonCode } from '../reason-codes.ts';

/** Receives whole MQTT packets, or the reason the byte stream cannot go on. */
export interface FrameSink {
  /** `frame` is the complete packet; `bodyOffset` is where the variable header starts. */
  onFrame(frame: Buffer, bodyOffset: number): void;
  onFrameError(reasonCode: number, message: string): void;
}

/**
 * Splits a byte stream into MQTT packets. The remaining length is read from the fixed header and
 * checked against the maximum packet size *before* any body byte is buffered (SPEC §2 limits), so an
 * oversized packet costs us five bytes of memory, not its claimed size. Frames that arrive whole
 * inside one chunk are handed on as zero-copy slices; only split frames are assembled.
 */
export class FrameReader {
  readonly #sink: FrameSink;
  #maxPacketSize: number;
  /** Bytes of a fixed header split across chunks (at most 5). */
  #header: Buffer | null = null;
  /** A frame being assembled across chunks. */
  #partial: Buffer | null = null;
  #partialFilled = 0;
  #partialBodyOffset = 0;
  #stopped = false;
  /** Set by `hold`: frames stop being handed on, and received bytes wait in `#backlog`. */
  #held = false;
  #backlog: Buffer[] = [];
  #releasing = false;

  constructor(sink: FrameSink, maxPacketSize: number) {
    this.#sink = sink;
    this.#maxPacketSize = maxPacketSize;
  }

  set maxPacketSize(bytes: number) {
    this.#maxPacketSize = bytes;
  }

  stop(): void {
    this.#stopped = true;
    this.#partial = null;
    this.#header = null;
    this.#backlog = [];
  }

  /**
   * Stops handing frames on, from the one after the frame being handled: what is left of the
   * current chunk, and whatever arrives later, waits until `release`. (The transport should stop
   * reading too, so that little arrives meanwhile.)
   */
  hold(): void {
    this.#held = true;
  }

  /** Hands on the frames that waited, then goes on as usual (unless held again meanwhile). */
  release(): void {
    this.#held = false;
    if (this.#releasing) return;
    this.#releasing = true;
    while (!this.#held && !this.#stopped && this.#backlog.length > 0) this.#read(this.#backlog.shift()!);
    this.#releasing = false;
  }

  push(chunk: Buffer): void {
    if (this.#stopped) return;
    if (this.#held || this.#backlog.length > 0) {
      this.#backlog.push(chunk);
      return;
    }
    this.#read(chunk);
  }

  #read(chunk: Buffer): void {
    let pos = 0;
    if (this.#partial !== null) {
      pos = this.#fillPartial(chunk);
      if (this.#partial !== null || this.#stopped) return;
      if (this.#held) {
        this.#keep(chunk, pos);
        return;
      }
    }
    if (this.#header !== null) {
      chunk = Buffer.concat([this.#header, chunk.subarray(pos)]);
      this.#header = null;
      pos = 0;
    }
    const end = chunk.length;
    while (pos < end && !this.#stopped) {
      // Fixed header: one type byte, then 1-4 bytes of variable-length remaining length.
      let remaining = 0;
      let multiplier = 1;
      let i = pos + 1;
      let complete = false;
      for (let n = 0; n < 4 && i < end; n++, i++) {
        const byte = chunk[i]!;
        remaining += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        if ((byte & 0x80) === 0) {
          complete = true;
          i++;
          break;
        }
      }
      if (!complete) {
        if (i - pos >= 5) {
          this.#fail(ReasonCode.MalformedPacket, 'malformed remaining length (more than 4 bytes)');
          return;
        }
        this.#header = Buffer.from(chunk.subarray(pos));
        return;
      }
      const bodyOffset = i - pos;
      const total = bodyOffset + remaining;
      if (total > this.#maxPacketSize) {
        this.#fail(ReasonCode.PacketTooLarge, `packet of ${total} bytes exceeds the maximum packet size of ${this.#maxPacketSize}`);
        return;
      }
      if (pos + total <= end) {
        const frame = chunk.subarray(pos, pos + total);
        pos += total;
        this.#sink.onFrame(frame, bodyOffset);
        if (this.#held) {
          this.#keep(chunk, pos);
          return;
        }
        continue;
      }
      this.#partial = Buffer.allocUnsafe(total);
      this.#partialFilled = chunk.copy(this.#partial, 0, pos, end);
      this.#partialBodyOffset = bodyOffset;
      return;
    }
  }

  /** Puts the unread rest of `chunk` first in the backlog. */
  #keep(chunk: Buffer, pos: number): void {
    if (pos < chunk.length && !this.#stopped) this.#backlog.unshift(chunk.subarray(pos));
  }

  /** Copies bytes into the frame being assembled; returns how many bytes of `chunk` it used. */
  #fillPartial(chunk: Buffer): number {
    const partial = this.#partial!;
    const need = partial.length - this.#partialFilled;
    const take = Math.min(need, chunk.length);
    chunk.copy(partial, this.#partialFilled, 0, take);
    this.#partialFilled += take;
    if (this.#partialFilled === partial.length) {
      this.#partial = null;
      this.#sink.onFrame(partial, this.#partialBodyOffset);
    }
    return take;
  }

  #fail(reasonCode: number, message: string): void {
    this.stop();
    this.#sink.onFrameError(reasonCode, message);
  }
}
