import type http from 'node:http';
import type https from 'node:https';
import type { Broker } from './broker.ts';
import { Channel, ChannelState } from './channel/channel.ts';
import type { ClientInfo } from './client-info.ts';
import type { DisconnectCause } from './hooks.ts';
import { ReasonCode } from './reason-codes.ts';
import { listenTcp, listenTls, type TcpListenOptions, type TlsListenOptions } from './transport/tcp.ts';
import type { ConnectionAcceptor, Listener, Transport } from './transport/transport.ts';
import { attachWebSocket, listenWs } from './transport/ws.ts';

/**
 * The listeners and the connections they accepted: one Channel per transport, known here from
 * accept until it closes, so that the platform can list and cut clients and shutdown reaches all.
 *
 * Rules: once closing, a new transport is destroyed at once. Shutdown stops the listeners, sends
 * every client DISCONNECT 0x8B and lets it leave (one setImmediate) before the sockets go.
 *
 * Cost: a Set add and delete per connection; nothing per packet.
 */
export class Connections implements ConnectionAcceptor {
  readonly #broker: Broker;
  readonly #channels = new Set<Channel>();
  readonly #listeners: Listener[] = [];
  #closing = false;

  constructor(broker: Broker) {
    this.#broker = broker;
  }

  accept(transport: Transport): Channel {
    const channel = new Channel(this.#broker, transport);
    if (this.#closing) {
      transport.destroy();
      channel.close('server-shutdown');
      return channel;
    }
    this.#channels.add(channel);
    return channel;
  }

  /** Called when a channel's connection ends. */
  closed(channel: Channel): void {
    this.#channels.delete(channel);
  }

  async listenTcp(options: TcpListenOptions): Promise<Listener> {
    return this.#track(await listenTcp(this, options));
  }

  async listenTls(options: TlsListenOptions): Promise<Listener> {
    return this.#track(await listenTls(this, options));
  }

  async listenWs(options: TcpListenOptions | TlsListenOptions): Promise<Listener> {
    return this.#track(await listenWs(this, options));
  }

  attachWebSocket(server: http.Server | https.Server, path: string): void {
    attachWebSocket(server, this, path);
  }

  #track(listener: Listener): Listener {
    this.#listeners.push(listener);
    return listener;
  }

  /** Connected clients. */
  *clients(): IterableIterator<ClientInfo> {
    for (const channel of this.#channels) if (channel.client !== null && channel.state === ChannelState.Connected) yield channel.client;
  }

  /** Kicks every connected client `select` picks; returns how many. */
  disconnect(select: (client: ClientInfo) => boolean, reasonCode: number, reasonString: string | undefined, cause: DisconnectCause): number {
    let n = 0;
    // Iterating a Set while kick() deletes from it is safe: deleted entries are simply skipped.
    for (const channel of this.#channels) {
      if (channel.client === null || channel.state !== ChannelState.Connected || !select(channel.client)) continue;
      channel.kick(reasonCode, cause, reasonString);
      n++;
    }
    return n;
  }

  /** Stops accepting and disconnects every client (v5: 0x8B server shutting down). */
  async close(): Promise<void> {
    this.#closing = true;
    const stopping = this.#listeners.map((l) => l.close());
    const channels = [...this.#channels];
    for (const channel of channels) channel.kick(ReasonCode.ServerShuttingDown, 'server-shutdown', 'server shutting down');
    // Let the DISCONNECTs leave before the sockets go.
    await new Promise((resolve) => setImmediate(resolve));
    for (const channel of channels) channel.transport.destroy();
    await Promise.all(stopping);
  }
}
