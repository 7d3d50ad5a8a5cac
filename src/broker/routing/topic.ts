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
  if (!raw.startsWith(SHARE_PREFIX)) {
    const problem = checkTopicFilter(raw, limits);
    return problem ?? { group: null, filter: raw };
  }
  const slash = raw.indexOf('/', SHARE_PREFIX.length);
  if (slash < 0) return `shared subscription "${raw}" has no filter`;
  const group = raw.slice(SHARE_PREFIX.length, slash);
  if (group.length === 0 || group.includes('+') || group.includes('#')) return `shared subscription group "${group}" is invalid`;
  const filter = raw.slice(slash + 1);
  const problem = checkTopicFilter(filter, limits);
  return problem ?? { group, filter };
}
