/** Devices (SPEC §1, §9): list with filters, create (with its first token), read, update, delete. */
import type { FastifyInstance } from 'fastify';
import type { Device, DeviceType, TagItem } from '../../tenancy/model.ts';
import type { Registry } from '../../tenancy/registry.ts';
import { ApiError } from '../errors.ts';
import { idParams, ok, removedMessage, responses } from '../schemas/common.ts';
import {
  PAYLOAD_PARSER_MAX_BYTES,
  createdDevice,
  device,
  deviceCreateBody,
  deviceListQuery,
  deviceUpdateBody,
  type DeviceCreateBody,
  type DeviceListQuery,
  type DeviceUpdateBody,
} from '../schemas/device.ts';

const deviceId = idParams('deviceId');

export function deviceRoutes(app: FastifyInstance, registry: Registry): void {
  app.get<{ Querystring: DeviceListQuery }>(
    '/devices',
    {
      schema: {
        summary: 'List devices, oldest first',
        description: 'Filter by `name` (substring) and `tags` (`KEY:VALUE`, repeatable, all must match); page with `page` and `amount` (at most 1000).',
        tags: ['devices'],
        querystring: deviceListQuery,
        response: responses(200, { type: 'array', items: device }, 'One page of devices'),
      },
    },
    async (request) => {
      const { name, tags, page, amount } = request.query;
      return ok(registry.devices(request.account.accountId, { name, tags: parseTagFilter(tags ?? []), page, amount }));
    },
  );

  app.post<{ Body: DeviceCreateBody }>(
    '/devices',
    {
      schema: {
        summary: 'Create a device',
        description: 'The answer holds the device\'s first token (permission full, never expires); it cannot be read again.',
        tags: ['devices'],
        body: deviceCreateBody,
        response: responses(201, createdDevice, 'The new device and its token'),
      },
    },
    async (request, reply) => {
      const body = request.body;
      checkTypeFields(body.type ?? 'immutable', body);
      checkParserSize(body.payload_parser);
      const created = registry.createDevice(request.account.accountId, body);
      return reply.code(201).send(ok({ device_id: created.device.id, token: created.token, ...created.device }));
    },
  );

  app.get<{ Params: { deviceId: string } }>(
    '/devices/:deviceId',
    { schema: { summary: 'Read a device', tags: ['devices'], params: deviceId, response: responses(200, device, 'The device') } },
    async (request) => ok(deviceOf(registry, request.account.accountId, request.params.deviceId)),
  );

  app.put<{ Params: { deviceId: string }; Body: DeviceUpdateBody }>(
    '/devices/:deviceId',
    {
      schema: {
        summary: 'Change a device',
        description: 'Only the fields sent change. `type` is fixed at creation. Deactivating a device disconnects its sessions.',
        tags: ['devices'],
        params: deviceId,
        body: deviceUpdateBody,
        response: responses(200, device, 'The device as changed'),
      },
    },
    async (request) => {
      const { accountId } = request.account;
      const current = deviceOf(registry, accountId, request.params.deviceId);
      checkTypeFields(current.type, request.body);
      checkParserSize(request.body.payload_parser);
      return ok(registry.updateDevice(accountId, current.id, request.body));
    },
  );

  app.delete<{ Params: { deviceId: string } }>(
    '/devices/:deviceId',
    {
      schema: {
        summary: 'Delete a device',
        description: 'Its tokens go with it and its sessions are disconnected.',
        tags: ['devices'],
        params: deviceId,
        response: responses(200, removedMessage, 'Deleted'),
      },
    },
    async (request) => {
      registry.deleteDevice(request.account.accountId, request.params.deviceId);
      return ok('Device Successfully Removed');
    },
  );
}

/** A device of the account, or 404 — the same 404 for another account's device (tenants never see each other). */
export function deviceOf(registry: Registry, accountId: string, id: string): Device {
  const found = registry.device(accountId, id);
  if (found === null) throw new ApiError(404, `device ${id} not found`);
  return found;
}

/** `KEY:VALUE` strings, split at the first colon (values may contain colons). */
export function parseTagFilter(filters: readonly string[]): TagItem[] {
  return filters.map((filter, i) => {
    const colon = filter.indexOf(':');
    if (colon < 1) throw new ApiError(400, `querystring/tags/${i} must be written KEY:VALUE`);
    return { key: filter.slice(0, colon), value: filter.slice(colon + 1) };
  });
}

/** retention_days belongs to immutable devices, record_cap to mutable ones; sending the other is a mistake. */
function checkTypeFields(type: DeviceType, body: { retention_days?: number | null; record_cap?: number }): void {
  if (type === 'mutable' && body.retention_days !== undefined) {
    throw new ApiError(400, 'body/retention_days applies to immutable devices only');
  }
  if (type === 'immutable' && body.record_cap !== undefined) {
    throw new ApiError(400, 'body/record_cap applies to mutable devices only');
  }
}

/** The schema caps characters; the limit is in bytes (multi-byte characters count more). */
function checkParserSize(parser: string | null | undefined): void {
  if (typeof parser === 'string' && Buffer.byteLength(parser) > PAYLOAD_PARSER_MAX_BYTES) {
    throw new ApiError(400, `body/payload_parser must be at most ${PAYLOAD_PARSER_MAX_BYTES} bytes`);
  }
}
