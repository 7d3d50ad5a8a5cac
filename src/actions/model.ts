/**
 * Actions (SPEC §5): per-account rules that run when something happens. Triggers: `mqtt_topic`,
 * `variable` (conditions on stored records, with an optional unlock condition) and `schedule` (cron
 * with a time zone). The action types are the `ActionType` union.
 */
import type { TagItem } from '../tenancy/model.ts';

/** Fires when a device of the account publishes to a topic matching one of `topics`. */
export interface MqttTopicTrigger {
  type: 'mqtt_topic';
  /** Topic filters, wildcards allowed (`sensors/#`, `+/temperature`). */
  topics: string[];
  /** Scope: only these devices. Absent = every device of the account. */
  devices?: string[];
  /** Scope: only devices carrying every one of these tags. Absent = no tag condition. */
  tags?: TagItem[];
}

/** Stores the message in the publishing device's bucket; records get `metadata.mqtt_topic`. */
export interface InsertBucketAction {
  type: 'insert_bucket';
}

/** How a condition compares a record's value (`value_type` says as numbers or as text). */
export type ConditionOperator = '<' | '>' | '=' | '!=' | 'between' | 'any';

/** Met by a stored record of `variable` whose value compares to `value` (and `second_value`) as `is` says. */
export interface VariableCondition {
  variable: string;
  is: ConditionOperator;
  /** Compared against; absent for `any`. `between`: the low end (inclusive). */
  value?: string | number;
  /** `between` only: the high end (inclusive). */
  second_value?: string | number;
  /** `number`: both sides as numbers (a non-number never matches); `string`: as text. Default `number`. */
  value_type?: 'number' | 'string';
}

/**
 * Fires when a stored record of a scoped device meets one of `conditions` (once per message). With
 * `unlock`, a firing locks the action for that device until a record meets one of `unlock`.
 */
export interface VariableTrigger {
  type: 'variable';
  conditions: VariableCondition[];
  unlock?: VariableCondition[];
  devices?: string[];
  tags?: TagItem[];
}

/** Fires at the times of a cron expression (5 fields, or 6 with seconds) in `timezone` (IANA, default UTC). */
export interface ScheduleTrigger {
  type: 'schedule';
  cron: string;
  timezone?: string;
}

export type ActionTrigger = MqttTopicTrigger | VariableTrigger | ScheduleTrigger;
export type ActionType = InsertBucketAction;

export interface Action {
  id: string;
  name: string;
  active: boolean;
  trigger: ActionTrigger;
  action: ActionType;
  created_at: string;
  updated_at: string;
}

export interface ActionInput {
  name: string;
  /** Default true. */
  active?: boolean;
  trigger: ActionTrigger;
  action: ActionType;
}

export type ActionPatch = Partial<ActionInput>;
