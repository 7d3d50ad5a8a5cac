/** Device schemas (SPEC §1): what POST/PUT accept and what every device answer contains. */
import { isoDate, nullableIsoDate, nullableString, tagItem, tagList } from './common.ts';
import type { TagItem } from '../../tenancy/model.ts';

/** 64 KiB: a generous decoder; the data path runs it on every message (SPEC §4). */
export const PAYLOAD_PARSER_MAX_BYTES = 64 * 1024;

/** A param is a tag (same key/value rules) plus whether the device has it yet. */
export const paramInput = {
  ...tagItem,
  properties: {
    ...tagItem.properties,
    sent: { type: 'boolean', description: 'Whether the device has received this param; default false' },
  },
} as const;

export const paramInputList = { type: 'array', items: paramInput, maxItems: 1000 } as const;

export const paramItem = {
  type: 'object',
  required: ['id', 'key', 'value', 'sent'],
  properties: { id: { type: 'string' }, key: { type: 'string' }, value: { type: 'string' }, sent: { type: 'boolean' } },
} as const;

export interface ParamInput {
  key: string;
  value: string;
  sent?: boolean;
}

const retentionDays = {
  type: ['integer', 'null'],
  minimum: 1,
  maximum: 36_500,
  description: 'Immutable devices only: days records are kept; null keeps them forever',
} as const;
const recordCap = {
  type: 'integer',
  minimum: 1,
  maximum: 10_000_000,
  description: 'Mutable devices only: the most records kept (default 50,000)',
} as const;
export const payloadParser = {
  type: ['string', 'null'],
  maxLength: PAYLOAD_PARSER_MAX_BYTES,
  description: 'JavaScript run on every message bound for the bucket (SPEC §4), at most 64 KiB; null removes it',
} as const;
const name = { type: 'string', minLength: 1, maxLength: 100 } as const;

export interface DeviceCreateBody {
  name: string;
  type?: 'immutable' | 'mutable';
  retention_days?: number | null;
  record_cap?: number;
  tags?: TagItem[];
  params?: ParamInput[];
  payload_parser?: string | null;
  active?: boolean;
}

export type DeviceUpdateBody = Partial<Omit<DeviceCreateBody, 'type' | 'params'>>;

export const deviceCreateBody = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    name,
    type: { type: 'string', enum: ['immutable', 'mutable'], description: 'Fixed at creation; default immutable' },
    retention_days: retentionDays,
    record_cap: recordCap,
    tags: tagList,
    params: paramInputList,
    payload_parser: payloadParser,
    active: { type: 'boolean', description: 'Default true; an inactive device cannot connect' },
  },
} as const;

export const deviceUpdateBody = {
  type: 'object',
  minProperties: 1,
  additionalProperties: false,
  properties: {
    name,
    retention_days: retentionDays,
    record_cap: recordCap,
    tags: tagList,
    payload_parser: payloadParser,
    active: { type: 'boolean', description: 'Setting false disconnects the device\'s sessions' },
  },
} as const;

const deviceProperties = {
  id: { type: 'string' },
  name: { type: 'string' },
  type: { type: 'string', enum: ['immutable', 'mutable'] },
  retention_days: { type: ['integer', 'null'] },
  record_cap: { type: ['integer', 'null'] },
  tags: tagList,
  params: { type: 'array', items: paramItem },
  payload_parser: nullableString,
  active: { type: 'boolean' },
  last_input: nullableIsoDate,
  created_at: isoDate,
  updated_at: isoDate,
  connected: { type: 'boolean', description: 'An MQTT session of this device is connected now' },
  last_connect: nullableIsoDate,
  last_disconnect: nullableIsoDate,
  last_disconnect_cause: { ...nullableString, description: 'Why the device last dropped (client, keepalive timeout, takeover, revoked, ...)' },
} as const;

export const device = { type: 'object', required: Object.keys(deviceProperties), properties: deviceProperties } as const;

export const createdDevice = {
  type: 'object',
  required: ['device_id', 'token', ...device.required],
  properties: {
    device_id: { type: 'string' },
    token: { type: 'string', description: 'The device\'s first token (permission full, never expires); shown this once' },
    ...deviceProperties,
  },
} as const;

export interface DeviceListQuery {
  name?: string;
  tags?: string[];
  page: number;
  amount: number;
}

export const deviceListQuery = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 100, description: 'Only devices whose name contains this text (case-insensitive)' },
    tags: {
      type: 'array',
      items: { type: 'string', maxLength: 1101 },
      description: 'Only devices carrying this tag, written KEY:VALUE (split at the first colon). Repeat for several tags; a device must carry all of them: `?tags=site:paris&tags=kind:meter`',
    },
    page: { type: 'integer', minimum: 1, default: 1 },
    amount: { type: 'integer', minimum: 1, maximum: 1000, default: 20, description: 'Devices per page' },
  },
} as const;
