/**
 * The device data API (SPEC §8): a device, authenticated by its own token, posts records to its
 * bucket, queries them, changes or deletes them (mutable devices), and reads its own details.
 * Registered as its own plugin: its query strings are parsed the qs way, its bodies may be raw, and
 * its body limit is the data limit (SPEC §3, 200 KB by default), none of which touch the admin API.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { BucketStore } from '../../data/bucket-store.ts';
import type { Ingestor } from '../../data/ingest.ts';
import type { DataRecord } from '../../data/record.ts';
import { RejectedMessageError } from '../../data/rejected-message.ts';
import { RecordError, validateRecords } from '../../data/validate-record.ts';
import type { Device, DeviceIdentity } from '../../tenancy/model.ts';
import type { Registry } from '../../tenancy/registry.ts';
import { ApiError } from '../errors.ts';
import { ok, responses } from '../schemas/common.ts';
import { device as deviceSchema } from '../schemas/device.ts';
import { bodyCheckedByHandler, dataFilterQuery, dataQuery, postDataBody, putDataBody, queryResult } from './data-schemas.ts';
import { deviceAuth } from './device-auth.ts';
import { qsQueryHook, toDataFilter, toDataQuery } from './qs-query.ts';
import { sendAnswer } from './query-answer.ts';

/** SPEC §3: the HTTP body limit of a data message. */
export const DEFAULT_DATA_BODY_LIMIT = 200 * 1024;

/**
 * Raw bodies (SPEC §4): handed to the device's parser as its JSON parsed, or as a `payload` record of
 * their text or hex, with `raw_payload`; stored as that record without a parser.
 */
export const RAW_CONTENT_TYPES = ['text/plain', 'application/octet-stream'];

export interface DataApiOptions {
  registry: Registry;
  store: BucketStore;
  ingestor: Ingestor;
  /** Largest /data body in bytes; larger bodies get 413. Default 200 KB. */
  bodyLimit?: number;
}

const TAG = 'device data API';
/** Schemes the OpenAPI document declares (src/api/openapi.ts); the Token and Device-Token headers work too. */
const SECURITY: Array<Record<string, string[]>> = [{ tokenHeader: [] }, { deviceTokenHeader: [] }, { authorizationHeader: [] }, { tokenQuery: [] }];

type Patch = Parameters<BucketStore['update']>[2];

export function deviceDataApi(options: DataApiOptions): FastifyPluginAsync {
  return async function deviceData(scope) {
    scope.decorateRequest('deviceIdentity', null as unknown as DeviceIdentity);
    scope.addHook('onRequest', qsQueryHook);
    scope.addHook('onRequest', deviceAuth(options.registry));
    // Raw bodies arrive as bytes (the text/plain default would decode them, losing non-UTF-8 payloads).
    scope.removeContentTypeParser('text/plain');
    scope.addContentTypeParser(RAW_CONTENT_TYPES, { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    dataRoutes(scope, options);
  };
}

function dataRoutes(app: FastifyInstance, options: DataApiOptions): void {
  const { registry, store, ingestor } = options;
  const bodyLimit = options.bodyLimit ?? DEFAULT_DATA_BODY_LIMIT;

  app.post<{ Body: unknown }>(
    '/data',
    {
      bodyLimit,
      validatorCompiler: bodyCheckedByHandler,
      schema: {
        summary: 'Add records to the device\'s bucket',
        description: `Answers once the records are durable. Body at most ${bodyLimit} bytes; one bad record rejects the whole message, and the error names the record index and the field.`,
        tags: [TAG],
        security: SECURITY,
        body: postDataBody,
        response: responses(202, { type: 'string', description: '"N Data Added"' }, 'Stored'),
      },
    },
    async (request, reply) => {
      const body = request.body;
      if (body === undefined || body === null) throw new ApiError(400, 'body is required: a record, an array of records, or a raw payload');
      if (Buffer.isBuffer(body) && body.length === 0) throw new ApiError(400, 'body is empty');
      const count = await ingestRecords(ingestor, request.deviceIdentity.deviceId, body);
      return reply.code(202).send(ok(`${count} Data Added`));
    },
  );

  app.get(
    '/data',
    {
      schema: {
        summary: 'Query the device\'s records',
        description: 'Records newest first by default. `query` picks the answer: records, a bare number (count, avg, sum), or interval buckets (aggregate with `function` and `interval`).',
        tags: [TAG],
        security: SECURITY,
        querystring: dataQuery,
        response: responses(200, queryResult, 'The answer'),
      },
    },
    async (request, reply) => {
      const query = toDataQuery(request.query as Record<string, unknown>, Date.now());
      return sendAnswer(reply, await store.query(request.deviceIdentity.deviceId, query));
    },
  );

  app.put<{ Body: unknown }>(
    '/data',
    {
      bodyLimit,
      validatorCompiler: bodyCheckedByHandler,
      schema: {
        summary: 'Change records of a mutable device',
        description: 'Each change names a record by `id` and sets only the fields it carries; all changes are checked before any is made.',
        tags: [TAG],
        security: SECURITY,
        body: putDataBody,
        response: responses(200, { type: 'string', description: '"N item(s) updated"' }, 'Changed'),
      },
    },
    async (request) => {
      const deviceId = request.deviceIdentity.deviceId;
      mutableDevice(registry, deviceId);
      const changes = patchesOf(request.body);
      let updated = 0;
      for (const { id, patch } of changes) updated += await store.update(deviceId, { ids: [id] }, patch);
      return ok(`${updated} item(s) updated`);
    },
  );

  app.delete(
    '/data',
    {
      schema: {
        summary: 'Delete records of a mutable device',
        description: 'Deletes the records matching the filters (no filter: all of them).',
        tags: [TAG],
        security: SECURITY,
        querystring: dataFilterQuery,
        response: responses(200, { type: 'string', description: '"N Data Removed"' }, 'Deleted'),
      },
    },
    async (request) => {
      const deviceId = request.deviceIdentity.deviceId;
      mutableDevice(registry, deviceId);
      const filter = toDataFilter(request.query as Record<string, unknown>, Date.now());
      return ok(`${await store.delete(deviceId, filter)} Data Removed`);
    },
  );

  app.get(
    '/info',
    {
      schema: {
        summary: 'The device\'s own details',
        description: 'Name, type, tags, params, activity and connectivity; never tokens.',
        tags: [TAG],
        security: SECURITY,
        response: responses(200, deviceSchema, 'The device'),
      },
    },
    async (request) => {
      const { account_id: _account, ...device } = existingDevice(registry, request.deviceIdentity.deviceId);
      return ok(device);
    },
  );
}

/**
 * Validates and stores a body: parsed JSON, or the raw bytes of another content type; a record the
 * client got wrong is a 400 naming the record index and the field.
 */
export async function ingestRecords(ingestor: Ingestor, deviceId: string, body: unknown): Promise<number> {
  try {
    return await (Buffer.isBuffer(body) ? ingestor.ingestBytes(deviceId, body, { via: 'http' }) : ingestor.ingest(deviceId, body, { via: 'http' }));
  } catch (err) {
    if (err instanceof RejectedMessageError) throw new ApiError(400, err.message);
    throw err;
  }
}

function existingDevice(registry: Registry, deviceId: string): Device & { account_id: string } {
  const device = registry.deviceById(deviceId);
  // The token resolved a moment ago; the device was deleted since.
  if (device === null) throw new ApiError(404, `device ${deviceId} not found`);
  return device;
}

/** SPEC §1: only mutable devices' records may be changed or deleted through the data API. */
function mutableDevice(registry: Registry, deviceId: string): void {
  if (existingDevice(registry, deviceId).type !== 'mutable') {
    throw new ApiError(400, 'device is immutable: its records cannot be changed or deleted');
  }
}

const PATCH_FIELDS = ['value', 'unit', 'time', 'group', 'location', 'metadata'] as const;

/**
 * PUT bodies: `{id, ...fields}` or an array. Fields are checked with the record rules (SPEC §3) by
 * validating each change as a record, so the messages are the same ("record 2: unit must be ...").
 */
function patchesOf(body: unknown): Array<{ id: string; patch: Patch }> {
  const items = Array.isArray(body) ? body : [body];
  if (items.length === 0) throw new ApiError(400, 'body must hold at least one change');
  const asRecords = items.map((item, i) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new ApiError(400, `record ${i}: record must be an object`);
    const id = (item as Record<string, unknown>).id;
    if (typeof id !== 'string' || id.length === 0) throw new ApiError(400, `record ${i}: id is required (the record to change)`);
    if (!PATCH_FIELDS.some((field) => field in item) && !('serie' in item)) {
      throw new ApiError(400, `record ${i}: nothing to change (give one of ${PATCH_FIELDS.join(', ')})`);
    }
    return { ...(item as object), variable: 'patch' };
  });
  let validated: DataRecord[];
  try {
    validated = validateRecords(asRecords, { deviceId: '', now: Date.now() });
  } catch (err) {
    if (err instanceof RecordError) throw new ApiError(400, err.message);
    throw err;
  }
  return items.map((item: Record<string, unknown>, i) => {
    const record = validated[i] as DataRecord;
    const patch: Patch = {};
    if ('value' in item) patch.value = record.value;
    if ('unit' in item) patch.unit = record.unit;
    if (item.time !== undefined && item.time !== null) patch.time = record.time;
    if ((item.group ?? item.serie) !== undefined && (item.group ?? item.serie) !== null) patch.group = record.group;
    if ('location' in item) patch.location = record.location;
    if ('metadata' in item) patch.metadata = record.metadata;
    return { id: item.id as string, patch };
  });
}
