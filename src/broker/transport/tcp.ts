import net from 'node:net';
import tls from 'node:tls';
import { attachSocket } from './socket-transport.ts';
import type { ConnectionAcceptor, Listener } from './transport.ts';

export interface TcpListenOptions {
  host?: string;
  /** 0 picks a free port. */
  port: number;
}

export interface TlsListenOptions extends TcpListenOptions {
  cert: Buffer | string;
  key: Buffer | string;
  ca?: Buffer | string;
}

export function listenTcp(acceptor: ConnectionAcceptor, options: TcpListenOptions): Promise<Listener> {
  const server = net.createServer((socket) => attachSocket(socket, 'tcp', acceptor));
  return listen(server, options);
}

export function listenTls(acceptor: ConnectionAcceptor, options: TlsListenOptions): Promise<Listener> {
  const server = tls.createServer({ cert: options.cert, key: options.key, ca: options.ca }, (socket) =>
    attachSocket(socket, 'tls', acceptor),
  );
  // A failed handshake concerns one client only.
  server.on('tlsClientError', (_err, socket) => socket.destroy());
  return listen(server, options);
}

export function listen(server: net.Server, options: TcpListenOptions): Promise<Listener> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : options.port;
      resolve({
        port,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}
