/**
 * Guards against single allocations that V8 cannot survive. isolated-vm enforces its memory limit
 * by watching the heap grow; one allocation bigger than the heap's remaining room instead ends in
 * V8's fatal out-of-memory handler, which aborts the whole process. `Array.prototype.fill` on a
 * long holey array (`new Array(5e7).fill(0)`) is such an allocation: it makes the full backing
 * store at once. Strings built in one step (`repeat`, `padStart`, `padEnd`) are capped too, as they
 * otherwise allocate far past the limit before isolated-vm notices.
 *
 * Runs inside the isolate, before any parser code.
 */

/** The message of the RangeError a guard throws; the driver reports it as kind 'memory'. */
export const GUARD_MESSAGE = 'parser exceeded the memory limit';

// Backing stores take 8 bytes per element; stay well clear of the limit.
const BYTES_PER_ELEMENT = 8;

export function installAllocationGuards(memoryBytes: number): void {
  const maxElements = Math.floor(memoryBytes / 2 / BYTES_PER_ELEMENT);
  const maxChars = Math.floor(memoryBytes / 2);
  // Captured now: a script that replaces Math or Number must not switch the guards off.
  const RangeErrorClass = RangeError;
  const apply = Reflect.apply;
  const { trunc, min, max } = Math;
  const NumberOf = Number;
  const MAX_LENGTH = Number.MAX_SAFE_INTEGER;
  const toLength = (value: unknown): number => {
    const n = trunc(NumberOf(value));
    return n > 0 ? min(n, MAX_LENGTH) : 0;
  };
  const relative = (value: unknown, length: number, fallback: number): number => {
    if (value === undefined) return fallback;
    const n = trunc(NumberOf(value)) || 0;
    return n < 0 ? max(length + n, 0) : min(n, length);
  };

  const { fill } = Array.prototype;
  const { repeat, padStart, padEnd } = String.prototype;
  // Method shorthand: like the built-ins, these are not constructors.
  const guarded = {
    fill(this: unknown, ...args: unknown[]): unknown {
      const length = toLength((this as { length?: unknown } | null)?.length);
      if (length > maxElements && relative(args[2], length, length) - relative(args[1], length, 0) > maxElements) {
        throw new RangeErrorClass(GUARD_MESSAGE);
      }
      return apply(fill, this, args);
    },
    repeat(this: unknown, ...args: unknown[]): unknown {
      if (typeof this === 'string' && this.length * toLength(args[0]) > maxChars) throw new RangeErrorClass(GUARD_MESSAGE);
      return apply(repeat, this, args);
    },
    padStart(this: unknown, ...args: unknown[]): unknown {
      if (toLength(args[0]) > maxChars) throw new RangeErrorClass(GUARD_MESSAGE);
      return apply(padStart, this, args);
    },
    padEnd(this: unknown, ...args: unknown[]): unknown {
      if (toLength(args[0]) > maxChars) throw new RangeErrorClass(GUARD_MESSAGE);
      return apply(padEnd, this, args);
    },
  };
  replace(Array.prototype, 'fill', guarded.fill);
  replace(String.prototype, 'repeat', guarded.repeat);
  replace(String.prototype, 'padStart', guarded.padStart);
  replace(String.prototype, 'padEnd', guarded.padEnd);
}

/** Swaps a built-in method keeping its property attributes and arity, so scripts see no difference. */
function replace(target: object, name: string, replacement: (...args: unknown[]) => unknown): void {
  const descriptor = Object.getOwnPropertyDescriptor(target, name);
  const original = descriptor?.value as { length: number } | undefined;
  if (descriptor === undefined || original === undefined) return;
  Object.defineProperty(replacement, 'length', { value: original.length });
  Object.defineProperty(target, name, { ...descriptor, value: replacement });
}
