/**
 * Test runs (issue 17): an action, saved or not, run once through the action runner with a sample
 * message (mqtt_topic), sample records (variable) or now (schedule). The run goes through the same
 * queue, executors and records as production (`test: true`); nothing is stored as a device's data
 * and no lock changes. The answer also says whether the trigger itself would have fired on the
 * sample and why not, since "the test passes but the rule never fires" is the usual question.
 */
import { topicMatches } from '../broker/routing/topic.ts';
import type { DataRecord } from '../data/record.ts';
import { RecordError, validateRecords } from '../data/validate-record.ts';
import { invalid } from '../tenancy/errors.ts';
import type { Registry } from '../tenancy/registry.ts';
import { inScope, tagKey } from './action-index.ts';
import { recordsMeeting } from './conditions.ts';
import type { LockStore } from './lock-store.ts';
import type { Action } from './model.ts';
import type { RunContext, RunDevice } from './run-context.ts';
import type { RunRecord } from './run-history.ts';
import type { ActionRunner } from './runner.ts';

export interface TestSample {
  /** The device the sample comes from (mqtt_topic, variable). */
  device?: string;
  /** mqtt_topic: the publish. */
  message?: { topic: string; payload: string; payload_encoding?: 'text' | 'hex' | 'base64' };
  /** variable: record input, as a device sends it (one record or a list). */
  records?: unknown;
}

export interface TestRunAnswer {
  run: RunRecord;
  /** Whether the trigger would have fired on this sample in production. */
  trigger_met: boolean;
  /** Why not, when it would not have. */
  trigger_note?: string;
}

export interface TestRunDeps {
  registry: Registry;
  runner: Pick<ActionRunner, 'test'>;
  locks: LockStore;
  now?: () => number;
}

export async function testRun(deps: TestRunDeps, accountId: string, action: Action, sample: TestSample): Promise<TestRunAnswer> {
  const now = (deps.now ?? Date.now)();
  const device = sample.device === undefined ? null : sampleDevice(deps.registry, accountId, sample.device);
  const base = { accountId, action, device, test: true, depth: 0 } as const;
  const trigger = action.trigger;
  let context: RunContext;
  let note: string | null = null;
  switch (trigger.type) {
    case 'mqtt_topic': {
      if (sample.message === undefined) throw invalid('body/message is required to test an mqtt_topic action');
      const { topic } = sample.message;
      context = { ...base, trigger: 'mqtt_topic', topic, payload: decodePayload(sample.message) };
      if (!trigger.topics.some((filter) => topicMatches(filter, topic))) note = `topic ${topic} matches none of trigger/topics`;
      else note = scopeNote(action, device);
      break;
    }
    case 'variable': {
      if (sample.records === undefined) throw invalid('body/records is required to test a variable action');
      const records = sampleRecords(sample.records, device?.id ?? 'sample', now);
      const met = recordsMeeting(trigger.conditions, records);
      const locked = device !== null && trigger.unlock !== undefined && deps.locks.isLocked(action.id, device.id);
      context = { ...base, trigger: 'variable', records: met.length > 0 ? met : records, ...(trigger.unlock !== undefined ? { locked } : {}) };
      note = scopeNote(action, device);
      if (note === null && met.length === 0) note = 'no record meets trigger/conditions';
      if (note === null && locked) note = `the action is locked for device ${device!.id} until a record meets trigger/unlock`;
      break;
    }
    case 'schedule':
      context = { ...base, trigger: 'schedule', device: null, slot: now };
      break;
  }
  const run = await deps.runner.test(context);
  return note === null ? { run, trigger_met: true } : { run, trigger_met: false, trigger_note: note };
}

function sampleDevice(registry: Registry, accountId: string, deviceId: string): RunDevice {
  const device = registry.device(accountId, deviceId);
  if (device === null) throw invalid(`body/device: device ${deviceId} not found`);
  return { id: device.id, name: device.name, tags: device.tags, params: device.params };
}

function scopeNote(action: Action, device: RunDevice | null): string | null {
  const trigger = action.trigger;
  if (trigger.type === 'schedule') return null;
  const scope = { devices: trigger.devices !== undefined ? new Set(trigger.devices) : null, tags: trigger.tags?.map(tagKey) ?? null };
  const scoped = device === null ? null : { id: device.id, tagSet: new Set(device.tags.map(tagKey)) };
  if (inScope(scope, scoped)) return null;
  return device === null ? 'the trigger is scoped to devices or tags: give body/device' : `device ${device.id} is outside the trigger's devices or tags`;
}

function decodePayload(message: NonNullable<TestSample['message']>): Buffer {
  const encoding = message.payload_encoding ?? 'text';
  if (encoding === 'hex' && !/^([0-9a-fA-F]{2})*$/.test(message.payload)) throw invalid('body/message/payload is not hex (payload_encoding is hex)');
  if (encoding === 'base64' && !/^[A-Za-z0-9+/]*={0,2}$/.test(message.payload)) throw invalid('body/message/payload is not base64 (payload_encoding is base64)');
  return Buffer.from(message.payload, encoding === 'text' ? 'utf8' : encoding);
}

function sampleRecords(input: unknown, deviceId: string, now: number): DataRecord[] {
  try {
    return validateRecords(input, { deviceId, now });
  } catch (error) {
    if (error instanceof RecordError) throw invalid(`body/records: ${error.message}`);
    throw error;
  }
}
