/** The byte pipe under one MQTT connection. Channels write packets here and never see sockets. */
export interface Transport {
  readonly kind: 'tcp' | 'tls' | 'ws' | 'wss';
  readonly remoteAddress: string;
  /** Queues bytes; writes made in one tick leave in one system call (write coalescing). */
  write(chunk: Buffer): void;
  /** Bytes accepted but not yet handed to the kernel, for slow-consumer checks. */
  bufferedBytes(): number;
  /** Sends what is queued, then closes. */
  end(): void;
  /** Closes at once, dropping what is queued. */
  destroy(): void;
  /** Stops delivering received bytes (they wait in the kernel, and the peer's sends slow down: TCP flow control). */
  pause(): void;
  /** Delivers received bytes again. */
  resume(): void;
}

/** What a transport reports to the connection it carries. */
export interface TransportHandler {
  onData(chunk: Buffer): void;
  onClose(): void;
}

/** Something that turns a new transport into a connection (the broker). */
export interface ConnectionAcceptor {
  accept(transport: Transport): TransportHandler;
}

export interface Listener {
  readonly port: number;
  close(): Promise<void>;
}
