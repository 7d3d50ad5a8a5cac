/**
 * Sandbox options with their defaults (SPEC §4: 1000 ms, 32 MB). Its own module so the broker's
 * process can check options without loading isolated-vm, which only the sandbox child needs.
 */
import type { SandboxOptions } from './types.ts';

export const SANDBOX_DEFAULTS: Readonly<Required<SandboxOptions>> = Object.freeze({
  timeoutMs: 1000,
  memoryMb: 32,
  maxIsolates: 256,
  maxResultBytes: 1 << 20,
  maxBatch: 256,
});

// isolated-vm refuses memory limits below 8 MB.
const MIN_MEMORY_MB = 8;

/** Options with defaults applied and checked; throws RangeError for a value that is not a positive number. */
export function resolveOptions(options: SandboxOptions): Required<SandboxOptions> {
  const resolved = { ...SANDBOX_DEFAULTS };
  for (const name of Object.keys(SANDBOX_DEFAULTS) as Array<keyof SandboxOptions>) {
    const value = options[name] ?? SANDBOX_DEFAULTS[name];
    if (!Number.isFinite(value) || value <= 0) throw new RangeError(`parser sandbox option ${name} must be a positive number, got ${value}`);
    resolved[name] = value;
  }
  resolved.memoryMb = Math.max(MIN_MEMORY_MB, resolved.memoryMb);
  return resolved;
}
