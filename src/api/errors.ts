/**
 * The one place where a failure becomes an HTTP answer (SPEC §8/§9: `{"status": false, "message"}`
 * with the right status). Client errors keep their message; anything else is logged with its stack
 * and answered with a generic 500 so internals never leak.
 */
import type { FastifyError, FastifyReply, FastifyRequest, FastifySchemaValidationError } from 'fastify';
import { StatusError } from '../status-error.ts';

/** An API failure with its HTTP status; thrown by hooks and handlers, answered by `sendError`. */
export class ApiError extends StatusError {}

export interface ErrorBody {
  status: false;
  message: string;
}

export function errorBody(message: string): ErrorBody {
  return { status: false, message };
}

/** fastify's setErrorHandler callback. */
export function sendError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const status = clientStatusOf(error);
  if (status === null) {
    request.log.error({ err: error, method: request.method, path: pathOf(request.url) }, 'request failed');
    return reply.code(500).send(errorBody('internal server error'));
  }
  return reply.code(status).send(errorBody(clientMessageOf(error, request)));
}

/** fastify's setNotFoundHandler callback. The query string (which may hold a token) is not echoed. */
export function sendNotFound(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return reply.code(404).send(errorBody(`route ${request.method} ${pathOf(request.url)} not found`));
}

/** The 4xx status of an error the client caused, or null for a server fault. */
function clientStatusOf(error: FastifyError): number | null {
  if (error.validation !== undefined) return 400;
  if (error instanceof StatusError) return error.statusCode;
  // fastify's own client errors (bad JSON, body too large, unsupported media type) carry a 4xx status.
  const status = error.statusCode;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : null;
}

function clientMessageOf(error: FastifyError, request: FastifyRequest): string {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return `body is larger than the limit of ${request.routeOptions.bodyLimit ?? '?'} bytes`;
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'body is not valid JSON';
    default:
      return error.message;
  }
}

export function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/**
 * fastify's schemaErrorFormatter: one message naming the field (`body/name`, `querystring/amount`),
 * saying what is wrong in terms a client can act on.
 */
export function formatSchemaErrors(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const first = errors[0];
  if (first === undefined) return new Error(`${dataVar} is invalid`);
  const at = `${dataVar}${first.instancePath}`;
  const params = first.params;
  switch (first.keyword) {
    case 'required':
      return new Error(`${at}/${String(params.missingProperty)} is required`);
    case 'additionalProperties':
      return new Error(`${at}/${String(params.additionalProperty)} is not a known field`);
    case 'enum':
      return new Error(`${at} must be one of ${(params.allowedValues as unknown[]).map(String).join(', ')}`);
    default:
      return new Error(`${at} ${first.message ?? 'is invalid'}`);
  }
}
