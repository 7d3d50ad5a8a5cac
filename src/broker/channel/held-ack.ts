import type { DurabilityBarrier, DurableWaiter } from '../durability.ts';
import type { AckControl, PublishAck } from '../hooks.ts';
import { ReasonCode, isFailure } from '../reason-codes.ts';
import type { Channel } from './channel.ts';

/** `HeldAck.code` while a hook still decides. */
export const UNDECIDED = -1;
/** `HeldAck.code` of a refused v3 publish: nothing is sent, so the client publishes again. */
export const NO_ACK = -2;

/**
 * A PUBACK/PUBREC in the channel's queue of acknowledgements, which leave in the order their publishes
 * came in (MQTT 5 §4.6): held while a hook (authorizePublish, onPublish) decides, or already decided
 * and waiting behind one that is held.
 *
 * It may also wait for the broker's stores (SPEC §2: a retained QoS 1/2 message, or one queued for a
 * persistent session, is durable before its PUBACK/PUBREC): `awaitStore` once per store the publish
 * wrote to, before the verdict can arrive. The ack is decided when the verdict (`settle`) and every
 * store (`durable`) are in; the first failure of either decides it at once (refused).
 */
export class HeldAck implements PublishAck, DurableWaiter {
  readonly channel: Channel;
  readonly type: number;
  readonly packetId: number;
  readonly qos: number;
  code: number;
  /** The verdict's success code while stores are still writing; UNDECIDED until `settle`. */
  #verdict = UNDECIDED;
  /** Store batches still to commit. */
  #writes = 0;

  constructor(channel: Channel, type: number, packetId: number, qos: number, code: number) {
    this.channel = channel;
    this.type = type;
    this.packetId = packetId;
    this.qos = qos;
    this.code = code;
  }

  /**
   * The hook's verdict, once (later calls are ignored): a success code acknowledges (and a QoS 2
   * publish is then remembered against resends); a failure code is sent to v5 clients, while v3
   * clients get nothing and resend.
   */
  settle(code: number): void {
    if (this.code !== UNDECIDED || this.#verdict !== UNDECIDED) return;
    if (this.#writes > 0 && !isFailure(code)) {
      this.#verdict = code;
      return;
    }
    this.#decide(code);
  }

  /** Waits for what the publish wrote to `store` (call before the verdict can arrive). */
  awaitStore(store: DurabilityBarrier): void {
    this.#writes++;
    store.whenDurable(this);
  }

  /** A store's batch is in: committed (true) or lost (false, the ack is refused: 0x80 for v5). */
  durable(ok: boolean): void {
    if (this.code !== UNDECIDED) return;
    if (!ok) this.#decide(ReasonCode.UnspecifiedError);
    else if (--this.#writes === 0 && this.#verdict !== UNDECIDED) this.#decide(this.#verdict);
  }

  #decide(code: number): void {
    const channel = this.channel;
    if (isFailure(code)) {
      channel.settleAck(this, channel.protocolVersion === 5 ? code : NO_ACK);
      return;
    }
    if (this.qos === 2 && channel.session !== null) channel.session.addInboundQos2(this.packetId);
    channel.settleAck(this, code);
  }
}

/**
 * The AckControl a channel hands its onPublish hook: `hold` works only while the hook runs, for the
 * QoS 1/2 publish being handled. One per channel, reused for every publish.
 */
export class PublishAcks implements AckControl {
  readonly #channel: Channel;
  #open = false;
  #type = 0;
  #packetId = 0;
  #qos = 0;
  /** A slot the publish already holds (an asynchronous authorizePublish, or the stores' writes, reserved it). */
  #reserved: HeldAck | null = null;
  #held: HeldAck | null = null;

  constructor(channel: Channel) {
    this.#channel = channel;
  }

  hold(): PublishAck | null {
    if (!this.#open || this.#qos === 0) return null;
    this.#held ??= this.#reserved ?? this.#channel.holdAck(this.#type, this.#packetId, this.#qos);
    return this.#held;
  }

  /** Opens `hold` for one publish, for the length of one hook call. */
  open(type: number, packetId: number, qos: number, reserved: HeldAck | null): void {
    this.#open = true;
    this.#type = type;
    this.#packetId = packetId;
    this.#qos = qos;
    this.#reserved = reserved;
    this.#held = null;
  }

  /** Closes `hold`; returns the acknowledgement the hook took, if it took it. */
  close(): HeldAck | null {
    const held = this.#held;
    this.#open = false;
    this.#reserved = null;
    this.#held = null;
    return held;
  }
}
