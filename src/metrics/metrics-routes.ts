/**
 * Operations endpoints, without account authentication: `GET /health` (the process answers),
 * `GET /ready` (readiness.ts: listeners bound, stores writable; 503 naming what is not ready) and
 * `GET /metrics` (prometheus.ts), which is left out entirely when metrics are off (404) and, with a
 * token configured, wants `Authorization: Bearer <token>` (compared in constant time; 401 otherwise).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import type { Metrics } from './prometheus.ts';
import type { Readiness } from './readiness.ts';

export interface OperationsRoutesOptions {
  readiness: Readiness;
  /** null: metrics off, no /metrics route. */
  metrics: Metrics | null;
  /** Bearer token /metrics requires; undefined = open. */
  metricsToken: string | undefined;
}

const tags = ['operations'];
const open: Array<Record<string, string[]>> = [];

export const operationsRoutes: FastifyPluginAsync<OperationsRoutesOptions> = async (app, options) => {
  app.get('/health', { schema: { tags, security: open, summary: 'The process is up', response: { 200: { type: 'object', properties: { status: { type: 'boolean' } } } } } }, async () => ({ status: true }));

  app.get(
    '/ready',
    {
      schema: {
        tags,
        security: open,
        summary: 'Listeners bound and stores writable (a real write and read of each); 503 names what is not ready',
      },
    },
    async (_request, reply) => {
      const { ready, report } = await options.readiness.check();
      if (ready) return { status: true, result: report };
      const failing = Object.entries(report).filter(([, state]) => state !== 'ok').map(([part, state]) => `${part}: ${state}`);
      return reply.code(503).send({ status: false, message: `not ready: ${failing.join('; ')}`, result: report });
    },
  );

  const metrics = options.metrics;
  if (metrics === null) return;
  const expected = options.metricsToken === undefined ? null : digest(`Bearer ${options.metricsToken}`);
  app.get(
    '/metrics',
    { schema: { tags, security: open, summary: 'Prometheus metrics (text format); with --metrics-token, send `Authorization: Bearer <token>`' } },
    async (request, reply) => {
      if (expected !== null && !timingSafeEqual(digest(request.headers.authorization ?? ''), expected)) {
        return reply.code(401).send({ status: false, message: 'Authorization: a Bearer token matching --metrics-token is required' });
      }
      const text = await metrics.text();
      return reply.type(metrics.contentType).send(text);
    },
  );
};

/** Fixed-length digests, so the comparison takes the same time whatever was sent. */
function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
