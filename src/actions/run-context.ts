/**
 * The contract between the action runner (triggers, queue, run history: src/actions/runner.ts and the
 * trigger modules) and the action types (src/actions/types/: insert_bucket, mqtt_publish, http_post,
 * script). The runner decides *that* an action runs and with what context; a type's executor decides
 * *what* it does, and reports one `RunResult`. Templates (SPEC §5: `$VARIABLE$ $VALUE$ ...`) are
 * filled from the same context.
 */
import type { DataRecord } from '../data/record.ts';
import type { ParamItem, TagItem } from '../tenancy/model.ts';
import type { Action, ActionType } from './model.ts';

/** The device a run concerns, as templates and scripts see it. */
export interface RunDevice {
  readonly id: string;
  readonly name: string;
  readonly tags: readonly TagItem[];
  readonly params: readonly ParamItem[];
}

export type TriggerKind = Action['trigger']['type'];

/** Why an action runs, and with what. */
export interface RunContext {
  readonly accountId: string;
  readonly action: Action;
  readonly trigger: TriggerKind;
  /** The device whose message or record set the action off; null for a schedule. */
  readonly device: RunDevice | null;
  /** mqtt_topic: the publish that matched. */
  readonly topic?: string;
  readonly payload?: Buffer;
  /** variable: the stored records of the message that met the condition. */
  readonly records?: readonly DataRecord[];
  /** variable with an unlock condition: whether the action is now locked for this device. */
  readonly locked?: boolean;
  /** schedule: the cron time this run stands for, epoch ms. */
  readonly slot?: number;
  /** A test run through the API: runs the same code, and is recorded as a test. */
  readonly test: boolean;
  /**
   * How many action publishes led to this run: 0 for a device's own message. An `mqtt_publish` run
   * offers its message to the account's actions with depth + 1; the runner stops a chain past its
   * bound (a loop) and reports it.
   */
  readonly depth: number;
}

/** What one run did. */
export interface RunResult {
  readonly ok: boolean;
  /** Attempts made (http_post retries); 1 for most types. */
  readonly attempts: number;
  /** A short JSON-able summary for the run history and the inspector (e.g. status code, records stored). */
  readonly result?: unknown;
  /** Why it failed, when `ok` is false. */
  readonly error?: string;
}

/** Runs actions of every type; built by src/actions/types/index.ts from the types' modules. */
export interface ActionExecutors {
  run(action: ActionType, context: RunContext): Promise<RunResult>;
}
