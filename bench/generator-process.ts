/** The orchestrator's handle on one forked load-generator process (load-generator.ts). */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pinned } from './brokers.ts';
import type { Command, GeneratorEvent, Phase, Progress, RunCommand, SetupCommand } from './protocol.ts';

const GENERATOR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'load-generator.ts');
const STOP_GRACE_MS = 5_000;

export class GeneratorProcess {
  readonly #child: ChildProcess;
  readonly hostsPublishers: boolean;
  readonly hostsSubscribers: boolean;
  /** Latest progress of the current phase; null right after a phase starts. */
  progress: Progress | null = null;
  /** Date.now() of the last progress report: a starved generator must not look like a stalled broker. */
  progressAt = 0;
  /** Why the generator gave up (a broker closed a connection, a refused CONNACK, ...). */
  failure: string | null = null;
  #phase: Phase | null = null;
  #ready = false;
  readonly #exited: Promise<void>;
  #hasExited = false;

  /** `cpus`: CPU list to pin the process to (taskset -c), or null. */
  constructor(setup: Pick<SetupCommand, 'publishers' | 'subscribers'>, cwd: string, cpus: string | null) {
    this.hostsPublishers = setup.publishers !== null;
    this.hostsSubscribers = setup.subscribers !== null;
    // With pinning, fork runs `taskset -c CPUS node --import tsx load-generator.ts`; taskset execs
    // node in place, so the pid and the IPC channel are node's.
    const [execPath, execArgv] = pinned(cpus, process.execPath, ['--import', 'tsx']);
    this.#child = fork(GENERATOR, [], { cwd, execPath, execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#child.on('message', (event: GeneratorEvent) => this.#onEvent(event));
    this.#exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        this.#hasExited = true;
        if (this.failure === null && code !== 0) this.failure = `load generator exited (code ${code ?? '-'}, signal ${signal ?? '-'})`;
        resolve();
      });
    });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Sends the setup command; resolves when every connection is up (and subscribed), rejects on failure. */
  setup(command: SetupCommand): Promise<void> {
    this.#send(command);
    return new Promise((resolve, reject) => {
      const check = setInterval(() => {
        if (this.#ready) {
          clearInterval(check);
          resolve();
        } else if (this.failure !== null || this.#hasExited) {
          clearInterval(check);
          reject(new Error(this.failure ?? 'load generator exited during setup'));
        }
      }, 20);
    });
  }

  run(command: RunCommand): void {
    this.#phase = command.phase;
    this.progress = null;
    this.#send(command);
  }

  async stop(): Promise<void> {
    if (this.#hasExited) return;
    this.#send({ type: 'stop' });
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), STOP_GRACE_MS);
    await this.#exited;
    clearTimeout(timer);
  }

  #send(command: Command): void {
    if (this.#child.connected) this.#child.send(command);
  }

  #onEvent(event: GeneratorEvent): void {
    switch (event.type) {
      case 'ready':
        this.#ready = true;
        break;
      case 'failed':
        this.failure ??= event.message;
        break;
      case 'progress':
        if (event.phase === this.#phase) {
          this.progress = event;
          this.progressAt = Date.now();
        }
        break;
      case 'closed':
        break;
    }
  }
}
