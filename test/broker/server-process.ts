/**
 * The real server (`node --import tsx src/server.ts`) as a child process on a data directory, for
 * restart and crash tests: started on free ports (127.0.0.1, port 0), stopped with a signal.
 * Call `after(cleanupServers)` in each test file that uses it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HOST } from './helpers.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const running = new Set<ServerProcess>();
const dirs: string[] = [];

/** SIGKILLs every server still running and removes the temporary data directories. */
export function cleanupServers(): void {
  for (const server of running) server.child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}

export function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'bmq-restart-'));
  dirs.push(dir);
  return dir;
}

export interface ServerProcess {
  child: ChildProcess;
  port: number;
  output(): string;
  /** Sends `signal` and resolves with the exit code (null when killed by a signal). */
  stop(signal: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts the server in anonymous mode on a free port and resolves once it logged "ready". */
export function startServer(dataDir: string, timeoutMs = 15_000): Promise<ServerProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/server.ts', '--mqtt-port', '0', '--http-port', '0', '--allow-anonymous', 'true', '--data-dir', dataDir, '--host', HOST, '--log-format', 'text', '--log-level', 'info'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exitWaiters: Array<() => void> = [];
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  child.on('exit', (code, signal) => {
    exited = { code, signal };
    for (const w of exitWaiters) w();
  });
  const server: ServerProcess = {
    child,
    port: 0,
    output: () => out,
    stop: (signal, ms = 12_000) =>
      new Promise((resolve, reject) => {
        const done = (): void => {
          clearTimeout(timer);
          running.delete(server);
          resolve(exited!);
        };
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`server did not exit within ${ms} ms after ${signal}; output:\n${out}`));
        }, ms);
        if (exited !== null) return done();
        exitWaiters.push(done);
        child.kill(signal);
      }),
  };
  running.add(server);
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server not ready within ${timeoutMs} ms; output:\n${out}`));
    }, timeoutMs);
    const check = (): void => {
      const port = /mqtt listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (port !== null && out.includes('bucketmq ready')) {
        clearTimeout(deadline);
        child.stdout!.off('data', check);
        server.port = Number(port[1]);
        resolve(server);
      }
    };
    child.stdout!.on('data', check);
    exitWaiters.push(() => {
      clearTimeout(deadline);
      reject(new Error(`server exited before it was ready (${JSON.stringify(exited)}); output:\n${out}`));
    });
  });
}
