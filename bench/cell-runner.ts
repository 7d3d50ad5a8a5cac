/**
 * One cell of the table: one scenario against one freshly started broker. A fresh broker per cell
 * keeps rows independent (no leftover sessions or memory from the previous row) and means a crash
 * costs one cell, not the rest of the run.
 *
 * Timing: from the first PUBLISH written (publisher process) to the last delivery received
 * (subscriber process) — and for QoS 1 also the last PUBACK — using the machine-wide monotonic clock.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuSeconds, crashReason, machineCpuSeconds, HOST, PROJECT_DIR, startBroker, type BrokerName, type BrokerOptions, type RunningBroker } from './brokers.ts';
import { GeneratorProcess } from './generator-process.ts';
import type { Credentials } from './packets.ts';
import type { Phase, PublisherSpec, SetupCommand, SubscriberSpec } from './protocol.ts';
import { expectedDeliveries, type Scenario } from './scenarios.ts';

/** How the load generator is laid out in processes. */
export type GeneratorLayout = 'single' | 'split';

export interface CellOptions {
  broker: BrokerOptions;
  layout: GeneratorLayout;
  /** CPU list the generator processes are pinned to, or null. */
  generatorCpus: string | null;
  /**
   * See SetupCommand.napMs, for a process that hosts only subscribers. 'auto': 1 ms, or 10 ms with
   * 100 or more subscriber connections (each socket then sees a packet only every few ms, so a
   * short nap would still cost one read per packet).
   */
  subscriberNapMs: number | 'auto';
  /** See SetupCommand.napMs, for a process that hosts only QoS 1 publishers. */
  publisherNapMs: number;
  /** Whole cell (setup + warm-up + measurement), milliseconds. */
  timeoutMs: number;
  /** After publishing finished, this long without a new delivery means the rest was lost. */
  stallMs: number;
  payloadBytes: number;
  credentials: Credentials;
}

export type CellStatus = 'ok' | 'lost' | 'timeout' | 'crashed' | 'error' | 'n/a';

export interface CellResult {
  broker: BrokerName;
  scenario: string;
  status: CellStatus;
  /** Deliveries per second over the measured window (partial for timeout/crashed). */
  rate: number | null;
  expected: number;
  delivered: number;
  published: number;
  /** QoS 1: PUBACKs the publisher received. */
  acked: number;
  elapsedMs: number | null;
  /** CPU used during measurement, percent of one core. */
  brokerCpu: number | null;
  /** Per generator process, percent of one core. */
  generatorCpu: number[];
  /** Whole machine, percent of all cores busy. */
  machineBusy: number | null;
  /**
   * CPU the machine spent outside the broker and the generators during measurement, % of one core:
   * other programs (or kernel threads). Large values mean the figure was disturbed.
   */
  otherCpu: number | null;
  /** Other programs took more than DISTURBED_OTHER_CPU % of a core during measurement. */
  disturbed: boolean;
  /** The generator used nearly all the CPU it had: the figure may be the generator's limit. */
  generatorBound: boolean;
  /** Runs of this cell, the reported one included. */
  attempts: number;
  /** The broker died after the measurement, while the clients disconnected. */
  crashedAfterRun: boolean;
  note: string;
}

type PhaseOutcome = 'complete' | 'stalled' | 'timeout' | 'crashed' | 'failed';

const POLL_MS = 25;
/** % of one core used by other programs above which a measurement counts as disturbed. */
export const DISTURBED_OTHER_CPU = 25;
/** % of the generator's CPU budget (one core when pinned, else per process) that counts as saturated. */
const GENERATOR_BOUND_CPU = 90;

export async function runCell(name: BrokerName, scenario: Scenario, options: CellOptions): Promise<CellResult> {
  const result: CellResult = {
    broker: name, scenario: scenario.id, status: 'error', rate: null,
    expected: expectedDeliveries(scenario), delivered: 0, published: 0, acked: 0, elapsedMs: null,
    brokerCpu: null, generatorCpu: [], machineBusy: null, otherCpu: null, disturbed: false, generatorBound: false, attempts: 1, crashedAfterRun: false, note: '',
  };
  let broker: RunningBroker;
  try {
    broker = await startBroker(name, options.broker);
  } catch (error) {
    result.status = 'n/a';
    result.note = error instanceof Error ? error.message : String(error);
    return result;
  }
  const deadline = Date.now() + options.timeoutMs;
  const generators = layoutGenerators(scenario, options);
  try {
    for (const [index, generator] of generators.entries()) {
      const outcome = await settleSetup(generator.setup(setupCommand(scenario, options, broker, generator, index)), broker, deadline);
      if (outcome !== null) return finish(result, outcome, broker, generators, null, options);
    }
    if (scenario.warmupPerPublisher > 0) {
      const outcome = await runPhase('warmup', scenario, scenario.warmupPerPublisher, generators, broker, deadline, options);
      if (outcome !== 'complete' && outcome !== 'stalled') return finish(result, outcome, broker, generators, null, options);
      if (outcome === 'stalled') result.note = `warm-up lost ${expectedDeliveries(scenario, scenario.warmupPerPublisher) - sumOf(generators, 'delivered')}`;
    }
    const cpuBefore = sampleCpu(broker, generators);
    const outcome = await runPhase('measure', scenario, scenario.messagesPerPublisher, generators, broker, deadline, options);
    const cpuAfter = sampleCpu(broker, generators);
    return finish(result, outcome, broker, generators, { before: cpuBefore, after: cpuAfter }, options);
  } finally {
    const deliveredAtVerdict = result.delivered;
    await Promise.all(generators.map((g) => g.stop()));
    // The generators report a last count as they stop: deliveries that came after the stall verdict.
    const late = sumOf(generators, 'delivered') - deliveredAtVerdict;
    if (result.status === 'lost' && late > 0) result.note = joinNote(result.note, `${late} of the missing arrived later than the ${options.stallMs / 1000} s stall limit`);
    // Give a broker that trips over the disconnects (aedes has) a moment to die where we can see it.
    if (broker.alive) await sleep(500);
    if (!broker.alive && result.status !== 'crashed') result.crashedAfterRun = true;
    if (result.crashedAfterRun || result.status === 'crashed') {
      const reason = crashReason(broker.output);
      if (reason !== '') result.note = joinNote(result.note, `broker said: ${reason.slice(0, 300)}`);
    }
    await broker.stop();
  }
}

function layoutGenerators(scenario: Scenario, options: CellOptions): GeneratorProcess[] {
  const subscribers = subscriberSpec(scenario);
  const publishers = publisherSpec(scenario, options);
  const cpus = options.generatorCpus;
  if (options.layout === 'single') return [new GeneratorProcess({ subscribers, publishers }, PROJECT_DIR, cpus)];
  // Subscribers first: they must be subscribed before anything is published.
  return [
    new GeneratorProcess({ subscribers, publishers: null }, PROJECT_DIR, cpus),
    new GeneratorProcess({ subscribers: null, publishers }, PROJECT_DIR, cpus),
  ];
}

function subscriberSpec(scenario: Scenario): SubscriberSpec {
  return { connections: scenario.subscribers, filter: scenario.filter, qos: scenario.qos };
}

function publisherSpec(scenario: Scenario, options: CellOptions): PublisherSpec {
  return { connections: scenario.topics.length, topics: scenario.topics, qos: scenario.qos, payloadBytes: options.payloadBytes, window: scenario.window };
}

function setupCommand(scenario: Scenario, options: CellOptions, broker: RunningBroker, generator: GeneratorProcess, index: number): SetupCommand {
  return {
    type: 'setup', host: HOST, port: broker.port, label: `bench${process.pid}g${index}`,
    credentials: options.credentials,
    napMs: napFor(scenario, options, generator),
    // Publishers: only when PUBACKs trickle (under a tenth of the window per turn).
    napBelowPackets: generator.hostsPublishers ? Math.max(1, Math.ceil(scenario.window / 10)) : null,
    subscribers: generator.hostsSubscribers ? subscriberSpec(scenario) : null,
    publishers: generator.hostsPublishers ? publisherSpec(scenario, options) : null,
  };
}

/**
 * A process with both roles never naps: a subscriber's nap would hold back its own publishing. A
 * QoS 0 publisher receives nothing, so only QoS 1 publishers nap.
 */
function napFor(scenario: Scenario, options: CellOptions, generator: GeneratorProcess): number {
  if (generator.hostsPublishers && generator.hostsSubscribers) return 0;
  if (generator.hostsPublishers) return scenario.qos === 1 ? options.publisherNapMs : 0;
  if (options.subscriberNapMs !== 'auto') return options.subscriberNapMs;
  return scenario.subscribers >= 100 ? 10 : 1;
}

/** Null when setup succeeded, else why the cell ends. */
async function settleSetup(setup: Promise<void>, broker: RunningBroker, deadline: number): Promise<PhaseOutcome | null> {
  let settled: 'ok' | 'failed' | null = null;
  setup.then(() => { settled = 'ok'; }, () => { settled = 'failed'; });
  for (;;) {
    if (settled === 'ok') return null;
    if (!broker.alive) return 'crashed';
    if (settled === 'failed') return (await brokerDiesSoon(broker)) ? 'crashed' : 'failed';
    if (Date.now() > deadline) return 'timeout';
    await sleep(POLL_MS);
  }
}

/** A broker crash usually reaches the generator (connection reset) before our exit event. */
async function brokerDiesSoon(broker: RunningBroker): Promise<boolean> {
  for (let waited = 0; waited < 1_000 && broker.alive; waited += POLL_MS) await sleep(POLL_MS);
  return !broker.alive;
}

async function runPhase(
  phase: Phase, scenario: Scenario, perPublisher: number, generators: GeneratorProcess[],
  broker: RunningBroker, deadline: number, options: CellOptions,
): Promise<PhaseOutcome> {
  const expected = expectedDeliveries(scenario, perPublisher);
  const start = (generator: GeneratorProcess): void => generator.run({
    type: 'run', phase,
    messagesPerPublisher: generator.hostsPublishers ? perPublisher : 0,
    expectedDeliveries: generator.hostsSubscribers ? expected : 0,
  });
  // Subscriber-only processes reset their counters when the command arrives; publishers may start
  // only after that, or early deliveries would be counted in (and wiped with) the previous phase.
  const listeners = generators.filter((g) => !g.hostsPublishers);
  listeners.forEach(start);
  while (!listeners.every((g) => g.progress !== null)) {
    await sleep(5);
    if (!broker.alive) return 'crashed';
    if (listeners.some((g) => g.failure !== null)) return 'failed';
    if (Date.now() > deadline) return 'timeout';
  }
  generators.filter((g) => g.hostsPublishers).forEach(start);
  let lastCount = -1;
  let lastChange = Date.now();
  for (;;) {
    await sleep(POLL_MS);
    if (!broker.alive) return 'crashed';
    if (generators.some((g) => g.failure !== null)) return (await brokerDiesSoon(broker)) ? 'crashed' : 'failed';
    const progress = generators.map((g) => g.progress);
    if (progress.every((p) => p !== null && p.publishDone && p.deliveryDone)) return 'complete';
    const count = sumOf(generators, 'delivered') + sumOf(generators, 'acked');
    if (count !== lastCount) {
      lastCount = count;
      lastChange = Date.now();
    }
    const published = generators.every((g) => g.progress !== null && (!g.hostsPublishers || g.progress.lastSendNs > 0));
    // Stalled only if every generator is still reporting (every 200 ms) and none counts anything new.
    const reporting = generators.every((g) => Date.now() - g.progressAt < 1_000);
    if (published && reporting && Date.now() - lastChange > options.stallMs) return 'stalled';
    if (Date.now() > deadline) return 'timeout';
  }
}

function sumOf(generators: GeneratorProcess[], field: 'delivered' | 'sent' | 'acked' | 'unexpectedAcks'): number {
  let total = 0;
  for (const generator of generators) total += generator.progress?.[field] ?? 0;
  return total;
}

interface CpuSample {
  wallNs: number;
  machine: { busy: number; total: number } | null;
  broker: number | null;
  generators: (number | null)[];
}

function sampleCpu(broker: RunningBroker, generators: GeneratorProcess[]): CpuSample {
  return { wallNs: Number(process.hrtime.bigint()), machine: machineCpuSeconds(), broker: cpuSeconds(broker.pid), generators: generators.map((g) => cpuSeconds(g.pid)) };
}

function percent(before: number | null | undefined, after: number | null | undefined, seconds: number): number | null {
  if (before == null || after == null || seconds <= 0) return null;
  return Math.round(((after - before) / seconds) * 100);
}

function finish(
  result: CellResult, outcome: PhaseOutcome, broker: RunningBroker, generators: GeneratorProcess[],
  cpu: { before: CpuSample; after: CpuSample } | null, options: CellOptions,
): CellResult {
  result.delivered = sumOf(generators, 'delivered');
  result.published = sumOf(generators, 'sent');
  result.acked = sumOf(generators, 'acked');
  const unexpectedAcks = sumOf(generators, 'unexpectedAcks');
  let start = Infinity;
  let end = 0;
  for (const generator of generators) {
    const p = generator.progress;
    if (p === null) continue;
    if (p.firstSendNs > 0) start = Math.min(start, p.firstSendNs);
    end = Math.max(end, p.lastDeliveryNs, p.lastAckNs);
  }
  if (Number.isFinite(start) && end > start && result.delivered > 0) {
    result.elapsedMs = (end - start) / 1e6;
    result.rate = result.delivered / ((end - start) / 1e9);
  }
  if (cpu !== null) {
    const seconds = (cpu.after.wallNs - cpu.before.wallNs) / 1e9;
    result.brokerCpu = percent(cpu.before.broker, cpu.after.broker, seconds);
    result.generatorCpu = cpu.after.generators.map((after, i) => percent(cpu.before.generators[i], after, seconds) ?? -1);
    const { machine: m0 } = cpu.before;
    const { machine: m1 } = cpu.after;
    if (m0 !== null && m1 !== null && m1.total > m0.total) {
      result.machineBusy = Math.round(((m1.busy - m0.busy) / (m1.total - m0.total)) * 100);
      const ours = (result.brokerCpu ?? 0) + result.generatorCpu.reduce((a, b) => a + Math.max(0, b), 0);
      result.otherCpu = Math.max(0, Math.round(((m1.busy - m0.busy) / seconds) * 100 - ours));
      result.disturbed = result.otherCpu > DISTURBED_OTHER_CPU;
    }
    // Pinned, all generator processes share one core; unpinned, each process has at most one.
    const generatorLoad = options.generatorCpus !== null
      ? result.generatorCpu.reduce((a, b) => a + Math.max(0, b), 0)
      : Math.max(0, ...result.generatorCpu);
    result.generatorBound = generatorLoad >= GENERATOR_BOUND_CPU;
  }
  switch (outcome) {
    case 'complete':
    case 'stalled':
      result.status = result.delivered >= result.expected ? 'ok' : 'lost';
      if (result.delivered > result.expected) result.note = joinNote(result.note, `${result.delivered - result.expected} extra deliveries`);
      break;
    case 'timeout':
      result.status = 'timeout';
      break;
    case 'crashed': {
      result.status = 'crashed';
      const exit = broker.exitInfo;
      result.note = joinNote(result.note, `broker exited (code ${exit?.code ?? '-'}, signal ${exit?.signal ?? '-'})`);
      break;
    }
    case 'failed':
      result.status = 'error';
      result.note = joinNote(result.note, generators.find((g) => g.failure !== null)?.failure ?? 'load generator failed');
      break;
  }
  if (unexpectedAcks > 0) result.note = joinNote(result.note, `${unexpectedAcks} PUBACKs for ids not in flight`);
  return result;
}

function joinNote(a: string, b: string): string {
  return a === '' ? b : `${a}; ${b}`;
}
