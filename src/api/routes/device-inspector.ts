/**
 * A device's recent inspector events (SPEC §6: the last 500 kept per device) over plain HTTP: what a
 * payload parser logged or failed on, in order. The live stream over WebSocket builds on the same bus.
 */
import type { FastifyInstance } from 'fastify';
import type { InspectorBus } from '../../inspector/inspector-bus.ts';
import type { Registry } from '../../tenancy/registry.ts';
import { idParams, ok, responses } from '../schemas/common.ts';
import { deviceOf } from './devices.ts';

const query = {
  type: 'object',
  additionalProperties: false,
  properties: {
    type: { type: 'string', minLength: 1, maxLength: 100, description: 'Only events of this type, or of its family when it ends with "." (e.g. "parser.")' },
  },
} as const;

const event = {
  type: 'object',
  required: ['time', 'type', 'data'],
  properties: {
    time: { type: 'string', description: 'ISO-8601' },
    type: { type: 'string', description: 'e.g. parser.log, parser.error' },
    data: { type: 'object', additionalProperties: true },
  },
} as const;

export function deviceInspectorRoutes(app: FastifyInstance, registry: Registry, inspector: InspectorBus): void {
  app.get<{ Params: { deviceId: string }; Querystring: { type?: string } }>(
    '/devices/:deviceId/inspector',
    {
      schema: {
        summary: 'A device\'s recent inspector events, oldest first',
        tags: ['devices'],
        params: idParams('deviceId'),
        querystring: query,
        response: responses(200, { type: 'array', items: event }, 'The kept events'),
      },
    },
    async (request) => {
      const device = deviceOf(registry, request.account.accountId, request.params.deviceId);
      const wanted = request.query.type;
      const matches = wanted === undefined ? () => true : wanted.endsWith('.') ? (type: string) => type.startsWith(wanted) : (type: string) => type === wanted;
      return ok(inspector.history(device.id).filter((e) => matches(e.type)).map((e) => ({ time: new Date(e.time).toISOString(), type: e.type, data: e.data })));
    },
  );
}
