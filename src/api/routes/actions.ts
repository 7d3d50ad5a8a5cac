/**
 * Actions (SPEC §5, §9): list, create, read, change, delete, with an account token. A fastify plugin
 * with its own account-auth hook, so it can be registered on the root app by whoever composes it:
 * `app.register(actionsRoutes, { actions, registry })`.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ActionStore } from '../../actions/action-store.ts';
import { MAX_CONDITIONS, MAX_TOPICS_PER_ACTION } from '../../actions/action-store.ts';
import type { LockStore } from '../../actions/lock-store.ts';
import type { Action, ActionInput, ActionPatch } from '../../actions/model.ts';
import type { RunHistory } from '../../actions/run-history.ts';
import type { ActionRunner } from '../../actions/runner.ts';
import { testRun, type TestSample } from '../../actions/test-run.ts';
import type { Registry } from '../../tenancy/registry.ts';
import { actionTypeSchema } from '../../actions/types/schemas.ts';
import { accountAuth } from '../account-auth.ts';
import { ApiError } from '../errors.ts';
import { idParams, isoDate, ok, removedMessage, responses, tagItem } from '../schemas/common.ts';

export interface ActionsRoutesOptions {
  actions: ActionStore;
  registry: Registry;
  runner: ActionRunner;
  history: RunHistory;
  locks: LockStore;
}

const name = { type: 'string', minLength: 1, maxLength: 100, description: 'A name for people (1-100 characters)' } as const;

const scopeDevices = {
  type: 'array',
  minItems: 1,
  maxItems: 10_000,
  items: { type: 'string', minLength: 1, maxLength: 64 },
  description: 'Scope: only these devices of the account (each must exist). Absent: every device of the account.',
} as const;

const scopeTags = {
  type: 'array',
  minItems: 1,
  maxItems: 100,
  items: {
    ...tagItem,
    properties: {
      key: { ...tagItem.properties.key, description: 'The tag\'s key' },
      value: { ...tagItem.properties.value, description: 'The value the device\'s tag must have' },
    },
  },
  description: 'Scope: only devices carrying every one of these tags, as they are when the message comes (a tag change takes effect at once). With `devices` too, both must hold.',
} as const;

const operand = { type: ['number', 'string'], maxLength: 1000, description: 'Compared against the record\'s value; absent for `any`. `between`: the low end, inclusive.' } as const;

const conditionShape = {
  type: 'object',
  required: ['variable', 'is'],
  additionalProperties: false,
  description: 'Met by a stored record of `variable` whose value compares as `is` says.',
  properties: {
    variable: { type: 'string', minLength: 1, maxLength: 100, description: 'The record\'s variable name.' },
    is: { type: 'string', enum: ['<', '>', '=', '!=', 'between', 'any'], description: '`<`, `>`, `=`, `!=` compare with `value`; `between`: from `value` to `second_value`, inclusive; `any`: any record of the variable.' },
    value: operand,
    second_value: { ...operand, description: '`between` only: the high end, inclusive.' },
    value_type: { type: 'string', enum: ['number', 'string'], description: '`number` (default): both sides as numbers, and a record value that is not a number never meets it; `string`: as text (`<`, `>` in code-unit order).' },
  },
} as const;

/** A condition as sent: the operators that compare need their values. */
const condition = {
  ...conditionShape,
  allOf: [
    { if: { properties: { is: { const: 'between' } } }, then: { required: ['value', 'second_value'] } },
    { if: { properties: { is: { enum: ['<', '>', '=', '!='] } } }, then: { required: ['value'] } },
  ],
} as const;

const conditions = { type: 'array', minItems: 1, maxItems: MAX_CONDITIONS, items: condition } as const;
const conditionsOut = { type: 'array', items: conditionShape } as const;

const triggerShape = {
  type: 'object',
  required: ['type'],
  additionalProperties: false,
  description:
    'When the action runs. `mqtt_topic`: a device of the account publishes to a topic matching one of `topics` (once per message). ' +
    '`variable`: a record stored for a device in scope (from MQTT, HTTP, a relay or an action) meets one of `conditions` (once per message); ' +
    'with `unlock`, each firing locks the action for that device until a record meets one of `unlock`. ' +
    '`schedule`: at the times of `cron` in `timezone`.',
  properties: {
    type: { type: 'string', enum: ['mqtt_topic', 'variable', 'schedule'], description: 'The kind of trigger; decides which other fields it takes.' },
    topics: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_TOPICS_PER_ACTION,
      items: { type: 'string', minLength: 1, maxLength: 1024 },
      description: '`mqtt_topic`: MQTT topic filters, wildcards allowed (`sensors/#`, `+/temperature`). The action fires once per message however many match.',
    },
    devices: scopeDevices,
    tags: scopeTags,
    conditions: { ...conditions, description: '`variable`: the action fires when a stored record meets any of these (once per message).' },
    unlock: { ...conditions, description: '`variable`, optional (hysteresis): after firing, the action is locked for that device until a record meets one of these; locks survive a restart (GET /actions/{id}/locks).' },
    cron: { type: 'string', minLength: 1, maxLength: 200, description: '`schedule`: a cron expression, 5 fields (minute hour day month weekday) or 6 with seconds first (croner syntax: `*/5 * * * *`, `0 9 * * MON-FRI`, `L` for the last day).' },
    timezone: { type: 'string', minLength: 1, maxLength: 100, description: '`schedule`: the IANA time zone the cron is read in (`Europe/Paris`). Default UTC.' },
  },
} as const;

/** A trigger as answered. */
const triggerOut = {
  ...triggerShape,
  properties: {
    ...triggerShape.properties,
    conditions: { ...conditionsOut, description: triggerShape.properties.conditions.description },
    unlock: { ...conditionsOut, description: triggerShape.properties.unlock.description },
  },
} as const;

/** A trigger as sent: each type needs its fields. */
const trigger = {
  ...triggerShape,
  allOf: [
    { if: { properties: { type: { const: 'mqtt_topic' } } }, then: { required: ['topics'] } },
    { if: { properties: { type: { const: 'variable' } } }, then: { required: ['conditions'] } },
    { if: { properties: { type: { const: 'schedule' } } }, then: { required: ['cron'] } },
  ],
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
  properties: { name, active: { type: 'boolean', description: 'false: the action stays but never runs' }, trigger: { ...trigger, description: 'Replaces the trigger whole (and clears its locks)' }, action: actionType },
} as const;

const actionProperties = {
  id: { type: 'string', description: 'The action\'s id' },
  name: { type: 'string', description: 'A name for people' },
  active: { type: 'boolean', description: 'false: the action never runs' },
  trigger: triggerOut,
  action: actionType,
  created_at: isoDate,
  updated_at: isoDate,
} as const;

const runRecord = {
  type: 'object',
  required: ['action_id', 'trigger', 'device_id', 'started_at', 'duration_ms', 'ok', 'attempts', 'test', 'depth'],
  properties: {
    action_id: { type: 'string', description: 'The action that ran' },
    trigger: { type: 'string', enum: ['mqtt_topic', 'variable', 'schedule'], description: 'What set it off' },
    device_id: { type: ['string', 'null'], description: 'The device whose message or record set it off; null for a schedule' },
    started_at: isoDate,
    duration_ms: { type: 'integer', description: 'How long it ran, in milliseconds' },
    ok: { type: 'boolean', description: 'Whether it did what it should' },
    error: { type: 'string', description: 'Why it failed; `loop` when it was refused as part of a chain of actions deeper than 8' },
    attempts: { type: 'integer', description: 'Attempts made (http_post retries); 0 when it was refused before running' },
    result: { description: 'What it did, as its type reports it (status code, records stored, ...)' },
    test: { type: 'boolean', description: 'A test run through the API' },
    depth: { type: 'integer', description: 'Action publishes or inserts that led to this run; 0 for a device\'s own message or a schedule' },
  },
} as const;

const lock = {
  type: 'object',
  required: ['device_id', 'locked_at'],
  properties: { device_id: { type: 'string', description: 'The device the action is locked for' }, locked_at: { ...isoDate, description: 'When the firing that locked it happened' } },
} as const;

const sampleProperties = {
  device: { type: 'string', minLength: 1, maxLength: 64, description: 'The device the sample comes from (one of the account\'s); the run sees its name, tags and params' },
  message: {
    type: 'object',
    required: ['topic', 'payload'],
    additionalProperties: false,
    description: '`mqtt_topic`: the sample publish',
    properties: {
      topic: { type: 'string', minLength: 1, maxLength: 1024, description: 'The topic it is published to' },
      payload: { type: 'string', maxLength: 262_144, description: 'The payload, encoded as `payload_encoding` says' },
      payload_encoding: { type: 'string', enum: ['text', 'hex', 'base64'], description: 'How `payload` is written; default text (UTF-8)' },
    },
  },
  records: { type: ['object', 'array'], description: '`variable`: sample records as a device sends them (one or a list); they are not stored' },
} as const;

const testBody = { type: 'object', additionalProperties: false, properties: sampleProperties } as const;

const unsavedTestBody = {
  type: 'object',
  required: ['action'],
  additionalProperties: false,
  properties: { ...sampleProperties, action: { ...actionCreateBody, description: 'The action to test, as it would be created; it is not saved and its run is not kept in a history' } },
} as const;

const testAnswer = {
  type: 'object',
  required: ['run', 'trigger_met'],
  properties: {
    run: { ...runRecord, description: 'The run, as the run history keeps it' },
    trigger_met: { type: 'boolean', description: 'Whether the trigger would have fired on this sample in production (topic, scope, conditions, lock)' },
    trigger_note: { type: 'string', description: 'Why it would not have' },
  },
} as const;

const action = { type: 'object', required: Object.keys(actionProperties), properties: actionProperties } as const;

const actionId = idParams('actionId');

export const actionsRoutes: FastifyPluginAsync<ActionsRoutesOptions> = async (app, options) => {
  const { actions, history, locks, runner, registry } = options;
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

  /** A list about one of the account's actions (its runs, its locks). */
  const actionList = (what: string, summary: string, description: string, item: object, read: (actionId: string) => unknown[]): void => {
    app.get<{ Params: { actionId: string } }>(
      `/actions/:actionId/${what}`,
      { schema: { summary, description, tags: ['actions'], params: actionId, response: responses(200, { type: 'array', items: item }, summary) } },
      async (request) => ok(read(actions.get(request.account.accountId, request.params.actionId).id)),
    );
  };
  actionList(
    'runs',
    'The action\'s last runs, newest first',
    'The last 100 runs (test runs included), kept across restarts: trigger, start, duration, result or error, attempts.',
    runRecord,
    (id) => history.runs(id),
  );
  actionList(
    'locks',
    'Devices a variable action is locked for',
    'A `variable` action with `unlock` is locked per device after it fires, until a record meets `unlock`. Empty for other actions.',
    lock,
    (id) => locks.locks(id),
  );

  app.delete<{ Params: { actionId: string; deviceId: string } }>(
    '/actions/:actionId/locks/:deviceId',
    {
      schema: {
        summary: 'Unlock a variable action for a device',
        description: 'As if a record had met the unlock condition: the next record meeting the conditions fires it.',
        tags: ['actions'],
        params: idParams('actionId', 'deviceId'),
        response: responses(200, removedMessage, 'Unlocked'),
      },
    },
    async (request) => {
      const action = actions.get(request.account.accountId, request.params.actionId);
      if (!locks.unlock(action.id, request.params.deviceId)) throw new ApiError(404, `lock of device ${request.params.deviceId} not found`);
      return ok('Action Successfully Unlocked');
    },
  );

  app.post<{ Params: { actionId: string }; Body: TestSample }>(
    '/actions/:actionId/test',
    {
      schema: {
        summary: 'Test-run an action',
        description:
          'Runs the action once with a sample (`message` for mqtt_topic, `records` for variable, nothing for schedule) through the same queue and ' +
          'executors as production (an http_post really posts), records it in the run history with `test: true`, and answers with the run ' +
          'and whether the trigger would have fired on the sample. Runs even when the action is inactive; stores no data and changes no lock.',
        tags: ['actions'],
        params: actionId,
        body: testBody,
        response: responses(200, testAnswer, 'The run'),
      },
    },
    async (request) => {
      const accountId = request.account.accountId;
      const action = actions.get(accountId, request.params.actionId);
      return ok(await testRun({ registry, runner, locks }, accountId, action, request.body));
    },
  );

  app.post<{ Body: TestSample & { action: ActionInput } }>(
    '/actions/test',
    {
      schema: {
        summary: 'Test-run an unsaved action',
        description: 'As POST /actions/{id}/test, for an action body that is checked as on create but not saved; its run is answered, not kept.',
        tags: ['actions'],
        body: unsavedTestBody,
        response: responses(200, testAnswer, 'The run'),
      },
    },
    async (request) => {
      const accountId = request.account.accountId;
      const { action: input, ...sample } = request.body;
      const checked = actions.check(accountId, input);
      const now = new Date().toISOString();
      const action: Action = { id: UNSAVED_ACTION_ID, name: checked.name, active: checked.active ?? true, trigger: checked.trigger, action: checked.action, created_at: now, updated_at: now };
      return ok(await testRun({ registry, runner, locks }, accountId, action, sample));
    },
  );
};

/** The id of an action tested unsaved (ids are 24 hex digits, so it is never a real one). */
const UNSAVED_ACTION_ID = 'unsaved';
