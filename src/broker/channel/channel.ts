import type { Packet } from 'mqtt-packet';
import type { Broker } from '../broker.ts';
import type { ClientInfo } from '../client-info.ts';
import type { TimerHandle } from '../clock.ts';
import { decodeAck, decodeControl, encodeAck, encodeControl, encodePingresp } from '../codec/control-codec.ts';
import { FrameReader, type FrameSink } from '../codec/frame-reader.ts';
import { PacketType } from '../codec/packet-type.ts';
import { decodePublish, encodePublish, packetIdOffset } from '../codec/publish-codec.ts';
import { decodeSubscribe, decodeUnsubscribe } from '../codec/subscribe-codec.ts';
import { ProtocolViolation, malformed, protocolError } from '../errors.ts';
import type { DisconnectCause } from '../hooks.ts';
import type { Message } from '../message.ts';
import { ReasonCode, isFailure } from '../reason-codes.ts';
import type { EncodingCache, Session, SessionLink } from '../session/session.ts';
import type { NamespaceStats } from '../stats.ts';
import type { Transport, TransportHandler } from '../transport/transport.ts';
import { AckQueue, type AckLink } from './ack-queue.ts';
import { handleConnect } from './handle-connect.ts';
import { handleDisconnect } from './handle-disconnect.ts';
import { handlePublish } from './handle-publish.ts';
import { handleSubscribe, handleUnsubscribe } from './handle-subscribe.ts';
import type { Will } from './will.ts';

export const enum ChannelState {
  AwaitingConnect,
  Authenticating,
  Connected,
  Closed,
}

const MAX_FRAMES_WHILE_AUTHENTICATING = 1000;

/**
 * One client connection: the MQTT protocol state machine between a transport and the broker.
 * `onFrame` is the single dispatcher: every packet goes through it, and it is the one place where a
 * protocol violation becomes a DISCONNECT with a reason code and a closed connection (nothing is
 * thrown past it). Packet families are handled in handle-*.ts.
 */
export class Channel implements TransportHandler, SessionLink, FrameSink, AckLink {
  readonly broker: Broker;
  readonly transport: Transport;
  state = ChannelState.AwaitingConnect;
  protocolVersion: 3 | 4 | 5 = 4;
  client: ClientInfo | null = null;
  session: Session | null = null;
  will: Will | null = null;
  sendQuota = 65_535;
  /** Largest packet the client accepts (MQTT 5 CONNECT maximum packet size). */
  clientMaximumPacketSize = Number.POSITIVE_INFINITY;
  /** Topic aliases the client set towards us. */
  aliasesIn: Map<number, string> | null = null;
  /** Topic aliases we assigned towards the client, and how many it allows. */
  aliasesOut: Map<string, number> | null = null;
  aliasOutMaximum = 0;
  keepaliveMs = 0;
  /** broker.clock.now() when the client last sent bytes (set by CONNECT before keep alive starts). */
  lastActivity = 0;
  /** Where this connection's traffic is counted (stats.ts): its namespace's from CONNECT on. */
  stats: NamespaceStats;

  readonly #reader: FrameReader;
  #connectTimer: TimerHandle | null = null;
  #keepaliveTimer: TimerHandle | null = null;
  #heldFrames: Array<[Buffer, number]> | null = null;
  /** The acknowledgements owed for inbound QoS 1/2 publishes, in order; also onPublish's AckControl. */
  readonly acks: AckQueue;

  constructor(broker: Broker, transport: Transport) {
    this.broker = broker;
    this.transport = transport;
    this.stats = broker.stats.unauthenticated;
    this.#reader = new FrameReader(this, broker.limits.maximumPacketSize);
    this.acks = new AckQueue(this, broker.limits.maxHeldAcks);
    this.#connectTimer = broker.clock.setTimeout(connectTimeout, broker.limits.connectTimeoutMs, this);
  }

  get remoteAddress(): string {
    return this.transport.remoteAddress;
  }

  // ---- inbound -------------------------------------------------------------------------------

  onData(chunk: Buffer): void {
    this.lastActivity = this.broker.clock.now();
    this.stats.bytesReceived += chunk.length;
    this.#reader.push(chunk);
  }

  onClose(): void {
    this.close('connection-lost');
  }

  onFrameError(reasonCode: number, message: string): void {
    this.#violation(new ProtocolViolation(reasonCode, message));
  }

  onFrame(frame: Buffer, bodyOffset: number): void {
    if (this.state === ChannelState.Closed) return;
    if (this.state === ChannelState.Authenticating) {
      this.#heldFrames ??= [];
      if (this.#heldFrames.length >= MAX_FRAMES_WHILE_AUTHENTICATING) {
        this.#violation(protocolError('too many packets sent before CONNACK'));
        return;
      }
      // The frame may be a slice of a socket chunk that gets reused; keep a copy.
      this.#heldFrames.push([Buffer.from(frame), bodyOffset]);
      return;
    }
    // Counted here, not above: a frame held during authentication comes through once more.
    this.stats.packetsReceived++;
    try {
      this.#dispatch(frame, bodyOffset);
    } catch (err) {
      this.#violation(err);
    }
  }

  #dispatch(frame: Buffer, bodyOffset: number): void {
    const type = frame[0]! >> 4;
    if (this.state === ChannelState.AwaitingConnect) {
      if (type !== PacketType.Connect) throw protocolError(`first packet must be CONNECT, got type ${type}`);
      this.#clearConnectTimer();
      handleConnect(this, frame, bodyOffset);
      return;
    }
    switch (type) {
      case PacketType.Publish:
        handlePublish(this, decodePublish(frame, bodyOffset, this.protocolVersion));
        return;
      case PacketType.Puback:
      case PacketType.Pubrec:
      case PacketType.Pubrel:
      case PacketType.Pubcomp:
        this.#handleAck(type, frame, bodyOffset);
        return;
      case PacketType.Pingreq:
        if ((frame[0]! & 0x0f) !== 0 || frame.length !== 2) throw malformed('PINGREQ with flags or a body');
        this.write(encodePingresp());
        return;
      case PacketType.Subscribe:
        handleSubscribe(this, decodeSubscribe(frame, bodyOffset, this.protocolVersion));
        return;
      case PacketType.Unsubscribe:
        handleUnsubscribe(this, decodeUnsubscribe(frame, bodyOffset, this.protocolVersion));
        return;
      case PacketType.Disconnect:
        handleDisconnect(this, this.#decode(frame, 'disconnect'));
        return;
      case PacketType.Connect:
        throw protocolError('second CONNECT on one connection');
      case PacketType.Auth:
        throw new ProtocolViolation(ReasonCode.BadAuthenticationMethod, 'enhanced authentication (AUTH) is not supported');
      default:
        throw protocolError(`a client may not send packet type ${type}`);
    }
  }

  #decode<C extends Packet['cmd']>(frame: Buffer, cmd: C): Extract<Packet, { cmd: C }> {
    const packet = decodeControl(frame, this.protocolVersion);
    if (packet.cmd !== cmd) throw malformed(`expected ${cmd}, decoded ${packet.cmd}`);
    return packet as Extract<Packet, { cmd: C }>;
  }

  /** PUBACK/PUBREC/PUBCOMP: the outbound QoS 1/2 flows of the session; PUBREL ends an inbound QoS 2 one (AckQueue). */
  #handleAck(type: number, frame: Buffer, bodyOffset: number): void {
    const packetId = decodeAck(frame, bodyOffset, this.protocolVersion);
    const reasonCode = frame.length > bodyOffset + 2 ? frame[bodyOffset + 2]! : ReasonCode.Success;
    const session = this.session!;
    switch (type) {
      case PacketType.Puback:
        session.acknowledgePuback(packetId);
        return;
      case PacketType.Pubrec:
        if (!session.acknowledgePubrec(packetId, isFailure(reasonCode))) {
          this.write(encodeAck(PacketType.Pubrel, packetId, this.protocolVersion, ReasonCode.PacketIdentifierNotFound));
        }
        return;
      case PacketType.Pubcomp:
        session.acknowledgePubcomp(packetId);
        return;
      case PacketType.Pubrel:
        this.acks.acknowledgePubrel(packetId);
        return;
    }
  }

  /** Called by handle-connect once the (possibly asynchronous) authentication is over. */
  resumeHeldFrames(): void {
    const held = this.#heldFrames;
    this.#heldFrames = null;
    if (held === null) return;
    for (const [frame, bodyOffset] of held) this.onFrame(frame, bodyOffset);
  }

  // ---- input flow control (AckLink) -----------------------------------------------------------

  get closed(): boolean {
    return this.state === ChannelState.Closed;
  }

  /** The ack queue holds maxHeldAcks: stop handing on frames (the rest of the chunk waits) and reading. */
  pauseInput(): void {
    this.#reader.hold();
    this.transport.pause();
  }

  resumeInput(): void {
    // The client kept sending while we did not read: its silence was ours, not a keepalive lapse.
    this.lastActivity = this.broker.clock.now();
    this.transport.resume();
    this.#reader.release();
  }

  // ---- outbound (SessionLink) ------------------------------------------------------------------

  sendPublish(message: Message, qos: 0 | 1 | 2, packetId: number, retain: boolean, dup: boolean, subscriptionIds: number[] | null, cache: EncodingCache | null): boolean {
    if (this.state !== ChannelState.Connected) return true;
    const v5 = this.protocolVersion === 5;
    let messageExpiry = -1;
    if (v5 && message.expiresAt !== 0) {
      messageExpiry = cache !== null ? cache.messageExpiry : Math.ceil((message.expiresAt - this.broker.clock.now()) / 1000);
      if (messageExpiry <= 0) return true; // expired: MQTT 5 §3.3.2.3.3, treat as delivered
    }
    let bytes: Buffer;
    if (cache !== null && subscriptionIds === null && !dup && this.aliasOutMaximum === 0) {
      const slot = (v5 ? 6 : 0) + qos * 2 + (retain ? 1 : 0);
      let shared = cache.encoded[slot];
      if (shared === undefined) {
        shared = encodePublish({ topic: message.topic, payload: message.payload, qos, retain, dup: false, packetId: qos > 0 ? 1 : 0, protocolVersion: this.protocolVersion, properties: message.properties, messageExpiry, subscriptionIds: null, topicAlias: 0 });
        cache.encoded[slot] = shared;
      }
      if (qos === 0) {
        bytes = shared;
      } else {
        bytes = Buffer.allocUnsafe(shared.length);
        shared.copy(bytes);
        bytes.writeUInt16BE(packetId, packetIdOffset(bytes));
      }
    } else {
      let topic = message.topic;
      let topicAlias = 0;
      if (this.aliasOutMaximum > 0) {
        const aliases = (this.aliasesOut ??= new Map());
        const known = aliases.get(topic);
        if (known !== undefined) {
          topicAlias = known;
          topic = '';
        } else if (aliases.size < this.aliasOutMaximum) {
          topicAlias = aliases.size + 1;
          aliases.set(topic, topicAlias);
        }
      }
      bytes = encodePublish({ topic, payload: message.payload, qos, retain, dup, packetId, protocolVersion: this.protocolVersion, properties: v5 ? message.properties : null, messageExpiry, subscriptionIds: v5 ? subscriptionIds : null, topicAlias });
    }
    if (bytes.length > this.clientMaximumPacketSize) return false;
    this.write(bytes);
    this.stats.publishSent[qos]!++;
    if (this.broker.tracingDeliveries) this.broker.emit('message.delivered', this.client!, message, qos);
    return true;
  }

  sendPubrel(packetId: number): void {
    if (this.state === ChannelState.Connected) this.write(encodeAck(PacketType.Pubrel, packetId, this.protocolVersion));
  }

  congested(): boolean {
    return this.transport.bufferedBytes() > this.broker.limits.maxSocketBufferBytes;
  }

  writePacket(packet: Packet): void {
    this.write(encodeControl(packet, this.protocolVersion));
  }

  /** Every packet to the client leaves here (one packet per call), counted in its namespace's stats. */
  write(bytes: Buffer): void {
    const stats = this.stats;
    stats.bytesSent += bytes.length;
    stats.packetsSent++;
    this.transport.write(bytes);
  }

  // ---- timers ----------------------------------------------------------------------------------

  startKeepalive(seconds: number): void {
    if (seconds === 0) return;
    // MQTT 5 §3.1.2.10: the server allows one and a half times the keep alive.
    this.keepaliveMs = seconds * 1500;
    this.#keepaliveTimer = this.broker.clock.setTimeout(keepaliveCheck, this.keepaliveMs, this);
  }

  checkKeepalive(): void {
    if (this.state !== ChannelState.Connected) return;
    // While we do not read, whatever the client sends waits unread: not its fault.
    const now = this.broker.clock.now();
    if (this.acks.inputPaused) this.lastActivity = now;
    const idle = now - this.lastActivity;
    if (idle >= this.keepaliveMs) {
      this.kick(ReasonCode.KeepAliveTimeout, 'keepalive-timeout', `no packet for ${idle} ms (keep alive ${this.keepaliveMs / 1500} s)`);
      return;
    }
    this.#keepaliveTimer = this.broker.clock.setTimeout(keepaliveCheck, this.keepaliveMs - idle, this);
  }

  #clearConnectTimer(): void {
    if (this.#connectTimer !== null) this.broker.clock.clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
  }

  // ---- ending ----------------------------------------------------------------------------------

  /** Server-initiated disconnect: v5 clients get DISCONNECT with the reason (MQTT 5 §3.14). */
  kick(reasonCode: number, cause: DisconnectCause, reasonString?: string): void {
    if (this.state === ChannelState.Closed) return;
    if (this.protocolVersion === 5 && this.state === ChannelState.Connected) {
      this.writePacket({ cmd: 'disconnect', reasonCode, properties: reasonString !== undefined ? { reasonString } : undefined } as Packet);
    }
    this.close(cause, reasonCode, reasonString);
  }

  #violation(err: unknown): void {
    if (this.state === ChannelState.Closed) return;
    // A ProtocolViolation is the client's fault (0x81, 0x82, ...). Anything else thrown while handling
    // a packet is ours: 0x83 for the client, and the error itself on the event stream, to be logged
    // and fixed (issue 14: 0x83 never stands for bad input).
    const ours = !(err instanceof ProtocolViolation);
    const violation = ours ? new ProtocolViolation(ReasonCode.ImplementationSpecificError, 'internal error, logged by the server') : err;
    this.broker.emit('client.error', this.client, {
      remoteAddress: this.remoteAddress,
      reasonCode: violation.reasonCode,
      message: ours ? `internal error: ${err instanceof Error ? err.message : String(err)}` : violation.message,
      ...(ours ? { fault: err } : {}),
    });
    const cause: DisconnectCause = violation.reasonCode === ReasonCode.PacketTooLarge ? 'packet-too-large' : 'protocol-error';
    this.kick(violation.reasonCode, cause, violation.message);
  }

  /** Ends the connection once; the broker settles the will and the session. */
  close(cause: DisconnectCause, reasonCode?: number, detail?: string): void {
    if (this.state === ChannelState.Closed) return;
    const wasConnected = this.state === ChannelState.Connected;
    this.state = ChannelState.Closed;
    this.#reader.stop();
    this.#clearConnectTimer();
    if (this.#keepaliveTimer !== null) this.broker.clock.clearTimeout(this.#keepaliveTimer);
    this.#keepaliveTimer = null;
    this.#heldFrames = null;
    this.transport.end();
    this.broker.connectionClosed(this, wasConnected, cause, reasonCode, detail);
  }
}

function connectTimeout(channel: Channel): void {
  if (channel.state === ChannelState.AwaitingConnect) channel.close('connect-timeout');
}

function keepaliveCheck(channel: Channel): void {
  channel.checkKeepalive();
}
