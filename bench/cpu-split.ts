/**
 * Where the CPU of a measured window went, from /proc (Linux only): the whole machine, and the parts
 * of it that belong to the bench — this process's event loop, its V8 helper threads (garbage
 * collection, compilation), the threads the server started (the SQLite bucket writer), each child
 * process (the parser sandbox, the load generator) — with what is left (PostgreSQL, the kernel,
 * anything else running) as "other". Threads are told apart by when they appeared: those alive when
 * `CpuSplit` was made (before the server started) are Node's and V8's own.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** USER_HZ is 100 on Linux: one tick is 10 ms. */
const TICK_US = 10_000;

export interface CpuShares {
  machine: number;
  eventLoop: number;
  v8Threads: number;
  serverThreads: number;
  /** Per child process, by the label its pid was given. */
  children: Record<string, number>;
  other: number;
}

interface Snapshot {
  machine: number;
  threads: Map<number, number>;
  children: Map<number, number>;
}

export class CpuSplit {
  readonly #startupThreads: Set<number>;
  #from: Snapshot | null = null;

  constructor() {
    this.#startupThreads = new Set(this.#threadTicks().keys());
  }

  /** Whether /proc can be read here. */
  static available(): boolean {
    try {
      readFileSync('/proc/stat', 'utf8');
      return true;
    } catch {
      return false;
    }
  }

  start(): void {
    this.#from = this.#snapshot();
  }

  /** CPU µs spent since `start`; `label` names each child process by its pid and command line. */
  stop(label: (pid: number, command: string) => string): CpuShares | null {
    const from = this.#from;
    if (from === null) return null;
    const to = this.#snapshot();
    const shares: CpuShares = { machine: (to.machine - from.machine) * TICK_US, eventLoop: 0, v8Threads: 0, serverThreads: 0, children: {}, other: 0 };
    for (const [tid, ticks] of to.threads) {
      const used = (ticks - (from.threads.get(tid) ?? 0)) * TICK_US;
      if (tid === process.pid) shares.eventLoop += used;
      else if (this.#startupThreads.has(tid)) shares.v8Threads += used;
      else shares.serverThreads += used;
    }
    for (const [pid, ticks] of to.children) {
      const name = label(pid, commandLine(pid));
      shares.children[name] = (shares.children[name] ?? 0) + (ticks - (from.children.get(pid) ?? 0)) * TICK_US;
    }
    const ours = shares.eventLoop + shares.v8Threads + shares.serverThreads + Object.values(shares.children).reduce((a, b) => a + b, 0);
    shares.other = Math.max(0, shares.machine - ours);
    return shares;
  }

  #snapshot(): Snapshot {
    return { machine: machineTicks(), threads: this.#threadTicks(), children: childTicks() };
  }

  #threadTicks(): Map<number, number> {
    const ticks = new Map<number, number>();
    for (const tid of readdirSync('/proc/self/task')) {
      const used = statTicks(`/proc/self/task/${tid}/stat`);
      if (used !== null) ticks.set(Number(tid), used);
    }
    return ticks;
  }
}

/** Busy ticks of the whole machine (user, nice, system, irq, softirq, steal). */
function machineTicks(): number {
  const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
}

/** utime + stime of a /proc stat file, in ticks; null when it is gone. */
function statTicks(file: string): number | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  // Fields after the command name (which may hold spaces) start at ')'; utime and stime are the 12th and 13th of them.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/** Ticks of every live child process of this one, each with all its threads. */
function childTicks(): Map<number, number> {
  const ticks = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    let children: string;
    try {
      children = readFileSync(`/proc/self/task/${tid}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const pid of children.trim().split(/\s+/).filter(Boolean).map(Number)) {
      const used = statTicks(`/proc/${pid}/stat`);
      if (used !== null) ticks.set(pid, used);
    }
  }
  return ticks;
}
