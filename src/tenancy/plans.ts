import type { Plan } from './model.ts';

/**
 * Default plans, following the hosted service's public tiers (SPEC §7). Rates are per calendar
 * minute per account; `devices` and `actions` are resource caps. A configuration file may replace
 * or add plans.
 */
export const DEFAULT_PLANS: readonly Plan[] = [
  {
    name: 'free',
    limits: { mqtt_publish: 250, mqtt_connections: 20, data_read: 250, data_write: 250, data_modify: 60, aggregate: 5, token_ops: 50, devices: 50, actions: 20 },
  },
  {
    name: 'starter',
    limits: { mqtt_publish: 5_000, mqtt_connections: 100, data_read: 5_000, data_write: 5_000, data_modify: 250, aggregate: 10, token_ops: 250, devices: 1_000, actions: 100 },
  },
  {
    name: 'scale',
    limits: { mqtt_publish: 15_000, mqtt_connections: 200, data_read: 15_000, data_write: 15_000, data_modify: 1_000, aggregate: 100, token_ops: 2_000, devices: 10_000, actions: 500 },
  },
];

export const DEFAULT_PLAN_NAME = 'scale';
