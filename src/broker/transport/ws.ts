import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { listen, type TcpListenOptions, type TlsListenOptions } from './tcp.ts';
import type { ConnectionAcceptor, Listener, Transport } from './transport.ts';

/**
 * MQTT over WebSocket (MQTT 5 §6): binary frames, sub-protocol "mqtt" (or "mqttv3.1"). Packets
 * written in one tick go out as one WebSocket frame, which §6 allows.
 */
class WebSocketTransport implements Transport {
  readonly kind: 'ws' | 'wss';
  readonly remoteAddress: string;
  readonly #ws: WebSocket;
  #pending: Buffer[] = [];
  #pendingBytes = 0;

  constructor(ws: WebSocket, kind: 'ws' | 'wss', remoteAddress: string) {
    this.#ws = ws;
    this.kind = kind;
    this.remoteAddress = remoteAddress;
  }

  write(chunk: Buffer): void {
    if (this.#pending.length === 0) process.nextTick(flush, this);
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
  }

  flush(): void {
    const chunks = this.#pending;
    if (chunks.length === 0) return;
    this.#pending = [];
    this.#pendingBytes = 0;
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    this.#ws.send(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), { binary: true });
  }

  bufferedBytes(): number {
    return this.#ws.bufferedAmount + this.#pendingBytes;
  }

  end(): void {
    this.flush();
    const ws = this.#ws;
    ws.close();
    if (ws.readyState === ws.CLOSED) return;
    // As SocketTransport.end: the timer must not hold a closed connection for 5 s.
    const timer = setTimeout(terminate, 5_000, ws).unref();
    ws.once('close', () => clearTimeout(timer));
  }

  destroy(): void {
    this.#ws.terminate();
  }

  pause(): void {
    this.#ws.pause();
  }

  resume(): void {
    this.#ws.resume();
  }
}

function flush(transport: WebSocketTransport): void {
  transport.flush();
}

function terminate(ws: WebSocket): void {
  ws.terminate();
}

function pathOf(request: http.IncomingMessage): string {
  return (request.url ?? '/').split('?', 1)[0]!;
}

function chooseProtocol(protocols: Set<string>): string | false {
  if (protocols.has('mqtt')) return 'mqtt';
  if (protocols.has('mqttv3.1')) return 'mqttv3.1';
  return false;
}

/**
 * Serves MQTT over WebSocket on `path` of an existing HTTP(S) server (so the platform's HTTP API can
 * share its port). Upgrades to other paths are left to other handlers.
 */
export function attachWebSocket(server: http.Server | https.Server, acceptor: ConnectionAcceptor, path = '/mqtt'): WebSocketServer {
  const kind = server instanceof https.Server ? 'wss' : 'ws';
  const wss = new WebSocketServer({ noServer: true, handleProtocols: chooseProtocol, maxPayload: 64 * 1024 * 1024 });
  server.on('upgrade', (request: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    if (pathOf(request) !== path) return;
    wss.handleUpgrade(request, socket, head, (ws) => {
      const address = `${request.socket.remoteAddress ?? '?'}:${request.socket.remotePort ?? 0}`;
      const transport = new WebSocketTransport(ws, kind, address);
      const handler = acceptor.accept(transport);
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        // MQTT 5 §6: a text frame is a protocol violation; close the connection.
        if (!isBinary) ws.terminate();
        else handler.onData(data);
      });
      ws.on('error', () => ws.terminate());
      ws.on('close', () => handler.onClose());
    });
  });
  return wss;
}

/** A stand-alone HTTP(S) server that only serves MQTT over WebSocket on /mqtt. */
export function listenWs(acceptor: ConnectionAcceptor, options: TcpListenOptions | TlsListenOptions): Promise<Listener> {
  const tlsOptions = 'cert' in options ? options : null;
  const server = tlsOptions
    ? https.createServer({ cert: tlsOptions.cert, key: tlsOptions.key, ca: tlsOptions.ca })
    : http.createServer();
  server.on('request', (_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end('MQTT over WebSocket: connect to /mqtt with sub-protocol "mqtt"\n');
  });
  const wss = attachWebSocket(server, acceptor);
  // This server has no other upgrade handler: refuse other paths rather than leave them hanging.
  server.on('upgrade', (request: http.IncomingMessage, socket: Duplex) => {
    if (pathOf(request) === '/mqtt') return;
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  return listen(server, options).then((listener) => ({
    port: listener.port,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      await listener.close();
    },
  }));
}
