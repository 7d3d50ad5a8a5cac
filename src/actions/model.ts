/**
 * Actions (SPEC §5): per-account rules that run when something happens. This build has the
 * `mqtt_topic` trigger and the `insert_bucket` type; the other triggers and types slot in as new
 * members of the unions below.
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

export type ActionTrigger = MqttTopicTrigger;
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
