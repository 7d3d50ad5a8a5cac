/**
 * Subscription index: a trie over topic levels.
 *
 * Matching rules (MQTT 5 §4.7): a literal level matches itself; '+' matches exactly one level
 * (including an empty one); '#' as the last level matches zero or more levels, so `a/#` matches `a`
 * and `a/b/c`. Topics whose first level starts with '$' are not matched by a '+' or '#' in the first
 * level of a filter (§4.7.2).
 *
 * Cost: a publish to a topic of depth d visits at most the nodes reachable along its levels — for
 * each level one literal child (a Map lookup), the '+' child and the '#' child — so matching is
 * O(d x branches taken), independent of the number of subscriptions that cannot match.
 * Subscribe and unsubscribe are O(d); empty nodes are pruned on unsubscribe.
 */

export class SharedGroup<T> {
  readonly name: string;
  readonly members = new Map<string, T>();
  /** Round-robin position, so messages spread across members. */
  cursor = 0;
  #list: T[] | null = null;
  constructor(name: string) {
    this.name = name;
  }

  /** Members as an array (cached until membership changes). */
  list(): T[] {
    return (this.#list ??= Array.from(this.members.values()));
  }

  set(key: string, value: T): boolean {
    const added = !this.members.has(key);
    this.members.set(key, value);
    this.#list = null;
    return added;
  }

  delete(key: string): boolean {
    this.#list = null;
    return this.members.delete(key);
  }
}

class TrieNode<T> {
  readonly parent: TrieNode<T> | null;
  readonly level: string;
  children: Map<string, TrieNode<T>> | null = null;
  plus: TrieNode<T> | null = null;
  hash: TrieNode<T> | null = null;
  subscribers: Map<string, T> | null = null;
  groups: Map<string, SharedGroup<T>> | null = null;

  constructor(parent: TrieNode<T> | null, level: string) {
    this.parent = parent;
    this.level = level;
  }

  isEmpty(): boolean {
    return this.subscribers === null && this.groups === null && this.plus === null && this.hash === null &&
      (this.children === null || this.children.size === 0);
  }
}

export class TopicTrie<T> {
  readonly #root = new TrieNode<T>(null, '');
  #size = 0;

  /** Number of subscriptions (shared members included). */
  get size(): number {
    return this.#size;
  }

  /** Adds or replaces the subscription of `key` on `filter` (in `group` when shared). */
  add(filter: string, key: string, value: T, group: string | null): void {
    const node = this.#nodeFor(filter, true)!;
    if (group === null) {
      node.subscribers ??= new Map();
      if (!node.subscribers.has(key)) this.#size++;
      node.subscribers.set(key, value);
    } else {
      node.groups ??= new Map();
      let shared = node.groups.get(group);
      if (shared === undefined) node.groups.set(group, (shared = new SharedGroup(group)));
      if (shared.set(key, value)) this.#size++;
    }
  }

  /** Removes a subscription; returns whether it existed. */
  remove(filter: string, key: string, group: string | null): boolean {
    const node = this.#nodeFor(filter, false);
    if (node === null) return false;
    let removed = false;
    if (group === null) {
      if (node.subscribers !== null && node.subscribers.delete(key)) {
        removed = true;
        if (node.subscribers.size === 0) node.subscribers = null;
      }
    } else {
      const shared = node.groups?.get(group);
      if (shared !== undefined && shared.delete(key)) {
        removed = true;
        if (shared.members.size === 0) node.groups!.delete(group);
        if (node.groups!.size === 0) node.groups = null;
      }
    }
    if (removed) {
      this.#size--;
      this.#prune(node);
    }
    return removed;
  }

  /**
   * Appends every ordinary subscription matching `levels` to `out` and every matching shared group
   * to `groupsOut`. Output arrays are the caller's so the hot path allocates nothing per match.
   */
  match(levels: readonly string[], out: T[], groupsOut: SharedGroup<T>[]): void {
    const dollar = levels.length > 0 && levels[0]!.charCodeAt(0) === 0x24;
    this.#collect(this.#root, levels, 0, dollar, out, groupsOut);
  }

  #collect(node: TrieNode<T>, levels: readonly string[], i: number, dollar: boolean, out: T[], groupsOut: SharedGroup<T>[]): void {
    const wildcardsAllowed = i > 0 || !dollar;
    if (node.hash !== null && wildcardsAllowed) pushAll(node.hash, out, groupsOut);
    if (i === levels.length) {
      pushAll(node, out, groupsOut);
      return;
    }
    if (node.children !== null) {
      const child = node.children.get(levels[i]!);
      if (child !== undefined) this.#collect(child, levels, i + 1, dollar, out, groupsOut);
    }
    if (node.plus !== null && wildcardsAllowed) this.#collect(node.plus, levels, i + 1, dollar, out, groupsOut);
  }

  #nodeFor(filter: string, create: boolean): TrieNode<T> | null {
    let node = this.#root;
    for (const level of filter.split('/')) {
      let next: TrieNode<T> | null | undefined;
      if (level === '+') next = node.plus;
      else if (level === '#') next = node.hash;
      else next = node.children?.get(level);
      if (next === null || next === undefined) {
        if (!create) return null;
        next = new TrieNode<T>(node, level);
        if (level === '+') node.plus = next;
        else if (level === '#') node.hash = next;
        else (node.children ??= new Map()).set(level, next);
      }
      node = next;
    }
    return node;
  }

  #prune(node: TrieNode<T>): void {
    let current: TrieNode<T> | null = node;
    while (current !== null && current.parent !== null && current.isEmpty()) {
      const parent: TrieNode<T> = current.parent;
      if (parent.plus === current) parent.plus = null;
      else if (parent.hash === current) parent.hash = null;
      else parent.children?.delete(current.level);
      current = parent;
    }
  }
}

function pushAll<T>(node: TrieNode<T>, out: T[], groupsOut: SharedGroup<T>[]): void {
  if (node.subscribers !== null) for (const value of node.subscribers.values()) out.push(value);
  if (node.groups !== null) for (const group of node.groups.values()) groupsOut.push(group);
}
