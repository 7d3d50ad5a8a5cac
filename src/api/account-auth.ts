/**
 * Account-token authentication for the admin API (SPEC §1, §9). The token may come, in this order of
 * precedence, from `Authorization` (the raw token or `Bearer <token>`), `Account-Token`, `Token`, a
 * `token.<token>` entry of `Sec-WebSocket-Protocol` (the one header a browser's WebSocket can set), or
 * the `token` query parameter. Permissions: `full` may do anything, `read` only GET, `write` anything
 * but GET. Tenancy is enforced below, by the registry: every lookup is scoped to the token's account.
 */
import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import type { AccountIdentity, Permission } from '../tenancy/model.ts';
import type { Registry } from '../tenancy/registry.ts';
import { ApiError } from './errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated account token; set by the account-auth hook before any admin handler runs. */
    account: AccountIdentity;
  }
}

/** A WebSocket sub-protocol of this form carries the account token. */
export const TOKEN_SUBPROTOCOL_PREFIX = 'token.';

/** Longer than any token we issue; longer values are refused without hashing them. */
const MAX_TOKEN_LENGTH = 256;

export function accountTokenOf(request: FastifyRequest): string | null {
  const headers = request.headers;
  const authorization = headers.authorization;
  if (typeof authorization === 'string' && authorization.length > 0) {
    return /^bearer\s+/i.test(authorization) ? authorization.replace(/^bearer\s+/i, '') : authorization;
  }
  for (const name of ['account-token', 'token']) {
    const value = headers[name];
    if (typeof value === 'string' && value.length > 0) return value;
  }
  const protocols = headers['sec-websocket-protocol'];
  if (typeof protocols === 'string') {
    for (const protocol of protocols.split(',')) {
      const entry = protocol.trim();
      if (entry.startsWith(TOKEN_SUBPROTOCOL_PREFIX) && entry.length > TOKEN_SUBPROTOCOL_PREFIX.length) return entry.slice(TOKEN_SUBPROTOCOL_PREFIX.length);
    }
  }
  const query = request.query as Record<string, unknown> | undefined;
  const fromQuery = query?.token;
  return typeof fromQuery === 'string' && fromQuery.length > 0 ? fromQuery : null;
}

/** Whether a token of `permission` may make a request with `method`. HEAD counts as GET. */
export function permits(permission: Permission, method: string): boolean {
  if (permission === 'full') return true;
  const reading = method === 'GET' || method === 'HEAD';
  return permission === 'read' ? reading : !reading;
}

/** An onRequest hook: authenticates before the body is even read, so anonymous uploads cost nothing. */
export function accountAuth(registry: Registry): onRequestAsyncHookHandler {
  return async function authenticateAccount(request) {
    const token = accountTokenOf(request);
    if (token === null) {
      throw new ApiError(401, 'an account token is required (Authorization header, Account-Token header, Token header, token query parameter, or a "token.<token>" WebSocket sub-protocol)');
    }
    const identity = token.length <= MAX_TOKEN_LENGTH ? registry.authenticateAccountToken(token) : null;
    if (identity === null) throw new ApiError(401, 'the account token is invalid or expired');
    if (!permits(identity.permission, request.method)) {
      const allowed = identity.permission === 'read' ? 'only GET requests' : 'no GET requests';
      throw new ApiError(403, `this account token has "${identity.permission}" permission, which allows ${allowed}`);
    }
    request.account = identity;
  };
}
