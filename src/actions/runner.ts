/**
 * The action runner (issue 17): every run of every trigger goes through `submit`, which queues it in
 * the account's bounded lane (action-queue.ts), executes it with the action types' executors
 * (run-context.ts, the contract with src/actions/types/), and records it: the run history
 * (run-history.ts) and an `action_run` event in the inspector of the triggering device.
 *
 * Rules:
 * - Runs never execute on the MQTT or ingest path: they start on a later event-loop turn.
 * - A full lane drops the run and counts it (`stats.dropped`, for metrics); the log says so at most
 *   once per DROP_REPORT_MS per account.
 * - Loop guard: a run whose context is deeper than `maxDepth` (action publishes or inserts leading to
 *   actions leading to ...) is not executed; it is recorded as a failed run with error `loop` and
 *   reported in the inspector.
 * - A test run (`test`) is queued and executed the same way, and answered with its record.
 * - An executor that throws is a failed run with the thrown message; it never stops the runner.
 * - A run still going after RUN_TIMEOUT_MS is recorded as failed and frees its place in the lane, so a
 *   target that never answers cannot stop an account's actions for good (what it does later is ignored).
 */
import { systemClock, type Clock, type TimerHandle } from '../broker/clock.ts';
import type { DeviceCache } from '../data/device-cache.ts';
import type { Logger } from '../log.ts';
import { StatusError } from '../status-error.ts';
import { ActionQueue, type QueueStats } from './action-queue.ts';
import type { ActionStore } from './action-store.ts';
import type { ActionExecutors, RunContext, RunDevice, RunResult } from './run-context.ts';
import type { RunHistory, RunRecord } from './run-history.ts';

/** Runs waiting per account by default (`--action-queue`). */
export const DEFAULT_ACTION_QUEUE = 1_000;
/** Runs of one account executing at once: a slow target holds these, not the whole account. */
export const ACCOUNT_CONCURRENCY = 4;
/** Deepest chain of action publishes or inserts that still runs (a deeper one is a loop). */
export const MAX_RUN_DEPTH = 8;
const DROP_REPORT_MS = 10_000;
/** Longer than any type's own limits (http_post's 10 attempts with back-off, the script time limit). */
export const RUN_TIMEOUT_MS = 10 * 60_000;
const RUN_TIMED_OUT: RunResult = { ok: false, attempts: 1, error: `timeout: still running after ${RUN_TIMEOUT_MS / 1000} s` };

/** Where runs are shown live (src/inspector/inspector-bus.ts). */
export interface RunInspector {
  publish(deviceId: string, type: string, data: Record<string, unknown>): void;
}

export interface ActionRunnerDeps {
  executors: ActionExecutors;
  history: RunHistory;
  inspector: RunInspector;
  actions: ActionStore;
  devices: DeviceCache;
  log: Logger;
  /** Runs waiting per account; default DEFAULT_ACTION_QUEUE. */
  queueSize?: number;
  /** Time and the run timeout's timer; default systemClock. */
  clock?: Clock;
}

/** An MQTT message an action published, offered to the account's `mqtt_topic` actions. */
export interface OfferedPublish {
  accountId: string;
  topic: string;
  payload: Buffer;
  /** The device the publish is made for (the triggering device), or null: then only unscoped actions match. */
  device: RunDevice | null;
  /** The publishing run's depth + 1. */
  depth: number;
}

interface RunJob {
  readonly context: RunContext;
  readonly done: ((record: RunRecord) => void) | null;
}

export class ActionRunner {
  readonly #deps: ActionRunnerDeps;
  readonly #clock: Clock;
  readonly #queue: ActionQueue<RunJob>;
  /** Per account: when drops were last logged, and how many since. */
  readonly #dropReported = new Map<string, { at: number; count: number }>();
  #loops = 0;

  constructor(deps: ActionRunnerDeps) {
    this.#deps = deps;
    this.#clock = deps.clock ?? systemClock;
    this.#queue = new ActionQueue<RunJob>({
      size: deps.queueSize ?? DEFAULT_ACTION_QUEUE,
      concurrency: ACCOUNT_CONCURRENCY,
      start: (job) => this.#execute(job),
    });
  }

  /** Queues a run; false when it was dropped (full queue) or refused (loop). */
  submit(context: RunContext): boolean {
    if (context.depth > MAX_RUN_DEPTH) {
      this.#refuseLoop(context);
      return false;
    }
    if (this.#queue.offer(context.accountId, { context, done: null })) return true;
    this.#reportDrop(context.accountId);
    return false;
  }

  /** A test run (context.test): queued and executed like any run; resolves with its record. 503 when the queue is full. */
  test(context: RunContext): Promise<RunRecord> {
    return new Promise((resolve, reject) => {
      if (!this.#queue.offer(context.accountId, { context, done: resolve })) reject(new StatusError(503, 'the account\'s action queue is full; try again later'));
    });
  }

  /**
   * An action's own MQTT publish (the mqtt_publish and script types call this after publishing):
   * every active `mqtt_topic` action of the account whose filters match and whose scope includes
   * `device` runs once, with depth `publish.depth`.
   */
  offerPublish(publish: OfferedPublish): void {
    const index = this.#deps.actions.indexOf(publish.accountId);
    if (index === null) return;
    const scoped = publish.device === null ? null : this.#deps.devices.get(publish.device.id);
    for (const match of index.matches(publish.topic, scoped)) {
      this.submit({
        accountId: publish.accountId,
        action: match.action,
        trigger: 'mqtt_topic',
        device: publish.device,
        topic: publish.topic,
        payload: publish.payload,
        test: false,
        depth: publish.depth,
      });
    }
  }

  /** For metrics: runs waiting, executing, dropped (full queue) and refused as loops since start. */
  get stats(): QueueStats & { readonly loops: number } {
    return { ...this.#queue.stats, loops: this.#loops };
  }

  async #execute(job: RunJob): Promise<void> {
    const { context } = job;
    const started = this.#clock.now();
    const t0 = performance.now();
    let result: RunResult;
    let timer: TimerHandle | null = null;
    try {
      const timeout = new Promise<RunResult>((resolve) => {
        timer = this.#clock.setTimeout(resolve, RUN_TIMEOUT_MS, RUN_TIMED_OUT);
      });
      result = await Promise.race([this.#deps.executors.run(context.action.action, context), timeout]);
    } catch (error) {
      result = { ok: false, attempts: 1, error: error instanceof Error ? error.message : String(error) };
    } finally {
      if (timer !== null) this.#clock.clearTimeout(timer);
    }
    const record = runRecord(context, started, performance.now() - t0, result);
    this.#record(context, record);
    job.done?.(record);
  }

  #refuseLoop(context: RunContext): void {
    this.#loops++;
    this.#record(context, runRecord(context, this.#clock.now(), 0, { ok: false, attempts: 0, error: 'loop' }));
  }

  #record(context: RunContext, record: RunRecord): void {
    this.#deps.history.add(record);
    if (context.device !== null) showRun(this.#deps.inspector, context.device.id, context.action.name, record);
  }

  #reportDrop(accountId: string): void {
    const now = this.#clock.now();
    let report = this.#dropReported.get(accountId);
    if (report === undefined) {
      report = { at: -Infinity, count: 0 };
      this.#dropReported.set(accountId, report);
    }
    report.count++;
    if (now - report.at < DROP_REPORT_MS) return;
    this.#deps.log.warn({ accountId, dropped: report.count }, 'action queue full: action runs dropped');
    report.at = now;
    report.count = 0;
  }
}

/** The part of a device a run shows its executor (no parser source, no lookup sets). */
export function runDevice(device: RunDevice): RunDevice {
  return { id: device.id, name: device.name, tags: device.tags, params: device.params };
}

function runRecord(context: RunContext, started: number, durationMs: number, result: RunResult): RunRecord {
  const record: RunRecord = {
    action_id: context.action.id,
    trigger: context.trigger,
    device_id: context.device?.id ?? null,
    started_at: new Date(started).toISOString(),
    duration_ms: Math.round(durationMs),
    ok: result.ok,
    attempts: result.attempts,
    test: context.test,
    depth: context.depth,
  };
  if (result.error !== undefined) record.error = result.error;
  if (result.result !== undefined) record.result = result.result;
  return record;
}

/** The inspector event of a run; the one place its shape is decided. */
function showRun(inspector: RunInspector, deviceId: string, actionName: string, record: RunRecord): void {
  inspector.publish(deviceId, 'action_run', { action: record.action_id, action_name: actionName, ...record });
}
