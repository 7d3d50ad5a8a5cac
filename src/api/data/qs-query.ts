/**
 * Query strings of the data API (SPEC §8), parsed in the nested `qs` style the hosted service's SDKs
 * produce, then turned into a DataQuery (src/data/query.ts).
 *
 * `variables[0]=a&variables[1]=b`, `variables[]=a&variables[]=b` and `variables=a&variables=b` are
 * the same list; `variable` is an alias of `variables`, and likewise `group`/`groups`,
 * `value`/`values`, `id`/`ids`. Dates are ISO-8601 or relative to now ("1 day" = now minus a day).
 * Every error names the parameter (`querystring/qty ...`), as the schema errors do.
 */
import qs from 'qs';
import type { onRequestAsyncHookHandler } from 'fastify';
import { DEFAULT_QTY, MAX_QTY, type AggregateFunction, type DataFilter, type DataQuery, type QueryMode } from '../../data/query.ts';
import { ApiError } from '../errors.ts';

export const QUERY_MODES: readonly QueryMode[] = [
  'default',
  'last_value', 'last_item', 'last_location', 'last_insert',
  'first_value', 'first_item', 'first_location', 'first_insert',
  'count', 'min', 'max', 'avg', 'sum', 'aggregate',
];
export const AGGREGATE_FUNCTIONS: readonly AggregateFunction[] = ['avg', 'sum', 'min', 'max', 'count'];

/** Longest filter list (variables, groups, values or ids) one request may carry. */
export const MAX_LIST_ITEMS = 1000;

/**
 * qs options: indexes up to MAX_LIST_ITEMS stay arrays (qs's default of 20 would turn
 * `variables[21]=x` into an object); shallow nesting is all the API needs.
 */
const QS_OPTIONS: qs.IParseOptions = { arrayLimit: MAX_LIST_ITEMS, depth: 2, parameterLimit: 2000, allowPrototypes: false };

export function parseQueryString(raw: string): Record<string, unknown> {
  return qs.parse(raw, QS_OPTIONS) as Record<string, unknown>;
}

/**
 * An onRequest hook that re-parses the query string with qs, for the data routes only (the admin
 * routes keep fastify's flat parser). It runs before validation, so route schemas see the qs shape.
 */
export const qsQueryHook: onRequestAsyncHookHandler = async function parseQsQuery(request) {
  const url = request.raw.url ?? '';
  const at = url.indexOf('?');
  request.query = at === -1 ? {} : parseQueryString(url.slice(at + 1));
};

type Query = Record<string, unknown>;

const UNIT_MS: Record<string, number> = {
  ms: 1, millisecond: 1, milliseconds: 1,
  s: 1000, sec: 1000, secs: 1000, second: 1000, seconds: 1000,
  m: 60_000, min: 60_000, mins: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hour: 3_600_000, hours: 3_600_000,
  d: 86_400_000, day: 86_400_000, days: 86_400_000,
  w: 604_800_000, week: 604_800_000, weeks: 604_800_000,
  month: 2_592_000_000, months: 2_592_000_000, // 30 days
  y: 31_536_000_000, year: 31_536_000_000, years: 31_536_000_000, // 365 days
};
const DURATION = /^(\d+(?:\.\d+)?)\s*([a-z]+)$/;

/** "1 day", "3 hours", "15 minutes", "90s" → milliseconds; null when the text is not a duration. */
export function parseDuration(text: string): number | null {
  const match = DURATION.exec(text.trim().toLowerCase());
  if (match === null) return null;
  const unit = UNIT_MS[match[2] as string];
  if (unit === undefined) return null;
  const ms = Number(match[1]) * unit;
  return Number.isFinite(ms) && ms > 0 ? ms : null;
}

/** The filters shared by GET, DELETE and the admin routes. */
export function toDataFilter(query: Query, now: number): DataFilter {
  const filter: DataFilter = {};
  const variables = listParam(query, 'variables', 'variable');
  if (variables !== undefined) filter.variables = variables.map((v) => v.toLowerCase());
  const groups = listParam(query, 'groups', 'group');
  if (groups !== undefined) filter.groups = groups;
  const values = listParam(query, 'values', 'value');
  if (values !== undefined) filter.values = values.flatMap(valueForms);
  const ids = listParam(query, 'ids', 'id');
  if (ids !== undefined) filter.ids = ids;
  const start = dateParam(query, 'start_date', now);
  if (start !== undefined) filter.startDate = start;
  const end = dateParam(query, 'end_date', now);
  if (end !== undefined) filter.endDate = end;
  if (start !== undefined && end !== undefined && start > end) throw new ApiError(400, 'querystring/start_date must not be after end_date');
  return filter;
}

/** A full GET query: filters, mode, paging and ordering, aggregate function and interval. */
export function toDataQuery(query: Query, now: number): DataQuery {
  const mode = enumParam(query, 'query', QUERY_MODES) ?? 'default';
  const out: DataQuery = {
    ...toDataFilter(query, now),
    mode,
    qty: intParam(query, 'qty', 1, MAX_QTY) ?? DEFAULT_QTY,
    skip: intParam(query, 'skip', 0, Number.MAX_SAFE_INTEGER) ?? 0,
    ordination: ordinationParam(query),
  };
  const fn = enumParam(query, 'function', AGGREGATE_FUNCTIONS);
  const interval = durationParam(query, 'interval');
  if (mode === 'aggregate') {
    if (fn === undefined) throw new ApiError(400, `querystring/function is required with query=aggregate (one of ${AGGREGATE_FUNCTIONS.join(', ')})`);
    if (interval === undefined) throw new ApiError(400, 'querystring/interval is required with query=aggregate (like "1 hour", "15 minutes", "1 day")');
    out.aggregate = { function: fn, intervalMs: interval };
  }
  return out;
}

/** A string, or undefined when absent; a list or an object is a mistake. */
function scalarParam(query: Query, name: string): string | undefined {
  const raw = query[name];
  if (raw === undefined || raw === '') return undefined;
  if (typeof raw === 'number' || typeof raw === 'boolean') return String(raw);
  if (typeof raw !== 'string') throw new ApiError(400, `querystring/${name} must be given once, as a single value`);
  return raw;
}

/** The union of `name` and its alias in any qs list form; undefined when neither is present. */
function listParam(query: Query, name: string, alias: string): string[] | undefined {
  const a = listItems(query[name], name);
  const b = listItems(query[alias], alias);
  if (a === undefined && b === undefined) return undefined;
  const all = [...(a ?? []), ...(b ?? [])];
  if (all.length > MAX_LIST_ITEMS) throw new ApiError(400, `querystring/${name} may hold at most ${MAX_LIST_ITEMS} items`);
  return all;
}

function listItems(raw: unknown, name: string): string[] | undefined {
  if (raw === undefined) return undefined;
  // qs turns indexes beyond its array limit into object keys: `variables[5000]=a` → {"5000": "a"}.
  const items: unknown[] = Array.isArray(raw)
    ? raw
    : typeof raw === 'object' && raw !== null && Object.keys(raw).every((k) => /^\d+$/.test(k))
      ? Object.entries(raw).sort(([a], [b]) => Number(a) - Number(b)).map(([, v]) => v)
      : [raw];
  return items.map((item, i) => {
    if (typeof item === 'string') return item;
    if (typeof item === 'number' || typeof item === 'boolean') return String(item);
    throw new ApiError(400, `querystring/${name}/${i} must be a text value`);
  });
}

/**
 * A query string carries text, but records store numbers, booleans and strings as such (SPEC §3):
 * `values=21.5` matches the number 21.5 and the string "21.5"; `values=true` the boolean and the text.
 */
function valueForms(text: string): Array<string | number | boolean> {
  const forms: Array<string | number | boolean> = [text];
  if (text.trim() !== '' && Number.isFinite(Number(text))) forms.push(Number(text));
  if (text === 'true') forms.push(true);
  if (text === 'false') forms.push(false);
  return forms;
}

function intParam(query: Query, name: string, min: number, max: number): number | undefined {
  const text = scalarParam(query, name);
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new ApiError(400, `querystring/${name} must be a whole number from ${min} to ${max}`);
  const n = Number(text);
  if (n < min || n > max) throw new ApiError(400, `querystring/${name} must be a whole number from ${min} to ${max}`);
  return n;
}

function enumParam<T extends string>(query: Query, name: string, allowed: readonly T[]): T | undefined {
  const text = scalarParam(query, name);
  if (text === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(text)) throw new ApiError(400, `querystring/${name} must be one of ${allowed.join(', ')}`);
  return text as T;
}

function ordinationParam(query: Query): 'ascending' | 'descending' {
  const text = scalarParam(query, 'ordination');
  if (text === undefined) return 'descending';
  switch (text) {
    case 'ascending':
    case 'asc':
      return 'ascending';
    case 'descending':
    case 'desc':
      return 'descending';
    default:
      throw new ApiError(400, 'querystring/ordination must be one of ascending, descending (or asc, desc)');
  }
}

function dateParam(query: Query, name: string, now: number): number | undefined {
  const text = scalarParam(query, name);
  if (text === undefined) return undefined;
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const t = Date.parse(text);
    if (!Number.isNaN(t)) return t;
  }
  const ago = parseDuration(text);
  if (ago !== null) return now - ago;
  throw new ApiError(400, `querystring/${name} must be an ISO-8601 date or a time ago like "1 day" or "3 hours"`);
}

function durationParam(query: Query, name: string): number | undefined {
  const text = scalarParam(query, name);
  if (text === undefined) return undefined;
  const ms = parseDuration(text);
  if (ms === null || ms < 1000) throw new ApiError(400, `querystring/${name} must be a duration of at least a second, like "1 hour", "15 minutes" or "1 day"`);
  return ms;
}
