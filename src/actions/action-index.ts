/**
 * The hot-path view of one account's actions: every active `mqtt_topic` filter in a topic trie, so a
 * publish finds its actions in O(topic depth) whatever the number of actions, with no database
 * query. Built once per change of the account's actions (they change rarely, messages often) and
 * replaced whole, so a publish never sees half an update.
 */
import { TopicTrie, type SharedGroup } from '../broker/routing/topic-trie.ts';
import type { TagItem } from '../tenancy/model.ts';
import type { Action } from './model.ts';

/** What the data path knows about a publishing device (see src/data/device-cache.ts). */
export interface ScopedDevice {
  readonly id: string;
  /** `key\u0000value` of each of the device's tags. */
  readonly tagSet: ReadonlySet<string>;
}

export interface CompiledAction {
  readonly id: string;
  readonly type: Action['action']['type'];
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

  /** Indexes the active actions among `actions`. */
  constructor(actions: readonly Action[]) {
    for (const action of actions) {
      if (!action.active) continue;
      const compiled: CompiledAction = {
        id: action.id,
        type: action.action.type,
        devices: action.trigger.devices !== undefined ? new Set(action.trigger.devices) : null,
        tags: action.trigger.tags !== undefined ? action.trigger.tags.map(tagKey) : null,
      };
      // Keyed by action id: an action listing overlapping filters sits on several nodes, and a
      // duplicate filter in one action collapses into one entry.
      for (const filter of action.trigger.topics) this.#trie.add(filter, action.id, compiled, null);
    }
  }

  /** Number of (filter, action) entries; 0 means the account has nothing to run. */
  get size(): number {
    return this.#trie.size;
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
    const matched = this.#matched.slice();
    this.#matched.length = 0;
    this.#groups.length = 0;
    if (this.#byTopic.size >= TOPIC_CACHE_SIZE) this.#byTopic.clear();
    this.#byTopic.set(topic, matched);
    return matched;
  }

  /** Every distinct action matching `topic` and `device` (each once). For tests and future action types. */
  matches(topic: string, device: ScopedDevice): CompiledAction[] {
    const matched: CompiledAction[] = [];
    this.#trie.match(topic.split('/'), matched, []);
    return [...new Set(matched)].filter((action) => inScope(action, device));
  }
}

function inScope(action: CompiledAction, device: ScopedDevice): boolean {
  if (action.devices !== null && !action.devices.has(device.id)) return false;
  if (action.tags !== null) {
    for (let i = 0; i < action.tags.length; i++) if (!device.tagSet.has(action.tags[i]!)) return false;
  }
  return true;
}
