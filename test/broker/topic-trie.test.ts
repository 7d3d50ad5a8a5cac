/**
 * Unit tests of the subscription trie (src/broker/routing/topic-trie.ts) and the topic rules
 * (src/broker/routing/topic.ts). Matching rules: MQTT 5 §4.7; shared subscriptions: §4.8.2.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedGroup, TopicTrie } from '../../src/broker/routing/topic-trie.ts';
import { checkTopicFilter, checkTopicName, parseSubscriptionFilter } from '../../src/broker/routing/topic.ts';

interface Found {
  plain: string[];
  groups: Array<{ name: string; members: string[] }>;
}

function match(trie: TopicTrie<string>, topic: string): Found {
  const out: string[] = [];
  const groups: SharedGroup<string>[] = [];
  trie.match(topic.split('/'), out, groups);
  return {
    plain: [...out].sort(),
    groups: groups.map((g) => ({ name: g.name, members: [...g.list()].sort() })).sort((a, b) => a.name.localeCompare(b.name)),
  };
}

/** A trie where each filter is subscribed by a client whose key and value are the filter itself. */
function trieOf(...filters: string[]): TopicTrie<string> {
  const trie = new TopicTrie<string>();
  for (const f of filters) trie.add(f, f, f, null);
  return trie;
}

describe('TopicTrie matching (MQTT 5 §4.7)', () => {
  test('literal filters match only the same topic', () => {
    const trie = trieOf('a/b', 'a/b/c', 'a', 'A/b');
    assert.deepEqual(match(trie, 'a/b').plain, ['a/b']);
    assert.deepEqual(match(trie, 'a').plain, ['a']);
    assert.deepEqual(match(trie, 'a/b/c').plain, ['a/b/c']);
    assert.deepEqual(match(trie, 'a/c').plain, []);
    assert.deepEqual(match(trie, 'A/b').plain, ['A/b'], 'topics are case sensitive');
  });

  test('+ matches exactly one level, including an empty one', () => {
    const trie = trieOf('a/+', '+/b', '+/+', 'a/+/c', '+');
    assert.deepEqual(match(trie, 'a/b').plain, ['+/+', '+/b', 'a/+']);
    assert.deepEqual(match(trie, 'a').plain, ['+']);
    assert.deepEqual(match(trie, 'a/x/c').plain, ['a/+/c']);
    assert.deepEqual(match(trie, 'a/b/c/d').plain, []);
    // Empty levels: "a/" has levels ["a", ""], "/b" has ["", "b"].
    assert.deepEqual(match(trie, 'a/').plain, ['+/+', 'a/+']);
    assert.deepEqual(match(trie, '/b').plain, ['+/+', '+/b']);
    assert.deepEqual(match(trie, 'a//c').plain, ['a/+/c']);
  });

  test('# matches the parent level and everything below it', () => {
    const trie = trieOf('a/#', '#', 'a/b/#', '+/#');
    assert.deepEqual(match(trie, 'a').plain, ['#', '+/#', 'a/#'], '"a/#" and "+/#" match "a" itself (§4.7.1.2)');
    assert.deepEqual(match(trie, 'a/b').plain, ['#', '+/#', 'a/#', 'a/b/#']);
    assert.deepEqual(match(trie, 'a/b/c/d/e').plain, ['#', '+/#', 'a/#', 'a/b/#']);
    assert.deepEqual(match(trie, 'x').plain, ['#', '+/#']);
    assert.deepEqual(match(trie, 'x/y').plain, ['#', '+/#']);
  });

  test('a filter "a/b/#" does not match "a"', () => {
    const trie = trieOf('a/b/#');
    assert.deepEqual(match(trie, 'a').plain, []);
    assert.deepEqual(match(trie, 'a/b').plain, ['a/b/#']);
  });

  test('$ rule: wildcards in the first level do not match $-topics (§4.7.2)', () => {
    const trie = trieOf('#', '+/x', '+', '$SYS/#', '$SYS/+', '$SYS/x', '+/+', 'a/#');
    assert.deepEqual(match(trie, '$SYS/x').plain, ['$SYS/#', '$SYS/+', '$SYS/x']);
    assert.deepEqual(match(trie, '$SYS').plain, ['$SYS/#']);
    assert.deepEqual(match(trie, '$foo').plain, []);
    // A '$' in a later level is an ordinary character.
    assert.deepEqual(match(trie, 'a/$x').plain, ['#', '+/+', 'a/#']);
    // A non-$ topic still matches the wildcards.
    assert.deepEqual(match(trie, 'b/x').plain, ['#', '+/+', '+/x']);
  });

  test('several clients on one filter are all returned; re-adding replaces, not duplicates', () => {
    const trie = new TopicTrie<string>();
    trie.add('t/+', 'c1', 'c1-v1', null);
    trie.add('t/+', 'c2', 'c2', null);
    trie.add('t/+', 'c1', 'c1-v2', null);
    assert.equal(trie.size, 2);
    assert.deepEqual(match(trie, 't/x').plain, ['c1-v2', 'c2']);
  });

  test('shared groups: one group per (filter, name), members listed, separate from plain subscribers', () => {
    const trie = new TopicTrie<string>();
    trie.add('s/+', 'c1', 'c1', 'g1');
    trie.add('s/+', 'c2', 'c2', 'g1');
    trie.add('s/+', 'c3', 'c3', 'g2');
    trie.add('s/#', 'c4', 'c4', 'g1');
    trie.add('s/+', 'c5', 'c5', null);
    assert.equal(trie.size, 5);
    const found = match(trie, 's/x');
    assert.deepEqual(found.plain, ['c5']);
    // Group g1 on s/+ and group g1 on s/# are different groups (§4.8.2: the filter is part of the identity).
    assert.equal(found.groups.length, 3);
    assert.deepEqual(found.groups.map((g) => g.members).sort(), [['c1', 'c2'], ['c3'], ['c4']]);
    assert.deepEqual(match(trie, 'other').groups, []);
  });

  test('SharedGroup.list is refreshed when membership changes', () => {
    const group = new SharedGroup<string>('g');
    assert.equal(group.set('a', 'A'), true);
    assert.deepEqual(group.list(), ['A']);
    assert.equal(group.set('b', 'B'), true);
    assert.equal(group.set('b', 'B2'), false, 're-adding a member is not an addition');
    assert.deepEqual(group.list(), ['A', 'B2']);
    assert.equal(group.delete('a'), true);
    assert.deepEqual(group.list(), ['B2']);
    assert.equal(group.delete('zzz'), false);
  });

  test('remove: returns whether the subscription existed and updates size', () => {
    const trie = trieOf('a/b', 'a/+', '#');
    assert.equal(trie.size, 3);
    assert.equal(trie.remove('a/b', 'a/b', null), true);
    assert.equal(trie.remove('a/b', 'a/b', null), false);
    assert.equal(trie.remove('x/y/z', 'k', null), false);
    assert.equal(trie.remove('a/+', 'other-key', null), false);
    assert.equal(trie.remove('a/+', 'a/+', 'some-group'), false, 'a plain subscription is not removed as shared');
    assert.equal(trie.size, 2);
    assert.deepEqual(match(trie, 'a/b').plain, ['#', 'a/+']);
  });

  test('remove shared members: the group disappears with its last member', () => {
    const trie = new TopicTrie<string>();
    trie.add('s/+', 'c1', 'c1', 'g');
    trie.add('s/+', 'c2', 'c2', 'g');
    assert.equal(trie.remove('s/+', 'c1', 'g'), true);
    assert.deepEqual(match(trie, 's/x').groups, [{ name: 'g', members: ['c2'] }]);
    assert.equal(trie.remove('s/+', 'c2', 'g'), true);
    assert.deepEqual(match(trie, 's/x').groups, []);
    assert.equal(trie.size, 0);
  });

  test('pruning: after removing every subscription, later adds and matches behave like a fresh trie', () => {
    const trie = new TopicTrie<string>();
    const filters = ['a/b/c/d', 'a/b/+/d', 'a/#', '+/+/+', 'x/y', '#', '$SYS/#'];
    for (const f of filters) trie.add(f, 'k', f, null);
    trie.add('a/b/c/d', 'g1', 'g1', 'grp');
    assert.equal(trie.size, filters.length + 1);
    for (const f of filters) assert.equal(trie.remove(f, 'k', null), true, f);
    assert.equal(trie.remove('a/b/c/d', 'g1', 'grp'), true);
    assert.equal(trie.size, 0);
    for (const t of ['a/b/c/d', 'a', 'x/y', '$SYS/x', 'q/w/e']) assert.deepEqual(match(trie, t), { plain: [], groups: [] }, t);
    // Removing a deep filter must not take a shorter live filter sharing its prefix with it.
    trie.add('a/b', 'k', 'a/b', null);
    trie.add('a/b/c/d', 'k', 'a/b/c/d', null);
    trie.remove('a/b/c/d', 'k', null);
    assert.deepEqual(match(trie, 'a/b').plain, ['a/b']);
    trie.add('a/b/c/d', 'k', 'a/b/c/d', null);
    trie.remove('a/b', 'k', null);
    assert.deepEqual(match(trie, 'a/b/c/d').plain, ['a/b/c/d']);
    assert.deepEqual(match(trie, 'a/b').plain, []);
  });

  test('pruning keeps nodes that still have a wildcard child', () => {
    const trie = trieOf('a/+/c', 'a/b');
    trie.remove('a/b', 'a/b', null);
    assert.deepEqual(match(trie, 'a/b/c').plain, ['a/+/c']);
    trie.remove('a/+/c', 'a/+/c', null);
    assert.deepEqual(match(trie, 'a/b/c').plain, []);
    assert.equal(trie.size, 0);
  });

  test('many filters: matching returns exactly the brute-force set', () => {
    const levels = ['a', 'b', '$c', ''];
    const filters = new Set<string>();
    const pick = (i: number, n: number): string => {
      const parts: string[] = [];
      for (let j = 0; j < n; j++) {
        const r = (i * 7 + j * 13) % 6;
        parts.push(r < 4 ? levels[r]! : '+');
      }
      if (i % 5 === 0) parts.push('#');
      return parts.join('/');
    };
    for (let i = 0; i < 200; i++) filters.add(pick(i, 1 + (i % 4)));
    const trie = trieOf(...filters);
    const bruteMatch = (filter: string, topic: string): boolean => {
      const f = filter.split('/');
      const t = topic.split('/');
      if (t[0]!.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
      for (let i = 0; i < f.length; i++) {
        if (f[i] === '#') return true;
        if (i >= t.length) return false;
        if (f[i] !== '+' && f[i] !== t[i]) return false;
      }
      return f.length === t.length;
    };
    let checked = 0;
    for (let i = 0; i < 100; i++) {
      const n = 1 + (i % 5);
      const parts: string[] = [];
      for (let j = 0; j < n; j++) parts.push(levels[(i * 3 + j * 5) % 4]!);
      const topic = parts.join('/');
      const expected = [...filters].filter((f) => bruteMatch(f, topic)).sort();
      assert.deepEqual(match(trie, topic).plain, expected, topic);
      checked += expected.length;
    }
    assert.ok(checked > 50, `the generated cases exercise matches (${checked})`);
  });
});

describe('topic name and filter rules (MQTT 5 §4.7.3)', () => {
  const limits = { maxTopicLength: 20, maxTopicDepth: 4 };

  test('topic names: no wildcards, not empty, no U+0000, length and depth limits', () => {
    assert.equal(checkTopicName('a/b/c', limits), null);
    assert.equal(checkTopicName('/', limits), null);
    assert.match(checkTopicName('', limits) ?? '', /empty/);
    assert.match(checkTopicName('a/+', limits) ?? '', /wildcard/);
    assert.match(checkTopicName('a/#', limits) ?? '', /wildcard/);
    assert.match(checkTopicName('a+b', limits) ?? '', /wildcard/);
    assert.match(checkTopicName('a\u0000b', limits) ?? '', /U\+0000/);
    assert.match(checkTopicName('x'.repeat(21), limits) ?? '', /longer than 20/);
    assert.equal(checkTopicName('x'.repeat(20), limits), null);
    // Length is in UTF-8 bytes: 7 three-byte characters = 21 bytes.
    assert.match(checkTopicName('€'.repeat(7), limits) ?? '', /longer than 20/);
    assert.equal(checkTopicName('a/b/c/d', limits), null);
    assert.match(checkTopicName('a/b/c/d/e', limits) ?? '', /more than 4 levels/);
  });

  test('topic filters: + fills a whole level, # is the whole last level', () => {
    for (const ok of ['#', '+', 'a/#', '+/+', 'a/+/b', '/+', '+/', 'a//#']) assert.equal(checkTopicFilter(ok, limits), null, ok);
    for (const bad of ['a#', 'a/#/b', '#/a', 'a/b#', 'a+', 'a/+b', '++', '']) assert.notEqual(checkTopicFilter(bad, limits), null, bad);
    assert.notEqual(checkTopicFilter('a/b/c/d/#', limits), null, 'depth counts wildcard levels');
  });

  test('shared subscription filters $share/{group}/{filter}', () => {
    assert.deepEqual(parseSubscriptionFilter('$share/g/a/+', limits), { group: 'g', filter: 'a/+' });
    assert.deepEqual(parseSubscriptionFilter('a/+', limits), { group: null, filter: 'a/+' });
    assert.equal(typeof parseSubscriptionFilter('$share/g', limits), 'string');
    assert.equal(typeof parseSubscriptionFilter('$share//a', limits), 'string');
    assert.equal(typeof parseSubscriptionFilter('$share/g+/a', limits), 'string');
    assert.equal(typeof parseSubscriptionFilter('$share/g#/a', limits), 'string');
    assert.equal(typeof parseSubscriptionFilter('$share/g/a#', limits), 'string');
    // "$shared/..." is not a shared subscription, just a filter beginning with '$'.
    assert.deepEqual(parseSubscriptionFilter('$shared/x', limits), { group: null, filter: '$shared/x' });
  });
});
