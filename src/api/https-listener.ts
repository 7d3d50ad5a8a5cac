/**
 * The API, console and MQTT over WebSocket over TLS (issue 14): a node https server in front of the
 * same fastify app that serves plain HTTP. fastify takes `https` options only at construction and
 * serves one server per instance, so a second instance would build every route, hook, plugin and
 * the OpenAPI document twice. Instead this server hands each request to `app.routing` (fastify's
 * documented entry into its router), so both ports share one set of routes, the same auth, error
 * handler and request log, and both answer 503 once the app is closing.
 */
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Broker } from '../broker/broker.ts';
import { listen } from '../broker/transport/tcp.ts';
import type { Listener } from '../broker/transport/transport.ts';
import { attachMqttOverWebSocket, MQTT_WS_PATH } from './app.ts';
import { pathOf } from './errors.ts';

export interface HttpsListenOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  cert: Buffer;
  key: Buffer;
}

/**
 * Listens with TLS for `app`, which must be ready (listening on its plain HTTP port, or after
 * `app.ready()`): before that its router has no routes. MQTT over WebSocket on /mqtt comes in as
 * transport `wss`. On shutdown close the broker first (it cuts the WebSocket clients), then this
 * listener and the app.
 */
export async function listenHttps(app: FastifyInstance, broker: Broker, options: HttpsListenOptions): Promise<Listener> {
  const server = https.createServer({ cert: options.cert, key: options.key }, (request, reply) => app.routing(request, reply));
  // fastify's own timeouts (keep-alive 72 s, longer than a load balancer's) rather than Node's defaults.
  server.keepAliveTimeout = app.server.keepAliveTimeout;
  server.requestTimeout = app.server.requestTimeout;
  server.setTimeout(app.server.timeout);
  // A failed handshake concerns one client only.
  server.on('tlsClientError', (_error, socket) => socket.destroy());

  broker.attachWebSocket(server, MQTT_WS_PATH);
  // Every other upgrade goes to the app's own server, so a WebSocket route (or the 404 for unknown
  // paths, set up by attachMqttOverWebSocket) answers alike on both ports.
  attachMqttOverWebSocket(app, broker);
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (pathOf(request.url ?? '/') !== MQTT_WS_PATH) app.server.emit('upgrade', request, socket, head);
  });
  return listen(server, options);
}
