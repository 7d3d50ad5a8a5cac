/**
 * Entry of the sandbox child process (see process-link.ts): runs the engine on requests read from
 * stdin and writes outcomes to stdout (pipe-frames.ts), gathered per event-loop turn. Exits with
 * its parent.
 */
import { ParserEngine, type PendingMessage } from './engine.ts';
import { LineReader, lineFields } from './pipe-frames.ts';
import { preludeSource } from './prelude.ts';
import { READY } from './process-link.ts';
import type { SandboxOptions } from './types.ts';

const engine = new ParserEngine(JSON.parse(process.argv[2] ?? '{}') as SandboxOptions);
/** Keys by slot (K lines), and the latest code and device per slot; the parent sends each only when it changes. */
const keys: string[] = [];
const codes: Array<string | undefined> = [];
const devices: Array<string | undefined> = [];
let results: string[] = [];
let flushQueued = false;

/** One request in the engine; settles by writing its result line. */
class Job implements PendingMessage {
  readonly id: number;
  readonly code: string;
  readonly device: string;
  readonly wire: string;

  constructor(id: number, code: string, device: string, wire: string) {
    this.id = id;
    this.code = code;
    this.device = device;
    this.wire = wire;
  }

  resolve(outcome: string): void {
    reply(`O\t${this.id}\t${outcome}`);
  }

  reject(error: unknown): void {
    reply(`E\t${this.id}\t${JSON.stringify(error instanceof Error ? error.message : String(error))}`);
  }
}

function receive(line: string): void {
  switch (line[0]) {
    case 'P': {
      // P <id> <slot> <wire>: split by hand, no array per message.
      const tab1 = line.indexOf('\t', 2);
      const tab2 = tab1 === -1 ? -1 : line.indexOf('\t', tab1 + 1);
      if (tab2 === -1) return;
      const id = Number(line.slice(2, tab1));
      const slot = Number(line.slice(tab1 + 1, tab2));
      const key = keys[slot];
      const code = codes[slot];
      const device = devices[slot];
      if (key === undefined || code === undefined || device === undefined) reply(`E\t${id}\t${JSON.stringify(`no parser code or device for key ${key ?? `#${slot}`}`)}`);
      else engine.submit(key, new Job(id, code, device, line.slice(tab2 + 1)));
      return;
    }
    case 'K': {
      const fields = lineFields(line, 2);
      if (fields !== undefined) keys[Number(fields[0])] = JSON.parse(fields[1] as string) as string;
      return;
    }
    case 'C': {
      const fields = lineFields(line, 2);
      if (fields !== undefined) codes[Number(fields[0])] = JSON.parse(fields[1] as string) as string;
      return;
    }
    case 'D': {
      const fields = lineFields(line, 2);
      if (fields !== undefined) devices[Number(fields[0])] = fields[1] as string;
      return;
    }
    case 'I': {
      const slot = Number(line.slice(2));
      const key = keys[slot];
      codes[slot] = undefined;
      devices[slot] = undefined;
      if (key !== undefined) engine.invalidate(key);
      return;
    }
  }
}

function reply(line: string): void {
  results.push(line);
  if (flushQueued) return;
  flushQueued = true;
  setImmediate(() => {
    flushQueued = false;
    const text = `${results.join('\n')}\nS\t${JSON.stringify(engine.stats)}\n`;
    results = [];
    process.stdout.write(text);
  });
}

function exit(): void {
  engine.dispose();
  process.exit(0);
}

if (process.send === undefined) throw new Error('process-host.ts runs as a child of ParserSandbox');
const lines = new LineReader();
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => {
  for (const line of lines.push(chunk)) receive(line);
});
process.stdin.on('end', exit);
process.on('disconnect', exit);

// Build the prelude before saying ready, so the first message does not wait for esbuild.
await preludeSource();
process.send(READY);
