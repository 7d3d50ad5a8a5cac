/**
 * Actions (SPEC §5, §9): list, create, read, change, delete, with an account token. A fastify plugin
 * with its own account-auth hook, so it can be registered on the root app by whoever composes it:
 * `app.register(actionsRoutes, { actions, registry })`.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ActionStore } from '../../actions/action-store.ts';
import { MAX_TOPICS_PER_ACTION } from '../../actions/action-store.ts';
import type { ActionInput, ActionPatch } from '../../actions/model.ts';
import type { Registry } from '../../tenancy/registry.ts';
import { actionTypeSchema } from '../../actions/types/schemas.ts';
import { accountAuth } from '../account-auth.ts';
import { idParams, isoDate, ok, removedMessage, responses, tagItem } from '../schemas/common.ts';

export interface ActionsRoutesOptions {
  actions: ActionStore;
  registry: Registry;
}

const name = { type: 'string', minLength: 1, maxLength: 100 } as const;

const trigger = {
  type: 'object',
  required: ['type', 'topics'],
  additionalProperties: false,
  description: 'When the action runs. `mqtt_topic`: a device of the account publishes to a topic matching one of `topics`.',
  properties: {
    type: { type: 'string', enum: ['mqtt_topic'] },
    topics: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_TOPICS_PER_ACTION,
      items: { type: 'string', minLength: 1, maxLength: 1024 },
      description: 'MQTT topic filters, wildcards allowed (`sensors/#`, `+/temperature`). The action fires once per message however many match.',
    },
    devices: {
      type: 'array',
      minItems: 1,
      maxItems: 10_000,
      items: { type: 'string', minLength: 1, maxLength: 64 },
      description: 'Scope: only publishes of these devices. Absent: every device of the account.',
    },
    tags: {
      type: 'array',
      minItems: 1,
      maxItems: 100,
      items: tagItem,
      description: 'Scope: only devices carrying every one of these tags. With `devices` too, both must hold.',
    },
  },
} as const;

const actionType = actionTypeSchema;

const actionCreateBody = {
  type: 'object',
  required: ['name', 'trigger', 'action'],
  additionalProperties: false,
  properties: { name, active: { type: 'boolean', description: 'Default true' }, trigger, action: actionType },
} as const;

const actionUpdateBody = {
  type: 'object',
  minProperties: 1,
  additionalProperties: false,
  properties: { name, active: { type: 'boolean' }, trigger: { ...trigger, description: 'Replaces the trigger whole' }, action: actionType },
} as const;

const actionProperties = {
  id: { type: 'string' },
  name: { type: 'string' },
  active: { type: 'boolean' },
  trigger,
  action: actionType,
  created_at: isoDate,
  updated_at: isoDate,
} as const;

const action = { type: 'object', required: Object.keys(actionProperties), properties: actionProperties } as const;

const actionId = idParams('actionId');

export const actionsRoutes: FastifyPluginAsync<ActionsRoutesOptions> = async (app, options) => {
  const { actions } = options;
  app.addHook('onRequest', accountAuth(options.registry));

  app.get(
    '/actions',
    { schema: { summary: 'List actions, oldest first', tags: ['actions'], response: responses(200, { type: 'array', items: action }, 'The account\'s actions') } },
    async (request) => ok(actions.list(request.account.accountId)),
  );

  app.post<{ Body: ActionInput }>(
    '/actions',
    {
      schema: {
        summary: 'Create an action',
        description: 'Takes effect on the next message.',
        tags: ['actions'],
        body: actionCreateBody,
        response: responses(201, action, 'The new action'),
      },
    },
    async (request, reply) => reply.code(201).send(ok(actions.create(request.account.accountId, request.body))),
  );

  app.get<{ Params: { actionId: string } }>(
    '/actions/:actionId',
    { schema: { summary: 'Read an action', tags: ['actions'], params: actionId, response: responses(200, action, 'The action') } },
    async (request) => ok(actions.get(request.account.accountId, request.params.actionId)),
  );

  app.put<{ Params: { actionId: string }; Body: ActionPatch }>(
    '/actions/:actionId',
    {
      schema: {
        summary: 'Change an action',
        description: 'Only the fields sent change; `trigger` and `action` are replaced whole. Takes effect on the next message.',
        tags: ['actions'],
        params: actionId,
        body: actionUpdateBody,
        response: responses(200, action, 'The action as changed'),
      },
    },
    async (request) => ok(actions.update(request.account.accountId, request.params.actionId, request.body)),
  );

  app.delete<{ Params: { actionId: string } }>(
    '/actions/:actionId',
    { schema: { summary: 'Delete an action', tags: ['actions'], params: actionId, response: responses(200, removedMessage, 'Deleted') } },
    async (request) => {
      actions.delete(request.account.accountId, request.params.actionId);
      return ok('Action Successfully Removed');
    },
  );
};
