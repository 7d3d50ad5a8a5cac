/**
 * The admin REST API (SPEC §9, issue 4): account-token auth, devices, device tokens, params, account
 * tokens, device data, and the OpenAPI document at /docs/openapi.json; beside it, the device data API
 * (SPEC §8, device-token auth, src/api/data/). `buildApiServer` only builds the fastify
 * app; the composition root listens, and may put MQTT over WebSocket on the same port (/mqtt).
 * WebSocket upgrades to any other path go through fastify's router (@fastify/websocket), so the
 * API's WebSocket routes have the same hooks, auth and errors as the others.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { IncomingMessage, Server } from 'node:http';
import websocket from '@fastify/websocket';
import fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Broker } from '../broker/broker.ts';
import type { BucketStore } from '../data/bucket-store.ts';
import type { Ingestor } from '../data/ingest.ts';
import type { InspectorBus } from '../inspector/inspector-bus.ts';
import type { Logger } from '../log.ts';
import type { ParserSandbox } from '../parser/sandbox.ts';
import type { AccountIdentity } from '../tenancy/model.ts';
import type { Registry } from '../tenancy/registry.ts';
import { accountAuth } from './account-auth.ts';
import { adminDataRoutes } from './data/admin-data-routes.ts';
import { deviceDataApi } from './data/data-routes.ts';
import { ApiError, formatSchemaErrors, pathOf, sendError, sendNotFound } from './errors.ts';
import { registerOpenApi } from './openapi.ts';
import { ApiLogController } from './request-log.ts';
import { accountTokenRoutes } from './routes/account-tokens.ts';
import { accountRoutes } from './routes/account.ts';
import { deviceParamRoutes } from './routes/device-params.ts';
import { deviceInspectorRoutes } from './routes/device-inspector.ts';
import { closeViewers, deviceInspectorLiveRoutes, INSPECTOR_SUBPROTOCOL } from './routes/device-inspector-live.ts';
import { deviceParserRoutes } from './routes/device-parser.ts';
import { deviceTokenRoutes } from './routes/device-tokens.ts';
import { deviceRoutes } from './routes/devices.ts';
import { compileValidator } from './validation.ts';

/** Where MQTT over WebSocket lives on the API's port (SPEC §2). */
export const MQTT_WS_PATH = '/mqtt';

/** Default largest request body: a device with a 64 KiB parser, tags and params fits many times over. */
export const DEFAULT_BODY_LIMIT = 1024 * 1024;

export interface ApiServerOptions {
  registry: Registry;
  /** When given, MQTT over WebSocket is served on /mqtt of the same server (see attachMqttOverWebSocket). */
  broker?: Broker;
  /** Default: no logging. */
  logger?: Logger;
  /** Largest request body in bytes; larger bodies get 413. Default 1 MiB. */
  bodyLimit?: number;
  /**
   * When given, the device data API (SPEC §8: /data, /info, device tokens) and the admin data routes
   * (/devices/:id/data, export, delete) are served. `bodyLimit` is the /data body limit in bytes,
   * default 200 KB (SPEC §3).
   */
  data?: { store: BucketStore; ingestor: Ingestor; bodyLimit?: number };
  /** When given, POST /devices/:id/parser/test runs payload parsers in it (SPEC §4). */
  sandbox?: ParserSandbox;
  /**
   * When given, GET /devices/:id/inspector reads a device's kept events and /devices/:id/inspector/live
   * streams them over a WebSocket (SPEC §6); `viewerBufferBytes` bounds each viewer's unsent bytes.
   */
  inspector?: InspectorBus;
  inspectorLive?: { viewerBufferBytes?: number };
}

export function buildApiServer(options: ApiServerOptions): FastifyInstance {
  // Typed as fastify's base logger so the app is a plain FastifyInstance whichever logger it has.
  const loggerInstance: FastifyBaseLogger | undefined = options.logger;
  const app = fastify({
    ...(loggerInstance === undefined ? { logger: false } : { loggerInstance }),
    // fastify would log full URLs, and a query string may carry a token: request-log.ts logs paths only.
    logController: new ApiLogController(),
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    schemaErrorFormatter: formatSchemaErrors,
  });

  app.setValidatorCompiler(compileValidator);
  app.setErrorHandler(sendError);
  app.setNotFoundHandler(sendNotFound);
  // Declared up front so every request has the same shape; the auth hook fills it in.
  app.decorateRequest('account', null as unknown as AccountIdentity);
  registerOpenApi(app);
  serveWebSocketRoutes(app);

  void app.register(async function adminApi(scope) {
    scope.addHook('onRequest', accountAuth(options.registry));
    accountRoutes(scope, options.registry);
    accountTokenRoutes(scope, options.registry);
    deviceRoutes(scope, options.registry);
    deviceParamRoutes(scope, options.registry);
    deviceTokenRoutes(scope, options.registry);
    if (options.data !== undefined) adminDataRoutes(scope, options.registry, options.data.store);
    if (options.sandbox !== undefined) deviceParserRoutes(scope, options.registry, options.sandbox);
    if (options.inspector !== undefined) {
      deviceInspectorRoutes(scope, options.registry, options.inspector);
      deviceInspectorLiveRoutes(scope, options.registry, options.inspector, options.inspectorLive);
    }
  });

  if (options.data !== undefined) void app.register(deviceDataApi({ registry: options.registry, ...options.data }));

  if (options.broker !== undefined) attachMqttOverWebSocket(app, options.broker);
  return app;
}

const attached = new WeakSet<FastifyInstance>();

/**
 * Hands the upgrades of the app's server to @fastify/websocket, except /mqtt once the broker serves
 * it there. The plugin would take every upgrade of the server it listens on, so it listens on an
 * emitter that sees only the upgrades meant for the API. A route accepts upgrades only with
 * `config.webSocket`; any other route, and any unknown path, answers 404 as before.
 */
function serveWebSocketRoutes(app: FastifyInstance): void {
  const apiUpgrades = new EventEmitter();
  void app.register(websocket, {
    // The plugin only subscribes to (and on close unsubscribes from) 'upgrade' on it.
    options: { server: apiUpgrades as Server, handleProtocols: (offered) => (offered.has(INSPECTOR_SUBPROTOCOL) ? INSPECTOR_SUBPROTOCOL : false), maxPayload: 4096 },
    preClose(done) {
      closeViewers(this.websocketServer.clients);
      done();
    },
  });
  const upgrades = new WeakSet<IncomingMessage>();
  app.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (attached.has(app) && pathOf(request.url ?? '/') === MQTT_WS_PATH) return;
    upgrades.add(request);
    apiUpgrades.emit('upgrade', request, socket, head);
  });
  app.addHook('onRequest', async (request) => {
    if (upgrades.has(request.raw) && !request.is404 && request.routeOptions.config.webSocket !== true) {
      throw new ApiError(404, `route ${request.method} ${pathOf(request.url)} does not accept a WebSocket upgrade`);
    }
  });
}

/**
 * Serves MQTT over WebSocket on /mqtt of the API's own HTTP server, beside the API's own WebSocket
 * routes. Call once, before or after listen; a second call does nothing.
 * On shutdown close the broker before the app: broker.close() cuts the WebSocket clients, and the
 * app's close waits for every open socket.
 */
export function attachMqttOverWebSocket(app: FastifyInstance, broker: Broker): void {
  if (attached.has(app)) return;
  attached.add(app);
  broker.attachWebSocket(app.server, MQTT_WS_PATH);
}
