/** Account and device token schemas (SPEC §1). The plain token appears only in the create answer. */
import { isoDate, nullableIsoDate, nullableString } from './common.ts';
import { PERMISSIONS } from '../../tenancy/model.ts';

export const permission = { type: 'string', enum: [...PERMISSIONS], description: '`full`, `read` or `write`' } as const;

const expireTime = {
  type: 'string',
  maxLength: 64,
  default: 'never',
  description: '"never" (default), an ISO-8601 date, or a span from now such as "3 hours", "1 day", "2 weeks"',
} as const;

export interface TokenBody {
  name: string;
  permission: 'full' | 'read' | 'write';
  expire_time?: string;
}

export interface DeviceTokenBody extends TokenBody {
  serie_number?: string | null;
}

export const accountTokenBody = {
  type: 'object',
  required: ['name', 'permission'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 100 },
    permission,
    expire_time: expireTime,
  },
} as const;

export const deviceTokenBody = {
  ...accountTokenBody,
  properties: {
    ...accountTokenBody.properties,
    serie_number: { type: ['string', 'null'], maxLength: 100, description: 'Optional serial number of the hardware using this token' },
  },
} as const;

const tokenInfoProperties = {
  id: { type: 'string' },
  name: { type: 'string' },
  permission,
  expire_time: { type: 'string', description: '"never" or an ISO-8601 date' },
  created_at: isoDate,
} as const;

export const accountTokenInfo = {
  type: 'object',
  required: Object.keys(tokenInfoProperties),
  properties: tokenInfoProperties,
} as const;

const deviceTokenInfoProperties = {
  ...tokenInfoProperties,
  device_id: { type: 'string' },
  serie_number: nullableString,
  last_authorization: nullableIsoDate,
} as const;

export const deviceTokenInfo = {
  type: 'object',
  required: Object.keys(deviceTokenInfoProperties),
  properties: deviceTokenInfoProperties,
} as const;

const plainToken = { type: 'string', description: 'The token itself; shown this once, store it now' } as const;

export const createdAccountToken = {
  ...accountTokenInfo,
  required: ['token', ...accountTokenInfo.required],
  properties: { token: plainToken, ...tokenInfoProperties },
} as const;

export const createdDeviceToken = {
  ...deviceTokenInfo,
  required: ['token', ...deviceTokenInfo.required],
  properties: { token: plainToken, ...deviceTokenInfoProperties },
} as const;
