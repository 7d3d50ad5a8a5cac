/**
 * Mock time for the tests of broker timers (keep alive, connect timeout, will delay, session expiry,
 * takeover back-off, message expiry): `node:test` mock timers replace setTimeout and Date for one
 * test (`t.mock` puts them back when it ends), and the broker's systemClock (src/broker/clock.ts)
 * follows them. Sockets stay real: between ticks a test awaits what the broker sends, never a sleep.
 *
 * Start it before the connections whose timers it drives (a timer armed earlier stays real). The
 * helpers' own timeouts are mocked too, so give such tests a `timeout` option: a packet that never
 * comes then fails the test instead of hanging it.
 */
import type { TestContext } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { Broker } from '../../src/broker/broker.ts';
import type { Message } from '../../src/broker/message.ts';
import { nextEvent, type WireClient } from './v5-helpers.ts';

/** Per-test timeout for tests on mock time (real ms). */
export const MOCK_TIME_TEST = { timeout: 15_000 } as const;

export interface MockTime {
  /** Advances time by `ms`, firing every timer due on the way, in order (synchronously). */
  tick(ms: number): void;
}

/**
 * Mocks setTimeout and Date (and, with `intervals`, setInterval: MQTT.js keeps alive with one) from
 * the current wall time on.
 */
export function mockTime(t: TestContext, options: { intervals?: boolean } = {}): MockTime {
  const apis: Array<'setTimeout' | 'setInterval' | 'Date'> = options.intervals === true ? ['setTimeout', 'setInterval', 'Date'] : ['setTimeout', 'Date'];
  t.mock.timers.enable({ apis, now: Date.now() });
  // Node 20's reset() empties the mock queue but leaves each pending timer its queue position: a
  // connection of this test that closes during the next one would clear that stale position and
  // so remove whichever timer of the next test sits there. Clearing what is pending while still
  // mocked (t.after runs before the reset) leaves the handles harmless.
  const pending = new Set<NodeJS.Timeout>();
  const setTimeoutMock = globalThis.setTimeout;
  const setIntervalMock = globalThis.setInterval;
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => noted(pending, setTimeoutMock(...args))) as typeof setTimeout;
  if (options.intervals === true) globalThis.setInterval = ((...args: Parameters<typeof setInterval>) => noted(pending, setIntervalMock(...args))) as typeof setInterval;
  t.after(() => {
    for (const handle of pending) clearTimeout(handle);
  });
  return { tick: (ms) => t.mock.timers.tick(ms) };
}

function noted(pending: Set<NodeJS.Timeout>, handle: NodeJS.Timeout): NodeJS.Timeout {
  pending.add(handle);
  return handle;
}

/** Whether a client id is connected, read from the broker synchronously (no waiting on sockets). */
export function isConnected(broker: Broker, clientId: string): boolean {
  for (const client of broker.clients()) if (client.clientId === clientId) return true;
  return false;
}

/**
 * Records the messages published on `topic` as the broker routes them: a will or an expiry fires
 * inside `tick`, so the record says synchronously whether it has happened yet.
 */
export function recordPublishes(t: TestContext, broker: Broker, topic: string): Message[] {
  const seen: Message[] = [];
  const listener = (_from: unknown, message: Message): void => {
    if (message.topic === topic) seen.push(message);
  };
  broker.on('message.publish', listener);
  t.after(() => void broker.off('message.publish', listener));
  return seen;
}

/** PINGREQ, then waits for the PINGRESP: activity for the keep alive, and a round trip that lets I/O settle. */
export async function pingRoundTrip(raw: WireClient): Promise<void> {
  raw.sendRaw(Buffer.from([0xc0, 0]));
  await raw.take((f) => f.type === 13, 3000, 'PINGRESP');
}

/**
 * Moves time on by `ms` in 100 ms steps while an MQTT.js client keeps itself alive (mock time with
 * `intervals`): each PINGREQ it sends is answered before time moves on, as on real time. Returns
 * how many times it pinged.
 */
export async function tickWhilePinging(time: MockTime, client: MqttClient, ms: number): Promise<number> {
  let pings = 0;
  let pongs = 0;
  const onSend = (packet: { cmd: string }): void => {
    if (packet.cmd === 'pingreq') pings++;
  };
  client.on('packetsend', onSend);
  try {
    for (let elapsed = 0; elapsed < ms; elapsed += 100) {
      time.tick(100);
      if (pings > pongs) {
        await nextEvent(client, 'packetreceive', 3000, (packet: { cmd: string }) => packet.cmd === 'pingresp');
        pongs++;
      }
    }
  } finally {
    client.off('packetsend', onSend);
  }
  return pings;
}

/**
 * Waits until `condition` holds, looking once per event-loop turn (setImmediate, which mock time
 * leaves real, so socket I/O goes on between looks); fails after `ms` of real time.
 */
export async function settle(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
