/**
 * Entry of the sandbox child process (see process-link.ts): runs the engine on requests from the
 * parent and sends outcomes back, gathered per event-loop turn. Exits with its parent.
 */
import { ParserEngine } from './engine.ts';
import { preludeSource } from './prelude.ts';
import type { FromChild, ToChild, WireRequest, WireResult } from './process-link.ts';
import type { SandboxOptions } from './types.ts';

const send = parentChannel();

const engine = new ParserEngine(JSON.parse(process.argv[2] ?? '{}') as SandboxOptions);
/** The latest code per key; the parent sends it only when it changes. */
const codes = new Map<string, string>();
let results: WireResult[] = [];
let flushQueued = false;

process.on('message', (message: ToChild) => {
  if (message.t === 'invalidate') {
    codes.delete(message.key);
    engine.invalidate(message.key);
    return;
  }
  for (const request of message.requests) run(request);
});
process.on('disconnect', () => {
  engine.dispose();
  process.exit(0);
});

function run(request: WireRequest): void {
  if (request.code !== undefined) codes.set(request.key, request.code);
  const code = codes.get(request.key);
  if (code === undefined) {
    reply({ id: request.id, error: `no parser code for key ${request.key}` });
    return;
  }
  engine.parseWireText(request.key, code, request.wire).then(
    (outcome) => reply({ id: request.id, outcome }),
    (error: unknown) => reply({ id: request.id, error: error instanceof Error ? error.message : String(error) }),
  );
}

function reply(result: WireResult): void {
  results.push(result);
  if (flushQueued) return;
  flushQueued = true;
  setImmediate(() => {
    flushQueued = false;
    const message: FromChild = { t: 'results', results, stats: engine.stats };
    results = [];
    send(message);
  });
}

function parentChannel(): (message: FromChild) => void {
  const channel = process.send?.bind(process);
  if (channel === undefined) throw new Error('process-host.ts runs as a child of ParserSandbox');
  return (message) => {
    channel(message);
  };
}

// Build the prelude before saying ready, so the first message does not wait for esbuild.
await preludeSource();
send({ t: 'ready' });
