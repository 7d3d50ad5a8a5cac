import { ReasonCode } from './reason-codes.ts';

/**
 * A protocol violation by the peer. Thrown inside packet handlers and turned into a DISCONNECT
 * (v5, with this reason code) and a closed connection by the channel's single dispatcher.
 */
export class ProtocolViolation extends Error {
  readonly reasonCode: number;
  constructor(reasonCode: number, message: string) {
    super(message);
    this.name = 'ProtocolViolation';
    this.reasonCode = reasonCode;
  }
}

export function malformed(message: string): ProtocolViolation {
  return new ProtocolViolation(ReasonCode.MalformedPacket, message);
}

export function protocolError(message: string): ProtocolViolation {
  return new ProtocolViolation(ReasonCode.ProtocolError, message);
}
