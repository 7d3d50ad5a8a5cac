/** Device tokens (SPEC §1): list, create (the plain token is answered once), revoke (cuts live sessions). */
import type { FastifyInstance } from 'fastify';
import type { Registry } from '../../tenancy/registry.ts';
import { idParams, ok, removedMessage, responses } from '../schemas/common.ts';
import { createdDeviceToken, deviceTokenBody, deviceTokenInfo, type DeviceTokenBody } from '../schemas/token.ts';

export function deviceTokenRoutes(app: FastifyInstance, registry: Registry): void {
  app.get<{ Params: { deviceId: string } }>(
    '/devices/:deviceId/tokens',
    {
      schema: {
        summary: 'List a device\'s tokens (never the tokens themselves)',
        tags: ['device tokens'],
        params: idParams('deviceId'),
        response: responses(200, { type: 'array', items: deviceTokenInfo }, 'The device tokens'),
      },
    },
    async (request) => ok(registry.deviceTokens(request.account.accountId, request.params.deviceId)),
  );

  app.post<{ Params: { deviceId: string }; Body: DeviceTokenBody }>(
    '/devices/:deviceId/tokens',
    {
      schema: {
        summary: 'Create a device token',
        description: 'The answer holds the token itself; it cannot be read again. `write` tokens may publish, `read` tokens subscribe, `full` both.',
        tags: ['device tokens'],
        params: idParams('deviceId'),
        body: deviceTokenBody,
        response: responses(201, createdDeviceToken, 'The new token'),
      },
    },
    async (request, reply) => {
      const { token, info } = registry.createDeviceToken(request.account.accountId, request.params.deviceId, request.body);
      return reply.code(201).send(ok({ token, ...info }));
    },
  );

  app.delete<{ Params: { deviceId: string; tokenId: string } }>(
    '/devices/:deviceId/tokens/:tokenId',
    {
      schema: {
        summary: 'Revoke a device token',
        description: 'Sessions logged in with it are disconnected.',
        tags: ['device tokens'],
        params: idParams('deviceId', 'tokenId'),
        response: responses(200, removedMessage, 'Revoked'),
      },
    },
    async (request) => {
      registry.deleteDeviceToken(request.account.accountId, request.params.deviceId, request.params.tokenId);
      return ok('Token Successfully Removed');
    },
  );
}
