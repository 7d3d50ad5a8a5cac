/**
 * A message refused for what it holds (an invalid record, a failing payload parser): sending it again
 * fails the same way. Senders get a "bad message" answer (HTTP 400, MQTT 5 reason 0x99), never a
 * "try again" one; anything else thrown on the data path is the platform's failure.
 */
export class RejectedMessageError extends Error {}
