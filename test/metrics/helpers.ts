/**
 * Helpers for the metrics, $SYS and health tests: a real server (startServer, 127.0.0.1, port 0, a
 * fresh data directory), accounts and devices made through its registry, MQTT.js clients logged in
 * with device tokens, and a strict reader of the Prometheus text format.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { loadConfig } from '../../src/config.ts';
import { startServer, type RunningServer } from '../../src/server.ts';

export const HOST = '127.0.0.1';

const dirs: string[] = [];

/** Removes the data directories made by `startTestServer` (call from `after`). */
export function removeDataDirs(): void {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export interface TestServer {
  server: RunningServer;
  http: string;
  stop(): Promise<void>;
}

export async function startTestServer(extra: string[] = []): Promise<TestServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bmq-metrics-'));
  dirs.push(dir);
  const config = loadConfig(['--host', HOST, '--mqtt-port', '0', '--http-port', '0', '--data-dir', dir, '--log-level', 'silent', ...extra], {});
  const server = await startServer(config);
  return { server, http: `http://${HOST}:${server.ports.http}`, stop: () => server.stop() };
}

export interface TestAccount {
  id: string;
  token: string;
  /** A new device of the account; resolves with its device token. */
  device(name: string): string;
}

export function createAccount(server: RunningServer, name: string): TestAccount {
  const { account, token } = server.registry.createAccount({ name });
  return { id: account.id, token, device: (deviceName) => server.registry.createDevice(account.id, { name: deviceName, type: 'immutable' }).token };
}

export function connectDevice(server: RunningServer, token: string, options: IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync({ host: HOST, port: server.ports.mqtt, username: 'Token', password: token, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000, ...options });
}

/**
 * One scrape: every sample by `name{labels}` (labels sorted), after checking every line's syntax.
 * NaN in any case: prom-client writes `Nan` (an event-loop mean before any sample), which Prometheus
 * reads with Go's case-insensitive ParseFloat.
 */
export class Scrape {
  readonly samples = new Map<string, number>();
  readonly types = new Map<string, string>();

  constructor(text: string) {
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const help = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$/.exec(line);
      if (help !== null) continue;
      const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (type !== null) {
        this.types.set(type[1]!, type[2]!);
        continue;
      }
      const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\})? (-?[0-9.]+(?:e[+-]?[0-9]+)?|[Nn]a[Nn]|\+Inf|-Inf)$/.exec(line);
      assert.ok(sample !== null, `not Prometheus text format: ${JSON.stringify(line)}`);
      const labels = [...(sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => `${m[1]}=${m[2]}`).sort();
      this.samples.set(key(sample[1]!, labels), Number(sample[3]));
    }
  }

  /** The sample's value, 0 when the series is absent (a counter that never moved). */
  value(name: string, labels: Record<string, string> = {}): number {
    return this.samples.get(key(name, Object.entries(labels).map(([k, v]) => `${k}=${v}`).sort())) ?? 0;
  }

  has(name: string, labels: Record<string, string> = {}): boolean {
    return this.samples.has(key(name, Object.entries(labels).map(([k, v]) => `${k}=${v}`).sort()));
  }
}

function key(name: string, labels: string[]): string {
  return labels.length === 0 ? name : `${name}{${labels.join(',')}}`;
}

export async function scrape(http: string, headers: Record<string, string> = {}): Promise<Scrape> {
  const response = await fetch(`${http}/metrics`, { headers });
  assert.equal(response.status, 200, await response.clone().text());
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return new Scrape(await response.text());
}
