/**
 * A token's `expire_time` (SPEC §1): "never", an ISO date, or a relative span such as "3 hours",
 * "1 day", "30 minutes", "2 weeks", "1 month", "1 year". Returns epoch ms, or null for never;
 * throws a RangeError naming the bad value.
 */
const UNIT_MS: Record<string, number> = {
  second: 1_000,
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
  week: 7 * 86_400_000,
  month: 30 * 86_400_000,
  year: 365 * 86_400_000,
};

export function parseExpireTime(value: string | undefined | null, now: number): number | null {
  if (value === undefined || value === null || value === '' || value === 'never') return null;
  const relative = /^\s*(\d+(?:\.\d+)?)\s*(second|minute|hour|day|week|month|year)s?\s*$/i.exec(value);
  if (relative !== null) return now + Number(relative[1]) * UNIT_MS[relative[2]!.toLowerCase()]!;
  // Only full ISO-8601 dates: Date.parse also takes loose formats we do not want to promise.
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(value.trim())) {
    const at = Date.parse(value);
    if (!Number.isNaN(at)) return at;
  }
  throw new RangeError(`expire_time: "${value}" is not "never", an ISO date or a span like "3 hours"`);
}

export function formatExpireTime(at: number | null): string {
  return at === null ? 'never' : new Date(at).toISOString();
}
