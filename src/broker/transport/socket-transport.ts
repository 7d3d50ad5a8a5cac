import type { Socket } from 'node:net';
import type { ConnectionAcceptor, Transport, TransportHandler } from './transport.ts';

/** Chunks up to this size (acknowledgements, PINGRESP) are copied into one buffer per tick. */
const SMALL_CHUNK = 16;
/** The size of that buffer (a slice of Node's buffer pool); a full one is written and another begun. */
const SMALL_BATCH = 2048;

/**
 * A TCP or TLS socket as a Transport. Writes are corked for the rest of the tick and uncorked on
 * process.nextTick, so a burst of packets to one client (fan-out, acks) leaves as one writev. Small
 * packets of a tick are first copied together into one buffer: a QoS 1 publisher gets a PUBACK per
 * message, and each socket.write costs far more than copying four bytes.
 */
export class SocketTransport implements Transport {
  readonly kind: 'tcp' | 'tls';
  readonly remoteAddress: string;
  readonly #socket: Socket;
  #corked = false;
  #small: Buffer | null = null;
  #smallLength = 0;

  constructor(socket: Socket, kind: 'tcp' | 'tls') {
    this.#socket = socket;
    this.kind = kind;
    this.remoteAddress = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
  }

  write(chunk: Buffer): void {
    const socket = this.#socket;
    if (socket.destroyed) return;
    if (!this.#corked) {
      this.#corked = true;
      socket.cork();
      process.nextTick(uncork, this);
    }
    if (chunk.length <= SMALL_CHUNK) {
      if (this.#small !== null && this.#smallLength + chunk.length > SMALL_BATCH) this.#writeSmall();
      this.#small ??= Buffer.allocUnsafe(SMALL_BATCH);
      this.#smallLength += chunk.copy(this.#small, this.#smallLength);
      return;
    }
    // Small packets copied so far go first: packets leave in the order they were written.
    this.#writeSmall();
    socket.write(chunk);
  }

  uncork(): void {
    this.#corked = false;
    this.#writeSmall();
    this.#socket.uncork();
  }

  #writeSmall(): void {
    const small = this.#small;
    if (small === null) return;
    this.#small = null;
    this.#socket.write(small.subarray(0, this.#smallLength));
    this.#smallLength = 0;
  }

  bufferedBytes(): number {
    return this.#socket.writableLength;
  }

  end(): void {
    if (this.#corked) this.uncork();
    const socket = this.#socket;
    socket.end();
    if (socket.destroyed) return;
    // A peer that never reads must not keep the socket open forever. Once the socket closes, the
    // timer goes too: it would otherwise hold the socket, and through its listeners the Channel and
    // Session, for 5 s after every disconnect (~350 MB during a storm of 10,000 a second).
    const timer = setTimeout(destroySocket, 5_000, socket).unref();
    socket.once('close', () => clearTimeout(timer));
  }

  destroy(): void {
    this.#socket.destroy();
  }

  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }
}

function uncork(transport: SocketTransport): void {
  transport.uncork();
}

function destroySocket(socket: Socket): void {
  socket.destroy();
}

/** A socket's 'error' listener: one function for all sockets, not a closure per connection. */
function destroyOnError(this: Socket): void {
  this.destroy();
}

/** Wires a freshly accepted socket to the broker. */
export function attachSocket(socket: Socket, kind: 'tcp' | 'tls', acceptor: ConnectionAcceptor): void {
  socket.setNoDelay(true);
  const transport = new SocketTransport(socket, kind);
  const handler: TransportHandler = acceptor.accept(transport);
  socket.on('data', (chunk: Buffer) => handler.onData(chunk));
  // Errors (resets, writes after close) end the connection; 'close' follows and reports it.
  socket.on('error', destroyOnError);
  socket.on('close', () => handler.onClose());
}
