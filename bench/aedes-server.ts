/**
 * aedes 1.x as a plain TCP broker for the benchmark: in-memory persistence and emitter (its
 * defaults), no authentication, listening on 127.0.0.1:PORT.
 *
 *   node --import tsx bench/aedes-server.ts --port 18830
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { Aedes } from 'aedes';

const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: aedes-server.ts --port PORT');
  process.exit(2);
}

const broker = await Aedes.createBroker();
const server = net.createServer(broker.handle);
server.listen(port, values.host, () => {
  console.log(`aedes listening on ${values.host}:${port}`);
});

const shutdown = (): void => {
  server.close();
  broker.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1_000).unref();
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
