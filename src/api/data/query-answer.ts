/** The `result` of a data query in the hosted service's shape (SPEC §8), shared by the device and admin routes. */
import type { FastifyReply } from 'fastify';
import type { QueryResult } from '../../data/bucket-store.ts';
import { toRecordJson, type RecordJson } from '../../data/record.ts';

export interface AggregatePointJson {
  variable: string;
  time: string;
  value: number;
}

export type QueryAnswer = RecordJson[] | number | AggregatePointJson[];

/** Records for plain, `last_*`, `first_*`, min and max queries; a bare number for count, avg, sum; points for aggregate. */
export function answerOf(result: QueryResult): QueryAnswer {
  switch (result.kind) {
    case 'records':
      return result.records.map(toRecordJson);
    case 'number':
      return result.value;
    case 'aggregate':
      return result.points.map((p) => ({ variable: p.variable, time: new Date(p.time).toISOString(), value: p.value }));
  }
}

/**
 * Sends `{"status": true, "result": ...}` already serialised: the response schema documents a union
 * (records | number | points), and a schema serializer would try each branch on up to 10,000 records.
 */
export function sendAnswer(reply: FastifyReply, result: QueryResult): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(JSON.stringify({ status: true, result: answerOf(result) }));
}
