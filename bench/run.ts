/**
 * `npm run bench` — bucketmq against Mosquitto and aedes, side by side, same load generator.
 *
 *   npm run bench -- --messages 200000 --only qos0-1to1,fanout --brokers bucketmq,mosquitto
 *
 * For every row, each broker is started fresh on a random 127.0.0.1 port, driven by the load
 * generator in separate process(es), then stopped. Prints a table of delivered msg/s and writes
 * bench/results.json.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BROKER_NAMES, BUCKETMQ_DEFAULT_ARGS, DEFAULT_BROKERS, MOSQUITTO_SETTINGS, PROJECT_DIR, type BrokerName } from './brokers.ts';
import { DISTURBED_OTHER_CPU, runCell, type CellOptions, type CellResult, type GeneratorLayout } from './cell-runner.ts';
import { buildScenarios, expectedDeliveries, SCENARIO_IDS, type Scenario, type ScenarioId } from './scenarios.ts';
import { formatCount, formatRate, renderTable } from './table.ts';

const USAGE = `usage: npm run bench -- [options]
  --messages N         deliveries per row (fan-out: N / subscribers messages) [500000]
  --only IDS           rows, comma-separated: ${SCENARIO_IDS.join(',')} [all]
  --brokers NAMES      comma-separated: ${BROKER_NAMES.join(',')} [${DEFAULT_BROKERS.join(',')}]
                       (null: a byte-forwarding stub that shows the generator's own ceiling)
  --layout L           single: publishers and subscribers in one generator process;
                       split: one process each [split]
  --pin on|off         pin the broker to CPU 0 and the generator(s) to CPU 1 (taskset) [on]
  --repeat N           runs per cell; the fastest is reported [1]
  --retries N          extra runs of a cell that other programs disturbed [2]
  --nap MS|auto        the subscriber-only generator process sleeps MS after each event-loop
                       turn with deliveries, so it reads batches instead of waking per packet
                       (0 = read eagerly; auto = 1, or 10 with 100+ subscribers) [auto]
  --pub-nap MS         the same for the QoS 1 publisher process, after turns that brought fewer
                       PUBACKs than a tenth of the window [0.2]
  --budget S           no retries of disturbed cells after this many seconds of run time [240]
  --timeout S          seconds per cell, setup and warm-up included [60]
  --stall S            seconds without a delivery, after publishing ended, that count as loss [3]
  --warmup N           warm-up deliveries per cell; -1 = 5% up to 20000 [-1]
  --publishers N       publishers of the many-to-one row [100]
  --fanout-subs N      subscribers of the fan-out row [1000]
  --window N           QoS 1 publisher in-flight window [100]
  --payload BYTES      payload size [64]
  --start-timeout S    seconds for a broker to open its port [20]
  --bucketmq-arg=ARG   extra argument for src/server.ts (repeatable; use = for values
                       starting with a dash: --bucketmq-arg=--max-queued=100000)
  --username U --password P   credentials every client sends (brokers that need them)
  --json FILE          results file [bench/results.json]
  --ingest SECONDS     then the ingest rows (bench/ingest.ts: records/s durably stored, MQTT and
                       HTTP, SQLite and PostgreSQL), SECONDS per row; 0 skips them [5]
  --footprint N        then the footprint row (bench/footprint.ts: KB of RSS per idle connection
                       and connects/s) with N idle connections per broker; 0 skips it [19000]`;

const { values } = parseCommandLine({
  options: {
    messages: { type: 'string', default: '500000' },
    only: { type: 'string' },
    brokers: { type: 'string', default: DEFAULT_BROKERS.join(',') },
    layout: { type: 'string', default: 'split' },
    pin: { type: 'string', default: 'on' },
    timeout: { type: 'string', default: '60' },
    repeat: { type: 'string', default: '1' },
    nap: { type: 'string', default: 'auto' },
    'pub-nap': { type: 'string', default: '0.2' },
    retries: { type: 'string', default: '2' },
    budget: { type: 'string', default: '240' },
    stall: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '-1' },
    publishers: { type: 'string', default: '100' },
    'fanout-subs': { type: 'string', default: '1000' },
    window: { type: 'string', default: '100' },
    payload: { type: 'string', default: '64' },
    'start-timeout': { type: 'string', default: '20' },
    'bucketmq-arg': { type: 'string', multiple: true, default: [] },
    username: { type: 'string' },
    password: { type: 'string' },
    json: { type: 'string', default: path.join(PROJECT_DIR, 'bench', 'results.json') },
    ingest: { type: 'string', default: '5' },
    footprint: { type: 'string', default: '19000' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

/** parseArgs, with its errors shown as a usage message instead of a stack trace. */
function parseCommandLine<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    return usageError(error instanceof Error ? error.message : String(error));
  }
}

if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

function integer(name: string, text: string, min: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) usageError(`--${name} must be an integer >= ${min}`);
  return value;
}

function milliseconds(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0 || value > 1000) usageError(`--${name} must be a number of milliseconds from 0 to 1000`);
  return value;
}

function list<T extends string>(name: string, text: string, allowed: readonly T[]): T[] {
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const item of items) if (!(allowed as readonly string[]).includes(item)) usageError(`--${name}: unknown "${item}" (known: ${allowed.join(', ')})`);
  return items as T[];
}

function usageError(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(2);
}

const layout = values.layout as GeneratorLayout;
if (layout !== 'single' && layout !== 'split') usageError('--layout must be single or split');
if (values.pin !== 'on' && values.pin !== 'off') usageError('--pin must be on or off');
// Two cores: one for the broker, one for the load generator. Without pinning, a generator split in
// two processes can take CPU from the broker, and the scheduler moves everyone around.
const pin = values.pin === 'on' && os.cpus().length >= 2;
const brokers = BROKER_NAMES.filter((name) => list('brokers', values.brokers, BROKER_NAMES).includes(name));
const only = values.only === undefined ? [...SCENARIO_IDS] : list<ScenarioId>('only', values.only, SCENARIO_IDS);
const scenarios = buildScenarios({
  messages: integer('messages', values.messages, 1),
  publishers: integer('publishers', values.publishers, 1),
  fanoutSubscribers: integer('fanout-subs', values['fanout-subs'], 1),
  window: integer('window', values.window, 1),
  warmupDeliveries: integer('warmup', values.warmup, -1),
  payloadBytes: integer('payload', values.payload, 0),
}).filter((scenario) => only.includes(scenario.id));

const cellOptions: CellOptions = {
  broker: { cpus: pin ? '0' : null, bucketmqArgs: values['bucketmq-arg'], startTimeoutMs: integer('start-timeout', values['start-timeout'], 1) * 1000 },
  layout,
  subscriberNapMs: values.nap === 'auto' ? 'auto' : milliseconds('nap', values.nap),
  publisherNapMs: milliseconds('pub-nap', values['pub-nap']),
  generatorCpus: pin ? (os.cpus().length === 2 ? '1' : `1-${os.cpus().length - 1}`) : null,
  timeoutMs: integer('timeout', values.timeout, 1) * 1000,
  stallMs: integer('stall', values.stall, 1) * 1000,
  payloadBytes: integer('payload', values.payload, 0),
  credentials: {
    ...(values.username === undefined ? {} : { username: values.username }),
    ...(values.password === undefined ? {} : { password: values.password }),
  },
};

// Turn signals into a normal exit so brokers.ts can kill the broker it started.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

// --- Run: rows outer, brokers inner, so the brokers of one row run close together in time. ---

const results = new Map<string, CellResult>();
const key = (scenario: string, broker: string): string => `${scenario}/${broker}`;
const startedAt = Date.now();

console.error(`bench: ${scenarios.length} rows × ${brokers.join(', ')}; generator layout ${layout}; ${os.cpus().length} cores; ${pin ? `broker on CPU 0, generator on CPU ${cellOptions.generatorCpus ?? ''}` : 'no CPU pinning'}`);
const unavailable = new Map<BrokerName, string>();
const repeat = integer('repeat', values.repeat, 1);
const retries = integer('retries', values.retries, 0);
const retryBudgetMs = integer('budget', values.budget, 0) * 1000;
for (const scenario of scenarios) {
  for (const broker of brokers) results.set(key(scenario.id, broker), await measureCell(broker, scenario));
}

/**
 * Runs a cell `repeat` times, plus up to `retries` more while every completed run was disturbed by
 * other programs (this box is shared), and reports the fastest undisturbed run. Failures are never
 * retried away: a timeout or crash in any run is what the cell reports.
 */
async function measureCell(broker: BrokerName, scenario: Scenario): Promise<CellResult> {
  const why = unavailable.get(broker);
  if (why !== undefined) return { ...notAvailable(broker, scenario), note: why };
  const runs: CellResult[] = [];
  const extraNotes: string[] = [];
  while (runs.length < repeat + retries) {
    const cell = await runCell(broker, scenario, cellOptions);
    runs.push(cell);
    console.error(`  ${scenario.id.padEnd(12)} ${broker.padEnd(10)} ${describeCell(cell)}`);
    if (cell.status === 'n/a') {
      if (runs.length > 1) {
        // It started before: keep the runs we have, and say that a retry could not start it.
        runs.pop();
        extraNotes.push(`a retry failed to start: ${cell.note}`);
        break;
      }
      // A broker that cannot start will not start for the next row either; don't wait for it again.
      unavailable.set(broker, `did not start (see ${scenario.id})`);
      return cell;
    }
    if (cell.status !== 'ok' && cell.status !== 'lost') break;
    if (runs.length >= repeat && (runs.some((run) => !run.disturbed) || Date.now() - startedAt > retryBudgetMs)) break;
  }
  const failed = runs.find((run) => run.status !== 'ok' && run.status !== 'lost');
  const completed = runs.filter((run) => run.status === 'ok' || run.status === 'lost');
  const pool = completed.some((run) => !run.disturbed) ? completed.filter((run) => !run.disturbed) : completed;
  const chosen = failed ?? pool.reduce((best, run) => ((run.rate ?? 0) > (best.rate ?? 0) ? run : best));
  chosen.attempts = runs.length;
  for (const [index, run] of runs.entries()) {
    if (run !== chosen && run.status === 'lost') extraNotes.push(`run ${index + 1} of ${runs.length} lost ${formatCount(run.expected - run.delivered)}`);
  }
  chosen.note = [chosen.note, ...extraNotes].filter((n) => n !== '').join('; ');
  return chosen;
}

function notAvailable(broker: BrokerName, scenario: Scenario): CellResult {
  return {
    broker, scenario: scenario.id, status: 'n/a', rate: null, expected: expectedDeliveries(scenario), delivered: 0, published: 0,
    acked: 0, elapsedMs: null, brokerCpu: null, generatorCpu: [], machineBusy: null, otherCpu: null, disturbed: false,
    generatorBound: false, attempts: 0, crashedAfterRun: false, note: '',
  };
}

function describeCell(cell: CellResult): string {
  const parts = [cell.status, cell.rate === null ? '' : `${formatRate(cell.rate)} msg/s`, `${formatCount(cell.delivered)}/${formatCount(cell.expected)}`];
  if (cell.status !== 'n/a') parts.push(`(published ${formatCount(cell.published)}${cell.acked > 0 ? `, acked ${formatCount(cell.acked)}` : ''})`);
  if (cell.brokerCpu !== null) parts.push(`cpu broker ${cell.brokerCpu}% gen ${cell.generatorCpu.join('+')}% other ${cell.otherCpu ?? '-'}%`);
  if (cell.disturbed) parts.push('(disturbed by other programs)');
  if (cell.generatorBound) parts.push('(generator saturated)');
  if (cell.crashedAfterRun) parts.push('broker crashed while clients disconnected');
  if (cell.note !== '') parts.push(cell.note);
  return parts.filter((p) => p !== '').join('  ');
}

// --- Table. ---

function cellText(cell: CellResult | undefined): string {
  if (cell === undefined) return '-';
  const rate = cell.rate === null ? '' : `${formatRate(cell.rate)}${cell.disturbed ? '~' : ''}${cell.generatorBound ? '^' : ''}`;
  const dagger = cell.crashedAfterRun ? ' †' : '';
  switch (cell.status) {
    case 'ok': return `${rate}${dagger}`;
    case 'lost': return `${rate} (lost ${formatCount(cell.expected - cell.delivered)})${dagger}`;
    case 'timeout': return `${rate === '' ? 'timeout' : `timeout @${rate}`}${dagger}`;
    case 'crashed': return rate === '' ? 'crashed' : `crashed @${rate}`;
    case 'error': return 'error';
    case 'n/a': return 'n/a';
  }
}

function ratioText(ours: CellResult | undefined, theirs: CellResult | undefined): string {
  if (ours?.rate == null || theirs?.rate == null || theirs.rate === 0) return '-';
  const partial = ours.status !== 'ok' || theirs.status !== 'ok';
  return `${(ours.rate / theirs.rate).toFixed(2)}x${partial ? '*' : ''}`;
}

const others = brokers.includes('bucketmq') ? brokers.filter((b) => b !== 'bucketmq' && b !== 'null') : [];
const header = ['row', ...brokers, ...others.map((b) => `bucketmq/${b}`)];
const rows = scenarios.map((scenario) => [
  scenario.title,
  ...brokers.map((b) => cellText(results.get(key(scenario.id, b)))),
  ...others.map((b) => ratioText(results.get(key(scenario.id, 'bucketmq')), results.get(key(scenario.id, b)))),
]);
const cpuRows = scenarios.map((scenario) => [
  scenario.title,
  ...brokers.map((b) => {
    const cell = results.get(key(scenario.id, b));
    if (cell?.brokerCpu == null) return '-';
    return `${cell.brokerCpu} / ${cell.generatorCpu.join('+')} / ${cell.otherCpu ?? '-'}`;
  }),
]);

const totalDeliveries = scenarios.map((s) => `${s.id} ${formatCount(expectedDeliveries(s))}`).join(', ');
const lines = [
  '',
  `Delivered msg/s (${cellOptions.payloadBytes}-byte payloads; deliveries per row: ${totalDeliveries}; generator layout: ${layout}; ${pin ? 'broker pinned to CPU 0, generator to the rest' : 'no CPU pinning'})`,
  renderTable(header, rows),
  '',
  'CPU during the measured window, % of one core: broker / generator process(es) / everything else on the machine',
  renderTable(['row', ...brokers], cpuRows),
  '',
];
const notes: string[] = [];
for (const scenario of scenarios) {
  for (const broker of brokers) {
    const cell = results.get(key(scenario.id, broker));
    if (cell === undefined) continue;
    const text = [cell.crashedAfterRun ? 'broker crashed while the clients disconnected, after the measurement' : '', cell.note]
      .filter((s) => s !== '').join('; ');
    if (text !== '') notes.push(`  ${broker}, ${scenario.title.replace(/\s+/g, ' ')}: ${text}`);
  }
}
if (notes.length > 0) lines.push('Notes:', ...notes, '');
lines.push(
  '* ratio from a partial run (loss, timeout or crash)   † broker crashed after the measurement',
  `~ other programs used over ${DISTURBED_OTHER_CPU}% of a core in every run of the cell   ^ generator near its CPU limit`,
  `Mosquitto config: ${MOSQUITTO_SETTINGS.filter((s) => !s.startsWith('log_')).join(', ')}`,
  `Total time ${((Date.now() - startedAt) / 1000).toFixed(0)} s`,
);
console.log(lines.join('\n'));

// --- results.json ---

function versionOf(command: () => string): string {
  try {
    return command();
  } catch {
    return 'unknown';
  }
}

const report = {
  generatedAt: new Date().toISOString(),
  machine: { cores: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', node: process.version, platform: `${os.platform()} ${os.release()}` },
  versions: {
    // `mosquitto -h` prints its version and exits non-zero.
    mosquitto: versionOf(() => spawnSync('/usr/sbin/mosquitto', ['-h'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? 'unknown'),
    aedes: versionOf(() => (JSON.parse(readFileSync(path.join(PROJECT_DIR, 'node_modules', 'aedes', 'package.json'), 'utf8')) as { version: string }).version),
  },
  settings: {
    layout, subscriberNapMs: cellOptions.subscriberNapMs, publisherNapMs: cellOptions.publisherNapMs, repeat, retries, pin: pin ? { broker: cellOptions.broker.cpus, generator: cellOptions.generatorCpus } : null, payloadBytes: cellOptions.payloadBytes, timeoutMs: cellOptions.timeoutMs, stallMs: cellOptions.stallMs,
    mosquittoConfig: MOSQUITTO_SETTINGS, bucketmqArgs: [...BUCKETMQ_DEFAULT_ARGS, ...cellOptions.broker.bucketmqArgs],
  },
  rows: scenarios.map((scenario: Scenario) => ({
    id: scenario.id,
    title: scenario.title,
    publishers: scenario.topics.length,
    subscribers: scenario.subscribers,
    qos: scenario.qos,
    messagesPerPublisher: scenario.messagesPerPublisher,
    warmupPerPublisher: scenario.warmupPerPublisher,
    results: Object.fromEntries(brokers.map((b) => {
      const cell = results.get(key(scenario.id, b));
      return [b, cell === undefined ? null : { ...cell, rate: cell.rate === null ? null : Math.round(cell.rate), elapsedMs: cell.elapsedMs === null ? null : Math.round(cell.elapsedMs) }];
    })),
  })),
};
writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
console.log(`Wrote ${path.relative(process.cwd(), values.json) || values.json}`);

// The footprint row (issue 15) runs after the broker table, in its own process, for the same brokers.
const footprintConnections = integer('footprint', values.footprint, 0);
const footprintBrokers = brokers.filter((b) => b !== 'null');
if (footprintConnections > 0 && footprintBrokers.length > 0) {
  console.log('\nFootprint: memory per idle connection and connects/s (bench/footprint.ts)');
  const footprint = spawnSync(process.execPath, ['--import', 'tsx', path.join(PROJECT_DIR, 'bench', 'footprint.ts'), '--connections', String(footprintConnections), '--brokers', footprintBrokers.join(','), '--pin', values.pin], { stdio: 'inherit', cwd: PROJECT_DIR });
  if (footprint.status !== 0) process.exitCode = footprint.status ?? 1;
}

// The ingest rows (issue 5) run after the broker table, in their own process.
const ingestSeconds = Number(values.ingest);
if (ingestSeconds > 0) {
  console.log('\nIngest: records per second durably stored (bench/ingest.ts)');
  const ingest = spawnSync(process.execPath, ['--max-semi-space-size=128', '--import', 'tsx', path.join(PROJECT_DIR, 'bench', 'ingest.ts'), '--seconds', String(ingestSeconds)], { stdio: 'inherit', cwd: PROJECT_DIR });
  if (ingest.status !== 0) process.exitCode = ingest.status ?? 1;
}
