/**
 * Counters any part of the platform bumps without knowing about metrics: action runs and failures by
 * action type, rate-limit hits by limit. Plain numbers in module-level Maps (one process, one set of
 * figures, like the process metrics); prometheus.ts reads them at scrape time.
 *
 * Cost: one Map lookup and an addition per call; the labels are the callers' own fixed names (action
 * types, limit names), so the set stays small.
 */

export interface ActionCounts {
  runs: number;
  failures: number;
}

const actions = new Map<string, ActionCounts>();
const rateLimitHits = new Map<string, number>();

function actionEntry(type: string): ActionCounts {
  let counts = actions.get(type);
  if (counts === undefined) actions.set(type, (counts = { runs: 0, failures: 0 }));
  return counts;
}

/** An action of `type` (e.g. 'insert_bucket') ran. */
export function countActionRun(type: string): void {
  actionEntry(type).runs++;
}

/** An action of `type` ran and failed. */
export function countActionFailure(type: string): void {
  actionEntry(type).failures++;
}

/** A rate limit (SPEC §7, e.g. 'mqtt_publish') refused something. */
export function countRateLimitHit(limit: string): void {
  rateLimitHits.set(limit, (rateLimitHits.get(limit) ?? 0) + 1);
}

export function actionCounts(): ReadonlyMap<string, ActionCounts> {
  return actions;
}

export function rateLimitHitCounts(): ReadonlyMap<string, number> {
  return rateLimitHits;
}
