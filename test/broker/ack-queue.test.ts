/**
 * AckQueue (src/broker/channel/ack-queue.ts) driven without sockets: a fake AckLink records the bytes
 * the queue writes and when it pauses or resumes input. Each test asserts the exact acks, in order.
 * The wire tests (v5-flow, v3-semantics, durable-acks, limits-and-bad-input) cover the same rules
 * through a real broker.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AckQueue, type AckLink } from '../../src/broker/channel/ack-queue.ts';
import type { ClientInfo } from '../../src/broker/client-info.ts';
import type { DurabilityBarrier, DurableWaiter } from '../../src/broker/durability.ts';
import type { AckControl, BrokerHooks } from '../../src/broker/hooks.ts';
import type { Message } from '../../src/broker/message.ts';

const NAMES: Record<number, string> = { 4: 'PUBACK', 5: 'PUBREC', 7: 'PUBCOMP' };

class FakeLink implements AckLink {
  protocolVersion: 3 | 4 | 5;
  closed = false;
  readonly inboundQos2 = new Set<number>();
  readonly session = {
    addInboundQos2: (id: number): void => void this.inboundQos2.add(id),
    removeInboundQos2: (id: number): boolean => this.inboundQos2.delete(id),
  };
  readonly written: Buffer[] = [];
  write(bytes: Buffer): void {
    this.written.push(bytes);
  }
  /** 'pause' and 'resume', in the order they were asked for. */
  readonly input: string[] = [];

  constructor(protocolVersion: 3 | 4 | 5) {
    this.protocolVersion = protocolVersion;
  }

  pauseInput(): void {
    this.input.push('pause');
  }

  resumeInput(): void {
    this.input.push('resume');
  }

  /** The acks written since the last call, as 'PUBACK 1 0x00' (v3 acks carry no code: 0x00). */
  sent(): string[] {
    return this.written.splice(0).map((b) => `${NAMES[b[0]! >> 4]} ${b.readUInt16BE(2)} 0x${(b[1] === 3 ? b[4]! : 0).toString(16).padStart(2, '0')}`);
  }
}

/** A store whose batch commits when the test says so. */
class FakeStore implements DurabilityBarrier {
  readonly #waiters: DurableWaiter[] = [];
  whenDurable(waiter: DurableWaiter): void {
    this.#waiters.push(waiter);
  }
  commit(ok: boolean): void {
    for (const waiter of this.#waiters.splice(0)) waiter.durable(ok);
  }
}

const client = {} as ClientInfo;
function message(qos: 0 | 1 | 2): Message {
  return { topic: 't', payload: Buffer.alloc(0), qos, retain: false, properties: null, expiresAt: 0, origin: '' } as unknown as Message;
}

function setup(protocolVersion: 3 | 4 | 5, maxHeldAcks = 1000): { link: FakeLink; acks: AckQueue } {
  const link = new FakeLink(protocolVersion);
  return { link, acks: new AckQueue(link, maxHeldAcks) };
}

describe('AckQueue', () => {
  test('an ack decided at once with nothing held leaves at once, with exact bytes', () => {
    const { link, acks } = setup(5);
    acks.received();
    acks.answer(1, 1, 0, null);
    acks.received();
    acks.answer(1, 2, 0x99, null);
    assert.deepEqual(link.written, [Buffer.from([0x40, 2, 0, 1]), Buffer.from([0x40, 3, 0, 2, 0x99])]);
    assert.equal(acks.unacknowledged, 0);
  });

  test('acks leave in arrival order (MQTT 5 §4.6): decided ones wait behind a held one', () => {
    const { link, acks } = setup(5);
    for (let id = 1; id <= 4; id++) acks.received();
    const first = acks.reserve(1, 1);
    acks.answer(2, 2, 0, null);
    const third = acks.reserve(1, 3);
    acks.answer(1, 4, 0x97, null);
    third.settle(0x80);
    assert.deepEqual(link.sent(), []);
    first.settle(0);
    assert.deepEqual(link.sent(), ['PUBACK 1 0x00', 'PUBREC 2 0x00', 'PUBACK 3 0x80', 'PUBACK 4 0x97']);
    first.settle(0x80); // a second verdict is ignored
    assert.deepEqual(link.sent(), []);
    assert.equal(acks.unacknowledged, 0);
  });

  test('v3: a refused verdict sends nothing (the client resends), and the acks behind it still leave', () => {
    const { link, acks } = setup(4);
    for (let id = 1; id <= 3; id++) acks.received();
    const first = acks.reserve(2, 1);
    acks.answer(1, 2, 0x80, null);
    acks.answer(1, 3, 0, null);
    first.settle(0x99);
    assert.deepEqual(link.sent(), ['PUBACK 3 0x00']);
    assert.deepEqual([...link.inboundQos2], [], 'a refused QoS 2 id is not remembered');
    assert.equal(acks.unacknowledged, 0);
  });

  test('a publish refused by authorization: v5 gets the code, v3 an ack anyway; the QoS 2 id is not remembered', () => {
    for (const [version, expected] of [[5, ['PUBREC 1 0x87', 'PUBACK 2 0x87']], [4, ['PUBREC 1 0x00', 'PUBACK 2 0x00']]] as const) {
      const { link, acks } = setup(version);
      acks.received();
      acks.received();
      const held = acks.reserve(2, 1);
      acks.refuse(1, 2, 0x87, null);
      acks.refuse(2, 1, 0x87, held);
      acks.refuse(0, 3, 0x87, null);
      assert.deepEqual(link.sent(), expected, `v${version}`);
      assert.equal(link.inboundQos2.size, 0);
    }
  });

  test('QoS 2 (MQTT 5 §4.3.3): a success PUBREC remembers the id, a resend is acknowledged again, PUBREL forgets it', () => {
    const { link, acks } = setup(5);
    acks.received();
    acks.answer(2, 7, 0, null);
    acks.received();
    acks.reserve(2, 8).settle(0);
    assert.deepEqual([...link.inboundQos2], [7, 8]);
    acks.acknowledgeResent(7);
    acks.acknowledgePubrel(7);
    acks.acknowledgePubrel(7);
    assert.deepEqual(link.sent(), ['PUBREC 7 0x00', 'PUBREC 8 0x00', 'PUBREC 7 0x00', 'PUBCOMP 7 0x00', 'PUBCOMP 7 0x92']);
    assert.deepEqual([...link.inboundQos2], [8]);
    const v3 = setup(4);
    v3.acks.acknowledgePubrel(9);
    assert.deepEqual(v3.link.sent(), ['PUBCOMP 9 0x00'], 'v3 has no 0x92');
  });

  test('durability (SPEC §2): the ack waits for the verdict and every store; a lost batch refuses it', () => {
    const { link, acks } = setup(5);
    const retained = new FakeStore();
    const sessions = new FakeStore();
    for (let id = 1; id <= 3; id++) acks.received();
    const first = acks.reserve(1, 1);
    first.awaitStore(retained);
    first.awaitStore(sessions);
    const second = acks.reserve(2, 2);
    second.awaitStore(sessions);
    const third = acks.reserve(1, 3);
    third.awaitStore(retained);
    first.settle(0);
    second.settle(0);
    third.settle(0);
    retained.commit(true);
    assert.deepEqual(link.sent(), [], 'the first still waits for the session store');
    sessions.commit(true);
    assert.deepEqual(link.sent(), ['PUBACK 1 0x00', 'PUBREC 2 0x00', 'PUBACK 3 0x00']);
    assert.deepEqual([...link.inboundQos2], [2]);

    acks.received();
    acks.received();
    const lost = acks.reserve(1, 4);
    lost.awaitStore(retained);
    lost.settle(0);
    const refused = acks.reserve(1, 5);
    refused.awaitStore(retained);
    refused.settle(0x99);
    assert.deepEqual(link.sent(), [], 'a refusal is decided at once, behind the one still writing');
    retained.commit(false);
    assert.deepEqual(link.sent(), ['PUBACK 4 0x80', 'PUBACK 5 0x99']);
  });

  test('input flow control: pauses at maxHeldAcks in the queue, resumes once half have left', () => {
    const { link, acks } = setup(5, 4);
    const held = [1, 2, 3, 4, 5].map((id) => {
      acks.received();
      return acks.reserve(1, id);
    });
    assert.deepEqual(link.input, ['pause']);
    assert.equal(acks.inputPaused, true);
    held[1]!.settle(0);
    held[0]!.settle(0);
    assert.deepEqual(link.input, ['pause'], '3 left > 4 / 2');
    held[2]!.settle(0);
    assert.deepEqual(link.input, ['pause', 'resume']);
    assert.equal(acks.inputPaused, false);
    assert.deepEqual(link.sent(), ['PUBACK 1 0x00', 'PUBACK 2 0x00', 'PUBACK 3 0x00']);
  });

  test('once the connection is closed, decided acks are dropped and input stays paused', () => {
    const { link, acks } = setup(5, 2);
    acks.received();
    acks.received();
    const first = acks.reserve(1, 1);
    acks.reserve(1, 2).settle(0);
    link.closed = true;
    first.settle(0);
    assert.deepEqual(link.sent(), []);
    assert.deepEqual(link.input, ['pause']);
  });

  describe('runHook: the onPublish answer becomes the ack', () => {
    /** Runs one QoS `qos` publish with packet id `id` through `hook`. */
    function run(acks: AckQueue, qos: 0 | 1 | 2, id: number, hook: (acks: AckControl) => ReturnType<NonNullable<BrokerHooks['onPublish']>>): void {
      if (qos > 0) acks.received();
      acks.runHook((_client, _message, control) => hook(control), client, message(qos), id, null);
    }

    test('held, a code, nothing, a promise, a rejection and a throw, in arrival order', async () => {
      const { link, acks } = setup(5);
      let later: ((code: number) => void) | null = null;
      run(acks, 1, 1, (control) => {
        const ack = control.hold()!;
        later = (code) => ack.settle(code);
      });
      run(acks, 1, 2, () => 0x99);
      run(acks, 2, 3, () => undefined);
      run(acks, 1, 4, () => Promise.resolve(0x97));
      run(acks, 1, 5, () => Promise.reject(new Error('hook failed')));
      run(acks, 1, 6, () => {
        throw new Error('hook threw');
      });
      run(acks, 1, 7, (control) => {
        control.hold();
        throw new Error('hook threw holding the ack');
      });
      await Promise.resolve();
      assert.deepEqual(link.sent(), []);
      later!(0);
      assert.deepEqual(link.sent(), ['PUBACK 1 0x00', 'PUBACK 2 0x99', 'PUBREC 3 0x00', 'PUBACK 4 0x97', 'PUBACK 5 0x80', 'PUBACK 6 0x80', 'PUBACK 7 0x80']);
      assert.equal(acks.unacknowledged, 0);
    });

    test('hold() is null for QoS 0 and outside the hook; a reserved slot is the one the hook gets', () => {
      const { link, acks } = setup(5);
      let taken: unknown = 'not called';
      run(acks, 0, 0, (control) => {
        taken = control.hold();
        return 0x80;
      });
      assert.equal(taken, null);
      assert.equal(acks.hold(), null);
      acks.received();
      const reserved = acks.reserve(1, 1);
      acks.runHook((_client, _message, control) => void (taken = control.hold()), client, message(1), 1, reserved);
      assert.equal(taken, reserved);
      reserved.settle(0);
      assert.deepEqual(link.sent(), ['PUBACK 1 0x00']);
    });
  });
});
