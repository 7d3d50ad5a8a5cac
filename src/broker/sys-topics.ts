/**
 * `$SYS/broker/...` per namespace, with Mosquitto's topic names (mosquitto(8), "Broker status")
 * where they have a meaning for one namespace: each namespace (account) sees only its own figures.
 *
 * Rules: every `intervalSeconds` (Mosquitto's sys_interval), for each namespace with a connected
 * client, the figures whose text changed since that namespace's last round are published retained
 * at QoS 0 by the broker itself. Clients cannot publish under `$SYS` (handle-publish.ts), `#` and `+`
 * do not match it, and the retainer keeps these messages in memory only (retainer.ts).
 *
 * Cost: nothing between rounds. A round walks every session once (stats.ts sessionFigures), asks the
 * retained store one COUNT per namespace with connected clients, and publishes only what changed.
 */
import type { Broker } from './broker.ts';
import type { TimerHandle } from './clock.ts';
import type { Message } from './message.ts';
import { sessionFigures, type NamespaceStats, type SessionFigures } from './stats.ts';

export interface SysTopicsOptions {
  /** Seconds between rounds; 0 = never publish. */
  intervalSeconds: number;
  /** Text of `$SYS/broker/version`, e.g. "bucketmq version 1.2.3". */
  version: string;
}

const NO_SESSIONS: SessionFigures = { sessions: 0, disconnected: 0, subscriptions: 0, queued: 0, inflight: 0 };

export class SysTopics {
  readonly #broker: Broker;
  readonly #options: SysTopicsOptions;
  readonly #startedAt: number;
  /** Per namespace, the text last published per topic. */
  readonly #published = new Map<string, Map<string, string>>();
  #timer: TimerHandle | null = null;

  constructor(broker: Broker, options: SysTopicsOptions) {
    this.#broker = broker;
    this.#options = options;
    this.#startedAt = broker.clock.now();
  }

  start(): void {
    if (this.#options.intervalSeconds > 0 && this.#timer === null) this.#schedule();
  }

  stop(): void {
    if (this.#timer !== null) this.#broker.clock.clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** One round now: publishes what changed, per namespace with a connected client. */
  publish(): void {
    const broker = this.#broker;
    let sessions: Map<string, SessionFigures> | null = null;
    for (const [namespace, stats] of broker.stats.namespaces()) {
      if (stats.connected === 0) continue;
      sessions ??= sessionFigures(broker.sessions.values());
      const figures = this.#figures(namespace, stats, sessions.get(namespace) ?? NO_SESSIONS);
      let last = this.#published.get(namespace);
      if (last === undefined) this.#published.set(namespace, (last = new Map()));
      for (const [topic, text] of figures) {
        if (last.get(topic) === text) continue;
        last.set(topic, text);
        broker.publish(namespace, sysMessage(topic, text));
      }
    }
  }

  #figures(namespace: string, stats: NamespaceStats, sessions: SessionFigures): Array<[string, string]> {
    const uptime = Math.floor((this.#broker.clock.now() - this.#startedAt) / 1000);
    const sum = (counts: Float64Array): string => String(counts[0]! + counts[1]! + counts[2]!);
    return [
      ['$SYS/broker/version', this.#options.version],
      ['$SYS/broker/uptime', `${uptime} seconds`],
      ['$SYS/broker/clients/connected', String(stats.connected)],
      ['$SYS/broker/clients/disconnected', String(sessions.disconnected)],
      ['$SYS/broker/clients/total', String(sessions.sessions)],
      ['$SYS/broker/clients/maximum', String(stats.connectedMaximum)],
      ['$SYS/broker/messages/received', String(stats.packetsReceived)],
      ['$SYS/broker/messages/sent', String(stats.packetsSent)],
      ['$SYS/broker/publish/messages/received', sum(stats.publishReceived)],
      ['$SYS/broker/publish/messages/sent', sum(stats.publishSent)],
      ['$SYS/broker/publish/messages/dropped', String(stats.droppedTotal())],
      ['$SYS/broker/bytes/received', String(stats.bytesReceived)],
      ['$SYS/broker/bytes/sent', String(stats.bytesSent)],
      ['$SYS/broker/subscriptions/count', String(sessions.subscriptions)],
      ['$SYS/broker/retained messages/count', String(this.#broker.retainer.count(namespace))],
      ['$SYS/broker/store/messages/count', String(sessions.queued + sessions.inflight)],
    ];
  }

  #schedule(): void {
    this.#timer = this.#broker.clock.setTimeout(sysRound, this.#options.intervalSeconds * 1000, this);
  }

  /** The timer's round: publish, then arm the next one. */
  tick(): void {
    this.#timer = null;
    this.publish();
    this.#schedule();
  }
}

function sysRound(sys: SysTopics): void {
  sys.tick();
}

function sysMessage(topic: string, text: string): Message {
  return { topic, payload: Buffer.from(text), qos: 0, retain: true, properties: null, expiresAt: 0, origin: '' };
}
