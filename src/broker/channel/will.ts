import { fromStoredClient, toStoredClient, type ClientInfo } from '../client-info.ts';
import type { Message } from '../message.ts';
import type { StoredWill } from '../session/session-store.ts';

/** A client's last will, held from CONNECT until the connection ends (MQTT 5 §3.1.2.5). */
export interface Will {
  readonly client: ClientInfo;
  readonly message: Message;
  /** Seconds (MQTT 5 will delay interval); 0 for v3. */
  readonly delay: number;
}

/**
 * The will as the session store keeps it. `ClientInfo.data` goes as JSON (a value JSON cannot hold
 * is kept as null): after a restart, BrokerHooks.restoreClient rebuilds it.
 */
export function toStoredWill(will: Will): StoredWill {
  return { client: toStoredClient(will.client), message: will.message, delay: will.delay };
}

/** The will back from the store, its client with `data` parsed; `restore` may replace the client or drop the will (null). */
export function fromStoredWill(namespace: string, stored: StoredWill, restore: ((client: ClientInfo) => ClientInfo | null) | undefined): Will | null {
  const client = fromStoredClient(namespace, stored.client, restore);
  return client === null ? null : { client, message: stored.message, delay: stored.delay };
}
