/** What hooks and event listeners know about a connected client. Plain data, never the channel. */
export interface ClientInfo {
  readonly clientId: string;
  /**
   * Topic namespace the client lives in ('' by default). Topics, retained messages, shared groups,
   * wills and client-id takeover are all scoped to it; the platform maps one account to one namespace.
   */
  readonly namespace: string;
  readonly username: string | undefined;
  readonly protocolVersion: 3 | 4 | 5;
  readonly remoteAddress: string;
  readonly transport: 'tcp' | 'tls' | 'ws' | 'wss';
  /** Whatever `authenticate` returned as `data` (e.g. the device and token). */
  readonly data: unknown;
}

/** A client as the session store keeps it (with a session, with a delayed will): `data` as JSON. */
export type StoredClient = Omit<ClientInfo, 'namespace' | 'data'> & { data: string };

/** `client` for the store; `data` that JSON cannot hold (a cycle, a BigInt) is kept as null. */
export function toStoredClient(client: ClientInfo): StoredClient {
  const { clientId, username, protocolVersion, remoteAddress, transport } = client;
  let data = 'null';
  try {
    data = JSON.stringify(client.data ?? null) ?? 'null';
  } catch {
    // restoreClient sees null.
  }
  return { clientId, username, protocolVersion, remoteAddress, transport, data };
}

/** A stored client back after a restart, `data` parsed; `restore` (BrokerHooks.restoreClient) may rebuild it or drop it (null). */
export function fromStoredClient(namespace: string, stored: StoredClient, restore: ((client: ClientInfo) => ClientInfo | null) | undefined): ClientInfo | null {
  const { data, ...rest } = stored;
  const client: ClientInfo = { ...rest, namespace, data: JSON.parse(data) as unknown };
  return restore === undefined ? client : restore(client);
}
