/**
 * Device data in the admin API (SPEC §9, issue 5): an account token queries a device's records,
 * exports them as CSV or JSON (streamed, any size) and deletes ranges. Registered inside the admin
 * scope, so account-auth runs first; another account's device is a 404 (tenants never see each other).
 */
import type { FastifyInstance } from 'fastify';
import type { BucketStore } from '../../data/bucket-store.ts';
import type { Registry } from '../../tenancy/registry.ts';
import { deviceOf } from '../routes/devices.ts';
import { idParams, ok, responses } from '../schemas/common.ts';
import { dataFilterQuery, dataQuery, filterProperties, queryResult, recordJson } from './data-schemas.ts';
import { EXPORT_CONTENT_TYPES, EXPORT_FORMATS, CSV_COLUMNS, exportStream, type ExportFormat } from './export.ts';
import { qsQueryHook, toDataFilter, toDataQuery } from './qs-query.ts';
import { sendAnswer } from './query-answer.ts';

const TAG = 'device data';
const deviceId = idParams('deviceId');

interface DeviceParams {
  deviceId: string;
}

export function adminDataRoutes(app: FastifyInstance, registry: Registry, store: BucketStore): void {
  app.get<{ Params: DeviceParams }>(
    '/devices/:deviceId/data',
    {
      // Route hooks run after the scope's account-auth hook; the token may be in either query form.
      onRequest: qsQueryHook,
      schema: {
        summary: 'Query a device\'s records',
        description: 'The device data API\'s GET /data (same filters, `query` modes and answers) for any device of the account.',
        tags: [TAG],
        params: deviceId,
        querystring: dataQuery,
        response: responses(200, queryResult, 'The answer'),
      },
    },
    async (request, reply) => {
      const device = deviceOf(registry, request.account.accountId, request.params.deviceId);
      const query = toDataQuery(request.query as Record<string, unknown>, Date.now());
      return sendAnswer(reply, await store.query(device.id, query));
    },
  );

  app.get<{ Params: DeviceParams; Querystring: { format?: ExportFormat } }>(
    '/devices/:deviceId/data/export',
    {
      onRequest: qsQueryHook,
      schema: {
        summary: 'Export a device\'s records as CSV or JSON',
        description:
          `Streamed oldest first, of any size, as an attachment. CSV columns: ${CSV_COLUMNS.join(', ')} (RFC 4180 quoting; ` +
          'location as lat and lng; metadata as JSON). JSON: an array of records as GET /data returns them. Takes the GET filters.',
        tags: [TAG],
        params: deviceId,
        querystring: {
          type: 'object',
          properties: { format: { type: 'string', enum: EXPORT_FORMATS, default: 'csv', description: 'Default csv' }, ...filterProperties },
        },
        response: {
          200: {
            description: 'The export file, as an attachment',
            content: {
              'text/csv': { schema: { type: 'string', description: `Columns ${CSV_COLUMNS.join(',')}` } },
              'application/json': { schema: { type: 'array', items: recordJson } },
            },
          },
          ...withoutSuccess(responses(200, {}, '')),
        },
      },
    },
    async (request, reply) => {
      const device = deviceOf(registry, request.account.accountId, request.params.deviceId);
      const filter = toDataFilter(request.query as Record<string, unknown>, Date.now());
      const format = request.query.format ?? 'csv';
      const stamp = new Date().toISOString().slice(0, 19).replaceAll(':', '-');
      return reply
        .type(EXPORT_CONTENT_TYPES[format])
        .header('content-disposition', `attachment; filename="device-${device.id}-${stamp}.${format}"`)
        .send(exportStream(store.stream(device.id, filter), format));
    },
  );

  app.delete<{ Params: DeviceParams }>(
    '/devices/:deviceId/data',
    {
      onRequest: qsQueryHook,
      schema: {
        summary: 'Delete a device\'s records',
        description: 'Deletes the records matching the filters, e.g. a time range with `start_date` and `end_date`; no filter deletes all of them. Any device type.',
        tags: [TAG],
        params: deviceId,
        querystring: dataFilterQuery,
        response: responses(200, { type: 'integer', description: 'How many records were deleted' }, 'Deleted'),
      },
    },
    async (request) => {
      const device = deviceOf(registry, request.account.accountId, request.params.deviceId);
      const filter = toDataFilter(request.query as Record<string, unknown>, Date.now());
      return ok(await store.delete(device.id, filter));
    },
  );
}

/** The error entries of `responses()`, for routes whose success is not the JSON envelope. */
function withoutSuccess(all: Record<string, object>): Record<string, object> {
  const { 200: _success, ...errors } = all;
  return errors;
}
