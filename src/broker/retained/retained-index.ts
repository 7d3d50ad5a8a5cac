import type { Message } from '../message.ts';

/**
 * In-memory index of retained messages for one namespace: a tree over topic levels, so a new
 * subscription's filter visits only the branches it can match instead of every retained topic.
 * '+' at the first level and '#' do not match topics starting with '$' (MQTT 5 §4.7.2).
 */
class RetainedNode {
  readonly children = new Map<string, RetainedNode>();
  message: Message | null = null;
}

export class RetainedIndex {
  readonly #root = new RetainedNode();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  set(message: Message): void {
    let node = this.#root;
    for (const level of message.topic.split('/')) {
      let next = node.children.get(level);
      if (next === undefined) node.children.set(level, (next = new RetainedNode()));
      node = next;
    }
    if (node.message === null) this.#size++;
    node.message = message;
  }

  delete(topic: string): boolean {
    const path: RetainedNode[] = [this.#root];
    const levels = topic.split('/');
    let node = this.#root;
    for (const level of levels) {
      const next = node.children.get(level);
      if (next === undefined) return false;
      path.push(next);
      node = next;
    }
    if (node.message === null) return false;
    node.message = null;
    this.#size--;
    for (let i = levels.length; i > 0; i--) {
      const child = path[i]!;
      if (child.message !== null || child.children.size > 0) break;
      path[i - 1]!.children.delete(levels[i - 1]!);
    }
    return true;
  }

  get(topic: string): Message | null {
    let node: RetainedNode | undefined = this.#root;
    for (const level of topic.split('/')) {
      node = node.children.get(level);
      if (node === undefined) return null;
    }
    return node.message;
  }

  /** Every retained message whose topic matches `filter`. */
  match(filter: string): Message[] {
    const out: Message[] = [];
    this.#collect(this.#root, filter.split('/'), 0, out);
    return out;
  }

  #collect(node: RetainedNode, levels: string[], i: number, out: Message[]): void {
    if (i === levels.length) {
      if (node.message !== null) out.push(node.message);
      return;
    }
    const level = levels[i]!;
    if (level === '#') {
      // '#' also matches the parent level itself ("a/#" matches "a").
      if (node.message !== null && i > 0) out.push(node.message);
      for (const [name, child] of node.children) {
        if (i === 0 && name.startsWith('$')) continue;
        collectSubtree(child, out);
      }
      return;
    }
    if (level === '+') {
      for (const [name, child] of node.children) {
        if (i === 0 && name.startsWith('$')) continue;
        this.#collect(child, levels, i + 1, out);
      }
      return;
    }
    const child = node.children.get(level);
    if (child !== undefined) this.#collect(child, levels, i + 1, out);
  }
}

function collectSubtree(node: RetainedNode, out: Message[]): void {
  if (node.message !== null) out.push(node.message);
  for (const child of node.children.values()) collectSubtree(child, out);
}
