/**
 * Admin API test fixture: an in-memory registry with a settable clock, one account and its `full`
 * token, and the app (not listening; tests use inject unless they need a socket).
 */
import type { FastifyInstance } from 'fastify';
import { buildApiServer, type ApiServerOptions } from '../../src/api/app.ts';
import { openDatabase, type Database } from '../../src/storage/sqlite-database.ts';
import { Registry } from '../../src/tenancy/registry.ts';

export interface Clock {
  now: number;
}

export interface ApiFixture {
  db: Database;
  registry: Registry;
  clock: Clock;
  app: FastifyInstance;
  accountId: string;
  /** The account's `full` token. */
  token: string;
  call(method: string, url: string, options?: CallOptions): Promise<Answer>;
  close(): Promise<void>;
}

export interface CallOptions {
  /** Sent as the raw Authorization header; default the fixture's token; null sends none. */
  token?: string | null;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface Answer {
  status: number;
  // Tests index into answers freely; a wrong shape fails the assertion that reads it.
  body: any;
}

export function apiFixture(options: Partial<ApiServerOptions> = {}): ApiFixture {
  const db = openDatabase(':memory:');
  const clock: Clock = { now: Date.parse('2025-01-01T00:00:00Z') };
  const registry = new Registry(db, { now: () => clock.now });
  registry.installPlans();
  const { account, token } = registry.createAccount({ name: 'acme' });
  const app = buildApiServer({ registry, ...options });
  return {
    db,
    registry,
    clock,
    app,
    accountId: account.id,
    token,
    call: (method, url, callOptions = {}) => call(app, token, method, url, callOptions),
    close: async () => {
      await app.close();
      db.close();
    },
  };
}

export async function call(app: FastifyInstance, defaultToken: string, method: string, url: string, options: CallOptions = {}): Promise<Answer> {
  const token = options.token === undefined ? defaultToken : options.token;
  const headers: Record<string, string> = { ...(token === null ? {} : { authorization: token }), ...options.headers };
  const response = await app.inject({
    method: method as 'GET',
    url,
    headers,
    ...(options.body === undefined ? {} : { payload: options.body as object }),
  });
  let body: unknown = response.body;
  try {
    body = JSON.parse(response.body);
  } catch {
    // Left as text: the test asserting on it will say what came back.
  }
  return { status: response.statusCode, body };
}

/** Asserts the error shape of SPEC §8 and returns the message. */
export function errorMessage(answer: Answer): string {
  if (answer.body?.status !== false || typeof answer.body?.message !== 'string' || Object.keys(answer.body).length !== 2) {
    throw new Error(`not an error answer: ${answer.status} ${JSON.stringify(answer.body)}`);
  }
  return answer.body.message as string;
}
