import { filterCovers, filtersOverlap, topicMatches } from '../broker/routing/topic.ts';

/**
 * ACL rules (SPEC §2): per account and per device, allow or deny publish and/or subscribe on topic
 * filters. `%c` stands for the client id and `%d` for the device id. Rules are checked in order and
 * the first one that applies decides; when none applies, the default policy does.
 *
 * For SUBSCRIBE (`aclSubscribe`) the rules are read against every topic the filter can match, as
 * Mosquitto and EMQX users expect: a filter of which no topic is allowed is refused; one of which
 * every topic is allowed is granted plainly; one of which some topics are allowed and some denied
 * (`#` next to a rule denying `a/#`, or `#` under default deny next to an allow rule for
 * `sensors/#`) is granted with a `SubscriptionAcl` that withholds each denied message at delivery.
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
  /**
   * null for a client without a device (anonymous). `UNKNOWN_DEVICE` when the device cannot be
   * known (a session restored after a restart): every device's deny rules apply, no device's allow
   * rule does, so what it lets through the real device's rules let through too.
   */
  deviceId: string | null | typeof UNKNOWN_DEVICE;
  clientId: string;
}

export const UNKNOWN_DEVICE: unique symbol = Symbol('unknown device');

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
    if (rule.device !== undefined && rule.device !== subject.deviceId) {
      if (subject.deviceId !== UNKNOWN_DEVICE || rule.permission === 'allow') continue;
    }
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
    if (typeof subject.deviceId !== 'string' || unsafe(subject.deviceId)) return null;
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

/**
 * A granted filter's per-message check: only the rules that reach into the filter, in order, split
 * once; `rest` is the verdict for a topic none of them matches (a rule covering the whole filter,
 * else the default). Matching walks the topic string, allocating nothing.
 */
export class SubscriptionAcl {
  readonly reason = 'acl';
  readonly #rules: ReadonlyArray<{ readonly levels: readonly string[]; readonly allow: boolean }>;
  readonly #rest: boolean;

  constructor(rules: ReadonlyArray<{ filter: string; allow: boolean }>, rest: boolean) {
    this.#rules = rules.map((r) => ({ levels: r.filter.split('/'), allow: r.allow }));
    this.#rest = rest;
  }

  allows(topic: string): boolean {
    const rules = this.#rules;
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!;
      if (levelsMatch(rule.levels, topic)) return rule.allow;
    }
    return this.#rest;
  }
}

/**
 * SUBSCRIBE: 'allow' when every topic the filter can match is allowed, 'deny' when none is, else
 * the check to run per message. The first applicable rule decides each topic, so the rules read in
 * order until one covers the whole filter (it decides everything left); a rule that only overlaps
 * decides some topics. The answer may say "check" where every topic is in fact decided alike (a
 * rule shadowed by an earlier one): the check then gives the same verdicts, never a wrong one.
 */
export function aclSubscribe(acl: ClientAcl, requested: string): 'allow' | 'deny' | SubscriptionAcl {
  // A shared subscription receives what its inner filter matches: judge that (MQTT 5 §4.8.2).
  const filter = innerFilter(requested);
  const reaching: Array<ClientAcl['rules'][number]> = [];
  let rest = acl.defaultAllow;
  for (const rule of acl.rules) {
    if (!rule.subscribe || !filtersOverlap(rule.filter, filter)) continue;
    if (filterCovers(rule.filter, filter)) {
      rest = rule.allow;
      break;
    }
    reaching.push(rule);
  }
  let someAllowed = rest;
  let someDenied = !rest;
  for (const rule of reaching) {
    if (rule.allow) someAllowed = true;
    else someDenied = true;
  }
  if (!someDenied) return 'allow';
  if (!someAllowed) return 'deny';
  return new SubscriptionAcl(reaching, rest);
}

/** topicMatches over a filter split beforehand, reading the topic in place (MQTT 5 §4.7). */
function levelsMatch(levels: readonly string[], topic: string): boolean {
  const first = levels[0]!;
  if (topic.charCodeAt(0) === 0x24 && (first === '+' || first === '#')) return false;
  let start = 0;
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level === '#') return true;
    if (start > topic.length) return false;
    let end = topic.indexOf('/', start);
    if (end < 0) end = topic.length;
    if (level !== '+' && (end - start !== level.length || !topic.startsWith(level, start))) return false;
    start = end + 1;
  }
  return start > topic.length;
}
