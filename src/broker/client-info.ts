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
