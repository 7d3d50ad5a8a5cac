/**
 * The live inspector stream (SPEC §6): `GET /devices/:deviceId/inspector/live` upgraded to a
 * WebSocket (@fastify/websocket). The account token is checked, the device looked up in the token's
 * account and `kinds` parsed by the ordinary hooks before the upgrade, so a refusal is a plain HTTP
 * answer (401, 403, 404, 400) and never an open-then-close. Then the viewer (inspector/viewer.ts)
 * replays the kept history and streams live events, one JSON text frame each (inspector/wire.ts).
 * A viewer ends with close code 4404 when its device is deleted, 1001 when the server stops.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import type { InspectorBus } from '../../inspector/inspector-bus.ts';
import { closeSocket, Viewer } from '../../inspector/viewer.ts';
import type { Registry, Revocation } from '../../tenancy/registry.ts';
import { TOKEN_SUBPROTOCOL_PREFIX } from '../account-auth.ts';
import { ApiError } from '../errors.ts';
import { errorSchema, idParams } from '../schemas/common.ts';
import { deviceOf } from './devices.ts';
import { inspectorQuery, kindsOf, type InspectorQuery } from './device-inspector.ts';

/** The sub-protocol the server answers with when a client offers it (needed by clients that send their token as one). */
export const INSPECTOR_SUBPROTOCOL = 'bucketmq.inspector';

/** Close codes (RFC 6455 §7.4.2: 4000-4999 are the application's). */
export const CLOSE_DEVICE_DELETED = 4404;
export const CLOSE_SERVER_STOPPING = 1001;

/** Default bound on a viewer's unsent bytes (`--inspector-viewer-buffer-kb`). */
export const DEFAULT_VIEWER_BUFFER_BYTES = 1024 * 1024;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set on routes that accept a WebSocket upgrade; every other route answers an upgrade with 404. */
    webSocket?: true;
  }
}

const DESCRIPTION = `A WebSocket: send this GET with \`Upgrade: websocket\`; a plain GET gets 426.

Authenticate with an account token as for every admin route; browsers, which cannot set headers on a
WebSocket, use the \`token\` query parameter or offer the sub-protocols \`${INSPECTOR_SUBPROTOCOL}\` and
\`${TOKEN_SUBPROTOCOL_PREFIX}<token>\` (the server answers \`${INSPECTOR_SUBPROTOCOL}\`). A missing or wrong
token (401), a device of another account (404) or an unknown kind (400) is refused before the upgrade,
with the usual error body.

Once open, the server sends one JSON text frame per event: first the kept history (the last 500, oldest
first), then each event as it happens, with no gap and no duplicate between the two:
\`{"time": "2026-01-01T00:00:00.000Z", "device": "<id>", "kind": "publish_in", "connection": {...} | null, "data": {...}}\`.
A viewer that reads too slowly is not waited for: while its unsent events exceed a bound
(\`--inspector-viewer-buffer-kb\`) further events are skipped, and once it has caught up it gets
\`{"kind": "skipped", "count": N}\` before the stream resumes. Messages from the client are ignored.
The server closes with ${CLOSE_DEVICE_DELETED} ("device deleted") when the device is deleted and ${CLOSE_SERVER_STOPPING} when it stops.`;

export interface LiveInspectorOptions {
  /** Unsent bytes per viewer above which events are skipped; default 1 MiB. */
  viewerBufferBytes?: number;
}

export function deviceInspectorLiveRoutes(app: FastifyInstance, registry: Registry, inspector: InspectorBus, options: LiveInspectorOptions = {}): void {
  const maxBufferedBytes = options.viewerBufferBytes ?? DEFAULT_VIEWER_BUFFER_BYTES;
  const watching = new Map<string, Set<Viewer>>();
  // What the hooks resolved before the upgrade, for the WebSocket handler after it.
  const resolved = new WeakMap<FastifyRequest, { deviceId: string; kinds: ReadonlySet<string> | null }>();

  const onRevoked = (revocation: Revocation): void => {
    if (revocation.kind !== 'device-deleted') return;
    for (const viewer of watching.get(revocation.deviceId) ?? []) viewer.close(CLOSE_DEVICE_DELETED, 'device deleted');
  };
  registry.on('revoked', onRevoked);
  app.addHook('onClose', async () => {
    registry.off('revoked', onRevoked);
  });

  app.route<{ Params: { deviceId: string }; Querystring: InspectorQuery }>({
    method: 'GET',
    url: '/devices/:deviceId/inspector/live',
    config: { webSocket: true },
    schema: {
      summary: 'Stream a device\'s inspector events over a WebSocket: the kept history, then live',
      description: DESCRIPTION,
      tags: ['devices'],
      params: idParams('deviceId'),
      querystring: inspectorQuery,
      response: {
        101: { description: 'Switching Protocols: the stream is open', type: 'null' },
        '4xx': { description: 'Refused before the upgrade (426 for a GET without upgrade)', ...errorSchema },
      },
    },
    preHandler: async (request) => {
      const device = deviceOf(registry, request.account.accountId, request.params.deviceId);
      resolved.set(request, { deviceId: device.id, kinds: kindsOf(request.query) });
    },
    handler: async () => {
      throw new ApiError(426, 'this route is a WebSocket: send the GET with "Connection: Upgrade" and "Upgrade: websocket"');
    },
    wsHandler: (socket: WebSocket, request) => {
      const { deviceId, kinds } = resolved.get(request)!;
      const viewer = new Viewer(inspector, deviceId, socket, request.raw.socket, { kinds, maxBufferedBytes });
      let viewers = watching.get(deviceId);
      if (viewers === undefined) watching.set(deviceId, (viewers = new Set()));
      viewers.add(viewer);
      socket.once('close', () => {
        viewers.delete(viewer);
        if (viewers.size === 0 && watching.get(deviceId) === viewers) watching.delete(deviceId);
      });
    },
  });
}

/** @fastify/websocket's preClose: every viewer is told the server is stopping. */
export function closeViewers(clients: Iterable<WebSocket>): void {
  for (const socket of clients) closeSocket(socket, CLOSE_SERVER_STOPPING, 'server stopping');
}
