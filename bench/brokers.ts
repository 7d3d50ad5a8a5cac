/**
 * Starting and stopping each broker under test as its own process on a random free port of
 * 127.0.0.1. A broker counts as ready when its port accepts a TCP connection; a broker that exits
 * or never opens its port within the start timeout is reported as not available, never waited on.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BROKER_NAMES = ['bucketmq', 'mosquitto', 'aedes', 'null'] as const;
/** `null` (null-broker.ts) only measures the generator's ceiling, so it runs only when asked for. */
export const DEFAULT_BROKERS: readonly BrokerName[] = ['bucketmq', 'mosquitto', 'aedes'];
export type BrokerName = (typeof BROKER_NAMES)[number];

export const HOST = '127.0.0.1';
const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const PROJECT_DIR = path.dirname(BENCH_DIR);
const MOSQUITTO_BIN = '/usr/sbin/mosquitto';
const OUTPUT_TAIL_BYTES = 4096;
const STOP_GRACE_MS = 3_000;

/**
 * Mosquitto settings beyond the listener. Defaults would make Mosquitto drop QoS 0 messages once
 * 1000 are queued for a client (max_queued_messages also caps QoS 0 for online clients in 2.0) and
 * hold QoS 1 to 20 in flight; these lift both so every broker is asked to deliver everything.
 */
export const MOSQUITTO_SETTINGS = [
  'allow_anonymous true',
  'persistence false',
  'max_inflight_messages 1000',
  'max_queued_messages 1000000',
  'log_dest stderr',
  'log_type error',
  'log_type warning',
];

/** `taskset -c LIST` prefix for a command, or nothing. */
export function pinned(cpus: string | null, command: string, args: string[]): [string, string[]] {
  return cpus === null ? [command, args] : [TASKSET_BIN, ['-c', cpus, command, ...args]];
}
const TASKSET_BIN = '/usr/bin/taskset';

/**
 * Beyond the port and data directory: bind to loopback only, a random WebSocket port (the default
 * 8083 could be taken) and no per-connection info logging on the hot path.
 */
export const BUCKETMQ_DEFAULT_ARGS = ['--host', HOST, '--http-port', '0', '--allow-anonymous', 'true', '--log-level', 'warn'];

export interface BrokerOptions {
  /** CPU list the broker is pinned to (taskset -c), or null for no pinning. */
  cpus: string | null;
  /** Extra arguments for `src/server.ts` (e.g. to enable anonymous mode). */
  bucketmqArgs: string[];
  /** Milliseconds to wait for the port to accept connections. */
  startTimeoutMs: number;
  /** Extra Node flags for the Node brokers (bucketmq, aedes), after `--import tsx` (footprint.ts loads a probe). */
  nodeArgs?: string[];
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class BrokerUnavailable extends Error {}

/** Brokers still running, killed if the bench itself exits early (Ctrl-C, a thrown error). */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export class RunningBroker {
  readonly name: BrokerName;
  readonly port: number;
  readonly #child: ChildProcess;
  readonly #tempDir: string;
  #exit: ExitInfo | null = null;
  readonly exited: Promise<ExitInfo>;
  #output = '';

  constructor(name: BrokerName, port: number, child: ChildProcess, tempDir: string) {
    this.name = name;
    this.port = port;
    this.#child = child;
    this.#tempDir = tempDir;
    const keep = (chunk: Buffer): void => {
      this.#output = (this.#output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      const settle = (exit: ExitInfo): void => {
        if (this.#exit !== null) return;
        this.#exit = exit;
        live.delete(child);
        resolve(exit);
      };
      child.once('exit', (code, signal) => settle({ code, signal }));
      // A binary that cannot be spawned emits 'error' and may never emit 'exit'.
      child.once('error', (error) => {
        keep(Buffer.from(error.message));
        settle({ code: null, signal: null });
      });
    });
    live.add(child);
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get alive(): boolean {
    return this.#exit === null;
  }

  get exitInfo(): ExitInfo | null {
    return this.#exit;
  }

  /** The last few KiB the broker printed, for crash reports. */
  get output(): string {
    return this.#output;
  }

  async stop(): Promise<void> {
    if (this.#exit === null) {
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), STOP_GRACE_MS);
      await this.exited;
      clearTimeout(timer);
    }
    rmSync(this.#tempDir, { recursive: true, force: true });
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port assigned'));
      });
    });
  });
}

function spawnBroker(name: BrokerName, port: number, tempDir: string, options: BrokerOptions): ChildProcess {
  const stdio: ['ignore', 'pipe', 'pipe'] = ['ignore', 'pipe', 'pipe'];
  switch (name) {
    case 'mosquitto': {
      const conf = path.join(tempDir, 'mosquitto.conf');
      writeFileSync(conf, [`listener ${port} ${HOST}`, ...MOSQUITTO_SETTINGS, ''].join('\n'));
      return spawn(...pinned(options.cpus, MOSQUITTO_BIN, ['-c', conf]), { stdio });
    }
    case 'aedes':
      return spawn(...pinned(options.cpus, process.execPath, ['--import', 'tsx', ...(options.nodeArgs ?? []), path.join(BENCH_DIR, 'aedes-server.ts'), '--port', String(port)]), {
        cwd: PROJECT_DIR,
        stdio,
      });
    case 'null':
      return spawn(...pinned(options.cpus, process.execPath, ['--import', 'tsx', path.join(BENCH_DIR, 'null-broker.ts'), '--port', String(port)]), {
        cwd: PROJECT_DIR,
        stdio,
      });
    case 'bucketmq': {
      const entry = path.join(PROJECT_DIR, 'src', 'server.ts');
      if (!existsSync(entry)) throw new BrokerUnavailable('src/server.ts does not exist yet');
      const args = [
        '--import', 'tsx', ...(options.nodeArgs ?? []), entry, '--mqtt-port', String(port), '--data-dir', path.join(tempDir, 'data'),
        ...BUCKETMQ_DEFAULT_ARGS, ...options.bucketmqArgs,
      ];
      return spawn(...pinned(options.cpus, process.execPath, args), { cwd: PROJECT_DIR, stdio });
    }
  }
}

/** Resolves once a TCP connection to the port succeeds; rejects if the broker exits or time runs out. */
async function waitForPort(broker: RunningBroker, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!broker.alive) break;
    const connected = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: HOST, port: broker.port });
      socket.once('connect', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => { socket.destroy(); resolve(false); });
    });
    if (connected) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const exit = broker.exitInfo;
  const why = exit !== null
    ? `exited during start (code ${exit.code ?? '-'}, signal ${exit.signal ?? '-'})`
    : `port ${broker.port} not accepting connections after ${timeoutMs} ms`;
  const tail = lastLines(broker.output, 5);
  throw new BrokerUnavailable(tail === '' ? why : `${why}: ${tail}`);
}

export async function startBroker(name: BrokerName, options: BrokerOptions): Promise<RunningBroker> {
  const port = await freePort();
  const tempDir = mkdtempSync(path.join(os.tmpdir(), `bench-${name}-`));
  let child: ChildProcess;
  try {
    child = spawnBroker(name, port, tempDir, options);
  } catch (error) {
    rmSync(tempDir, { recursive: true, force: true });
    throw error;
  }
  const broker = new RunningBroker(name, port, child, tempDir);
  try {
    await waitForPort(broker, options.startTimeoutMs);
  } catch (error) {
    await broker.stop();
    throw error;
  }
  return broker;
}

const CLOCK_TICKS_PER_SECOND = 100;

/** CPU seconds (user + system, all threads) a process has used so far, or null if it is gone. */
export function cpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15 (proc(5)).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/** Machine-wide CPU seconds since boot: busy (everything but idle and iowait) and total, over all cores. */
export function machineCpuSeconds(): { busy: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const ticks = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already inside user).
    const total = ticks.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
    return { busy: (total - idle) / CLOCK_TICKS_PER_SECOND, total: total / CLOCK_TICKS_PER_SECOND };
  } catch {
    return null;
  }
}

/** The line of a broker's output that best says why it died: the last error-looking line, else the last lines. */
export function crashReason(text: string): string {
  const lines = text.split('\n').map((line) => line.trim()).filter((line) => line !== '');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] as string;
    if (/error|exception|fatal|abort|overflow|segmentation|killed/i.test(line)) return line;
  }
  return lines.slice(-2).join(' | ');
}

export function lastLines(text: string, count: number): string {
  return text.trim().split('\n').slice(-count).join(' | ');
}
