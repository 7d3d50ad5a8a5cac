/**
 * Schemas of the data routes (SPEC §3, §8): they document the query strings, bodies and answers in
 * the OpenAPI document. Record bodies are checked by validateRecords (its messages name the record
 * index and the field), not by these schemas; see `documentedBody`.
 */
import type { FastifySchemaCompiler, FastifySchema } from 'fastify';
import { DEFAULT_QTY, MAX_QTY } from '../../data/query.ts';
import { LIMITS } from '../../data/validate-record.ts';
import { compileValidator } from '../validation.ts';
import { AGGREGATE_FUNCTIONS, MAX_LIST_ITEMS, QUERY_MODES } from './qs-query.ts';

const textList = (description: string): object => ({
  type: 'array',
  items: { type: 'string' },
  maxItems: MAX_LIST_ITEMS,
  description: `${description}. Any qs list form: \`x[0]=a&x[1]=b\`, \`x[]=a\`, or repeated \`x=a&x=b\``,
});

const dateParam = (description: string): object => ({
  type: 'string',
  description: `${description}: an ISO-8601 date, or a time ago such as "1 day", "3 hours", "15 minutes"`,
});

/** Filters shared by GET, DELETE and export. */
export const filterProperties = {
  variables: textList('Only these variables'),
  variable: textList('Alias of `variables`'),
  groups: textList('Only these groups'),
  group: textList('Alias of `groups`'),
  values: textList('Only these values (matched as text, number or boolean)'),
  value: textList('Alias of `values`'),
  ids: textList('Only these record ids'),
  id: textList('Alias of `ids`'),
  start_date: dateParam('Records at or after this time'),
  end_date: dateParam('Records at or before this time'),
} as const;

export const dataFilterQuery = { type: 'object', properties: filterProperties } as const;

export const dataQuery = {
  type: 'object',
  properties: {
    ...filterProperties,
    query: {
      type: 'string',
      enum: QUERY_MODES,
      description: 'What to answer: records for default, `last_*`, `first_*`, `min` and `max`; a bare number for `count`, `avg` and `sum`; interval buckets for `aggregate`',
    },
    qty: { type: 'integer', minimum: 1, maximum: MAX_QTY, description: `Records to return, default ${DEFAULT_QTY}` },
    skip: { type: 'integer', minimum: 0, description: 'Records to skip, default 0' },
    ordination: { type: 'string', enum: ['descending', 'ascending', 'desc', 'asc'], description: 'Default descending (newest first)' },
    function: { type: 'string', enum: AGGREGATE_FUNCTIONS, description: 'With query=aggregate' },
    interval: { type: 'string', description: 'With query=aggregate: the bucket width, like "1 hour", "15 minutes", "1 day"' },
  },
} as const;

const geoPoint = {
  type: 'object',
  required: ['type', 'coordinates'],
  properties: {
    type: { type: 'string', enum: ['Point'] },
    coordinates: { type: 'array', items: { type: 'number' }, minItems: 2, maxItems: 2, description: '[longitude, latitude]' },
  },
} as const;

const recordValue = { type: ['string', 'number', 'boolean', 'null'] } as const;
const metadata = { type: 'object', additionalProperties: true } as const;

export const recordJson = {
  type: 'object',
  required: ['id', 'device', 'variable', 'value', 'time', 'group', 'created_at'],
  properties: {
    id: { type: 'string' },
    device: { type: 'string' },
    variable: { type: 'string' },
    value: recordValue,
    unit: { type: 'string' },
    time: { type: 'string', description: 'ISO-8601' },
    group: { type: 'string' },
    location: geoPoint,
    metadata,
    created_at: { type: 'string', description: 'ISO-8601' },
  },
} as const;

export const aggregatePoint = {
  type: 'object',
  required: ['variable', 'time', 'value'],
  properties: {
    variable: { type: 'string' },
    time: { type: 'string', description: 'Start of the interval, ISO-8601' },
    value: { type: 'number' },
  },
} as const;

export const queryResult = {
  description: 'Records, a bare number (count, avg, sum), or aggregate points',
  anyOf: [
    { type: 'array', items: recordJson },
    { type: 'number' },
    { type: 'array', items: aggregatePoint },
  ],
} as const;

const location = {
  description: '{lat, lng} or a GeoJSON Point',
  anyOf: [
    { type: 'object', required: ['lat', 'lng'], properties: { lat: { type: 'number' }, lng: { type: 'number' } } },
    geoPoint,
  ],
} as const;

const recordFields = {
  value: { ...recordValue, description: `At most ${LIMITS.valueBytes} bytes serialised` },
  unit: { type: 'string', maxLength: LIMITS.unitLength },
  time: { type: ['string', 'number'], description: 'ISO-8601, or Unix time in seconds or milliseconds; default: arrival' },
  group: {
    type: ['string', 'number'],
    maxLength: LIMITS.groupLength,
    description: 'Default: one generated id shared by the records of one message (`serie` is an alias); a finite number is stored as its decimal string',
  },
  location,
  metadata: { ...metadata, description: `At most ${LIMITS.metadataBytes} bytes serialised` },
} as const;

export const recordInput = {
  type: 'object',
  required: ['variable'],
  properties: {
    variable: { type: 'string', maxLength: LIMITS.variableLength, description: 'Stored lowercase; none of * ? ! < > . - = $ nor whitespace' },
    ...recordFields,
  },
} as const;

export const postDataBody = {
  description:
    'One record or an array (JSON). A `text/plain` or `application/octet-stream` body is a raw payload: JSON records in it are ' +
    'stored as they are, anything else as `{variable: "payload", value: <utf-8 text or hex>}`. With a payload parser on the device, ' +
    'the parser sees other JSON (in either kind of body) parsed: an object as `[object]`, an array as it is.',
  anyOf: [recordInput, { type: 'array', items: recordInput }],
} as const;

export const recordPatch = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', description: 'The record to change' }, ...recordFields },
} as const;

export const putDataBody = {
  description: 'One change or an array; each names a record by `id` and sets only the fields it carries',
  anyOf: [recordPatch, { type: 'array', items: recordPatch }],
} as const;

/**
 * A route's validator compiler that leaves the body to the handler (record validation has its own,
 * more precise messages, and raw bodies are not JSON) and validates everything else as usual.
 */
export const bodyCheckedByHandler: FastifySchemaCompiler<FastifySchema> = (route) =>
  route.httpPart === 'body' ? () => true : compileValidator(route);
