/**
 * How fastify logs requests. Its default lines carry the full URL, and a query string may carry a
 * token (SPEC §1: tokens never appear in logs). So every built-in per-request line is switched off
 * (those include the not-found line and the error lines that serialise the request), and one line per
 * answered request is written instead: method, path without the query, status and time taken.
 * Failures are logged by the error handler (errors.ts).
 */
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import { pathOf } from './errors.ts';

export class ApiLogController extends LogController {
  constructor() {
    super({ disableRequestLogging: true });
  }

  override requestCompleted(_error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    reply.log.info(
      { method: request.method, path: pathOf(request.url), statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 },
      'request',
    );
  }
}
