/**
 * Unit tests of the in-memory retained message index (src/broker/retained/retained-index.ts):
 * matching a new subscription's filter against retained topics, MQTT 5 §4.7 and §3.3.1.3.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '../../src/broker/message.ts';
import { RetainedIndex } from '../../src/broker/retained/retained-index.ts';

function msg(topic: string, payload = topic): Message {
  return { topic, payload: Buffer.from(payload), qos: 1, retain: true, properties: null, expiresAt: 0, origin: '' };
}

function indexOf(...topics: string[]): RetainedIndex {
  const index = new RetainedIndex();
  for (const t of topics) index.set(msg(t));
  return index;
}

function topics(index: RetainedIndex, filter: string): string[] {
  return index.match(filter).map((m) => m.topic).sort();
}

describe('RetainedIndex', () => {
  test('set, get and size; replacing a topic keeps the size and returns the newest message', () => {
    const index = new RetainedIndex();
    assert.equal(index.size, 0);
    index.set(msg('a/b', 'one'));
    index.set(msg('a', 'parent'));
    assert.equal(index.size, 2);
    index.set(msg('a/b', 'two'));
    assert.equal(index.size, 2);
    assert.equal(index.get('a/b')?.payload.toString(), 'two');
    assert.equal(index.get('a')?.payload.toString(), 'parent');
    assert.equal(index.get('a/b/c'), null);
    assert.equal(index.get('zz'), null);
  });

  test('literal filters match one topic', () => {
    const index = indexOf('a', 'a/b', 'a/b/c', 'b');
    assert.deepEqual(topics(index, 'a/b'), ['a/b']);
    assert.deepEqual(topics(index, 'a/c'), []);
    assert.deepEqual(topics(index, 'a/b/c/d'), []);
  });

  test('+ matches exactly one level, including empty levels', () => {
    const index = indexOf('a', 'a/b', 'a/c', 'a/b/c', 'x/b', '/b', 'a/');
    assert.deepEqual(topics(index, 'a/+'), ['a/', 'a/b', 'a/c']);
    assert.deepEqual(topics(index, '+/b'), ['/b', 'a/b', 'x/b']);
    assert.deepEqual(topics(index, '+'), ['a']);
    assert.deepEqual(topics(index, '+/+/+'), ['a/b/c']);
    assert.deepEqual(topics(index, 'a/+/c'), ['a/b/c']);
  });

  test('# matches the parent and every descendant', () => {
    const index = indexOf('a', 'a/b', 'a/b/c', 'b', 'ab');
    assert.deepEqual(topics(index, 'a/#'), ['a', 'a/b', 'a/b/c'], '"a/#" includes "a" itself (§4.7.1.2)');
    assert.deepEqual(topics(index, '#'), ['a', 'a/b', 'a/b/c', 'ab', 'b']);
    assert.deepEqual(topics(index, 'a/b/#'), ['a/b', 'a/b/c']);
    assert.deepEqual(topics(index, '+/#'), ['a', 'a/b', 'a/b/c', 'ab', 'b']);
    assert.deepEqual(topics(index, 'a/+/#'), ['a/b', 'a/b/c']);
    assert.deepEqual(topics(index, 'zz/#'), []);
  });

  test('$ rule: first-level wildcards do not match $-topics; explicit $ filters do', () => {
    const index = indexOf('$SYS/uptime', '$SYS', 'normal', 'a/$b');
    assert.deepEqual(topics(index, '#'), ['a/$b', 'normal']);
    assert.deepEqual(topics(index, '+'), ['normal']);
    assert.deepEqual(topics(index, '+/uptime'), []);
    assert.deepEqual(topics(index, '$SYS/#'), ['$SYS', '$SYS/uptime']);
    assert.deepEqual(topics(index, '$SYS/+'), ['$SYS/uptime']);
    assert.deepEqual(topics(index, 'a/+'), ['a/$b'], 'a $ in a later level is an ordinary character');
  });

  test('delete removes one topic and reports whether it existed', () => {
    const index = indexOf('a', 'a/b', 'a/b/c');
    assert.equal(index.delete('a/b'), true);
    assert.equal(index.delete('a/b'), false);
    assert.equal(index.delete('nope/x'), false);
    assert.equal(index.size, 2);
    assert.deepEqual(topics(index, '#'), ['a', 'a/b/c']);
    assert.equal(index.get('a/b'), null);
    assert.equal(index.get('a/b/c')?.topic, 'a/b/c', 'children of a deleted topic stay');
  });

  test('delete of a path that is only an intermediate node returns false', () => {
    const index = indexOf('a/b/c');
    assert.equal(index.delete('a/b'), false);
    assert.equal(index.delete('a'), false);
    assert.equal(index.size, 1);
  });

  test('delete prunes empty branches: nothing matches afterwards and re-adding works', () => {
    const index = indexOf('a/b/c/d', 'a/b/x', 'q');
    assert.equal(index.delete('a/b/c/d'), true);
    assert.equal(index.delete('a/b/x'), true);
    assert.deepEqual(topics(index, '#'), ['q']);
    assert.deepEqual(topics(index, 'a/#'), []);
    assert.deepEqual(topics(index, '+/+/+'), []);
    assert.equal(index.size, 1);
    // Deleting a parent must not lose its live descendants.
    index.set(msg('p'));
    index.set(msg('p/c'));
    assert.equal(index.delete('p'), true);
    assert.deepEqual(topics(index, 'p/#'), ['p/c']);
    index.set(msg('a/b/c/d'));
    assert.deepEqual(topics(index, 'a/+/+/+'), ['a/b/c/d']);
  });

  test('many retained topics: matching equals the brute-force set', () => {
    const index = new RetainedIndex();
    const all: string[] = [];
    for (let i = 0; i < 300; i++) {
      const t = `s${i % 3}/d${i % 17}/${i % 2 === 0 ? 'temp' : 'hum'}`;
      if (!all.includes(t)) all.push(t);
      index.set(msg(t));
    }
    assert.equal(index.size, all.length);
    const expected = all.filter((t) => t.startsWith('s1/') && t.endsWith('/temp')).sort();
    assert.ok(expected.length > 3);
    assert.deepEqual(topics(index, 's1/+/temp'), expected);
    assert.deepEqual(topics(index, 's2/#'), all.filter((t) => t.startsWith('s2/')).sort());
  });
});
