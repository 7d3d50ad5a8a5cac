/**
 * Sandbox options with their defaults (SPEC §4: 1000 ms, 32 MB, UTC). Its own module so the broker's
 * process can check options without loading isolated-vm, which only the sandbox child needs.
 */
import type { SandboxOptions } from './types.ts';

export const SANDBOX_DEFAULTS: Readonly<Required<SandboxOptions>> = Object.freeze({
  timeoutMs: 1000,
  memoryMb: 32,
  maxIsolates: 256,
  maxResultBytes: 1 << 20,
  maxBatch: 256,
  timezone: 'UTC',
});

type NumericOption = Exclude<keyof SandboxOptions, 'timezone'>;
const NUMERIC_OPTIONS: readonly NumericOption[] = ['timeoutMs', 'memoryMb', 'maxIsolates', 'maxResultBytes', 'maxBatch'];

// isolated-vm refuses memory limits below 8 MB.
const MIN_MEMORY_MB = 8;

/** Options with defaults applied and checked; throws RangeError for a value that is not a positive number or a known time zone. */
export function resolveOptions(options: SandboxOptions): Required<SandboxOptions> {
  const resolved = { ...SANDBOX_DEFAULTS };
  for (const name of NUMERIC_OPTIONS) {
    const value = options[name] ?? SANDBOX_DEFAULTS[name];
    if (!Number.isFinite(value) || value <= 0) throw new RangeError(`parser sandbox option ${name} must be a positive number, got ${value}`);
    resolved[name] = value;
  }
  resolved.memoryMb = Math.max(MIN_MEMORY_MB, resolved.memoryMb);
  resolved.timezone = options.timezone ?? SANDBOX_DEFAULTS.timezone;
  if (!isTimeZone(resolved.timezone)) throw new RangeError(`parser sandbox option timezone must be an IANA time zone such as UTC or Europe/Berlin, got ${resolved.timezone}`);
  return resolved;
}

/**
 * Whether `name` is a time zone this Node knows. A process started with an unknown `TZ` silently
 * runs in UTC, so the name is checked here, where the operator can be told.
 */
export function isTimeZone(name: string): boolean {
  if (name.trim() === '') return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}
