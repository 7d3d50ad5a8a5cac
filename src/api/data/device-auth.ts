/**
 * Device-token authentication for the data API (SPEC §8). The token may come from the `Token` header
 * (what the hosted service's SDK sends), `Device-Token`, `Authorization` (raw or `Bearer <token>`), or
 * the `token` query parameter, in that order. `read` tokens may GET; `write` tokens may POST, PUT and
 * DELETE; `full` tokens may do both (the MQTT rule: write publishes, read subscribes).
 */
import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import type { DeviceIdentity } from '../../tenancy/model.ts';
import type { Registry } from '../../tenancy/registry.ts';
import { permits } from '../account-auth.ts';
import { ApiError } from '../errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated device token; set by the device-auth hook before any data handler runs. */
    deviceIdentity: DeviceIdentity;
  }
}

export function deviceTokenOf(request: FastifyRequest): string | null {
  const headers = request.headers;
  for (const name of ['token', 'device-token']) {
    const value = headers[name];
    if (typeof value === 'string' && value.length > 0) return value;
  }
  const authorization = headers.authorization;
  if (typeof authorization === 'string' && authorization.length > 0) return authorization.replace(/^bearer\s+/i, '');
  const query = request.query as Record<string, unknown> | undefined;
  const fromQuery = query?.token;
  return typeof fromQuery === 'string' && fromQuery.length > 0 ? fromQuery : null;
}

/** An onRequest hook (after the qs hook, which gives it the query): authenticates before the body is read. */
export function deviceAuth(registry: Registry): onRequestAsyncHookHandler {
  return async function authenticateDevice(request) {
    const token = deviceTokenOf(request);
    if (token === null) {
      throw new ApiError(401, 'a device token is required (Token, Device-Token or Authorization header, or token query parameter)');
    }
    const identity = registry.authenticateDeviceToken(token);
    if (identity === null) throw new ApiError(401, 'the device token is invalid or expired, or its device is inactive');
    if (!permits(identity.permission, request.method)) {
      const needed = request.method === 'GET' || request.method === 'HEAD' ? 'read or full' : 'write or full';
      throw new ApiError(403, `this device token has "${identity.permission}" permission; ${request.method} needs ${needed}`);
    }
    request.deviceIdentity = identity;
  };
}
