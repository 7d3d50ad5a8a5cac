/**
 * Messages between the bench orchestrator (run.ts) and a load-generator child process over the
 * fork() IPC channel. Timestamps are `process.hrtime.bigint()` nanoseconds as numbers: that clock is
 * CLOCK_MONOTONIC, shared by every process on the machine, so a publisher process's first-send time
 * and a subscriber process's last-delivery time can be subtracted.
 */
import type { Credentials } from './packets.ts';

export interface SubscriberSpec {
  connections: number;
  filter: string;
  qos: 0 | 1;
}

export interface PublisherSpec {
  connections: number;
  /** Topic for each connection; they must all be the same length (one packet size). */
  topics: string[];
  qos: 0 | 1;
  payloadBytes: number;
  /** QoS 1 only: unacknowledged PUBLISH packets each connection keeps in flight. */
  window: number;
}

export interface SetupCommand {
  type: 'setup';
  host: string;
  port: number;
  /** Makes client ids unique across generator processes. */
  label: string;
  credentials: Credentials;
  subscribers: SubscriberSpec | null;
  publishers: PublisherSpec | null;
  /**
   * Milliseconds (fractions allowed) the process sleeps after each event-loop turn in which
   * deliveries or PUBACKs arrived, so that it reads batches (0: never).
   */
  napMs: number;
  /**
   * Nap only after turns that brought fewer packets than this (null: after every such turn). Lets a
   * QoS 1 publisher nap when PUBACKs trickle in one per read, but never hold back PUBACKs that
   * already come in batches, where a nap would only cap the rate.
   */
  napBelowPackets: number | null;
}

export interface RunCommand {
  type: 'run';
  phase: Phase;
  /** Messages each publisher connection sends in this phase. */
  messagesPerPublisher: number;
  /** Deliveries all subscriber connections of this process should receive together in this phase. */
  expectedDeliveries: number;
}

export interface StopCommand {
  type: 'stop';
}

export type Command = SetupCommand | RunCommand | StopCommand;

export type Phase = 'warmup' | 'measure';

export interface Progress {
  type: 'progress';
  phase: Phase;
  sent: number;
  acked: number;
  delivered: number;
  /** 0 until the event happened. */
  firstSendNs: number;
  lastSendNs: number;
  lastAckNs: number;
  lastDeliveryNs: number;
  /** Every publisher wrote all its messages (QoS 0) or had them all acknowledged (QoS 1). */
  publishDone: boolean;
  /** Subscribers reached the expected delivery count. */
  deliveryDone: boolean;
  /** PUBACKs for packet ids that were not in flight: a broker bug, reported rather than hidden. */
  unexpectedAcks: number;
}

export type GeneratorEvent =
  | { type: 'ready'; connections: number }
  | { type: 'failed'; message: string }
  | Progress
  | { type: 'closed' };
