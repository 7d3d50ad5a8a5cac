/** Account tokens (SPEC §1, §9): list, create (the plain token is answered once), revoke. */
import type { FastifyInstance } from 'fastify';
import type { Permission } from '../../tenancy/model.ts';
import type { Registry } from '../../tenancy/registry.ts';
import { ApiError } from '../errors.ts';
import { idParams, ok, removedMessage, responses } from '../schemas/common.ts';
import { accountTokenBody, accountTokenInfo, createdAccountToken, type TokenBody } from '../schemas/token.ts';

/**
 * A token may mint tokens with at most its own rights: otherwise a `write` token could create a
 * `full` one and read everything. (`read` tokens cannot POST at all.)
 */
function mayGrant(holder: Permission, requested: Permission): boolean {
  return holder === 'full' || holder === requested;
}

export function accountTokenRoutes(app: FastifyInstance, registry: Registry): void {
  app.get(
    '/account/tokens',
    {
      schema: {
        summary: 'List the account tokens (never the tokens themselves)',
        tags: ['account tokens'],
        response: responses(200, { type: 'array', items: accountTokenInfo }, 'The account tokens'),
      },
    },
    async (request) => ok(registry.accountTokens(request.account.accountId)),
  );

  app.post<{ Body: TokenBody }>(
    '/account/tokens',
    {
      schema: {
        summary: 'Create an account token',
        description: 'The answer holds the token itself; it cannot be read again. A `write` token may only create `write` tokens.',
        tags: ['account tokens'],
        body: accountTokenBody,
        response: responses(201, createdAccountToken, 'The new token'),
      },
    },
    async (request, reply) => {
      const { accountId, permission } = request.account;
      if (!mayGrant(permission, request.body.permission)) {
        throw new ApiError(403, `a "${permission}" token cannot create a "${request.body.permission}" token`);
      }
      const { token, info } = registry.createAccountToken(accountId, request.body);
      return reply.code(201).send(ok({ token, ...info }));
    },
  );

  app.delete<{ Params: { tokenId: string } }>(
    '/account/tokens/:tokenId',
    {
      schema: {
        summary: 'Revoke an account token',
        tags: ['account tokens'],
        params: idParams('tokenId'),
        response: responses(200, removedMessage, 'Revoked'),
      },
    },
    async (request) => {
      registry.deleteAccountToken(request.account.accountId, request.params.tokenId);
      return ok('Token Successfully Removed');
    },
  );
}
