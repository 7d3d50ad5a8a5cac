/**
 * Unit tests for the topic predicates the ACL is built on (src/broker/routing/topic.ts:
 * topicMatches, filterCovers, filtersOverlap — MQTT 5 §4.7 matching, `$` topics not matched by a
 * leading wildcard) and for compileAcl / aclAllowsPublish / aclAllowsSubscribe (SPEC §2 ACL rules).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { filterCovers, filtersOverlap, topicMatches } from '../../src/broker/routing/topic.ts';
import { aclAllowsPublish, aclAllowsSubscribe, compileAcl, type AclRule, type AclSubject } from '../../src/tenancy/acl.ts';

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

describe('compileAcl + aclAllowsPublish / aclAllowsSubscribe', () => {
  const device: AclSubject = { accountId: 'acct-A', deviceId: 'dev-1', clientId: 'client-1' };
  const anonymous: AclSubject = { accountId: 'acct-anon', deviceId: null, clientId: 'anon-7' };

  test('no rules, default allow: everything allowed; default deny: everything denied', () => {
    const open = compileAcl([], device, true);
    assert.equal(aclAllowsPublish(open, 'any/topic'), true);
    assert.equal(aclAllowsSubscribe(open, '#'), true);
    const closed = compileAcl([], device, false);
    assert.equal(aclAllowsPublish(closed, 'any/topic'), false);
    assert.equal(aclAllowsSubscribe(closed, 'any/topic'), false);
  });

  test('deny publish on a filter: only publishes matching it are refused; subscribe is unaffected', () => {
    const acl = compileAcl([{ action: 'publish', permission: 'deny', topic: 'secret/#' }], device);
    assert.equal(aclAllowsPublish(acl, 'secret'), false);
    assert.equal(aclAllowsPublish(acl, 'secret/x/y'), false);
    assert.equal(aclAllowsPublish(acl, 'secrets'), true);
    assert.equal(aclAllowsPublish(acl, 'open/x'), true);
    assert.equal(aclAllowsSubscribe(acl, 'secret/#'), true);
  });

  test('deny subscribe: a filter overlapping the denied one is refused (wildcards cannot reach it)', () => {
    const acl = compileAcl([{ action: 'subscribe', permission: 'deny', topic: 'private/#' }], device);
    for (const f of ['private/x', 'private/#', '#', '+/x', '+/+/+', '+']) assert.equal(aclAllowsSubscribe(acl, f), false, f);
    for (const f of ['public/#', 'a/+', 'privatex/#']) assert.equal(aclAllowsSubscribe(acl, f), true, f);
    assert.equal(aclAllowsPublish(acl, 'private/x'), true);
  });

  test('a shared subscription ($share/group/filter) is judged by its filter: deny rules cannot be bypassed', () => {
    const acl = compileAcl([{ action: 'subscribe', permission: 'deny', topic: 'private/#' }], device);
    for (const f of ['$share/g/private/x', '$share/g/private/#', '$share/g/#', '$share/g/+/x']) assert.equal(aclAllowsSubscribe(acl, f), false, f);
    assert.equal(aclAllowsSubscribe(acl, '$share/g/public/x'), true);
  });

  test('a shared subscription under an allowed filter is allowed (default deny)', () => {
    const acl = compileAcl([{ action: 'subscribe', permission: 'allow', topic: 'devices/%d/#' }], device, false);
    assert.equal(aclAllowsSubscribe(acl, '$share/g/devices/dev-1/#'), true);
    assert.equal(aclAllowsSubscribe(acl, '$share/g/devices/dev-2/#'), false);
    assert.equal(aclAllowsSubscribe(acl, '$share/g/#'), false);
  });

  test('allow subscribe grants only filters it fully covers (default deny)', () => {
    const acl = compileAcl([{ action: 'subscribe', permission: 'allow', topic: 'sensors/+/temp' }], device, false);
    assert.equal(aclAllowsSubscribe(acl, 'sensors/k/temp'), true);
    assert.equal(aclAllowsSubscribe(acl, 'sensors/+/temp'), true);
    assert.equal(aclAllowsSubscribe(acl, 'sensors/#'), false);
    assert.equal(aclAllowsSubscribe(acl, 'sensors/+/+'), false);
    assert.equal(aclAllowsPublish(acl, 'sensors/k/temp'), false, 'a subscribe rule does not allow publishing');
  });

  test('action "all" applies to publish and subscribe', () => {
    const acl = compileAcl([{ action: 'all', permission: 'deny', topic: 'x/+' }], device);
    assert.equal(aclAllowsPublish(acl, 'x/1'), false);
    assert.equal(aclAllowsSubscribe(acl, 'x/1'), false);
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
    assert.equal(aclAllowsSubscribe(acl, 'devices/dev-1/#'), true);
    assert.equal(aclAllowsSubscribe(acl, 'devices/+/temp'), false);
    assert.equal(aclAllowsPublish(acl, 'clients/client-1/out'), true);
    assert.equal(aclAllowsPublish(acl, 'clients/client-2/out'), false);
  });

  test('%d never grants anything to a client without a device (anonymous)', () => {
    const acl = compileAcl([{ action: 'all', permission: 'allow', topic: 'devices/%d/#' }], anonymous, false);
    for (const t of ['devices/null/x', 'devices//x', 'devices/+/x', 'devices/undefined/x']) assert.equal(aclAllowsPublish(acl, t), false, t);
    assert.equal(aclAllowsSubscribe(acl, 'devices/#'), false);
  });

  test('a client id with wildcard or separator characters cannot widen an allow rule', () => {
    for (const clientId of ['+', '#', 'a/b', '']) {
      const acl = compileAcl([{ action: 'all', permission: 'allow', topic: 'clients/%c/#' }], { ...device, clientId }, false);
      for (const t of ['clients/other/x', 'clients/a/b/x', 'clients//x']) assert.equal(aclAllowsPublish(acl, t), false, `client id "${clientId}", topic ${t}`);
      assert.equal(aclAllowsSubscribe(acl, 'clients/#'), false, `client id "${clientId}"`);
      assert.equal(aclAllowsSubscribe(acl, 'clients/other/#'), false, `client id "${clientId}"`);
    }
  });

  test('a deny rule with an unsubstitutable placeholder still denies (fails closed)', () => {
    const acl = compileAcl([{ action: 'publish', permission: 'deny', topic: 'devices/%d/cmd' }], anonymous, true);
    assert.equal(aclAllowsPublish(acl, 'devices/x/cmd'), false);
    assert.equal(aclAllowsPublish(acl, 'devices/x/data'), true);
  });
});
