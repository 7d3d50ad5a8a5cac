/**
 * The client side of the footprint bench (footprint.ts) and of heap-breakdown.ts: a child process that
 * opens many idle MQTT 3.1.1 connections on raw sockets and holds them until told to let go.
 *
 * Each connection: TCP connect from one of the given 127.0.0.x source addresses (so the ephemeral
 * ports of one address cannot run out), one pre-encoded CONNECT, the CONNACK, then optionally one
 * SUBSCRIBE and its SUBACK, then silence (or DISCONNECT, for offline sessions). At most `window`
 * connections are between TCP connect and the end of their handshake at any time; each one that
 * finishes starts the next. Times are CLOCK_MONOTONIC (process.hrtime), which every process shares,
 * so the parent can combine the spans of several children.
 *
 * The child exits on its own when the parent goes away or after `deadlineMs`, so a crashed bench
 * never leaves sockets behind.
 */
import { fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { generate } from 'mqtt-packet';
import { PROJECT_DIR, pinned } from './brokers.ts';

const CLIENT_FILE = fileURLToPath(import.meta.url);

export interface ConnectJob {
  kind: 'connect';
  host: string;
  port: number;
  /** Connections this child opens; client ids are `${clientIdPrefix}${firstIndex + i}`. */
  count: number;
  firstIndex: number;
  clientIdPrefix: string;
  /** Source addresses, used round-robin (127.0.0.x only). */
  localAddresses: string[];
  /** Handshakes in flight at most. */
  window: number;
  /** CONNECT keepalive, seconds: long, so nothing times out while the connections sit idle. */
  keepalive: number;
  clean: boolean;
  /** When set, each connection subscribes (QoS 1) to `${subscribePrefix}${index}` (or exactly `subscribeTopic`). */
  subscribePrefix: string | null;
  subscribeTopic: string | null;
  /** Send DISCONNECT and close once the handshake is done (leaves an offline session behind). */
  disconnect: boolean;
  /** The child gives up waiting for handshakes after this many ms and reports what it has. */
  timeoutMs: number;
}

export type ClientCommand = ConnectJob | { kind: 'status' } | { kind: 'close' };

export interface ConnectReport {
  kind: 'up';
  /** Handshakes completed (CONNACK accepted, and SUBACK if asked for). */
  done: number;
  failed: number;
  /** CLOCK_MONOTONIC ms of the first TCP connect started and of the last handshake completed. */
  firstMs: number;
  lastMs: number;
  /** A few distinct failure reasons. */
  errors: string[];
}

/** Connections still open; `lost` counts those the broker closed after their handshake. */
export interface StatusReport {
  kind: 'status';
  open: number;
  lost: number;
}

export type ClientEvent = ConnectReport | StatusReport | { kind: 'closed' };

/** The child exits by itself after this long, whatever happens. */
const HARD_DEADLINE_MS = 15 * 60_000;
const MAX_ERRORS_KEPT = 5;

function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

function encodeConnect(clientId: string, keepalive: number, clean: boolean): Buffer {
  return generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean, clientId, keepalive });
}

function encodeSubscribe(topic: string): Buffer {
  return generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
}

const DISCONNECT = generate({ cmd: 'disconnect' });
const CONNACK_BYTES = 4;
const SUBACK_BYTES = 5;

function runJob(job: ConnectJob): Promise<ConnectReport> {
  // Encoded before the clock starts: the hot path only writes.
  const connects: Buffer[] = [];
  const subscribes: Array<Buffer | null> = [];
  for (let i = 0; i < job.count; i++) {
    const index = job.firstIndex + i;
    connects.push(encodeConnect(`${job.clientIdPrefix}${index}`, job.keepalive, job.clean));
    const topic = job.subscribeTopic ?? (job.subscribePrefix === null ? null : `${job.subscribePrefix}${index}`);
    subscribes.push(topic === null ? null : encodeSubscribe(topic));
  }
  const report: ConnectReport = { kind: 'up', done: 0, failed: 0, firstMs: 0, lastMs: 0, errors: [] };
  const noteError = (reason: string): void => {
    if (report.errors.length < MAX_ERRORS_KEPT && !report.errors.includes(reason)) report.errors.push(reason);
  };

  return new Promise((resolve) => {
    let next = 0;
    let inFlight = 0;
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      resolve(report);
    };
    const timer = setTimeout(() => {
      noteError(`${job.count - report.done - report.failed} handshakes unfinished after ${job.timeoutMs} ms`);
      finish();
    }, job.timeoutMs);

    const startNext = (): void => {
      while (inFlight < job.window && next < job.count && !finished) open(next++);
      if (inFlight === 0 && next >= job.count) finish();
    };

    const open = (i: number): void => {
      inFlight++;
      let state: 'connack' | 'suback' | 'up' | 'failed' = 'connack';
      let received = 0;
      const header = Buffer.alloc(SUBACK_BYTES);
      const settle = (ok: boolean, reason?: string): void => {
        if (state === 'up' || state === 'failed') return;
        state = ok ? 'up' : 'failed';
        inFlight--;
        if (ok) {
          report.done++;
          report.lastMs = nowMs();
        } else {
          report.failed++;
          if (reason !== undefined) noteError(reason);
        }
        startNext();
      };
      const socket = net.connect({ host: job.host, port: job.port, localAddress: job.localAddresses[i % job.localAddresses.length]! });
      sockets.push(socket);
      socket.setNoDelay(true);
      socket.on('connect', () => socket.write(connects[i]!));
      socket.on('data', (chunk: Buffer) => {
        if (state === 'up' || state === 'failed') return;
        // Only a CONNACK (4 bytes) and a SUBACK (5 bytes) are expected; they may arrive split.
        for (const byte of chunk) {
          header[received++] = byte;
          if (state === 'connack' && received === CONNACK_BYTES) {
            if (header[0] !== 0x20 || header[3] !== 0) {
              settle(false, `CONNACK ${header.subarray(0, CONNACK_BYTES).toString('hex')}`);
              return;
            }
            const subscribe = subscribes[i];
            if (subscribe === null || subscribe === undefined) {
              if (job.disconnect) socket.end(DISCONNECT);
              settle(true);
              return;
            }
            state = 'suback';
            received = 0;
            socket.write(subscribe);
          } else if (state === 'suback' && received === SUBACK_BYTES) {
            if (header[0] !== 0x90 || (header[4]! & 0x80) !== 0) {
              settle(false, `SUBACK ${header.toString('hex')}`);
              return;
            }
            if (job.disconnect) socket.end(DISCONNECT);
            settle(true);
            return;
          }
        }
      });
      socket.on('error', (error: NodeJS.ErrnoException) => settle(false, error.code ?? error.message));
      socket.on('close', () => {
        if (state === 'up' && !job.disconnect && !closing) lost++;
        settle(false, 'closed by the broker during the handshake');
      });
    };

    report.firstMs = nowMs();
    startNext();
  });
}

const sockets: net.Socket[] = [];
let lost = 0;
let closing = false;

function send(event: ClientEvent): void {
  process.send?.(event);
}

export const CHILD_FLAG = '--footprint-client';

if (process.argv.includes(CHILD_FLAG) && process.send !== undefined) {
  setTimeout(() => process.exit(3), HARD_DEADLINE_MS).unref();
  process.on('disconnect', () => process.exit(0));
  process.on('message', (command: ClientCommand) => {
    switch (command.kind) {
      case 'connect':
        void runJob(command).then(send);
        return;
      case 'status':
        send({ kind: 'status', open: sockets.filter((s) => !s.destroyed && s.readyState === 'open').length, lost });
        return;
      case 'close':
        closing = true;
        for (const socket of sockets) socket.destroy();
        sockets.length = 0;
        send({ kind: 'closed' });
        return;
    }
  });
}

// ---- parent side -------------------------------------------------------------------------------

export interface FleetOptions {
  /** Connections per client process at most (each socket is a file; a process may hold 20,000 here). */
  perProcess: number;
  /** CPU list for the client processes (taskset -c), or null. */
  cpus: string | null;
}

export interface FleetReport {
  done: number;
  failed: number;
  /** From the first connect started to the last handshake completed, over all processes. */
  elapsedMs: number;
  errors: string[];
}

/** Source addresses for the client sockets: 127.0.0.2 to 127.0.0.9 (all of 127/8 is loopback on Linux). */
export const LOCAL_ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7', '127.0.0.8', '127.0.0.9'];

/** Client processes that together open `count` connections, each with a share of the window. */
export class ClientFleet {
  readonly #children: ChildProcess[] = [];
  readonly #exited: Array<Promise<void>> = [];

  constructor(count: number, options: FleetOptions) {
    const processes = Math.max(1, Math.ceil(count / options.perProcess));
    const [execPath, execArgv] = pinned(options.cpus, process.execPath, ['--import', 'tsx']);
    for (let i = 0; i < processes; i++) {
      const child = fork(CLIENT_FILE, [CHILD_FLAG], { cwd: PROJECT_DIR, execPath, execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      this.#children.push(child);
      this.#exited.push(new Promise((resolve) => child.once('exit', () => resolve())));
    }
  }

  get pids(): number[] {
    return this.#children.map((child) => child.pid ?? 0);
  }

  /** Splits `job.count` and `job.window` over the processes; resolves when every process has reported. */
  async connect(job: Omit<ConnectJob, 'kind' | 'firstIndex'>): Promise<FleetReport> {
    const n = this.#children.length;
    const base = Math.floor(job.count / n);
    let firstIndex = 0;
    const reports = await Promise.all(this.#children.map((child, i) => {
      const count = base + (i < job.count % n ? 1 : 0);
      const command: ConnectJob = { ...job, kind: 'connect', count, firstIndex, window: Math.max(1, Math.round(job.window / n)) };
      firstIndex += count;
      return this.#ask<ConnectReport>(child, command, 'up');
    }));
    const firstMs = Math.min(...reports.map((r) => r.firstMs));
    const lastMs = Math.max(...reports.map((r) => r.lastMs));
    return {
      done: reports.reduce((sum, r) => sum + r.done, 0),
      failed: reports.reduce((sum, r) => sum + r.failed, 0),
      elapsedMs: lastMs - firstMs,
      errors: [...new Set(reports.flatMap((r) => r.errors))],
    };
  }

  /** Connections still open, and those the broker closed after their handshake. */
  async status(): Promise<{ open: number; lost: number }> {
    const reports = await Promise.all(this.#children.map((child) => this.#ask<StatusReport>(child, { kind: 'status' }, 'status')));
    return { open: reports.reduce((sum, r) => sum + r.open, 0), lost: reports.reduce((sum, r) => sum + r.lost, 0) };
  }

  /** Closes every connection and ends the processes. */
  async close(): Promise<void> {
    await Promise.all(this.#children.map((child) => (child.connected ? this.#ask(child, { kind: 'close' }, 'closed').catch(() => undefined) : undefined)));
    for (const child of this.#children) if (child.connected) child.disconnect();
    await Promise.all(this.#exited);
  }

  #ask<T extends ClientEvent>(child: ChildProcess, command: ClientCommand, kind: T['kind']): Promise<T> {
    return new Promise((resolve, reject) => {
      const onMessage = (event: ClientEvent): void => {
        if (event.kind !== kind) return;
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve(event as T);
      };
      const onExit = (code: number | null): void => {
        child.off('message', onMessage);
        reject(new Error(`footprint client exited (code ${code ?? '-'})`));
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.send(command);
    });
  }
}
