/**
 * The hot-path view of one account's actions: every active `mqtt_topic` filter in a topic trie, so a
 * publish finds its actions in O(topic depth) whatever the number of actions, with no database
 * query; and the active `variable` actions, which every stored record of the account is checked
 * against. Built once per change of the account's actions (they change rarely, messages often) and
 * replaced whole, so a publish never sees half an update. `schedule` actions are the scheduler's.
 */
import { TopicTrie, type SharedGroup } from '../broker/routing/topic-trie.ts';
import type { TagItem } from '../tenancy/model.ts';
import type { Action, VariableTrigger } from './model.ts';

/** What the data path knows about a publishing device (see src/data/device-cache.ts). */
export interface ScopedDevice {
  readonly id: string;
  /** `key\u0000value` of each of the device's tags. */
  readonly tagSet: ReadonlySet<string>;
}

export interface CompiledAction {
  readonly id: string;
  readonly type: Action['action']['type'];
  /** The action as stored, for the run's context. */
  readonly action: Action;
  /** null: every device of the account. */
  readonly devices: ReadonlySet<string> | null;
  /** `key\u0000value` of every tag the device must carry; null: no tag condition. */
  readonly tags: readonly string[] | null;
}

export function tagKey(tag: TagItem): string {
  return `${tag.key}\u0000${tag.value}`;
}

/** Distinct topics remembered per account by `firstMatch`. */
const TOPIC_CACHE_SIZE = 1_024;

export class AccountActionIndex {
  readonly #trie = new TopicTrie<CompiledAction>();
  // Reused by every match: matching is synchronous, so one pair of arrays per account suffices.
  readonly #matched: CompiledAction[] = [];
  readonly #groups: Array<SharedGroup<CompiledAction>> = [];
  /**
   * Topic → actions its filters match. Devices publish to few distinct topics, over and over, so this
   * saves the split and the trie walk on nearly every message; bounded, emptied when full.
   */
  readonly #byTopic = new Map<string, readonly CompiledAction[]>();
  /** Active `variable` actions, checked against every stored message of the account. */
  readonly variables: ReadonlyArray<CompiledAction & { readonly trigger: VariableTrigger }>;
  /** Whether some active `mqtt_topic` action is of another type than insert_bucket (run by the runner). */
  readonly hasRunnable: boolean;

  /** Indexes the active actions among `actions`. */
  constructor(actions: readonly Action[]) {
    const variables: Array<CompiledAction & { readonly trigger: VariableTrigger }> = [];
    let hasRunnable = false;
    for (const action of actions) {
      const trigger = action.trigger;
      if (!action.active || trigger.type === 'schedule') continue;
      const compiled: CompiledAction = {
        id: action.id,
        type: action.action.type,
        action,
        devices: trigger.devices !== undefined ? new Set(trigger.devices) : null,
        tags: trigger.tags !== undefined ? trigger.tags.map(tagKey) : null,
      };
      if (trigger.type === 'variable') {
        variables.push({ ...compiled, trigger });
        continue;
      }
      if (compiled.type !== 'insert_bucket') hasRunnable = true;
      // Keyed by action id: an action listing overlapping filters sits on several nodes, and a
      // duplicate filter in one action collapses into one entry.
      for (const filter of trigger.topics) this.#trie.add(filter, action.id, compiled, null);
    }
    this.variables = variables;
    this.hasRunnable = hasRunnable;
  }

  /** Number of (filter, action) entries and variable actions; 0 means the account has nothing to run. */
  get size(): number {
    return this.#trie.size + this.variables.length;
  }

  /**
   * The first active action of `type` whose filters match `topic` and whose scope includes `device`,
   * or null. An action fires once per message however many of its filters match (SPEC §5).
   */
  firstMatch(topic: string, device: ScopedDevice, type: CompiledAction['type']): CompiledAction | null {
    const matched = this.#byTopic.get(topic) ?? this.#matchTopic(topic);
    for (let i = 0; i < matched.length; i++) {
      const action = matched[i]!;
      if (action.type === type && inScope(action, device)) return action;
    }
    return null;
  }

  #matchTopic(topic: string): readonly CompiledAction[] {
    this.#trie.match(topic.split('/'), this.#matched, this.#groups);
    // An action whose overlapping filters (`s/#`, `s/t`) both match is listed once.
    const matched = this.#matched.length > 1 ? [...new Set(this.#matched)] : this.#matched.slice();
    this.#matched.length = 0;
    this.#groups.length = 0;
    if (this.#byTopic.size >= TOPIC_CACHE_SIZE) this.#byTopic.clear();
    this.#byTopic.set(topic, matched);
    return matched;
  }

  /**
   * Every distinct action matching `topic` whose scope includes `device` (each once, however many of
   * its filters match), except insert_bucket when `exceptInsert`. A null device (a publish no device
   * made) is in the scope of unscoped actions only.
   */
  matches(topic: string, device: ScopedDevice | null, exceptInsert = false): CompiledAction[] {
    const matched = this.#byTopic.get(topic) ?? this.#matchTopic(topic);
    const out: CompiledAction[] = [];
    for (let i = 0; i < matched.length; i++) {
      const action = matched[i]!;
      if ((!exceptInsert || action.type !== 'insert_bucket') && inScope(action, device)) out.push(action);
    }
    return out;
  }
}

export function inScope(action: Pick<CompiledAction, 'devices' | 'tags'>, device: ScopedDevice | null): boolean {
  if (device === null) return action.devices === null && action.tags === null;
  if (action.devices !== null && !action.devices.has(device.id)) return false;
  if (action.tags !== null) {
    for (let i = 0; i < action.tags.length; i++) if (!device.tagSet.has(action.tags[i]!)) return false;
  }
  return true;
}
