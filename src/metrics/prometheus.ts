/**
 * The Prometheus view of a node (`GET /metrics`, prom-client text format). Every figure is read at
 * scrape time from the plain numbers the parts keep (broker/stats.ts, the sessions, the retained
 * store, the parser sandbox, platform-counts.ts): nothing here runs per message. The one exception
 * is the bucket commit histogram, observed once per committed batch (`observeCommit`).
 *
 * Labels stay bounded: listener × protocol version, QoS, drop cause (a fixed set), action type, limit
 * name, parser error kind. Per-account series exist only for the accounts named in
 * `--metrics-accounts` (by id or name), since an account label on every series would grow with the
 * tenants.
 *
 * Cost of a scrape: three walks over the sessions (queued, in flight, subscriptions), one COUNT on the retained store,
 * the default process metrics.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Broker } from '../broker/broker.ts';
import type { Session } from '../broker/session/session.ts';
import { dropCause, type NamespaceStats } from '../broker/stats.ts';
import type { ParserSandbox } from '../parser/sandbox.ts';
import type { PayloadParsers } from '../parser/payload-parsers.ts';
import type { Registry as AccountRegistry } from '../tenancy/registry.ts';
import { actionCounts, rateLimitHitCounts } from './platform-counts.ts';

export interface MetricsSources {
  broker: Broker;
  sandbox: ParserSandbox;
  parsers: PayloadParsers;
  /** To find the allow-listed accounts by name. */
  accounts: AccountRegistry;
  /** Accounts (id or name) that get per-account series. */
  accountAllowList: readonly string[];
}

const PROTOCOL_NAMES: Record<string, string> = { '3': '3.1', '4': '3.1.1', '5': '5.0' };
const QOS = ['0', '1', '2'] as const;

export class Metrics {
  readonly registry = new Registry();
  readonly #commitSeconds: Histogram;
  #recordsStored = 0;

  constructor(sources: MetricsSources) {
    const { broker, sandbox, parsers } = sources;
    const registers = [this.registry];
    const all = (): NamespaceStats[] => [...broker.stats.all()];
    collectDefaultMetrics({ register: this.registry });

    new Gauge({
      name: 'bucketmq_connections',
      help: 'Connected MQTT clients, by listener (tcp, tls, ws, wss) and protocol version',
      labelNames: ['listener', 'protocol'],
      registers,
      collect() {
        this.reset();
        for (const [key, count] of broker.stats.connections()) {
          const [listener, version] = key.split('/') as [string, string];
          this.set({ listener, protocol: PROTOCOL_NAMES[version] ?? version }, count);
        }
      },
    });
    counter(registers, 'bucketmq_messages_received_total', 'PUBLISH packets received from clients, by QoS', ['qos'], (set) => {
      const stats = all();
      for (let q = 0; q < 3; q++) set({ qos: QOS[q]! }, sum(stats, (s) => s.publishReceived[q]!));
    });
    counter(registers, 'bucketmq_messages_sent_total', 'PUBLISH packets sent to clients, by QoS', ['qos'], (set) => {
      const stats = all();
      for (let q = 0; q < 3; q++) set({ qos: QOS[q]! }, sum(stats, (s) => s.publishSent[q]!));
    });
    counter(registers, 'bucketmq_bytes_received_total', 'MQTT bytes received from clients (every packet type)', [], (set) => set({}, sum(all(), (s) => s.bytesReceived)));
    counter(registers, 'bucketmq_bytes_sent_total', 'MQTT bytes sent to clients (every packet type)', [], (set) => set({}, sum(all(), (s) => s.bytesSent)));
    counter(registers, 'bucketmq_packets_received_total', 'MQTT packets received, every type', [], (set) => set({}, sum(all(), (s) => s.packetsReceived)));
    counter(registers, 'bucketmq_packets_sent_total', 'MQTT packets sent, every type', [], (set) => set({}, sum(all(), (s) => s.packetsSent)));
    counter(registers, 'bucketmq_messages_dropped_total', 'Messages not delivered to a subscriber, and publishes refused, by cause', ['cause'], (set) => {
      const byCause = new Map<string, number>();
      for (const stats of all()) {
        for (const [reason, count] of stats.dropped) {
          const cause = dropCause(reason);
          byCause.set(cause, (byCause.get(cause) ?? 0) + count);
        }
      }
      for (const [cause, count] of byCause) set({ cause }, count);
    });
    const sessionsGauge = (name: string, help: string, read: (session: Session) => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          let n = 0;
          for (const session of broker.sessions.values()) n += read(session);
          this.set(n);
        },
      });
    };
    sessionsGauge('bucketmq_messages_queued', 'Messages waiting in sessions for their client (not yet sent)', (s) => s.queue.length);
    sessionsGauge('bucketmq_messages_inflight', 'QoS 1/2 messages sent to clients and not yet acknowledged', (s) => s.inflight.size);
    sessionsGauge('bucketmq_subscriptions', 'Subscriptions of all sessions', (s) => s.subscriptions.size);
    new Gauge({ name: 'bucketmq_sessions', help: 'MQTT sessions, connected or not', registers, collect() { this.set(broker.sessionCount); } });
    new Gauge({ name: 'bucketmq_retained_messages', help: 'Retained messages in the store (all accounts)', registers, collect() { this.set(broker.retainer.count()); } });

    this.#commitSeconds = new Histogram({
      name: 'bucketmq_bucket_commit_seconds',
      help: 'Time to commit one group-commit batch of records to the bucket store',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    counter(registers, 'bucketmq_records_stored_total', 'Records committed to buckets', [], (set) => set({}, this.#recordsStored));

    counter(registers, 'bucketmq_parser_runs_total', 'Messages a payload parser ran on', [], (set) => set({}, sandbox.stats.messages));
    counter(registers, 'bucketmq_parser_run_seconds_total', 'Seconds from hand-off to outcome, summed over parser runs (rate / runs = mean run time)', [], (set) => set({}, sandbox.stats.runSeconds));
    counter(registers, 'bucketmq_parser_errors_total', 'Messages a payload parser did not turn into records, by kind (syntax, runtime, timeout, memory, result, validation, busy, sandbox)', ['kind'], (set) => {
      for (const [kind, count] of parsers.errors) set({ kind }, count);
    });
    counter(registers, 'bucketmq_action_runs_total', 'Action runs, by action type', ['type'], (set) => {
      for (const [type, counts] of actionCounts()) set({ type }, counts.runs);
    });
    counter(registers, 'bucketmq_action_failures_total', 'Action runs that failed, by action type', ['type'], (set) => {
      for (const [type, counts] of actionCounts()) set({ type }, counts.failures);
    });
    counter(registers, 'bucketmq_rate_limit_hits_total', 'Requests and messages refused by a rate limit, by limit', ['limit'], (set) => {
      for (const [limit, count] of rateLimitHitCounts()) set({ limit }, count);
    });
    if (sources.accountAllowList.length > 0) accountSeries(registers, sources);
  }

  /** A bucket store's CommitObserver (group-commit.ts): once per committed batch. */
  observeCommit(seconds: number, records: number): void {
    this.#commitSeconds.observe(seconds);
    this.#recordsStored += records;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** Per-account series, for the allow-listed accounts only (see the module comment). */
function accountSeries(registers: Registry[], sources: MetricsSources): void {
  const { broker, accounts, accountAllowList } = sources;
  const listed = (): Array<[string, NamespaceStats]> => {
    const out: Array<[string, NamespaceStats]> = [];
    for (const entry of accountAllowList) {
      const account = accounts.account(entry) ?? accounts.accountByName(entry);
      if (account !== null) out.push([entry, broker.stats.namespace(account.id)]);
    }
    return out;
  };
  new Gauge({
    name: 'bucketmq_account_connections',
    help: 'Connected MQTT clients of an allow-listed account (--metrics-accounts)',
    labelNames: ['account'],
    registers,
    collect() {
      this.reset();
      for (const [account, stats] of listed()) this.set({ account }, stats.connected);
    },
  });
  const perAccount = (name: string, help: string, read: (s: NamespaceStats) => number): void =>
    counter(registers, name, `${help}, for an allow-listed account (--metrics-accounts)`, ['account'], (set) => {
      for (const [account, stats] of listed()) set({ account }, read(stats));
    });
  perAccount('bucketmq_account_messages_received_total', 'PUBLISH packets received', (s) => s.publishReceived[0]! + s.publishReceived[1]! + s.publishReceived[2]!);
  perAccount('bucketmq_account_messages_sent_total', 'PUBLISH packets sent', (s) => s.publishSent[0]! + s.publishSent[1]! + s.publishSent[2]!);
  perAccount('bucketmq_account_bytes_received_total', 'MQTT bytes received', (s) => s.bytesReceived);
  perAccount('bucketmq_account_bytes_sent_total', 'MQTT bytes sent', (s) => s.bytesSent);
  perAccount('bucketmq_account_messages_dropped_total', 'Messages dropped or refused', (s) => s.droppedTotal());
}

type SetValue<L extends string> = (labels: Partial<Record<L, string>>, value: number) => void;

/**
 * A counter whose value lives elsewhere as a running total: at each scrape it is reset and set to
 * that total (prom-client counters only go up, so `inc` from zero is how to set one).
 */
function counter<L extends string>(registers: Registry[], name: string, help: string, labelNames: readonly L[], read: (set: SetValue<L>) => void): void {
  new Counter<L>({
    name,
    help,
    labelNames,
    registers,
    collect() {
      this.reset();
      read((labels, value) => this.inc(labels, value));
    },
  });
}

function sum(stats: NamespaceStats[], read: (s: NamespaceStats) => number): number {
  let n = 0;
  for (const s of stats) n += read(s);
  return n;
}
