import type { Subscription } from '../session/session.ts';
import { TopicTrie } from './topic-trie.ts';

/** One subscription trie per namespace: namespaces never see each other's topics or shared groups. */
export class Router {
  readonly #tries = new Map<string, TopicTrie<Subscription>>();

  add(namespace: string, sub: Subscription): void {
    let trie = this.#tries.get(namespace);
    if (trie === undefined) this.#tries.set(namespace, (trie = new TopicTrie()));
    trie.add(sub.topicFilter, sub.session.key, sub, sub.group);
  }

  remove(namespace: string, sub: Subscription): void {
    const trie = this.#tries.get(namespace);
    if (trie === undefined) return;
    trie.remove(sub.topicFilter, sub.session.key, sub.group);
    if (trie.size === 0) this.#tries.delete(namespace);
  }

  trie(namespace: string): TopicTrie<Subscription> | undefined {
    return this.#tries.get(namespace);
  }
}
