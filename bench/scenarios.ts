/**
 * The benchmark rows. Every row is "P publisher connections → S subscriber connections", every
 * subscriber matching every publisher's topic, so a row expects P × messagesPerPublisher × S
 * deliveries.
 */
export const SCENARIO_IDS = ['qos0-1to1', 'qos0-100to1', 'qos1-1to1', 'fanout'] as const;
export type ScenarioId = (typeof SCENARIO_IDS)[number];

export interface Scenario {
  id: ScenarioId;
  title: string;
  qos: 0 | 1;
  /** One topic per publisher connection, all of one length. */
  topics: string[];
  filter: string;
  subscribers: number;
  messagesPerPublisher: number;
  /** Messages per publisher in the untimed warm-up phase (0: none). */
  warmupPerPublisher: number;
  /** QoS 1 publisher window. */
  window: number;
}

export interface ScenarioOptions {
  /** Deliveries per row (fan-out: messages × subscribers), default 500,000. */
  messages: number;
  /** Publisher connections of the many-to-one row, default 100. */
  publishers: number;
  /** Subscriber connections of the fan-out row, default 1000. */
  fanoutSubscribers: number;
  /** QoS 1 unacknowledged messages the publisher keeps in flight, default 100. */
  window: number;
  /** Deliveries in each row's warm-up; -1 picks 5% of the row, at most 20,000; 0 skips it. */
  warmupDeliveries: number;
  payloadBytes: number;
}

export function expectedDeliveries(scenario: Scenario, perPublisher = scenario.messagesPerPublisher): number {
  return scenario.topics.length * perPublisher * scenario.subscribers;
}

export function buildScenarios(options: ScenarioOptions): Scenario[] {
  const { messages, publishers, fanoutSubscribers, window } = options;
  const width = String(publishers - 1).length;
  const rows: Omit<Scenario, 'warmupPerPublisher'>[] = [
    {
      id: 'qos0-1to1', title: 'QoS 0  1 → 1', qos: 0,
      topics: ['bench/one'], filter: 'bench/one', subscribers: 1,
      messagesPerPublisher: messages, window,
    },
    {
      id: 'qos0-100to1', title: `QoS 0  ${publishers} → 1`, qos: 0,
      topics: Array.from({ length: publishers }, (_, i) => `bench/in/${String(i).padStart(width, '0')}`),
      filter: 'bench/in/+', subscribers: 1,
      messagesPerPublisher: Math.max(1, Math.round(messages / publishers)), window,
    },
    {
      id: 'qos1-1to1', title: `QoS 1  1 → 1 (window ${window})`, qos: 1,
      topics: ['bench/qos1'], filter: 'bench/qos1', subscribers: 1,
      messagesPerPublisher: messages, window,
    },
    {
      id: 'fanout', title: `QoS 0  1 → ${fanoutSubscribers} fan-out`, qos: 0,
      topics: ['bench/fan'], filter: 'bench/fan', subscribers: fanoutSubscribers,
      messagesPerPublisher: Math.max(1, Math.round(messages / fanoutSubscribers)), window,
    },
  ];
  return rows.map((row) => {
    const full = row.topics.length * row.messagesPerPublisher * row.subscribers;
    const target = options.warmupDeliveries >= 0 ? options.warmupDeliveries : Math.min(20_000, Math.round(full * 0.05));
    const warmupPerPublisher = target === 0 ? 0 : Math.max(1, Math.round(target / (row.topics.length * row.subscribers)));
    return { ...row, warmupPerPublisher };
  });
}
