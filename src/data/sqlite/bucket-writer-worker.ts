import { parentPort, workerData } from 'node:worker_threads';
import { openDatabase } from '../../storage/sqlite-database.ts';
import { BucketWrites, type WriteRequest } from './bucket-writes.ts';
import type { WriterReply } from './bucket-writer.ts';

/**
 * The bucket writer thread (bucket-writer.ts): its own connection to the bucket database, applying
 * requests one at a time in arrival order. It owns no state beyond the connection.
 */
const port = parentPort;
if (port === null) throw new Error('bucket-writer-worker.ts runs as a worker thread');
const db = openDatabase((workerData as { path: string }).path);
const writes = new BucketWrites(db);

port.on('message', (message: { id: number; request: WriteRequest } | 'close') => {
  if (message === 'close') {
    db.close();
    port.close();
    return;
  }
  let reply: WriterReply;
  try {
    reply = { id: message.id, changes: writes.apply(message.request) };
  } catch (error) {
    const e = error as { message?: unknown; code?: unknown };
    reply = { id: message.id, error: String(e.message ?? error), code: typeof e.code === 'string' ? e.code : undefined };
  }
  port.postMessage(reply);
});
