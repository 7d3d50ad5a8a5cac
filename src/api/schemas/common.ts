/**
 * Schema building blocks shared by the routes. Every success answer is the hosted service's envelope
 * `{"status": true, "result": ...}`; every failure `{"status": false, "message": "..."}` (SPEC §8/§9).
 * The same schemas validate requests, serialise responses and become the OpenAPI document.
 */

export const nullableString = { type: ['string', 'null'] } as const;
export const isoDate = { type: 'string', description: 'ISO-8601 date' } as const;
export const nullableIsoDate = { type: ['string', 'null'], description: 'ISO-8601 date, or null' } as const;

export const errorSchema = {
  type: 'object',
  required: ['status', 'message'],
  properties: {
    status: { type: 'boolean', enum: [false] },
    message: { type: 'string', description: 'What went wrong; names the offending field for validation errors' },
  },
} as const;

/** `{ [status]: envelope(result) }` plus the error shape for 4xx and 5xx. */
export function responses(status: number, result: object, description: string): Record<string, object> {
  return {
    [status]: {
      description,
      type: 'object',
      required: ['status', 'result'],
      properties: { status: { type: 'boolean', enum: [true] }, result },
    },
    '4xx': { description: 'Client error', ...errorSchema },
    '5xx': { description: 'Server error', ...errorSchema },
  };
}

/** The body of a successful answer. */
export function ok<T>(result: T): { status: true; result: T } {
  return { status: true, result };
}

export const removedMessage = { type: 'string', description: 'A confirmation sentence' } as const;

export function idParams(...names: string[]): object {
  return {
    type: 'object',
    required: names,
    properties: Object.fromEntries(names.map((name) => [name, { type: 'string', minLength: 1, maxLength: 64 }])),
  };
}

export const tagItem = {
  type: 'object',
  required: ['key', 'value'],
  additionalProperties: false,
  properties: {
    key: { type: 'string', minLength: 1, maxLength: 100 },
    value: { type: 'string', maxLength: 1000 },
  },
} as const;

export const tagList = { type: 'array', items: tagItem, maxItems: 1000 } as const;
