/**
 * `variable` triggers (SPEC §5): every message stored for a device, from any path (MQTT, HTTP, relay,
 * an action's insert), is checked against the account's active variable actions whose scope (devices,
 * tags as they are now) includes the device. An action fires once per message when some record meets
 * some condition, with the records that met one.
 *
 * Unlock condition (hysteresis): a firing locks the action for that device (lock-store.ts, persisted);
 * while locked the conditions are not looked at, and a message with a record meeting an unlock
 * condition unlocks it (that message does not fire; the next one may). A run dropped because the
 * queue is full does not lock.
 *
 * Cost per stored message: a cache lookup for the device and a Map lookup for the account's index
 * (most accounts: no variable actions, done); then per in-scope action, its conditions × the records.
 * Runs are queued, never executed here: this is called inside the commit's completion.
 */
import type { DeviceCache } from '../data/device-cache.ts';
import type { StoredListener } from '../data/ingest.ts';
import type { Logger } from '../log.ts';
import { inScope } from './action-index.ts';
import type { ActionStore } from './action-store.ts';
import { anyMeets, recordsMeeting } from './conditions.ts';
import type { LockStore } from './lock-store.ts';
import { runDevice, type ActionRunner } from './runner.ts';

export interface VariableTriggerDeps {
  actions: ActionStore;
  devices: DeviceCache;
  locks: LockStore;
  runner: Pick<ActionRunner, 'submit'>;
  log: Logger;
  /** Epoch ms; default Date.now. */
  now?: () => number;
}

/** The Ingestor's onStored listener that fires variable actions. Never throws (a throw would refuse the stored message). */
export function variableTriggers(deps: VariableTriggerDeps): StoredListener {
  const { actions, devices, locks, runner } = deps;
  const now = deps.now ?? Date.now;
  return (deviceId, records, source) => {
    try {
      const device = devices.get(deviceId);
      if (device === null) return;
      const variables = actions.indexOf(device.accountId)?.variables;
      if (variables === undefined) return;
      for (let i = 0; i < variables.length; i++) {
        const compiled = variables[i]!;
        if (!inScope(compiled, device)) continue;
        const { trigger } = compiled;
        const hysteresis = trigger.unlock !== undefined;
        if (hysteresis && locks.isLocked(compiled.id, deviceId)) {
          if (anyMeets(trigger.unlock!, records)) locks.unlock(compiled.id, deviceId);
          continue;
        }
        const met = recordsMeeting(trigger.conditions, records);
        if (met.length === 0) continue;
        const queued = runner.submit({
          accountId: device.accountId,
          action: compiled.action,
          trigger: 'variable',
          device: runDevice(device),
          records: met,
          ...(hysteresis ? { locked: true } : {}),
          test: false,
          depth: source.depth,
        });
        if (queued && hysteresis) locks.lock(compiled.id, deviceId, now());
      }
    } catch (error) {
      deps.log.error({ err: error, deviceId }, 'variable actions: could not check a stored message');
    }
  };
}
