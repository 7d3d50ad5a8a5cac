/**
 * Request validation. fastify's default Ajv coerces types everywhere and silently drops unknown
 * fields; for an admin API that hides client mistakes (`"params": "x"` would become `["x"]`, a
 * misspelt `retention_day` would vanish). So: bodies are validated as sent, unknown fields rejected;
 * path parameters and query strings (always text on the wire) are coerced to their declared types,
 * and a lone `?tags=a:b` becomes a one-item list.
 */
import { Ajv, type Options } from 'ajv';
import type { FastifySchemaCompiler, FastifySchema } from 'fastify';

const COMMON: Options = { useDefaults: true, removeAdditional: false, allErrors: false, allowUnionTypes: true };

const bodyAjv = new Ajv({ ...COMMON, coerceTypes: false });
const textAjv = new Ajv({ ...COMMON, coerceTypes: 'array' });

export const compileValidator: FastifySchemaCompiler<FastifySchema> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? bodyAjv : textAjv).compile(schema as object);
