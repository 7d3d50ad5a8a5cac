/**
 * A Transport without a socket (src/broker/transport/transport.ts), so channel tests feed exact
 * bytes and assert the exact bytes the channel wrote, and whether it ended the connection. With
 * mock time (mock-time.ts) its timers are driven too: no sockets, no waiting.
 */
import type { Broker } from '../../src/broker/broker.ts';
import { Channel } from '../../src/broker/channel/channel.ts';
import type { Transport } from '../../src/broker/transport/transport.ts';

export class FakeTransport implements Transport {
  readonly kind = 'tcp' as const;
  readonly remoteAddress = '127.0.0.1:40000';
  /** Set by `end` (flush, then close) or `destroy` (close now). */
  ended: 'end' | 'destroy' | null = null;
  paused = false;
  #written: Buffer[] = [];

  write(chunk: Buffer): void {
    // A copy: the channel may hand out a shared encoding.
    this.#written.push(Buffer.from(chunk));
  }

  bufferedBytes(): number {
    return 0;
  }

  end(): void {
    this.ended ??= 'end';
  }

  destroy(): void {
    this.ended ??= 'destroy';
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  /** Everything written since the last call, as one buffer. */
  take(): Buffer {
    const out = Buffer.concat(this.#written);
    this.#written = [];
    return out;
  }
}

/** A channel of `broker` over a fake transport, as a listener would accept it. */
export function fakeConnection(broker: Broker): { channel: Channel; transport: FakeTransport } {
  const transport = new FakeTransport();
  return { channel: new Channel(broker, transport), transport };
}
