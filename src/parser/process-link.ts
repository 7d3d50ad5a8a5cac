/**
 * One child process running the sandbox engine (process-host.ts). Requests and results travel as
 * text frames over the child's stdin and stdout (pipe-frames.ts); the IPC channel only says the
 * child is ready and ties its life to the parent's. The child gets `--no-node-snapshot`, which
 * isolated-vm asks for on Node 20+, and the tsx loader, since the engine is TypeScript run as it is.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LineReader } from './pipe-frames.ts';
import type { SandboxOptions, SandboxStats } from './types.ts';

export interface WireRequest {
  readonly id: number;
  readonly key: string;
  /** The message as `wireMessage` wrote it. */
  readonly wire: string;
  readonly code: string;
  /** wire.ts `deviceText`. */
  readonly device: string;
  /** The child may not know this key's current code yet: send it first. */
  sendCode: boolean;
  /** Likewise for the device. */
  sendDevice: boolean;
}

/** The one message on the IPC channel: the engine is loaded. */
export const READY = 'ready';

export interface ProcessEvents {
  /** The driver's outcome text for request `id`, unparsed (replies.ts `decodeOutcomeText` checks it). */
  onOutcome(id: number, outcome: string): void;
  /** Request `id` failed in the engine. */
  onError(id: number, message: string): void;
  /** The child's counters, after each batch of results. */
  onStats(stats: SandboxStats): void;
  /** The child is gone; `ready` tells whether it had started, `detail` is the end of its stderr. */
  onExit(ready: boolean, detail: string): void;
}

/** The child, its IPC channel and its pipes: each keeps the parent alive unless unreferenced. */
interface Referable {
  ref(): void;
  unref(): void;
}

const HOST_ENTRY = fileURLToPath(new URL('./process-host.ts', import.meta.url));
const TSX_LOADER = import.meta.resolve('tsx');
const STDERR_TAIL = 4096;

export class ParserProcess {
  #child: ChildProcess;
  #events: ProcessEvents;
  #ready = false;
  #exited = false;
  /** The process has ended; its streams may still be delivering what it wrote. */
  #gone = false;
  #stderr = '';
  #lines = new LineReader();
  /** The number each key is known by in this child (a K line tells it once). */
  #slots = new Map<string, number>();

  constructor(options: Required<SandboxOptions>, events: ProcessEvents) {
    this.#events = events;
    this.#child = fork(HOST_ENTRY, [JSON.stringify(options)], {
      execArgv: ['--no-node-snapshot', '--import', TSX_LOADER],
      // stderr is kept, not shown: a V8 out-of-memory report caused by a script is no news for the
      // operator, but the tail explains a child that failed to start.
      stdio: ['pipe', 'pipe', 'pipe', 'ipc'],
      env: childEnv(options.timezone),
    });
    const { stdin, stdout, stderr } = this.#child;
    if (stdin === null || stdout === null || stderr === null) throw new Error('parser sandbox process has no pipes');
    // A write after the child died fails here; the exit event that follows settles the requests.
    stdin.on('error', () => {});
    stdout.setEncoding('utf8');
    stdout.on('data', (chunk: string) => this.#receive(chunk));
    stderr.setEncoding('utf8');
    stderr.on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-STDERR_TAIL);
    });
    (stderr as Partial<Referable>).unref?.();
    this.#child.on('message', (message: unknown) => {
      if (message === READY) this.#ready = true;
    });
    this.#child.on('error', () => this.#exit());
    // The death is handled on 'close', not 'exit': 'close' comes after the pipes and the IPC channel
    // have delivered everything the child wrote, so results written just before a crash are not
    // rerun, and a child that said ready is never taken for one that failed to start. The streams
    // may be unreferenced while idle; they are referenced once the child is gone, so their last data
    // and 'close' still arrive.
    this.#child.on('exit', () => {
      this.#gone = true;
      for (const handle of [this.#child.stdout, this.#child.stderr, this.#child.channel]) (handle as Partial<Referable> | null | undefined)?.ref?.();
    });
    this.#child.on('close', () => this.#exit());
    this.setActive(false);
  }

  get ready(): boolean {
    return this.#ready;
  }

  /** Sends requests in one write; `code` and `device` go ahead of a request that carries them. */
  sendRequests(requests: readonly WireRequest[]): void {
    let text = '';
    for (let i = 0; i < requests.length; i++) {
      const request = requests[i]!;
      let slot = this.#slots.get(request.key);
      if (slot === undefined) {
        slot = this.#slots.size;
        this.#slots.set(request.key, slot);
        text += `K\t${slot}\t${JSON.stringify(request.key)}\n`;
      }
      if (request.sendCode) text += `C\t${slot}\t${JSON.stringify(request.code)}\n`;
      if (request.sendDevice) text += `D\t${slot}\t${request.device}\n`;
      text += `P\t${request.id}\t${slot}\t${request.wire}\n`;
    }
    this.#write(text);
  }

  invalidate(key: string): void {
    const slot = this.#slots.get(key);
    // A key this child never saw has nothing to drop.
    if (slot !== undefined) this.#write(`I\t${slot}\n`);
  }

  /** Keeps the parent process alive while requests are out, and lets it exit when idle. */
  setActive(active: boolean): void {
    if (this.#exited || this.#gone) return;
    const handles = [this.#child, this.#child.channel, this.#child.stdin, this.#child.stdout] as Array<Partial<Referable> | null | undefined>;
    for (const handle of handles) {
      if (active) handle?.ref?.();
      else handle?.unref?.();
    }
  }

  kill(): void {
    if (this.#exited) return;
    this.#child.kill('SIGKILL');
  }

  #write(text: string): void {
    if (this.#exited) return;
    this.#child.stdin?.write(text);
  }

  /** Results as the child wrote them; a line that is not a frame is ignored (the child is ours). */
  #receive(chunk: string): void {
    const events = this.#events;
    for (const line of this.#lines.push(chunk)) {
      const tag = line[0];
      if (tag === 'S') {
        events.onStats(JSON.parse(line.slice(2)) as SandboxStats);
        continue;
      }
      // O/E <id> <text>: split by hand, no array per line.
      const tab = line.indexOf('\t', 2);
      if (tab === -1) continue;
      const id = Number(line.slice(2, tab));
      if (tag === 'O') events.onOutcome(id, line.slice(tab + 1));
      else if (tag === 'E') events.onError(id, JSON.parse(line.slice(tab + 1)) as string);
    }
  }

  #exit(): void {
    if (this.#exited) return;
    this.#exited = true;
    this.#events.onExit(this.#ready, this.#stderr.trim());
  }
}

/**
 * The parent's environment without what would change how the child's Node starts or behaves, and
 * with the sandbox's own time zone: scripts' clocks follow the configured zone (SPEC §4: UTC by
 * default), not the server's.
 */
function childEnv(timezone: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TZ: timezone };
  // Flags are set above; the parent's (e.g. a second tsx registration) must not stack on them.
  delete env.NODE_OPTIONS;
  // Set by `node --test` for its own children.
  delete env.NODE_TEST_CONTEXT;
  return env;
}
