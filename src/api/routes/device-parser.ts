/**
 * The payload parser test run (SPEC §4, §9 "parser editor with a test run"): runs a parser — the
 * device's saved one, or code sent with the request — on a sample payload, exactly as a message from
 * the device would be handled, and answers with what would be stored and the console output. Nothing
 * is stored and nothing reaches the inspector.
 */
import type { FastifyInstance } from 'fastify';
import { parserInput } from '../../data/payload-records.ts';
import { toRecordJson, type RecordJson } from '../../data/record.ts';
import { RecordError, validateRecords } from '../../data/validate-record.ts';
import { parserDevice } from '../../parser/payload-parsers.ts';
import type { ParserSandbox } from '../../parser/sandbox.ts';
import type { ParserLog } from '../../parser/types.ts';
import type { Registry } from '../../tenancy/registry.ts';
import { recordJson } from '../data/data-schemas.ts';
import { ApiError } from '../errors.ts';
import { idParams, ok, responses } from '../schemas/common.ts';
import { payloadParser } from '../schemas/device.ts';
import { deviceOf } from './devices.ts';

interface TestRunBody {
  payload: string;
  encoding?: 'utf8' | 'hex' | 'base64';
  topic?: string;
  code?: string | null;
}

interface TestRunResult {
  ok: boolean;
  /** What would be stored (validated, with ids and times as the bucket would hold them). */
  records?: RecordJson[];
  /** What the script left in `payload`, before validation. */
  payload?: unknown[];
  /** Whether that payload would be stored, and if not which record and field refuse it (SPEC §3). */
  validation?: Validation;
  error?: { kind: string; message: string };
  logs: ParserLog[];
}

type Validation = { stored: true; count: number } | { stored: false; index: number; field: string; message: string };

const body = {
  type: 'object',
  required: ['payload'],
  additionalProperties: false,
  properties: {
    payload: { type: 'string', maxLength: 256 * 1024, description: 'The sample message, as text or in `encoding`' },
    encoding: { type: 'string', enum: ['utf8', 'hex', 'base64'], default: 'utf8', description: 'How `payload` spells the bytes' },
    topic: { type: 'string', minLength: 1, maxLength: 65535, description: 'MQTT topic the sample arrives on (metadata.mqtt_topic)' },
    code: { ...payloadParser, description: 'Parser to try instead of the device\'s saved one (at most 64 KiB)' },
  },
} as const;

const logLine = {
  type: 'object',
  required: ['level', 'message'],
  properties: { level: { type: 'string', enum: ['log', 'error'] }, message: { type: 'string' } },
} as const;

const result = {
  type: 'object',
  required: ['ok', 'logs'],
  properties: {
    ok: { type: 'boolean', description: 'false when the parser failed or its result is not valid records' },
    records: { type: 'array', items: recordJson, description: 'The records that would be stored' },
    payload: { type: 'array', items: {}, description: 'The script\'s final `payload`, before validation' },
    validation: {
      type: 'object',
      required: ['stored'],
      description: 'Present when the parser ran: whether its `payload` would be stored, or the record index and field that would refuse the whole message',
      properties: {
        stored: { type: 'boolean' },
        count: { type: 'integer', description: 'Records that would be stored' },
        index: { type: 'integer', description: 'Index of the first invalid record in `payload`' },
        field: { type: 'string', description: 'The field of that record that breaks a rule' },
        message: { type: 'string' },
      },
    },
    error: {
      type: 'object',
      required: ['kind', 'message'],
      properties: {
        kind: { type: 'string', enum: ['syntax', 'runtime', 'timeout', 'memory', 'result', 'validation'] },
        message: { type: 'string' },
      },
    },
    logs: { type: 'array', items: logLine, description: 'console.log / console.error output, in order' },
  },
} as const;

export function deviceParserRoutes(app: FastifyInstance, registry: Registry, sandbox: ParserSandbox): void {
  app.post<{ Params: { deviceId: string }; Body: TestRunBody }>(
    '/devices/:deviceId/parser/test',
    {
      schema: {
        summary: 'Test-run a payload parser on a sample payload',
        description: 'Runs the device\'s parser (or `code`) on the sample exactly as on a message from the device; stores nothing.',
        tags: ['devices'],
        params: idParams('deviceId'),
        body,
        response: responses(200, result, 'The outcome: records or the error, and the console output'),
      },
    },
    async (request) => {
      const device = deviceOf(registry, request.account.accountId, request.params.deviceId);
      const code = request.body.code ?? device.payload_parser;
      if (code === null || code.trim() === '') throw new ApiError(400, 'body/code is required: the device has no payload parser');
      const bytes = sampleBytes(request.body.payload, request.body.encoding ?? 'utf8');
      const metadata = request.body.topic === undefined ? undefined : { mqtt_topic: request.body.topic };
      // Its own sandbox key: trying code out never evicts or recompiles the device's live parser.
      const outcome = await sandbox.parse(`test-run:${device.id}`, code, parserDevice(device), parserInput(bytes, metadata));
      const answer: TestRunResult = { ok: outcome.ok, logs: outcome.logs };
      if (!outcome.ok) {
        answer.error = outcome.error;
        return ok(answer);
      }
      answer.payload = outcome.payload;
      try {
        answer.records = validateRecords(outcome.payload, { deviceId: device.id, now: Date.now(), metadata }).map(toRecordJson);
        answer.validation = { stored: true, count: answer.records.length };
      } catch (error) {
        if (!(error instanceof RecordError)) throw error;
        answer.ok = false;
        answer.error = { kind: 'validation', message: `the parser's result is not valid: ${error.message}` };
        answer.validation = { stored: false, index: error.index, field: error.field, message: error.message };
      }
      return ok(answer);
    },
  );
}

/** Hex and base64 must be well formed: Buffer.from would silently drop what it cannot read. */
function sampleBytes(text: string, encoding: 'utf8' | 'hex' | 'base64'): Buffer {
  if (encoding === 'hex') {
    const hex = text.replace(/\s+/g, '');
    if (!/^(?:[0-9a-fA-F]{2})*$/.test(hex)) throw new ApiError(400, 'body/payload is not hex (pairs of 0-9, a-f; spaces allowed)');
    return Buffer.from(hex, 'hex');
  }
  if (encoding === 'base64') {
    const b64 = text.replace(/\s+/g, '');
    if (!/^(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?$/.test(b64)) throw new ApiError(400, 'body/payload is not base64');
    return Buffer.from(b64, 'base64');
  }
  return Buffer.from(text, 'utf8');
}
