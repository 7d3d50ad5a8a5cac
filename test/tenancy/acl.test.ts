/**
 * Unit tests for the topic predicates the ACL is built on (src/broker/routing/topic.ts:
 * topicMatches, filterCovers, filtersOverlap — MQTT 5 §4.7 matching, `$` topics not matched by a
 * leading wildcard) and for compileAcl / aclAllowsPublish / aclSubscribe (SPEC §2 ACL rules): a
 * filter wholly inside a denied area is refused, one that only overlaps it is granted with a
 * per-message check, one no deny reaches is granted plainly.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { filterCovers, filtersOverlap, topicMatches } from '../../src/broker/routing/topic.ts';
import { UNKNOWN_DEVICE, aclAllowsPublish, aclSubscribe, compileAcl, type AclRule, type AclSubject, type ClientAcl } from '../../src/tenancy/acl.ts';

/** aclSubscribe's answer as a word, so tables read plainly. */
function decide(acl: ClientAcl, filter: string): 'allow' | 'deny' | 'check' {
  const d = aclSubscribe(acl, filter);
  return typeof d === 'string' ? d : 'check';
}

describe('topicMatches(filter, topic)', () => {
  const cases: Array<[filter: string, topic: string, expected: boolean]> = [
    ['a/b', 'a/b', true],
    ['a/b', 'a/c', false],
    ['a/b', 'a/b/c', false],
    ['a/b/c', 'a/b', false],
    ['a/+', 'a/b', true],
    ['a/+', 'a/', true], // empty level
    ['a/+', 'a', false],
    ['a/+', 'a/b/c', false],
    ['+/+', '/x', true],
    ['+', 'a', true],
    ['+', '/a', false],
    ['#', 'a', true],
    ['#', 'a/b/c', true],
    ['#', '/', true],
    ['a/#', 'a', true], // parent level (MQTT 5 §4.7.1.2)
    ['a/#', 'a/b/c', true],
    ['a/#', 'ab', false],
    ['a/+/c', 'a/b/c', true],
    ['a/+/c', 'a/b/d', false],
    ['+/b/#', 'x/b', true],
    ['A/b', 'a/b', false], // case-sensitive
    ['#', '$SYS/x', false], // $ topics are not matched by a leading wildcard (MQTT 5 §4.7.2)
    ['+/x', '$SYS/x', false],
    ['$SYS/#', '$SYS/x', true],
    ['$SYS/+', '$SYS/x', true],
    ['a/#', 'a/$x', true], // only the first level is special
  ];
  for (const [filter, topic, expected] of cases) {
    test(`${filter} ${expected ? 'matches' : 'does not match'} ${topic}`, () => {
      assert.equal(topicMatches(filter, topic), expected);
    });
  }
});

describe('filterCovers(outer, inner)', () => {
  const cases: Array<[outer: string, inner: string, expected: boolean]> = [
    ['a/#', 'a/+/b', true],
    ['a/#', 'a/#', true],
    ['a/#', 'a', true],
    ['a/#', 'a/b/#', true],
    ['a/+', 'a/b', true],
    ['a/+', 'a/+', true],
    ['a/+', 'a/#', false],
    ['a/+', 'a/b/c', false],
    ['a/b', 'a/+', false],
    ['a/b', 'a/b', true],
    ['a/b', 'a/#', false],
    ['#', 'anything/at/all', true],
    ['#', '#', true],
    ['#', '$SYS/#', false],
    ['+/#', '$SYS/x', false],
    ['$SYS/#', '$SYS/x/+', true],
    ['devices/d1/#', 'devices/+/temp', false],
    ['devices/d1/#', 'devices/d1/+/temp', true],
    ['devices/d1/#', 'devices/#', false],
    ['a/+/c', 'a/+/c', true],
    ['a/+/c', 'a/b/+', false],
  ];
  for (const [outer, inner, expected] of cases) {
    test(`${outer} ${expected ? 'covers' : 'does not cover'} ${inner}`, () => {
      assert.equal(filterCovers(outer, inner), expected);
    });
  }
});

describe('filtersOverlap(a, b)', () => {
  const cases: Array<[a: string, b: string, expected: boolean]> = [
    ['private/#', '#', true],
    ['private/#', '+/x', true],
    ['private/#', 'private', true],
    ['private/#', 'public/#', false],
    ['private/#', '+', true], // "private" itself
    ['a/b', 'a/+', true],
    ['a/b', 'a/c', false],
    ['a/+/c', 'a/b/+', true],
    ['a/+/c', 'a/b/d', false],
    ['a/+', 'a/b/c', false],
    ['a/b', 'a/b/c', false],
    ['a/#', 'a/b/c', true],
    ['+/+', 'a', false],
    ['$SYS/#', '#', false],
    ['$SYS/#', '$SYS/x', true],
    ['#', '$SYS/x', false],
    ['+/x', '$SYS/x', false],
  ];
  for (const [a, b, expected] of cases) {
    test(`${a} and ${b} ${expected ? 'overlap' : 'do not overlap'}`, () => {
      assert.equal(filtersOverlap(a, b), expected);
      assert.equal(filtersOverlap(b, a), expected, 'overlap is symmetric');
    });
  }
});

describe('compileAcl + aclAllowsPublish / aclSubscribe', () => {
  const device: AclSubject = { accountId: 'acct-A', deviceId: 'dev-1', clientId: 'client-1' };
  const anonymous: AclSubject = { accountId: 'acct-anon', deviceId: null, clientId: 'anon-7' };

  test('no rules, default allow: everything allowed; default deny: everything denied', () => {
    const open = compileAcl([], device, true);
    assert.equal(aclAllowsPublish(open, 'any/topic'), true);
    assert.equal(decide(open, '#'), 'allow');
    const closed = compileAcl([], device, false);
    assert.equal(aclAllowsPublish(closed, 'any/topic'), false);
    assert.equal(decide(closed, 'any/topic'), 'deny');
  });

  test('deny publish on a filter: only publishes matching it are refused; subscribe is unaffected', () => {
    const acl = compileAcl([{ action: 'publish', permission: 'deny', topic: 'secret/#' }], device);
    assert.equal(aclAllowsPublish(acl, 'secret'), false);
    assert.equal(aclAllowsPublish(acl, 'secret/x/y'), false);
    assert.equal(aclAllowsPublish(acl, 'secrets'), true);
    assert.equal(aclAllowsPublish(acl, 'open/x'), true);
    assert.equal(decide(acl, 'secret/#'), 'allow');
  });

  test('deny subscribe: a filter inside the denied one is refused; one overlapping it is checked per message', () => {
    const acl = compileAcl([{ action: 'subscribe', permission: 'deny', topic: 'private/#' }], device);
    for (const f of ['private/x', 'private/#', 'private/+/y']) assert.equal(decide(acl, f), 'deny', f);
    for (const f of ['#', '+/x', '+/+/+', '+']) assert.equal(decide(acl, f), 'check', f);
    for (const f of ['public/#', 'a/+', 'privatex/#']) assert.equal(decide(acl, f), 'allow', f);
    assert.equal(aclAllowsPublish(acl, 'private/x'), true);
  });

  test('a shared subscription ($share/group/filter) is judged by its filter: deny rules cannot be bypassed', () => {
    const acl = compileAcl([{ action: 'subscribe', permission: 'deny', topic: 'private/#' }], device);
    for (const f of ['$share/g/private/x', '$share/g/private/#']) assert.equal(decide(acl, f), 'deny', f);
    for (const f of ['$share/g/#', '$share/g/+/x']) assert.equal(decide(acl, f), 'check', f);
    assert.equal(decide(acl, '$share/g/public/x'), 'allow');
  });

  test('a shared subscription under an allowed filter is allowed (default deny)', () => {
    const acl = compileAcl([{ action: 'subscribe', permission: 'allow', topic: 'devices/%d/#' }], device, false);
    assert.equal(decide(acl, '$share/g/devices/dev-1/#'), 'allow');
    assert.equal(decide(acl, '$share/g/devices/dev-2/#'), 'deny');
    assert.equal(decide(acl, '$share/g/#'), 'check');
  });

  test('default deny: an allow rule grants plainly what it covers, with a check what it only overlaps', () => {
    const acl = compileAcl([{ action: 'subscribe', permission: 'allow', topic: 'sensors/+/temp' }], device, false);
    assert.equal(decide(acl, 'sensors/k/temp'), 'allow');
    assert.equal(decide(acl, 'sensors/+/temp'), 'allow');
    assert.equal(decide(acl, 'sensors/#'), 'check');
    assert.equal(decide(acl, 'sensors/+/+'), 'check');
    assert.equal(decide(acl, 'sensors/k/hum'), 'deny');
    assert.equal(decide(acl, 'other/#'), 'deny');
    assert.equal(aclAllowsPublish(acl, 'sensors/k/temp'), false, 'a subscribe rule does not allow publishing');
  });

  test('action "all" applies to publish and subscribe', () => {
    const acl = compileAcl([{ action: 'all', permission: 'deny', topic: 'x/+' }], device);
    assert.equal(aclAllowsPublish(acl, 'x/1'), false);
    assert.equal(decide(acl, 'x/1'), 'deny');
    assert.equal(aclAllowsPublish(acl, 'x/1/2'), true);
  });

  test('the first rule that applies decides', () => {
    const rules: AclRule[] = [
      { action: 'publish', permission: 'deny', topic: 'x/secret' },
      { action: 'publish', permission: 'allow', topic: 'x/#' },
    ];
    const acl = compileAcl(rules, device, false);
    assert.equal(aclAllowsPublish(acl, 'x/secret'), false);
    assert.equal(aclAllowsPublish(acl, 'x/open'), true);
    assert.equal(aclAllowsPublish(acl, 'y'), false);
  });

  test('per-account and per-device rules apply only to their subjects', () => {
    const rules: AclRule[] = [
      { account: 'acct-A', action: 'publish', permission: 'deny', topic: 'a-only' },
      { device: 'dev-1', action: 'publish', permission: 'deny', topic: 'dev1-only' },
      { account: 'acct-B', device: 'dev-1', action: 'publish', permission: 'deny', topic: 'both' },
    ];
    const dev1 = compileAcl(rules, device);
    const dev2 = compileAcl(rules, { ...device, deviceId: 'dev-2' });
    const otherAccount = compileAcl(rules, { accountId: 'acct-B', deviceId: 'dev-9', clientId: 'c' });
    const anon = compileAcl(rules, anonymous);
    assert.equal(aclAllowsPublish(dev1, 'a-only'), false);
    assert.equal(aclAllowsPublish(dev2, 'a-only'), false);
    assert.equal(aclAllowsPublish(otherAccount, 'a-only'), true);
    assert.equal(aclAllowsPublish(anon, 'a-only'), true);
    assert.equal(aclAllowsPublish(dev1, 'dev1-only'), false);
    assert.equal(aclAllowsPublish(dev2, 'dev1-only'), true);
    assert.equal(aclAllowsPublish(anon, 'dev1-only'), true);
    assert.equal(aclAllowsPublish(dev1, 'both'), true, 'account and device must both match');
  });

  test('%d and %c are substituted with the device id and the client id', () => {
    const rules: AclRule[] = [
      { action: 'all', permission: 'allow', topic: 'devices/%d/#' },
      { action: 'publish', permission: 'allow', topic: 'clients/%c/out' },
    ];
    const acl = compileAcl(rules, device, false);
    assert.equal(aclAllowsPublish(acl, 'devices/dev-1/temp'), true);
    assert.equal(aclAllowsPublish(acl, 'devices/dev-2/temp'), false);
    assert.equal(aclAllowsPublish(acl, 'devices/%d/temp'), false);
    assert.equal(decide(acl, 'devices/dev-1/#'), 'allow');
    assert.equal(decide(acl, 'devices/dev-2/#'), 'deny');
    assert.equal(decide(acl, 'devices/+/temp'), 'check');
    assert.equal(aclAllowsPublish(acl, 'clients/client-1/out'), true);
    assert.equal(aclAllowsPublish(acl, 'clients/client-2/out'), false);
  });

  test('%d never grants anything to a client without a device (anonymous)', () => {
    const acl = compileAcl([{ action: 'all', permission: 'allow', topic: 'devices/%d/#' }], anonymous, false);
    for (const t of ['devices/null/x', 'devices//x', 'devices/+/x', 'devices/undefined/x']) assert.equal(aclAllowsPublish(acl, t), false, t);
    assert.equal(decide(acl, 'devices/#'), 'deny');
  });

  test('a client id with wildcard or separator characters cannot widen an allow rule', () => {
    for (const clientId of ['+', '#', 'a/b', '']) {
      const acl = compileAcl([{ action: 'all', permission: 'allow', topic: 'clients/%c/#' }], { ...device, clientId }, false);
      for (const t of ['clients/other/x', 'clients/a/b/x', 'clients//x']) assert.equal(aclAllowsPublish(acl, t), false, `client id "${clientId}", topic ${t}`);
      assert.equal(decide(acl, 'clients/#'), 'deny', `client id "${clientId}"`);
      assert.equal(decide(acl, 'clients/other/#'), 'deny', `client id "${clientId}"`);
    }
  });

  test('a deny rule with an unsubstitutable placeholder still denies (fails closed)', () => {
    const acl = compileAcl([{ action: 'publish', permission: 'deny', topic: 'devices/%d/cmd' }], anonymous, true);
    assert.equal(aclAllowsPublish(acl, 'devices/x/cmd'), false);
    assert.equal(aclAllowsPublish(acl, 'devices/x/data'), true);
  });
});

describe('aclSubscribe: wholly inside a denied area, overlapping it, or untouched', () => {
  const subject: AclSubject = { accountId: 'acct-A', deviceId: 'dev-1', clientId: 'client-1' };

  test('deny a/#: filters inside it are refused, filters overlapping it are checked, others are plain', () => {
    const acl = compileAcl([{ action: 'subscribe', permission: 'deny', topic: 'a/#' }], subject);
    const table: Array<[string, 'allow' | 'deny' | 'check']> = [
      ['a/b/+', 'deny'], ['a', 'deny'], ['a/#', 'deny'], ['a/+', 'deny'],
      ['#', 'check'], ['+/b', 'check'], ['+', 'check'], ['+/#', 'check'],
      ['b/#', 'allow'], ['ab/#', 'allow'],
      // `$` topics are not reached by a leading wildcard, so `#` in a rule never touches them.
      ['$SYS/#', 'allow'],
    ];
    for (const [filter, expected] of table) assert.equal(decide(acl, filter), expected, filter);
    const check = aclSubscribe(acl, '#');
    assert.ok(typeof check !== 'string');
    assert.equal(check.reason, 'acl');
    assert.deepEqual(['a', 'a/b', 'a/b/c', 'b', 'ab', 'b/a'].map((t) => check.allows(t)), [false, false, false, true, true, true]);
  });

  test('rule order: an allow listed before a broader deny keeps its topics; a deny listed first wins', () => {
    const allowFirst = compileAcl([
      { action: 'subscribe', permission: 'allow', topic: 'a/b' },
      { action: 'subscribe', permission: 'deny', topic: 'a/#' },
    ], subject);
    assert.equal(decide(allowFirst, 'a/b'), 'allow');
    assert.equal(decide(allowFirst, 'a/c'), 'deny');
    assert.equal(decide(allowFirst, 'a/+'), 'check', 'a/b is reachable through a/+');
    const denyFirst = compileAcl([
      { action: 'subscribe', permission: 'deny', topic: 'a/#' },
      { action: 'subscribe', permission: 'allow', topic: 'a/b' },
    ], subject);
    assert.equal(decide(denyFirst, 'a/b'), 'deny');
    assert.equal(decide(denyFirst, 'a/+'), 'deny', 'the allow rule is shadowed by the covering deny');
  });

  test('publish-only rules never touch subscriptions', () => {
    const acl = compileAcl([{ action: 'publish', permission: 'deny', topic: '#' }], subject);
    assert.equal(decide(acl, '#'), 'allow');
  });

  test('every decision agrees with the first applicable rule, topic by topic (exhaustive over a small space)', () => {
    // Reference: the documented semantics, applied to each topic a filter can match.
    const levels = ['a', 'b', '$s'];
    const topics: string[] = [];
    for (const x of levels) {
      topics.push(x);
      for (const y of levels.slice(0, 2)) {
        topics.push(`${x}/${y}`);
        for (const z of levels.slice(0, 2)) topics.push(`${x}/${y}/${z}`);
      }
    }
    const ruleFilters = ['a/#', 'a/b', '+/b', 'a/+/a', '#', '$s/#', 'b'];
    const filters = ['#', '+', '+/+', '+/#', 'a/#', 'a/+', 'a/b', 'a/+/a', '+/b/#', 'b/#', '$s/#', '$s/+', 'a/b/a'];
    const ruleSets: AclRule[][] = [];
    for (const f1 of ruleFilters) {
      for (const f2 of ruleFilters) {
        for (const [p1, p2] of [['deny', 'allow'], ['allow', 'deny'], ['deny', 'deny']] as const) {
          ruleSets.push([{ action: 'subscribe', permission: p1, topic: f1 }, { action: 'all', permission: p2, topic: f2 }]);
        }
      }
    }
    for (const rules of ruleSets) {
      for (const defaultAllow of [true, false]) {
        const acl = compileAcl(rules, subject, defaultAllow);
        const reference = (topic: string): boolean => {
          const rule = rules.find((r) => topicMatches(r.topic, topic));
          return rule === undefined ? defaultAllow : rule.permission === 'allow';
        };
        for (const filter of filters) {
          const reached = topics.filter((t) => topicMatches(filter, t));
          const decision = aclSubscribe(acl, filter);
          const where = `${JSON.stringify(rules)} default ${defaultAllow ? 'allow' : 'deny'}, filter ${filter}`;
          if (decision === 'allow') assert.ok(reached.every(reference), `granted plainly but a topic is denied: ${where}`);
          else if (decision === 'deny') assert.ok(!reached.some(reference), `refused but a topic is allowed: ${where}`);
          else for (const t of reached) assert.equal(decision.allows(t), reference(t), `${where}, topic ${t}`);
        }
      }
    }
  });

  test('a filter is refused only when no topic it can match is allowed (exhaustive check above); e.g. deny #: everything but $ topics', () => {
    const acl = compileAcl([{ action: 'subscribe', permission: 'deny', topic: '#' }], subject);
    assert.equal(decide(acl, 'x/#'), 'deny');
    assert.equal(decide(acl, '$SYS/x'), 'allow');
  });

  test('an unknown device (restored session): every device\'s deny rules apply, no device\'s allow rule does', () => {
    const rules: AclRule[] = [
      { device: 'dev-1', action: 'subscribe', permission: 'allow', topic: 'mine/#' },
      { action: 'subscribe', permission: 'allow', topic: 'devices/%d/#' },
      { device: 'dev-2', action: 'subscribe', permission: 'deny', topic: 'hidden/#' },
      { action: 'subscribe', permission: 'deny', topic: 'cmd/%d' },
    ];
    const acl = compileAcl(rules, { accountId: 'acct-A', deviceId: UNKNOWN_DEVICE, clientId: 'c' }, true);
    assert.equal(decide(acl, 'hidden/x'), 'deny');
    assert.equal(decide(acl, 'cmd/any'), 'deny');
    const check = aclSubscribe(acl, '#');
    assert.ok(typeof check !== 'string');
    assert.deepEqual(['hidden/x', 'cmd/dev-1', 'mine/x', 'devices/dev-1/x'].map((t) => check.allows(t)), [false, false, true, true]);
    const closed = compileAcl(rules, { accountId: 'acct-A', deviceId: UNKNOWN_DEVICE, clientId: 'c' }, false);
    assert.equal(decide(closed, 'mine/#'), 'deny', 'a device\'s allow rule grants nothing when the device is unknown');
    assert.equal(decide(closed, 'devices/dev-1/#'), 'deny');
  });
});
