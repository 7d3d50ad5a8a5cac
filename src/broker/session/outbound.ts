import type { Message } from '../message.ts';

/** A message a session owes its client: queued, or in flight awaiting acknowledgement. */
export interface Outbound {
  seq: number;
  message: Message;
  qos: 0 | 1 | 2;
  subscriptionIds: number[] | null;
  retain: boolean;
  packetId: number;
  state: 'queued' | 'publish' | 'pubrel';
  /** Written to the session store (persistent sessions, QoS > 0). */
  stored: boolean;
}
