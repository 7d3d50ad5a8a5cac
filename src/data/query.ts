/**
 * A data query (SPEC §8): filters plus a mode. The API parses query strings into this; every bucket
 * store implements it identically (one contract suite).
 */
export type QueryMode =
  | 'default'
  | 'last_value' | 'last_item' | 'last_location' | 'last_insert'
  | 'first_value' | 'first_item' | 'first_location' | 'first_insert'
  | 'count' | 'min' | 'max' | 'avg' | 'sum' | 'aggregate';

export type AggregateFunction = 'avg' | 'sum' | 'min' | 'max' | 'count';

export interface DataFilter {
  variables?: string[];
  groups?: string[];
  /** Exact value matches (compared as stored: numbers as numbers, strings as strings). */
  values?: Array<string | number | boolean>;
  ids?: string[];
  /** Epoch ms, inclusive. */
  startDate?: number;
  /** Epoch ms, inclusive. */
  endDate?: number;
}

export interface DataQuery extends DataFilter {
  mode: QueryMode;
  /** Records returned; default 15, at most 10,000. */
  qty: number;
  skip: number;
  /** Newest first by default. */
  ordination: 'descending' | 'ascending';
  /** For mode 'aggregate'. */
  aggregate?: { function: AggregateFunction; intervalMs: number };
}

/**
 * A `values` filter split by type, as every store matches it: a number matches only numeric records,
 * a string only string records, a boolean only boolean records (stored as 'true'/'false' text).
 */
export interface ValuesByType {
  numbers: number[];
  strings: string[];
  booleans: Array<'true' | 'false'>;
}

export function valuesByType(values: ReadonlyArray<string | number | boolean>): ValuesByType {
  const out: ValuesByType = { numbers: [], strings: [], booleans: [] };
  for (const v of values) {
    if (typeof v === 'number') out.numbers.push(v);
    else if (typeof v === 'boolean') out.booleans.push(v ? 'true' : 'false');
    else out.strings.push(v);
  }
  return out;
}

export const DEFAULT_QTY = 15;
export const MAX_QTY = 10_000;
