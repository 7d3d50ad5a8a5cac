/**
 * The acknowledgements a connection owes its client for inbound QoS 1/2 publishes: PUBACK, PUBREC,
 * and PUBCOMP for PUBREL. Every rule about them is here:
 *
 * - Order: acks leave in the order their publishes came in (MQTT 5 §4.6), whoever decides first. An
 *   ack not decided yet (an asynchronous authorizePublish, an onPublish hook that holds it or answers
 *   with a promise, a store write still to commit) keeps its place as a `HeldAck`; acks decided
 *   behind it wait in the same queue.
 * - Codes: v5 gets the reason code (MQTT 5 §3.4.2.1, §3.5.2.1). v3 cannot be told no (3.1.1 §3.4,
 *   §3.5): a publish refused by authorization is acknowledged anyway (resending it never passes,
 *   `refuse`); one refused by a hook or lost by a store gets no ack, so the client resends it
 *   (3.1.1 §4.4).
 * - QoS 2: a PUBREC with a success code, decided by the hook path, remembers the packet id (MQTT 5
 *   §4.3.3) so a resent PUBLISH is acknowledged again without being delivered twice; PUBREL forgets
 *   it and gets PUBCOMP (0x92 to v5 when the id was unknown).
 * - Durability (SPEC §2): a publish that wrote a retained message or a copy queued for a persistent
 *   session holds its ack until each store has committed (`HeldAck.awaitStore`). The ack is decided
 *   when the verdict and every store are in; the first failure refuses it (0x80).
 * - Input flow control: at `maxHeldAcks` acks in the queue the connection stops reading
 *   (`AckLink.pauseInput`) until half of them have left. v3 clients have no receive maximum; this
 *   bounds them as v5 clients are told.
 * - Receive maximum (MQTT 5 §3.3.4): `unacknowledged` counts the publishes whose ack is still owed.
 *
 * Cost: an ack decided at once with nothing held before it is written at once, no object. A held or
 * queued ack is one HeldAck in a RingQueue (reused slots, not an array that shift reallocates: see
 * ring-queue.ts). The queue is also the AckControl its onPublish hook gets, so a hook that holds the
 * ack costs no promise or closure per message (DEVELOPERS.md, the data path under load); only a hook
 * that answers with a promise pays for one. One AckQueue per connection.
 */
import { RingQueue } from '../../ring-queue.ts';
import type { ClientInfo } from '../client-info.ts';
import { encodeAck } from '../codec/control-codec.ts';
import { PacketType } from '../codec/packet-type.ts';
import type { DurabilityBarrier, DurableWaiter } from '../durability.ts';
import type { AckControl, BrokerHooks, PublishAck } from '../hooks.ts';
import type { Message } from '../message.ts';
import { ReasonCode, isFailure } from '../reason-codes.ts';
import type { Session } from '../session/session.ts';

/** `HeldAck.code` while a hook or a store still decides. */
const UNDECIDED = -1;
/** `HeldAck.code` of a refused v3 publish: nothing is sent, so the client publishes again. */
const NO_ACK = -2;

/** What the queue needs of its connection (the Channel; a fake in tests). */
export interface AckLink {
  readonly protocolVersion: 3 | 4 | 5;
  /** Remembers the QoS 2 packet ids received; null before CONNECT. */
  readonly session: Pick<Session, 'addInboundQos2' | 'removeInboundQos2'> | null;
  /** Once true, acks decided later are dropped and input is not resumed. */
  readonly closed: boolean;
  /** Sends one packet to the client. */
  write(bytes: Buffer): void;
  /** Stops reading frames and the socket. */
  pauseInput(): void;
  /** Reads again. */
  resumeInput(): void;
}

/** A connection's acknowledgements in order, and the AckControl its onPublish hook gets (see above). */
export class AckQueue implements AckControl {
  readonly #link: AckLink;
  readonly #maxHeld: number;
  /** 8 slots on the first held ack: most connections never hold one (it doubles under load). */
  readonly #pending = new RingQueue<HeldAck>(8);
  #unacknowledged = 0;
  #inputPaused = false;
  /** `hold` is lent to onPublish only while it runs, for the publish it handles. */
  #lent = false;
  #lentQos = 0;
  #lentPacketId = 0;
  /** The slot the lent publish already holds (an asynchronous authorizePublish, or the stores, reserved it). */
  #lentReserved: HeldAck | null = null;
  /** What the hook took with `hold`; null again once it returns. */
  #taken: HeldAck | null = null;

  /** `maxHeldAcks`: acks in the queue at which input pauses (BrokerLimits). */
  constructor(link: AckLink, maxHeldAcks: number) {
    this.#link = link;
    this.#maxHeld = maxHeldAcks;
  }

  /** QoS 1/2 publishes received whose ack has not left yet (v3 no-acks included until decided). */
  get unacknowledged(): number {
    return this.#unacknowledged;
  }

  /** Reading is stopped because `maxHeldAcks` acks are held: the client's silence is ours. */
  get inputPaused(): boolean {
    return this.#inputPaused;
  }

  /** A QoS 1/2 publish came in: its ack is now owed. */
  received(): void {
    this.#unacknowledged++;
  }

  /** A resent QoS 2 publish already received: PUBREC again, deliver nothing (MQTT 5 §4.3.3). */
  acknowledgeResent(packetId: number): void {
    this.#unacknowledged++;
    this.#send(2, packetId, ReasonCode.Success);
  }

  /** Reserves the place of an ack decided later (`HeldAck.settle`, `HeldAck.awaitStore`). */
  reserve(qos: number, packetId: number): HeldAck {
    const held = new HeldAck(this, qos, packetId);
    this.#pending.push(held);
    if (this.#pending.length >= this.#maxHeld && !this.#inputPaused) {
      this.#inputPaused = true;
      this.#link.pauseInput();
    }
    return held;
  }

  /**
   * A publish authorizePublish refused: v5 gets `code`; v3 is acknowledged so it does not resend
   * what will never pass. A QoS 2 id is not remembered: the PUBREL then finds nothing.
   */
  refuse(qos: number, packetId: number, code: number, reserved: HeldAck | null): void {
    if (qos === 0) return;
    const ackCode = this.#link.protocolVersion === 5 ? code : ReasonCode.Success;
    if (reserved !== null) this.#release(reserved, ackCode);
    else this.#send(qos, packetId, ackCode);
  }

  /**
   * Runs onPublish with `hold` lent for this publish, then decides the ack from its answer: the hook
   * took it (it settles it), a code or nothing (Success), a promise (its code; a rejection is 0x80),
   * or a throw (0x80). QoS 0 has no ack: the answer is ignored.
   */
  runHook(hook: NonNullable<BrokerHooks['onPublish']>, client: ClientInfo, message: Message, packetId: number, reserved: HeldAck | null): void {
    const qos = message.qos;
    this.#lent = true;
    this.#lentQos = qos;
    this.#lentPacketId = packetId;
    this.#lentReserved = reserved;
    let threw = false;
    let outcome: ReturnType<typeof hook>;
    try {
      outcome = hook(client, message, this);
    } catch {
      threw = true;
      outcome = ReasonCode.UnspecifiedError;
    }
    const taken = this.#taken;
    this.#lent = false;
    this.#lentReserved = null;
    this.#taken = null;
    if (taken !== null) {
      // The hook holds the ack and settles it; had it thrown, it never would.
      if (threw) taken.settle(ReasonCode.UnspecifiedError);
      return;
    }
    if (qos === 0) return;
    if (!(outcome instanceof Promise)) {
      this.answer(qos, packetId, outcome ?? ReasonCode.Success, reserved);
      return;
    }
    const slot = reserved ?? this.reserve(qos, packetId);
    outcome.then(
      (code) => slot.settle(code ?? ReasonCode.Success),
      () => slot.settle(ReasonCode.UnspecifiedError),
    );
  }

  /** AckControl for onPublish: takes the ack of the publish being handled; null for QoS 0 or outside the hook. */
  hold(): PublishAck | null {
    if (!this.#lent || this.#lentQos === 0) return null;
    this.#taken ??= this.#lentReserved ?? this.reserve(this.#lentQos, this.#lentPacketId);
    return this.#taken;
  }

  /** The routed publish's verdict, known now (QoS 1/2): settles `reserved`, or acks in order. */
  answer(qos: number, packetId: number, code: number, reserved: HeldAck | null): void {
    if (reserved !== null) reserved.settle(code);
    else if (!isFailure(code)) {
      if (qos === 2) this.#link.session!.addInboundQos2(packetId);
      this.#send(qos, packetId, code);
    } else {
      // A refusal takes a place like a held ack would: v3's no-ack must not overtake the ones before.
      this.reserve(qos, packetId).settle(code);
    }
  }

  /** PUBREL: forgets the QoS 2 id and sends PUBCOMP (MQTT 5 §4.3.3); v5 hears 0x92 if it was unknown. */
  acknowledgePubrel(packetId: number): void {
    const link = this.#link;
    const known = link.session!.removeInboundQos2(packetId);
    const code = known || link.protocolVersion < 5 ? ReasonCode.Success : ReasonCode.PacketIdentifierNotFound;
    link.write(encodeAck(PacketType.Pubcomp, packetId, link.protocolVersion, code));
  }

  /** HeldAck's verdict, once: a failure is v5's code or v3's no-ack; a QoS 2 success remembers the id. */
  decide(held: HeldAck, code: number): void {
    const link = this.#link;
    if (isFailure(code)) {
      this.#release(held, link.protocolVersion === 5 ? code : NO_ACK);
      return;
    }
    if (held.qos === 2 && link.session !== null) link.session.addInboundQos2(held.packetId);
    this.#release(held, code);
  }

  /** Sends an ack now, or queued behind those still held (MQTT 5 §4.6). */
  #send(qos: number, packetId: number, code: number): void {
    if (this.#pending.length === 0) this.#write(qos, packetId, code);
    else {
      const queued = new HeldAck(this, qos, packetId);
      queued.code = code; // decided, waiting its turn
      this.#pending.push(queued);
    }
  }

  /** Decides `held` (a code, or NO_ACK) and sends every decided ack at the head of the queue. */
  #release(held: HeldAck, code: number): void {
    held.code = code;
    const link = this.#link;
    const pending = this.#pending;
    while (pending.length > 0 && pending.at(0)!.code !== UNDECIDED) {
      const head = pending.shift()!;
      if (link.closed) continue;
      if (head.code === NO_ACK) this.#unacknowledged--;
      else this.#write(head.qos, head.packetId, head.code);
    }
    if (this.#inputPaused && pending.length <= this.#maxHeld / 2 && !link.closed) {
      this.#inputPaused = false;
      link.resumeInput();
    }
  }

  #write(qos: number, packetId: number, code: number): void {
    this.#unacknowledged--;
    const link = this.#link;
    link.write(encodeAck(qos === 2 ? PacketType.Pubrec : PacketType.Puback, packetId, link.protocolVersion, code));
  }
}

/**
 * An ack in the queue: held while a hook or a store decides, or decided and waiting behind one that
 * is. It waits for the verdict (`settle`) and for every store the publish wrote to (`awaitStore`,
 * before the verdict can arrive); the first failure of either decides it at once.
 */
export class HeldAck implements PublishAck, DurableWaiter {
  readonly #queue: AckQueue;
  readonly qos: number;
  readonly packetId: number;
  /** The code to send, NO_ACK, or UNDECIDED. */
  code = UNDECIDED;
  /** The verdict's success code while stores are still writing; UNDECIDED until `settle`. */
  #verdict = UNDECIDED;
  /** Store batches still to commit. */
  #writes = 0;

  constructor(queue: AckQueue, qos: number, packetId: number) {
    this.#queue = queue;
    this.qos = qos;
    this.packetId = packetId;
  }

  /** The verdict, once (later calls are ignored): Success or a failure code (see AckQueue). */
  settle(code: number): void {
    if (this.code !== UNDECIDED || this.#verdict !== UNDECIDED) return;
    if (this.#writes > 0 && !isFailure(code)) {
      this.#verdict = code;
      return;
    }
    this.#queue.decide(this, code);
  }

  /** Waits for what the publish wrote to `store` (call before the verdict can arrive). */
  awaitStore(store: DurabilityBarrier): void {
    this.#writes++;
    store.whenDurable(this);
  }

  /** A store's batch is in: committed (true) or lost (false, the ack is refused: 0x80 for v5). */
  durable(ok: boolean): void {
    if (this.code !== UNDECIDED) return;
    if (!ok) this.#queue.decide(this, ReasonCode.UnspecifiedError);
    else if (--this.#writes === 0 && this.#verdict !== UNDECIDED) this.#queue.decide(this, this.#verdict);
  }
}
