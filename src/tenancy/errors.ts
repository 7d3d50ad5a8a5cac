/**
 * Errors the tenancy layer reports to its callers. `statusCode` is what fastify sends when one of
 * these escapes a route, so API handlers can let them through.
 */
export class TenancyError extends Error {
  readonly statusCode: number;
  constructor(statusCode: number, message: string) {
    super(message);
    this.name = 'TenancyError';
    this.statusCode = statusCode;
  }
}

export function notFound(what: string): TenancyError {
  return new TenancyError(404, `${what} not found`);
}

export function invalid(message: string): TenancyError {
  return new TenancyError(400, message);
}
