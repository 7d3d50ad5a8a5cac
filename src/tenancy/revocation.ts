import type { Broker } from '../broker/broker.ts';
import { ReasonCode } from '../broker/reason-codes.ts';
import { identityOf } from './mqtt-access.ts';
import type { Registry, Revocation } from './registry.ts';

/** How often token expiry is checked against live sessions; SPEC §1 allows 1 s to cut them. */
const EXPIRY_SWEEP_MS = 250;

/**
 * Cuts live MQTT sessions when their credentials stop being valid (SPEC §1/§2): a deleted token,
 * a deleted or deactivated device, or a token reaching its expire_time. v5 clients get DISCONNECT
 * 0x98 (administrative action) with a reason string. Also keeps the registry's connectivity view
 * (connected, last_connect, last_disconnect and its cause) in step with the broker.
 */
export class Revoker {
  readonly #broker: Broker;
  readonly #registry: Registry;
  readonly #sweep: NodeJS.Timeout;
  #revocations: number;
  readonly #onRevoked = (revocation: Revocation): void => {
    this.revoke(revocation);
  };

  constructor(broker: Broker, registry: Registry) {
    this.#broker = broker;
    this.#registry = registry;
    registry.on('revoked', this.#onRevoked);
    broker.on('client.connect', (client) => {
      const who = identityOf(client);
      if (who?.deviceId) registry.recordConnect(who.deviceId);
    });
    broker.on('client.disconnect', (client, detail) => {
      const who = identityOf(client);
      if (who?.deviceId) registry.recordDisconnect(who.deviceId, detail.detail ? `${detail.cause}: ${detail.detail}` : detail.cause);
    });
    this.#revocations = registry.revocationCounter();
    this.#sweep = setInterval(() => this.#check(), EXPIRY_SWEEP_MS);
    this.#sweep.unref();
  }

  revoke(revocation: Revocation): number {
    switch (revocation.kind) {
      case 'token-deleted': {
        const ids = new Set(revocation.tokenIds);
        return this.#broker.disconnectClients((c) => ids.has(identityOf(c)?.tokenId ?? ''), ReasonCode.AdministrativeAction, 'token revoked', 'revoked');
      }
      case 'device-deleted':
        return this.#broker.disconnectClients((c) => identityOf(c)?.deviceId === revocation.deviceId, ReasonCode.AdministrativeAction, 'device deleted', 'revoked');
      case 'device-deactivated':
        return this.#broker.disconnectClients((c) => identityOf(c)?.deviceId === revocation.deviceId, ReasonCode.AdministrativeAction, 'device deactivated', 'revoked');
    }
  }

  /**
   * Cuts sessions whose token expired, and — when another process (the CLI) changed the registry —
   * sessions whose token or device is gone.
   */
  #check(): void {
    const now = Date.now();
    this.#broker.disconnectClients((c) => {
      const at = identityOf(c)?.expiresAt;
      return at !== null && at !== undefined && at <= now;
    }, ReasonCode.AdministrativeAction, 'token expired', 'revoked');
    const revocations = this.#registry.revocationCounter();
    if (revocations === this.#revocations) return;
    this.#revocations = revocations;
    this.#broker.disconnectClients((c) => {
      const tokenId = identityOf(c)?.tokenId;
      return tokenId !== null && tokenId !== undefined && !this.#registry.tokenStillValid(tokenId);
    }, ReasonCode.AdministrativeAction, 'token or device revoked', 'revoked');
  }

  stop(): void {
    clearInterval(this.#sweep);
    this.#registry.off('revoked', this.#onRevoked);
  }
}
