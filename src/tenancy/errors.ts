import { StatusError } from '../status-error.ts';

/** Errors the tenancy layer reports to its callers (unknown ids, invalid input). */
export class TenancyError extends StatusError {}

export function notFound(what: string): TenancyError {
  return new TenancyError(404, `${what} not found`);
}

export function invalid(message: string): TenancyError {
  return new TenancyError(400, message);
}
