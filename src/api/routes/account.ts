/** GET /account and GET /account/plans (SPEC §7, §9): who the token belongs to and what plans exist. */
import type { FastifyInstance } from 'fastify';
import type { Registry } from '../../tenancy/registry.ts';
import { ApiError } from '../errors.ts';
import { isoDate, ok, responses } from '../schemas/common.ts';

const plan = {
  type: 'object',
  required: ['name', 'limits'],
  properties: {
    name: { type: 'string' },
    limits: {
      type: 'object',
      additionalProperties: { type: 'number' },
      description: 'Per-minute rates and resource caps (devices, actions), e.g. {"mqtt_publish": 250}',
    },
  },
} as const;

const account = {
  type: 'object',
  required: ['id', 'name', 'plan', 'created_at'],
  properties: { id: { type: 'string' }, name: { type: 'string' }, plan, created_at: isoDate },
} as const;

export function accountRoutes(app: FastifyInstance, registry: Registry): void {
  app.get(
    '/account',
    { schema: { summary: 'The account of this token, with its plan', tags: ['account'], response: responses(200, account, 'The account') } },
    async (request) => {
      const found = registry.account(request.account.accountId);
      if (found === null) throw new ApiError(404, 'account not found');
      const limits = registry.plan(found.plan)?.limits ?? {};
      return ok({ ...found, plan: { name: found.plan, limits } });
    },
  );

  app.get(
    '/account/plans',
    { schema: { summary: 'Plans and their limits', tags: ['account'], response: responses(200, { type: 'array', items: plan }, 'The plans') } },
    async () => ok(registry.plans()),
  );
}
