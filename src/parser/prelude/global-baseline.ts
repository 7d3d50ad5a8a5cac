/**
 * Puts the isolate's global object back the way it was before parser code ran, so each message is
 * decoded on its own, as on the hosted service: an implicit global (`total = 0` in sloppy mode,
 * `globalThis.x = 1`) or a replaced built-in (`JSON = ...`) from one message is not seen by the
 * next. Not undone: what a script does to the inside of shared objects (`Array.prototype.x = 1`),
 * and non-enumerable globals it defines with Object.defineProperty; those reach only later
 * messages of the same device.
 *
 * It runs after every message, so the common case (nothing changed) is made cheap: new globals are
 * found by a for-in over the few enumerable ones, and replaced built-ins by one generated function
 * of plain global reads (fast property-cell loads, where a loop of keyed reads on the global
 * object costs several microseconds).
 *
 * Runs inside the isolate.
 */

// Captured at prelude time: scripts may replace these.
const ownKeys = Reflect.ownKeys;
const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
const defineProperty = Reflect.defineProperty;
const deleteProperty = Reflect.deleteProperty;
const hasOwn = Object.hasOwn;
const FunctionClass = Function;
const SetClass = Set;
const globals = globalThis as unknown as Record<PropertyKey, unknown>;
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

export interface GlobalBaseline {
  /** Restores the global object; returns the name of a property it could not restore, if any. */
  restore(): string | undefined;
}

/**
 * Takes the current global object as the baseline. `provided` are the globals the driver sets
 * before every message: they are kept (so never deleted and re-added, which would deoptimize every
 * script reading them) and not compared.
 */
export function captureGlobals(provided: readonly string[]): GlobalBaseline {
  for (const name of provided) if (!hasOwn(globalThis, name)) globals[name] = undefined;
  const known = new SetClass<PropertyKey>(ownKeys(globalThis));
  const skip = new SetClass<PropertyKey>(provided);
  const names: string[] = [];
  const values: unknown[] = [];
  const descriptors: PropertyDescriptor[] = [];
  for (const key of known) {
    if (typeof key !== 'string' || skip.has(key) || !IDENTIFIER.test(key)) continue;
    const descriptor = getOwnPropertyDescriptor(globalThis, key);
    // Only data properties a script can change; accessors are left alone.
    if (descriptor === undefined || !('value' in descriptor) || (!descriptor.writable && !descriptor.configurable)) continue;
    names.push(key);
    values.push(descriptor.value);
    descriptors.push(descriptor);
  }
  const unchanged = new FunctionClass('v', `return ${names.map((name, i) => `${name} === v[${i}]`).join(' && ') || 'true'};`) as (
    values: unknown[],
  ) => boolean;

  const same = (): boolean => {
    try {
      return unchanged(values);
    } catch {
      // A built-in was deleted: reading it threw.
      return false;
    }
  };

  return {
    restore() {
      for (const key in globalThis) {
        if (known.has(key) || !hasOwn(globalThis, key)) continue;
        if (!deleteProperty(globalThis, key)) return key;
      }
      if (same()) return undefined;
      for (let i = 0; i < names.length; i++) {
        const name = names[i] as string;
        if (hasOwn(globalThis, name) && globals[name] === values[i]) continue;
        if (!defineProperty(globalThis, name, descriptors[i] as PropertyDescriptor)) return name;
      }
      return undefined;
    },
  };
}
