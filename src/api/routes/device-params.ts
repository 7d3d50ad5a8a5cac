/** Device params (SPEC §1): key/value settings a device reads, with a `sent` flag. */
import type { FastifyInstance } from 'fastify';
import type { Registry } from '../../tenancy/registry.ts';
import { idParams, ok, removedMessage, responses } from '../schemas/common.ts';
import { paramInputList, paramItem, type ParamInput } from '../schemas/device.ts';
import { deviceOf } from './devices.ts';

const paramList = { type: 'array', items: paramItem } as const;

export function deviceParamRoutes(app: FastifyInstance, registry: Registry): void {
  app.get<{ Params: { deviceId: string } }>(
    '/devices/:deviceId/params',
    {
      schema: {
        summary: 'List a device\'s params',
        tags: ['device params'],
        params: idParams('deviceId'),
        response: responses(200, paramList, 'The params'),
      },
    },
    async (request) => ok(deviceOf(registry, request.account.accountId, request.params.deviceId).params),
  );

  app.put<{ Params: { deviceId: string }; Body: ParamInput[] }>(
    '/devices/:deviceId/params',
    {
      schema: {
        summary: 'Add or change params',
        description: 'Each item is matched by `key`: an existing param gets the new value (and `sent`, when given); a new key is added. Params not listed stay.',
        tags: ['device params'],
        params: idParams('deviceId'),
        body: paramInputList,
        response: responses(200, paramList, 'All params of the device after the change'),
      },
    },
    async (request) => ok(registry.setParams(request.account.accountId, request.params.deviceId, request.body)),
  );

  app.delete<{ Params: { deviceId: string; paramId: string } }>(
    '/devices/:deviceId/params/:paramId',
    {
      schema: {
        summary: 'Remove a param',
        tags: ['device params'],
        params: idParams('deviceId', 'paramId'),
        response: responses(200, removedMessage, 'Removed'),
      },
    },
    async (request) => {
      registry.deleteParam(request.account.accountId, request.params.deviceId, request.params.paramId);
      return ok('Param Successfully Removed');
    },
  );
}
