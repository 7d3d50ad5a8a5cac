import { filterCovers, filtersOverlap, topicMatches } from '../broker/routing/topic.ts';

/**
 * ACL rules (SPEC §2): per account and per device, allow or deny publish and/or subscribe on topic
 * filters. `%c` stands for the client id and `%d` for the device id. Rules are checked in order and
 * the first one that applies decides; when none applies, the default policy does.
 *
 * For SUBSCRIBE a filter is allowed by an allow rule that covers all of it, and refused by a deny
 * rule that overlaps any of it, so a wildcard subscription cannot reach a denied topic.
 */
export interface AclRule {
  /** Account id the rule is for; absent = every account. */
  account?: string;
  /** Device id the rule is for; absent = every device (and anonymous clients). */
  device?: string;
  action: 'publish' | 'subscribe' | 'all';
  permission: 'allow' | 'deny';
  topic: string;
}

export interface AclSubject {
  accountId: string;
  deviceId: string | null;
  clientId: string;
}

/** Rules already narrowed to one client, placeholders substituted: what the hot path checks. */
export interface ClientAcl {
  readonly rules: ReadonlyArray<{ publish: boolean; subscribe: boolean; allow: boolean; filter: string }>;
  readonly defaultAllow: boolean;
}

const OPEN: ClientAcl = { rules: [], defaultAllow: true };

export function compileAcl(rules: readonly AclRule[], subject: AclSubject, defaultAllow = true): ClientAcl {
  if (rules.length === 0 && defaultAllow) return OPEN;
  const compiled: Array<ClientAcl['rules'][number]> = [];
  for (const rule of rules) {
    if (rule.account !== undefined && rule.account !== subject.accountId) continue;
    if (rule.device !== undefined && rule.device !== subject.deviceId) continue;
    const filter = substitute(rule.topic, subject);
    if (filter === null) {
      // A placeholder with no safe value (no device id, or an id with wildcard characters): an
      // allow rule cannot grant anything; a deny rule denies its whole pattern.
      if (rule.permission === 'allow') continue;
    }
    compiled.push({
      publish: rule.action !== 'subscribe',
      subscribe: rule.action !== 'publish',
      allow: rule.permission === 'allow',
      filter: filter ?? rule.topic.replaceAll('%c', '+').replaceAll('%d', '+'),
    });
  }
  return { rules: compiled, defaultAllow };
}

function substitute(topic: string, subject: AclSubject): string | null {
  if (!topic.includes('%')) return topic;
  const unsafe = (value: string): boolean => /[+#/]/.test(value) || value.length === 0;
  let out = topic;
  if (out.includes('%c')) {
    if (unsafe(subject.clientId)) return null;
    out = out.replaceAll('%c', subject.clientId);
  }
  if (out.includes('%d')) {
    if (subject.deviceId === null || unsafe(subject.deviceId)) return null;
    out = out.replaceAll('%d', subject.deviceId);
  }
  return out;
}

function innerFilter(filter: string): string {
  if (!filter.startsWith('$share/')) return filter;
  const slash = filter.indexOf('/', '$share/'.length);
  return slash < 0 ? filter : filter.slice(slash + 1);
}

export function aclAllowsPublish(acl: ClientAcl, topic: string): boolean {
  for (const rule of acl.rules) {
    if (rule.publish && topicMatches(rule.filter, topic)) return rule.allow;
  }
  return acl.defaultAllow;
}

export function aclAllowsSubscribe(acl: ClientAcl, requested: string): boolean {
  // A shared subscription receives what its inner filter matches: judge that (MQTT 5 §4.8.2).
  const filter = innerFilter(requested);
  for (const rule of acl.rules) {
    if (!rule.subscribe) continue;
    if (rule.allow ? filterCovers(rule.filter, filter) : filtersOverlap(rule.filter, filter)) return rule.allow;
  }
  return acl.defaultAllow;
}
