/**
 * Actions of every account (SPEC §5) in the node's SQLite database (component `actions`), with an
 * in-memory index per account for the data path: `indexOf(accountId)` is a Map lookup, and the
 * index is rebuilt whenever that account's actions change. Lookups and changes are scoped to the
 * account, like the registry's: another account's action is simply "not found".
 */
import { DEFAULT_LIMITS } from '../broker/broker-options.ts';
import { checkTopicFilter } from '../broker/routing/topic.ts';
import { migrate, type Database } from '../storage/sqlite-database.ts';
import { invalid, notFound } from '../tenancy/errors.ts';
import type { Registry } from '../tenancy/registry.ts';
import { generateId } from '../tenancy/secrets.ts';
import { AccountActionIndex } from './action-index.ts';
import type { Action, ActionInput, ActionPatch, ActionTrigger, ActionType, VariableCondition } from './model.ts';
import { isTimeZone } from '../parser/options.ts';
import { parseSchedule } from './scheduler.ts';

export const ACTION_MIGRATIONS: readonly string[] = [
  `CREATE TABLE actions (
    id          TEXT    PRIMARY KEY,
    account_id  TEXT    NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    active      INTEGER NOT NULL,
    trigger     TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
  );
  CREATE INDEX actions_by_account ON actions (account_id, created_at);`,
];

/** Topic filters per action: enough for any real rule, small enough to keep the index cheap. */
export const MAX_TOPICS_PER_ACTION = 100;
/** Conditions (and unlock conditions) per variable trigger. */
export const MAX_CONDITIONS = 50;

/** An action was created, changed or deleted (`action` null). */
export interface ActionChange {
  readonly accountId: string;
  readonly actionId: string;
  readonly action: Action | null;
  /** The trigger is new or different (or the action is gone): per-trigger state (locks) no longer holds. */
  readonly triggerChanged: boolean;
}
export type ActionChangeListener = (change: ActionChange) => void;

interface ActionRow {
  id: string;
  account_id: string;
  name: string;
  active: number;
  trigger: string;
  action: string;
  created_at: string;
  updated_at: string;
}

export class ActionStore {
  readonly #registry: Registry;
  readonly #now: () => number;
  readonly #stmt;
  /** Accounts with at least one active filter; absent = nothing to run (the common fast answer). */
  readonly #indexes = new Map<string, AccountActionIndex>();
  readonly #listeners = new Set<ActionChangeListener>();

  /** The registry must be constructed first: the actions table references its accounts. */
  constructor(db: Database, registry: Registry, options: { now?: () => number } = {}) {
    this.#registry = registry;
    this.#now = options.now ?? Date.now;
    migrate(db, 'actions', ACTION_MIGRATIONS);
    this.#stmt = {
      insert: db.prepare('INSERT INTO actions (id, account_id, name, active, trigger, action, created_at, updated_at) VALUES (@id, @account_id, @name, @active, @trigger, @action, @created_at, @updated_at)'),
      update: db.prepare('UPDATE actions SET name = @name, active = @active, trigger = @trigger, action = @action, updated_at = @updated_at WHERE id = @id AND account_id = @account_id'),
      delete: db.prepare('DELETE FROM actions WHERE id = ? AND account_id = ?'),
      one: db.prepare<[string, string], ActionRow>('SELECT * FROM actions WHERE id = ? AND account_id = ?'),
      ofAccount: db.prepare<[string], ActionRow>('SELECT * FROM actions WHERE account_id = ? ORDER BY created_at, rowid'),
      count: db.prepare<[string], number>('SELECT count(*) FROM actions WHERE account_id = ?').pluck(),
      accounts: db.prepare<[], string>('SELECT DISTINCT account_id FROM actions').pluck(),
      schedules: db.prepare<[], ActionRow>("SELECT * FROM actions WHERE active = 1 AND json_extract(trigger, '$.type') = 'schedule' ORDER BY rowid"),
    };
    for (const accountId of this.#stmt.accounts.all()) this.#reindex(accountId);
  }

  /** The account's index for the data path, or null when it has no active action. No I/O. */
  indexOf(accountId: string): AccountActionIndex | null {
    return this.#indexes.get(accountId) ?? null;
  }

  /** Hears every create, change and delete (the scheduler re-arms, variable locks are cleared). */
  onChange(listener: ActionChangeListener): void {
    this.#listeners.add(listener);
  }

  offChange(listener: ActionChangeListener): void {
    this.#listeners.delete(listener);
  }

  /** Every active schedule action, all accounts (the scheduler's start). */
  schedules(): Array<{ accountId: string; action: Action }> {
    return this.#stmt.schedules.all().map((row) => ({ accountId: row.account_id, action: toAction(row) }));
  }

  list(accountId: string): Action[] {
    return this.#stmt.ofAccount.all(accountId).map(toAction);
  }

  get(accountId: string, actionId: string): Action {
    const row = this.#stmt.one.get(actionId, accountId);
    if (row === undefined) throw notFound(`action ${actionId}`);
    return toAction(row);
  }

  /** Checks an action as `create` would, without saving it (a test run of an unsaved action). */
  check(accountId: string, input: ActionInput): ActionInput {
    return { name: input.name, active: input.active ?? true, trigger: this.#checkTrigger(accountId, input.trigger), action: checkType(input.action) };
  }

  create(accountId: string, input: ActionInput): Action {
    const account = this.#registry.account(accountId);
    if (account === null) throw notFound(`account ${accountId}`);
    const cap = this.#registry.plan(account.plan)?.limits.actions;
    if (cap !== undefined && this.#stmt.count.get(accountId)! >= cap) throw invalid(`actions: the ${account.plan} plan allows ${cap} actions`);
    const now = new Date(this.#now()).toISOString();
    const action: Action = {
      id: generateId(),
      name: input.name,
      active: input.active ?? true,
      trigger: this.#checkTrigger(accountId, input.trigger),
      action: checkType(input.action),
      created_at: now,
      updated_at: now,
    };
    this.#stmt.insert.run(toRow(accountId, action));
    this.#reindex(accountId);
    this.#emit({ accountId, actionId: action.id, action, triggerChanged: true });
    return action;
  }

  /** Replaces the fields present in `patch`; `trigger` and `action` are replaced whole. */
  update(accountId: string, actionId: string, patch: ActionPatch): Action {
    const current = this.get(accountId, actionId);
    const next: Action = {
      ...current,
      name: patch.name ?? current.name,
      active: patch.active ?? current.active,
      trigger: patch.trigger !== undefined ? this.#checkTrigger(accountId, patch.trigger) : current.trigger,
      action: patch.action !== undefined ? checkType(patch.action) : current.action,
      updated_at: new Date(this.#now()).toISOString(),
    };
    this.#stmt.update.run(toRow(accountId, next));
    this.#reindex(accountId);
    this.#emit({ accountId, actionId, action: next, triggerChanged: JSON.stringify(next.trigger) !== JSON.stringify(current.trigger) });
    return next;
  }

  delete(accountId: string, actionId: string): void {
    if (this.#stmt.delete.run(actionId, accountId).changes === 0) throw notFound(`action ${actionId}`);
    this.#reindex(accountId);
    this.#emit({ accountId, actionId, action: null, triggerChanged: true });
  }

  #emit(change: ActionChange): void {
    for (const listener of this.#listeners) listener(change);
  }

  #reindex(accountId: string): void {
    const index = new AccountActionIndex(this.list(accountId));
    if (index.size > 0) this.#indexes.set(accountId, index);
    else this.#indexes.delete(accountId);
  }

  /**
   * Checks a trigger and returns a clean copy (only its type's fields): filters must be valid MQTT
   * filters outside `$share`, listed devices the account's, a cron croner parses in a known time
   * zone, conditions complete. Errors name the field (`trigger/conditions/1/second_value`).
   */
  #checkTrigger(accountId: string, trigger: ActionTrigger): ActionTrigger {
    const fields = TRIGGER_FIELDS[trigger.type];
    if (fields !== undefined) {
      for (const field of Object.keys(trigger)) {
        if (!fields.includes(field)) throw invalid(`trigger/${field} is not a field of a ${trigger.type} trigger (its fields: ${fields.join(', ')})`);
      }
    }
    switch (trigger.type) {
      case 'mqtt_topic':
        return { type: 'mqtt_topic', topics: checkTopics(trigger.topics), ...this.#checkScope(accountId, trigger) };
      case 'variable': {
        const out: ActionTrigger = { type: 'variable', conditions: checkConditions(trigger.conditions, 'trigger/conditions', true), ...this.#checkScope(accountId, trigger) };
        if (trigger.unlock !== undefined) out.unlock = checkConditions(trigger.unlock, 'trigger/unlock', true);
        return out;
      }
      case 'schedule':
        return checkSchedule(trigger);
      default:
        throw invalid(`trigger/type: "${String((trigger as { type: unknown }).type)}" is not supported (supported: mqtt_topic, variable, schedule)`);
    }
  }

  #checkScope(accountId: string, trigger: { devices?: string[]; tags?: Array<{ key: string; value: string }> }): Pick<Extract<ActionTrigger, { type: 'mqtt_topic' }>, 'devices' | 'tags'> {
    const out: Pick<Extract<ActionTrigger, { type: 'mqtt_topic' }>, 'devices' | 'tags'> = {};
    if (trigger.devices !== undefined) {
      if (!Array.isArray(trigger.devices)) throw invalid('trigger/devices must be a list of device ids');
      trigger.devices.forEach((deviceId, i) => {
        if (this.#registry.device(accountId, deviceId) === null) throw invalid(`trigger/devices/${i}: device ${deviceId} not found`);
      });
      out.devices = [...trigger.devices];
    }
    if (trigger.tags !== undefined) out.tags = trigger.tags.map((t) => ({ key: t.key, value: t.value }));
    return out;
  }
}

function checkTopics(topics: unknown): string[] {
  if (!Array.isArray(topics) || topics.length === 0) throw invalid('trigger/topics must list at least one topic filter');
  if (topics.length > MAX_TOPICS_PER_ACTION) throw invalid(`trigger/topics must list at most ${MAX_TOPICS_PER_ACTION} filters`);
  topics.forEach((filter: unknown, i) => {
    if (typeof filter !== 'string') throw invalid(`trigger/topics/${i} must be a string`);
    const problem = checkTopicFilter(filter, DEFAULT_LIMITS);
    if (problem !== null) throw invalid(`trigger/topics/${i}: ${problem}`);
    if (filter.startsWith('$share/')) throw invalid(`trigger/topics/${i}: shared subscription filters are not topic filters`);
  });
  return [...(topics as string[])];
}

/** The fields each trigger type takes. */
const TRIGGER_FIELDS: Record<string, readonly string[] | undefined> = {
  mqtt_topic: ['type', 'topics', 'devices', 'tags'],
  variable: ['type', 'conditions', 'unlock', 'devices', 'tags'],
  schedule: ['type', 'cron', 'timezone'],
};

const OPERATORS: ReadonlySet<string> = new Set(['<', '>', '=', '!=', 'between', 'any']);

/** Conditions of a variable trigger; `at` names the list in errors. */
function checkConditions(conditions: unknown, at: string, required: boolean): VariableCondition[] {
  if (!Array.isArray(conditions) || (required && conditions.length === 0)) throw invalid(`${at} must list at least one condition`);
  if (conditions.length > MAX_CONDITIONS) throw invalid(`${at} must list at most ${MAX_CONDITIONS} conditions`);
  return conditions.map((condition: Partial<VariableCondition>, i) => {
    const field = `${at}/${i}`;
    if (typeof condition !== 'object' || condition === null) throw invalid(`${field} must be an object`);
    if (typeof condition.variable !== 'string' || condition.variable === '') throw invalid(`${field}/variable is required`);
    if (typeof condition.is !== 'string' || !OPERATORS.has(condition.is)) throw invalid(`${field}/is must be one of ${[...OPERATORS].join(', ')}`);
    const valueType = condition.value_type ?? 'number';
    if (valueType !== 'number' && valueType !== 'string') throw invalid(`${field}/value_type must be number or string`);
    const out: VariableCondition = { variable: condition.variable, is: condition.is, value_type: valueType };
    if (condition.is === 'any') return out;
    out.value = checkOperand(condition.value, `${field}/value`, valueType);
    if (condition.is === 'between') {
      if (condition.second_value === undefined) throw invalid(`${field}/second_value is required: between needs two values`);
      out.second_value = checkOperand(condition.second_value, `${field}/second_value`, valueType);
      if (valueType === 'number' && Number(out.second_value) < Number(out.value)) throw invalid(`${field}/second_value must not be less than value`);
    } else if (condition.second_value !== undefined) {
      throw invalid(`${field}/second_value is only for between`);
    }
    return out;
  });
}

function checkOperand(value: unknown, field: string, valueType: 'number' | 'string'): string | number {
  if (value === undefined || value === null) throw invalid(`${field} is required`);
  if (typeof value !== 'string' && typeof value !== 'number') throw invalid(`${field} must be a number or a string`);
  if (valueType === 'number' && (String(value).trim() === '' || !Number.isFinite(Number(value)))) throw invalid(`${field} must be a number (value_type is number)`);
  return value;
}

function checkSchedule(trigger: { cron?: unknown; timezone?: unknown }): ActionTrigger {
  if (typeof trigger.cron !== 'string') throw invalid('trigger/cron is required');
  if (trigger.timezone !== undefined && (typeof trigger.timezone !== 'string' || !isTimeZone(trigger.timezone))) {
    throw invalid(`trigger/timezone: ${JSON.stringify(trigger.timezone)} is not an IANA time zone (e.g. Europe/Paris, UTC)`);
  }
  const out: ActionTrigger = { type: 'schedule', cron: trigger.cron.trim() };
  if (trigger.timezone !== undefined) out.timezone = trigger.timezone as string;
  try {
    parseSchedule(out);
  } catch (error) {
    throw invalid(`trigger/cron: ${error instanceof Error ? error.message : String(error)}`);
  }
  return out;
}

function checkType(action: ActionType): ActionType {
  if (action.type !== 'insert_bucket') throw invalid(`action/type: "${String(action.type)}" is not supported (supported: insert_bucket)`);
  return { type: 'insert_bucket' };
}

function toRow(accountId: string, action: Action): ActionRow {
  return {
    id: action.id,
    account_id: accountId,
    name: action.name,
    active: action.active ? 1 : 0,
    trigger: JSON.stringify(action.trigger),
    action: JSON.stringify(action.action),
    created_at: action.created_at,
    updated_at: action.updated_at,
  };
}

function toAction(row: ActionRow): Action {
  return {
    id: row.id,
    name: row.name,
    active: row.active === 1,
    trigger: JSON.parse(row.trigger) as ActionTrigger,
    action: JSON.parse(row.action) as ActionType,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}
