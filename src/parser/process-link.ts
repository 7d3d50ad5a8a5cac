/**
 * One child process running the sandbox engine (process-host.ts), and the messages it exchanges
 * with its parent over the IPC channel. The child gets `--no-node-snapshot`, which isolated-vm asks
 * for on Node 20+, and the tsx loader, since the engine is TypeScript run as it is.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { SandboxOptions, SandboxStats } from './types.ts';

export interface WireRequest {
  id: number;
  key: string;
  /** The message as `wireMessage` wrote it. */
  wire: string;
  /** Present when the child may not know this key's current code yet. */
  code?: string;
}

export type ToChild = { t: 'parse'; requests: WireRequest[] } | { t: 'invalidate'; key: string };

/** `outcome` is the driver's text for it, unparsed (replies.ts `decodeOutcomeText` checks it here). */
export type WireResult = { id: number; outcome: string } | { id: number; error: string };

export type FromChild = { t: 'ready' } | { t: 'results'; results: WireResult[]; stats: SandboxStats };

export interface ProcessEvents {
  onResults(results: WireResult[], stats: SandboxStats): void;
  /** The child is gone; `ready` tells whether it had started, `detail` is the end of its stderr. */
  onExit(ready: boolean, detail: string): void;
}

const HOST_ENTRY = fileURLToPath(new URL('./process-host.ts', import.meta.url));
const TSX_LOADER = import.meta.resolve('tsx');
const STDERR_TAIL = 4096;

export class ParserProcess {
  #child: ChildProcess;
  #events: ProcessEvents;
  #ready = false;
  #exited = false;
  #stderr = '';

  constructor(options: Required<SandboxOptions>, events: ProcessEvents) {
    this.#events = events;
    this.#child = fork(HOST_ENTRY, [JSON.stringify(options)], {
      execArgv: ['--no-node-snapshot', '--import', TSX_LOADER],
      // Strings cross V8's serializer as they are; JSON would escape every quote of the wire text.
      serialization: 'advanced',
      // stderr is kept, not shown: a V8 out-of-memory report caused by a script is no news for the
      // operator, but the tail explains a child that failed to start.
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: childEnv(),
    });
    this.#child.stderr?.setEncoding('utf8');
    this.#child.stderr?.on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-STDERR_TAIL);
    });
    // Only the IPC channel, and only while requests are out, may keep the parent alive.
    (this.#child.stderr as { unref?: () => void } | null)?.unref?.();
    this.#child.on('message', (message: FromChild) => this.#receive(message));
    this.#child.on('error', () => this.#exit());
    this.#child.on('exit', () => this.#exit());
    this.setActive(false);
  }

  get ready(): boolean {
    return this.#ready;
  }

  send(message: ToChild): void {
    if (this.#exited) return;
    try {
      this.#child.send(message);
    } catch {
      // The channel closed under us; the exit event follows and settles the requests.
    }
  }

  /** Keeps the parent process alive while requests are out, and lets it exit when idle. */
  setActive(active: boolean): void {
    if (this.#exited) return;
    if (active) {
      this.#child.ref();
      this.#child.channel?.ref();
    } else {
      this.#child.unref();
      this.#child.channel?.unref();
    }
  }

  kill(): void {
    if (this.#exited) return;
    this.#child.kill('SIGKILL');
  }

  #receive(message: FromChild): void {
    if (message.t === 'ready') this.#ready = true;
    else this.#events.onResults(message.results, message.stats);
  }

  #exit(): void {
    if (this.#exited) return;
    this.#exited = true;
    this.#events.onExit(this.#ready, this.#stderr.trim());
  }
}

/** The parent's environment without what would change how the child's Node starts or behaves. */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  // Flags are set above; the parent's (e.g. a second tsx registration) must not stack on them.
  delete env.NODE_OPTIONS;
  // Set by `node --test` for its own children.
  delete env.NODE_TEST_CONTEXT;
  return env;
}
