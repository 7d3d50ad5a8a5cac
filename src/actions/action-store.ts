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
import type { Action, ActionInput, ActionPatch, ActionTrigger, ActionType } from './model.ts';

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
    };
    for (const accountId of this.#stmt.accounts.all()) this.#reindex(accountId);
  }

  /** The account's index for the data path, or null when it has no active action. No I/O. */
  indexOf(accountId: string): AccountActionIndex | null {
    return this.#indexes.get(accountId) ?? null;
  }

  list(accountId: string): Action[] {
    return this.#stmt.ofAccount.all(accountId).map(toAction);
  }

  get(accountId: string, actionId: string): Action {
    const row = this.#stmt.one.get(actionId, accountId);
    if (row === undefined) throw notFound(`action ${actionId}`);
    return toAction(row);
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
    return next;
  }

  delete(accountId: string, actionId: string): void {
    if (this.#stmt.delete.run(actionId, accountId).changes === 0) throw notFound(`action ${actionId}`);
    this.#reindex(accountId);
  }

  #reindex(accountId: string): void {
    const index = new AccountActionIndex(this.list(accountId));
    if (index.size > 0) this.#indexes.set(accountId, index);
    else this.#indexes.delete(accountId);
  }

  /** Filters must be valid MQTT filters outside `$share`; listed devices must be the account's. */
  #checkTrigger(accountId: string, trigger: ActionTrigger): ActionTrigger {
    if (trigger.type !== 'mqtt_topic') throw invalid(`trigger/type: "${String(trigger.type)}" is not supported (supported: mqtt_topic)`);
    if (!Array.isArray(trigger.topics) || trigger.topics.length === 0) throw invalid('trigger/topics must list at least one topic filter');
    if (trigger.topics.length > MAX_TOPICS_PER_ACTION) throw invalid(`trigger/topics must list at most ${MAX_TOPICS_PER_ACTION} filters`);
    trigger.topics.forEach((filter, i) => {
      const problem = checkTopicFilter(filter, DEFAULT_LIMITS);
      if (problem !== null) throw invalid(`trigger/topics/${i}: ${problem}`);
      if (filter.startsWith('$share/')) throw invalid(`trigger/topics/${i}: shared subscription filters are not topic filters`);
    });
    trigger.devices?.forEach((deviceId, i) => {
      if (this.#registry.device(accountId, deviceId) === null) throw invalid(`trigger/devices/${i}: device ${deviceId} not found`);
    });
    const out: ActionTrigger = { type: 'mqtt_topic', topics: [...trigger.topics] };
    if (trigger.devices !== undefined) out.devices = [...trigger.devices];
    if (trigger.tags !== undefined) out.tags = trigger.tags.map((t) => ({ key: t.key, value: t.value }));
    return out;
  }
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
