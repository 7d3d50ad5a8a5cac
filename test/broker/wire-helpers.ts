/**
 * Extra helpers for the transport, bad-input and restart tests: a throw-away TLS certificate made
 * with openssl, mosquitto_pub / mosquitto_sub runners with bounded waits, and a guard that records
 * anything thrown out of the engine while a test runs.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface TestCert {
  dir: string;
  certPath: string;
  keyPath: string;
  cert: Buffer;
  key: Buffer;
  /** Deletes the temporary directory. */
  remove(): void;
}

/**
 * A self-signed certificate for 127.0.0.1, valid one day. The subjectAltName carries the IP
 * because Node (and OpenSSL clients) check an IP host against IP SANs, not the CN.
 */
export function makeTestCert(): TestCert {
  const dir = mkdtempSync(path.join(tmpdir(), 'bmq-tls-'));
  const keyPath = path.join(dir, 'key.pem');
  const certPath = path.join(dir, 'cert.pem');
  const result = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1', '-keyout', keyPath, '-out', certPath],
    { encoding: 'utf8', timeout: 30_000 },
  );
  if (result.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`openssl failed (${result.status}): ${result.stderr}`);
  }
  return {
    dir,
    certPath,
    keyPath,
    cert: readFileSync(certPath),
    key: readFileSync(keyPath),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; kills it and rejects after timeoutMs. */
export function run(command: string, args: string[], timeoutMs = 5000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Prefix of the lines mosquitto_sub prints for received messages (with -F). */
const MESSAGE_MARK = 'MSG|';

/** A running mosquitto_sub; `messages` fills as lines arrive ("topic|payload"). */
export interface MosquittoSub {
  child: ChildProcess;
  messages: Array<{ topic: string; payload: string }>;
  /** Resolves when `n` messages arrived; rejects after timeoutMs. */
  waitFor(n: number, timeoutMs?: number): Promise<Array<{ topic: string; payload: string }>>;
  /** Resolves when the process exits (with its code); kills it and rejects after timeoutMs. */
  exited(timeoutMs?: number): Promise<number | null>;
  stop(): void;
  output(): string;
}

/**
 * Starts mosquitto_sub with debug output and resolves once its SUBACK arrived, so publishes made
 * afterwards are sure to reach it. `args` are extra arguments (-p, -V, --cafile, -t ...).
 */
export function startMosquittoSub(args: string[], timeoutMs = 5000): Promise<MosquittoSub> {
  // stdbuf: mosquitto_sub block-buffers its debug lines when stdout is a pipe.
  const child = spawn('stdbuf', ['-oL', 'mosquitto_sub', '-d', '-F', `${MESSAGE_MARK}%t|%p`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const messages: Array<{ topic: string; payload: string }> = [];
  let out = '';
  let buffered = '';
  const waiters = new Set<() => void>();
  let exitCode: number | null | undefined;
  let subscribed = false;
  child.stdout!.on('data', (d: Buffer) => {
    const text = d.toString();
    out += text;
    buffered += text;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      if (line.startsWith(MESSAGE_MARK)) {
        const rest = line.slice(MESSAGE_MARK.length);
        const bar = rest.indexOf('|');
        messages.push({ topic: rest.slice(0, bar), payload: rest.slice(bar + 1) });
      } else if (line.includes('SUBACK')) {
        subscribed = true;
      }
    }
    for (const w of [...waiters]) w();
  });
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  // 'close', not 'exit': it fires after the last stdout bytes were read.
  child.on('close', (code) => {
    exitCode = code;
    for (const w of [...waiters]) w();
  });
  child.on('error', () => {
    exitCode = -1;
    for (const w of [...waiters]) w();
  });
  const until = (ready: () => boolean, what: string, ms: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (ready()) {
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        } else if (exitCode !== undefined && !ready()) {
          clearTimeout(timer);
          waiters.delete(check);
          reject(new Error(`mosquitto_sub exited (${exitCode}) before ${what}; output:\n${out}`));
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}; output:\n${out}`));
      }, ms);
      waiters.add(check);
      check();
    });
  const sub: MosquittoSub = {
    child,
    messages,
    waitFor: async (n, ms = 5000) => {
      await until(() => messages.length >= n, `${n} messages`, ms);
      return messages.slice(0, n);
    },
    exited: async (ms = 5000) => {
      try {
        await new Promise<void>((resolve, reject) => {
          const check = (): void => {
            if (exitCode === undefined) return;
            clearTimeout(timer);
            waiters.delete(check);
            resolve();
          };
          const timer = setTimeout(() => {
            waiters.delete(check);
            reject(new Error(`mosquitto_sub still running after ${ms} ms; output:\n${out}`));
          }, ms);
          waiters.add(check);
          check();
        });
      } catch (err) {
        child.kill('SIGKILL');
        throw err;
      }
      return exitCode ?? null;
    },
    stop: () => {
      if (exitCode === undefined) child.kill('SIGKILL');
    },
    output: () => out,
  };
  return until(() => subscribed, 'SUBACK', timeoutMs).then(
    () => sub,
    (err: unknown) => {
      sub.stop();
      throw err;
    },
  );
}

/**
 * Records uncaught exceptions and unhandled rejections while installed: the engine must never
 * throw out of itself, whatever a client sends.
 */
export class CrashGuard {
  readonly errors: unknown[] = [];
  readonly #onError = (err: unknown): void => {
    this.errors.push(err);
  };

  install(): this {
    process.on('uncaughtException', this.#onError);
    process.on('unhandledRejection', this.#onError);
    return this;
  }

  uninstall(): void {
    process.off('uncaughtException', this.#onError);
    process.off('unhandledRejection', this.#onError);
  }
}

/** Polls `predicate` every 10 ms until true; rejects after timeoutMs with `what`. */
export async function waitUntil(predicate: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
