/**
 * Puts the isolate's global object back the way it was before parser code ran, so each message is
 * decoded on its own, as on the hosted service: an implicit global (`total = 0` in sloppy mode,
 * `globalThis.x = 1`) or a replaced built-in (`JSON = ...`) from one message is not seen by the
 * next. Not undone: what a script does to the inside of shared objects (`Array.prototype.x = 1`),
 * and non-enumerable globals it defines with Object.defineProperty; those reach only later
 * messages of the same device.
 *
 * It runs after every message, so the common case (nothing changed) is made cheap:
 * - New globals are reported by a tripwire: a Proxy put between the global object and its
 *   prototype. Assigning a name the global object lacks (`total = 0`, `globalThis.x = 1`,
 *   `this.x = 1`) is a [[Set]] that walks the prototype chain, so it passes the proxy's `set` trap,
 *   which notes the name; only noted names are checked. A for-in over the global object costs
 *   0.7 µs per message, most of a message's restore (it walks a hundred built-ins).
 * - Globals made without a [[Set]] — Object.defineProperty and its kin, `var` in an indirect eval —
 *   pass no trap: a script whose source mentions them gets the for-in after every message instead.
 *   So does every message after a script changed the global object's prototype (the tripwire is
 *   put back).
 * - Replaced built-ins are found by one generated function of plain global reads (fast property-cell
 *   loads, where a loop of keyed reads on the global object costs several microseconds).
 *
 * Runs inside the isolate.
 */

// Captured at prelude time: scripts may replace these.
const ownKeys = Reflect.ownKeys;
const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
const defineProperty = Reflect.defineProperty;
const deleteProperty = Reflect.deleteProperty;
const hasOwn = Object.hasOwn;
const getPrototypeOf = Reflect.getPrototypeOf;
const setPrototypeOf = Reflect.setPrototypeOf;
const reflectSet = Reflect.set;
const ProxyClass = Proxy;
const FunctionClass = Function;
const SetClass = Set;
const globals = globalThis as unknown as Record<PropertyKey, unknown>;
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

export interface GlobalBaseline {
  /** Restores the global object; returns the name of a property it could not restore, if any. */
  restore(): string | undefined;
}

/** Source text that may make globals without a [[Set]], which the tripwire does not see. */
const UNTRAPPED_DEFINITIONS = /defineProperty|defineProperties|__define|eval/;

/** Whether `code` needs the for-in over the global object after every message (see above). */
export function definesGlobalsUntrapped(code: string): boolean {
  return UNTRAPPED_DEFINITIONS.test(code);
}

/**
 * Takes the current global object as the baseline. `provided` are the globals the driver sets
 * before every message: they are kept (so never deleted and re-added, which would deoptimize every
 * script reading them) and not compared. `scanAlways`: look for new globals with a for-in after every
 * message (`definesGlobalsUntrapped`), not only where the tripwire saw an assignment.
 */
export function captureGlobals(provided: readonly string[], scanAlways: boolean): GlobalBaseline {
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

  // The tripwire: assignments to names the global object lacks reach the prototype chain's [[Set]].
  const assigned: PropertyKey[] = [];
  const tripwire = new ProxyClass(getPrototypeOf(globalThis) as object, {
    set(target, key, value, receiver) {
      if (receiver === globalThis) assigned.push(key);
      return reflectSet(target, key, value, receiver);
    },
  });
  setPrototypeOf(globalThis, tripwire);

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
      let scan = scanAlways;
      if (getPrototypeOf(globalThis) !== tripwire) {
        // The script moved the tripwire away: look everywhere this time, and put it back.
        scan = true;
        if (!setPrototypeOf(globalThis, tripwire)) return '__proto__';
      }
      if (scan) {
        for (const key in globalThis) {
          if (known.has(key) || !hasOwn(globalThis, key)) continue;
          if (!deleteProperty(globalThis, key)) return key;
        }
      }
      for (let i = 0; i < assigned.length; i++) {
        const key = assigned[i] as PropertyKey;
        if (known.has(key) || !hasOwn(globalThis, key)) continue;
        if (!deleteProperty(globalThis, key)) {
          assigned.length = 0;
          return String(key);
        }
      }
      assigned.length = 0;
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
