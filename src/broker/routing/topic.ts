/**
 * Topic name and filter rules (MQTT 5 §4.7). Validation returns a message (the reason) or null, so
 * callers pick the reason code that fits the packet they are answering.
 */

export interface TopicLimits {
  maxTopicLength: number;
  maxTopicDepth: number;
}

function checkCommon(value: string, what: string, limits: TopicLimits): string | null {
  if (value.length === 0) return `${what} is empty`;
  if (value.includes('\u0000')) return `${what} contains U+0000`;
  if (Buffer.byteLength(value) > limits.maxTopicLength) return `${what} is longer than ${limits.maxTopicLength} bytes`;
  let depth = 1;
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) === 0x2f) depth++;
  if (depth > limits.maxTopicDepth) return `${what} has more than ${limits.maxTopicDepth} levels`;
  return null;
}

/** A topic name a PUBLISH may use: no wildcards. */
export function checkTopicName(topic: string, limits: TopicLimits): string | null {
  const common = checkCommon(topic, 'topic name', limits);
  if (common !== null) return common;
  if (topic.includes('+') || topic.includes('#')) return `topic name "${topic}" contains a wildcard`;
  return null;
}

/** `$SYS/...`: the broker's own figures (sys-topics.ts); clients may read them, never publish there. */
export function isSysTopic(topic: string): boolean {
  return topic.charCodeAt(0) === 0x24 && (topic.startsWith('$SYS/') || topic === '$SYS');
}

/** A topic filter: '+' fills a whole level, '#' a whole last level. */
export function checkTopicFilter(filter: string, limits: TopicLimits): string | null {
  const common = checkCommon(filter, 'topic filter', limits);
  if (common !== null) return common;
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return `"#" must be the whole last level of "${filter}"`;
    if (level.includes('+') && level !== '+') return `"+" must fill a whole level of "${filter}"`;
  }
  return null;
}

export interface ParsedFilter {
  /** Shared subscription group, or null for an ordinary subscription. */
  group: string | null;
  /** The filter matched against topics (without `$share/group/`). */
  filter: string;
}

const SHARE_PREFIX = '$share/';

/** Splits `$share/{group}/{filter}` (MQTT 5 §4.8.2); returns an error message when malformed. */
export function parseSubscriptionFilter(raw: string, limits: TopicLimits): ParsedFilter | string {
  const parsed = splitSubscriptionFilter(raw);
  if (parsed === null) return `shared subscription "${raw}" has no filter`;
  const group = parsed.group;
  if (group !== null && (group.length === 0 || group.includes('+') || group.includes('#'))) return `shared subscription group "${group}" is invalid`;
  const problem = checkTopicFilter(parsed.filter, limits);
  return problem ?? parsed;
}

/**
 * The split alone, checking nothing: for filters checked when they were granted (a stored session's,
 * restored at start-up, stays as granted even if the limits changed since). Null: `$share/` without a filter.
 */
export function splitSubscriptionFilter(raw: string): ParsedFilter | null {
  if (!raw.startsWith(SHARE_PREFIX)) return { group: null, filter: raw };
  const slash = raw.indexOf('/', SHARE_PREFIX.length);
  if (slash < 0) return null;
  return { group: raw.slice(SHARE_PREFIX.length, slash), filter: raw.slice(slash + 1) };
}

/**
 * Whether `topic` matches `filter` (MQTT 5 §4.7), `$` rule included. For one-off checks (ACLs,
 * action triggers); routing uses the trie.
 */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  if (t[0]!.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    const level = f[i]!;
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}

/** Whether every topic `inner` matches is also matched by `outer` (e.g. `a/#` covers `a/+/b`). */
export function filterCovers(outer: string, inner: string): boolean {
  const o = outer.split('/');
  const n = inner.split('/');
  for (let i = 0; i < o.length; i++) {
    const level = o[i]!;
    if (level === '#') return !(i === 0 && n[0]!.startsWith('$'));
    if (i >= n.length) return false;
    const other = n[i]!;
    if (other === '#') return false;
    if (level === '+') {
      if (i === 0 && other.startsWith('$')) return false;
      continue;
    }
    if (other === '+' || level !== other) return false;
  }
  return o.length === n.length;
}

/** Whether some topic is matched by both filters. */
export function filtersOverlap(a: string, b: string): boolean {
  const x = a.split('/');
  const y = b.split('/');
  const dollar = x[0]!.startsWith('$') || y[0]!.startsWith('$');
  for (let i = 0; ; i++) {
    const p = x[i];
    const q = y[i];
    if (p === '#' || q === '#') {
      if (i === 0 && dollar) return x[0] === y[0];
      return true;
    }
    if (p === undefined || q === undefined) return p === q;
    if (p === '+' || q === '+') {
      if (i === 0 && (p.startsWith('$') || q.startsWith('$'))) return false;
      continue;
    }
    if (p !== q) return false;
  }
}
