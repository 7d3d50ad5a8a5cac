/**
 * A device's recent inspector events (SPEC §6: the last 500 kept per device) over plain HTTP, in the
 * same shape (wire.ts) and with the same `kinds` filter as the live WebSocket stream
 * (device-inspector-live.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { InspectorBus } from '../../inspector/inspector-bus.ts';
import { INSPECTOR_KINDS, parseKinds } from '../../inspector/kinds.ts';
import { kindOf, toWire } from '../../inspector/wire.ts';
import type { Registry } from '../../tenancy/registry.ts';
import { ApiError } from '../errors.ts';
import { idParams, ok, responses } from '../schemas/common.ts';
import { deviceOf } from './devices.ts';

/** The query of both inspector routes. Unknown fields pass: `token` may authenticate (account-auth.ts). */
export const inspectorQuery = {
  type: 'object',
  properties: {
    kinds: {
      type: 'string',
      minLength: 1,
      maxLength: 400,
      description: `Only events of these kinds, comma-separated (e.g. \`connect,publish_in\`); known kinds: ${INSPECTOR_KINDS.join(', ')}`,
    },
  },
} as const;

export interface InspectorQuery {
  kinds?: string;
}

export const wireEventSchema = {
  type: 'object',
  required: ['time', 'device', 'kind', 'connection', 'data'],
  properties: {
    time: { type: 'string', description: 'ISO-8601' },
    device: { type: 'string', description: 'The device id' },
    kind: { type: 'string', enum: [...INSPECTOR_KINDS] },
    connection: {
      type: ['object', 'null'],
      additionalProperties: true,
      description: 'The MQTT connection the event belongs to (client id, address, listener); null for HTTP and parser events',
    },
    data: { type: 'object', additionalProperties: true, description: 'What happened; fields depend on the kind' },
  },
} as const;

/** The kinds a query asks for, null for all; 400 naming `kinds` for a name that is not a kind. */
export function kindsOf(query: InspectorQuery): ReadonlySet<string> | null {
  if (query.kinds === undefined) return null;
  const kinds = parseKinds(query.kinds);
  if ('problem' in kinds) throw new ApiError(400, `querystring/kinds ${kinds.problem}`);
  return kinds;
}

export function deviceInspectorRoutes(app: FastifyInstance, registry: Registry, inspector: InspectorBus): void {
  app.get<{ Params: { deviceId: string }; Querystring: InspectorQuery }>(
    '/devices/:deviceId/inspector',
    {
      schema: {
        summary: 'A device\'s recent inspector events, oldest first',
        tags: ['devices'],
        params: idParams('deviceId'),
        querystring: inspectorQuery,
        response: responses(200, { type: 'array', items: wireEventSchema }, 'The kept events'),
      },
    },
    async (request) => {
      const device = deviceOf(registry, request.account.accountId, request.params.deviceId);
      const kinds = kindsOf(request.query);
      const events = inspector.history(device.id);
      return ok((kinds === null ? events : events.filter((e) => kinds.has(kindOf(e)))).map(toWire));
    },
  );
}
