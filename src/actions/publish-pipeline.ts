/**
 * The MQTT data path (SPEC §2, §5): the broker's `onPublish` hook of a platform node, which stores a
 * device's publish in its bucket when the account has an active `insert_bucket` action for the topic
 * whose scope includes the device, or when the topic is the reserved `tago/data/post`. server.ts
 * sets it beside tenancy's hooks (authentication, authorizePublish); it is the only onPublish.
 *
 * The other `mqtt_topic` actions matching the publish (mqtt_publish, http_post, script) go to the
 * action runner's queue (runner.ts), once each: after the records are stored or refused when the
 * publish is being stored (so after its acknowledgement), else at once. They never hold the ack.
 *
 * Per publish, without any database query: the client's identity (set at CONNECT), one Map lookup
 * for the account's action index (most accounts: none, done), the device from the in-memory cache,
 * one trie match. The message is stored at most once, however many filters or actions match: every
 * insert_bucket action writes the same records into the same bucket.
 *
 * Acknowledgement (SPEC §5): for QoS 1/2 the hook takes the PUBACK/PUBREC with `acks.hold()` and
 * hands it to the Ingestor with the message (`PublishTag`); a long-lived `PublishReceiver` settles it
 * when the records are committed, so the ack waits for durability with no promise or closure per
 * message (DEVELOPERS.md, the data path under load). Invalid records: v5 gets 0x99 (payload format
 * invalid); v3 is acknowledged (it cannot be told no, and resending a bad record never helps). Busy
 * payload parsers or a store failure: 0x80, which v5 receives and which leaves v3 unacknowledged so
 * the client resends (the broker's AckQueue, src/broker/channel/ack-queue.ts, applies these rules
 * and keeps the client's acks in order). QoS 0 is fire and forget; failures are logged.
 */
import type { ClientInfo } from '../broker/client-info.ts';
import type { AckControl, BrokerHooks, PublishAck } from '../broker/hooks.ts';
import type { Message } from '../broker/message.ts';
import { ReasonCode } from '../broker/reason-codes.ts';
import type { DeviceCache } from '../data/device-cache.ts';
import type { IngestReceiver, Ingestor } from '../data/ingest.ts';
import { RejectedMessageError } from '../data/rejected-message.ts';
import { ParserBusyError } from '../parser/payload-parsers.ts';
import type { Logger } from '../log.ts';
import { countActionFailure, countActionRun } from '../metrics/platform-counts.ts';
import type { ClientIdentity } from '../tenancy/mqtt-access.ts';
import type { CompiledAction } from './action-index.ts';
import type { ActionStore } from './action-store.ts';
import { runDevice, type ActionRunner } from './runner.ts';
import type { RunDevice } from './run-context.ts';

/** Legacy clients publish here to store into their own bucket, no action needed (SPEC §2). */
export const DATA_POST_TOPIC = 'tago/data/post';

export interface PublishPipelineDeps {
  actions: ActionStore;
  devices: DeviceCache;
  ingestor: Ingestor;
  log: Logger;
  /** Runs the other action types; absent: only insert_bucket actions act. */
  runner?: Pick<ActionRunner, 'submit'>;
}

export type OnPublish = NonNullable<BrokerHooks['onPublish']>;

export function createPublishPipeline(deps: PublishPipelineDeps): OnPublish {
  const { actions, devices, ingestor } = deps;
  const runner = deps.runner ?? null;
  const receiver = new PublishReceiver(deps.log, runner);
  const topics = new TopicMetadata();

  return function onPublish(client: ClientInfo, message: Message, acks: AckControl): void {
    const who = client.data as ClientIdentity | undefined;
    const deviceId = who?.deviceId;
    if (deviceId === undefined || deviceId === null) return; // anonymous clients have no bucket
    const topic = message.topic;
    const dataPost = topic === DATA_POST_TOPIC;
    const index = actions.indexOf(who!.accountId);
    if (index === null && !dataPost) return;
    const device = devices.get(deviceId);
    if (device === null || !device.active) return;
    let runs: TopicRuns | null = null;
    if (runner !== null && index !== null && index.hasRunnable) {
      const matched = index.matches(topic, device, true);
      if (matched.length > 0) runs = new TopicRuns(who!.accountId, runDevice(device), topic, message.payload, matched);
    }
    if (!dataPost && index!.firstMatch(topic, device, 'insert_bucket') === null) {
      if (runs !== null) runs.submit(runner!);
      return;
    }
    if (!dataPost) countActionRun('insert_bucket');

    // QoS 1/2: the acknowledgement waits until the records are durable (or refused).
    const ack = acks.hold();
    ingestor.submitBytes(deviceId, message.payload, { metadata: topics.of(topic), via: 'mqtt' }, receiver, new PublishTag(deviceId, topic, client.protocolVersion === 5, ack, runs));
  };
}

/** The runner's actions matched by one publish, waiting for its records to be stored. */
class TopicRuns {
  readonly #accountId: string;
  readonly #device: RunDevice;
  readonly #topic: string;
  readonly #payload: Buffer;
  readonly #actions: readonly CompiledAction[];

  constructor(accountId: string, device: RunDevice, topic: string, payload: Buffer, actions: readonly CompiledAction[]) {
    this.#accountId = accountId;
    this.#device = device;
    this.#topic = topic;
    this.#payload = payload;
    this.#actions = actions;
  }

  submit(runner: Pick<ActionRunner, 'submit'>): void {
    for (let i = 0; i < this.#actions.length; i++) {
      runner.submit({ accountId: this.#accountId, action: this.#actions[i]!.action, trigger: 'mqtt_topic', device: this.#device, topic: this.#topic, payload: this.#payload, test: false, depth: 0 });
    }
  }
}

/** Most topics whose metadata object is kept; past it the cache starts over. */
const TOPIC_CACHE_SIZE = 4096;

/**
 * The metadata of records stored from a topic (SPEC §5: `metadata.mqtt_topic`), one frozen object per
 * topic: the data path shares a frozen object instead of copying it for every message, and the
 * stores serialize it once (metadata-json.ts).
 */
class TopicMetadata {
  readonly #byTopic = new Map<string, Readonly<{ mqtt_topic: string }>>();

  of(topic: string): Readonly<{ mqtt_topic: string }> {
    let metadata = this.#byTopic.get(topic);
    if (metadata === undefined) {
      if (this.#byTopic.size >= TOPIC_CACHE_SIZE) this.#byTopic.clear();
      metadata = Object.freeze({ mqtt_topic: topic });
      this.#byTopic.set(topic, metadata);
    }
    return metadata;
  }
}

/** One stored publish: what its outcome is logged with, and the acknowledgement it decides (QoS 1/2). */
class PublishTag {
  readonly deviceId: string;
  readonly topic: string;
  readonly v5: boolean;
  readonly ack: PublishAck | null;
  /** Other actions to run once the records are stored or refused. */
  readonly runs: TopicRuns | null;

  constructor(deviceId: string, topic: string, v5: boolean, ack: PublishAck | null, runs: TopicRuns | null) {
    this.deviceId = deviceId;
    this.topic = topic;
    this.v5 = v5;
    this.ack = ack;
    this.runs = runs;
  }
}

/** Turns every stored publish's outcome into its reason code (see the module comment), logging failures. */
class PublishReceiver implements IngestReceiver<PublishTag> {
  readonly #log: Logger;
  readonly #runner: Pick<ActionRunner, 'submit'> | null;

  constructor(log: Logger, runner: Pick<ActionRunner, 'submit'> | null) {
    this.#log = log;
    this.#runner = runner;
  }

  stored(tag: PublishTag): void {
    tag.ack?.settle(ReasonCode.Success);
    if (tag.runs !== null) tag.runs.submit(this.#runner!);
  }

  refused(tag: PublishTag, error: Error): void {
    const { deviceId, topic } = tag;
    if (error instanceof RejectedMessageError) this.#log.debug({ deviceId, topic, error: error.message }, 'publish not stored: rejected');
    else if (error instanceof ParserBusyError) this.#log.warn({ deviceId, topic, error: error.message }, 'publish not stored: payload parsers busy');
    else this.#log.error({ err: error, deviceId, topic }, 'publish not stored: the bucket store failed');
    if (tag.topic !== DATA_POST_TOPIC) countActionFailure('insert_bucket');
    if (error instanceof RejectedMessageError) tag.ack?.settle(tag.v5 ? ReasonCode.PayloadFormatInvalid : ReasonCode.Success);
    else tag.ack?.settle(ReasonCode.UnspecifiedError);
    // The message did arrive: its other actions run whether or not it could be stored.
    if (tag.runs !== null) tag.runs.submit(this.#runner!);
  }
}
