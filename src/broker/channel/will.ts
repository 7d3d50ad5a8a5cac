import type { ClientInfo } from '../client-info.ts';
import type { Message } from '../message.ts';

/** A client's last will, held from CONNECT until the connection ends (MQTT 5 §3.1.2.5). */
export interface Will {
  readonly client: ClientInfo;
  readonly message: Message;
  /** Seconds (MQTT 5 will delay interval); 0 for v3. */
  readonly delay: number;
}
