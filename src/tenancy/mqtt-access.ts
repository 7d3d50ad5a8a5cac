import type { ClientInfo } from '../broker/client-info.ts';
import type { AuthenticateResult, BrokerHooks, ConnectRequest, SubscribeVerdict } from '../broker/hooks.ts';
import type { Message } from '../broker/message.ts';
import { ReasonCode } from '../broker/reason-codes.ts';
import { aclAllowsPublish, aclSubscribe, compileAcl, type AclRule, type ClientAcl } from './acl.ts';
import { canPublish, canSubscribe, type Permission } from './model.ts';
import type { Registry } from './registry.ts';

/** What the tenancy layer attaches to a connected client (`ClientInfo.data`). */
export interface ClientIdentity {
  readonly kind: 'device' | 'anonymous';
  readonly accountId: string;
  readonly deviceId: string | null;
  readonly tokenId: string | null;
  readonly permission: Permission;
  /** Epoch ms the token expires at, or null. */
  readonly expiresAt: number | null;
  readonly acl: ClientAcl;
}

export interface MqttAccessOptions {
  /** Account that receives clients sending no credentials (SPEC §2 anonymous mode); null = refuse them. */
  anonymousAccountId: string | null;
  acl: readonly AclRule[];
  /** Policy when no ACL rule applies. */
  aclDefault: 'allow' | 'deny';
}

export function identityOf(client: ClientInfo): ClientIdentity | null {
  return (client.data as ClientIdentity | undefined) ?? null;
}

/**
 * The broker hooks that make the engine a multi-tenant platform (SPEC §1, §2): a CONNECT logs in
 * with a device token (password, or the username when the password is empty); the device's
 * account becomes the client's namespace; token permission and ACL rules gate publish and subscribe.
 * No onPublish: that hook is the data path's (publish-pipeline.ts), set beside these in server.ts.
 */
export function createMqttAccess(registry: Registry, options: MqttAccessOptions): Omit<BrokerHooks, 'onPublish'> {
  const defaultAllow = options.aclDefault === 'allow';
  const refuse = (reasonString: string): AuthenticateResult => ({ ok: false, reasonCode: ReasonCode.NotAuthorized, reasonString });
  let anonymousIdentity: ClientIdentity | null = null;

  return {
    authenticate(request: ConnectRequest): AuthenticateResult {
      const password = request.password !== undefined && request.password.length > 0 ? request.password.toString('utf8') : '';
      const username = request.username ?? '';
      if (password === '' && username === '') {
        if (options.anonymousAccountId === null) return refuse('credentials required: password = device token');
        let data = identity('anonymous', options.anonymousAccountId, null, null, 'full', null, request.clientId);
        // With no ACL rule for it (no %c), every anonymous client has the same identity: one object
        // for all, not one per connection (issue 15).
        if (data.acl.rules.length === 0) data = anonymousIdentity ??= data;
        return { ok: true, namespace: options.anonymousAccountId, data };
      }
      // Devices that can set only one field may put the token in the username (SPEC §2).
      const token = password !== '' ? password : username;
      const found = registry.authenticateDeviceToken(token);
      if (found === null) return refuse('invalid, expired or revoked token');
      return {
        ok: true,
        namespace: found.accountId,
        data: identity('device', found.accountId, found.deviceId, found.tokenId, found.permission, found.expiresAt, request.clientId),
      };
    },

    authorizePublish(client: ClientInfo, message: Message): number {
      const who = client.data as ClientIdentity;
      if (!canPublish(who.permission)) return ReasonCode.NotAuthorized;
      return aclAllowsPublish(who.acl, message.topic) ? ReasonCode.Success : ReasonCode.NotAuthorized;
    },

    authorizeSubscribe(client: ClientInfo, filter: string, qos: 0 | 1 | 2): SubscribeVerdict {
      const who = client.data as ClientIdentity;
      if (!canSubscribe(who.permission)) return ReasonCode.NotAuthorized;
      return subscribeVerdict(who.acl, filter, qos);
    },

    // A delayed will back after a restart (SPEC §2): its device token must still be valid and
    // unexpired (as revocation would have cut it), and its ACL is compiled again from today's rules.
    restoreClient(client: ClientInfo): ClientInfo | null {
      const saved = client.data as Partial<ClientIdentity> | null;
      if (saved === null || typeof saved !== 'object' || saved.accountId !== client.namespace || saved.permission === undefined) return null;
      if (saved.kind === 'device') {
        if (typeof saved.tokenId !== 'string' || !registry.tokenStillValid(saved.tokenId)) return null;
        if (typeof saved.expiresAt === 'number' && saved.expiresAt <= Date.now()) return null;
      } else if (saved.kind !== 'anonymous' || saved.accountId !== options.anonymousAccountId) {
        return null;
      }
      const data = identity(saved.kind, saved.accountId, saved.deviceId ?? null, saved.tokenId ?? null, saved.permission, saved.expiresAt ?? null, client.clientId);
      return { ...client, data };
    },
  };

  function identity(kind: ClientIdentity['kind'], accountId: string, deviceId: string | null, tokenId: string | null, permission: Permission, expiresAt: number | null, clientId: string): ClientIdentity {
    const acl = compileAcl(options.acl, { accountId, deviceId, clientId }, defaultAllow);
    return { kind, accountId, deviceId, tokenId, permission, expiresAt, acl };
  }
}

/** Granted plainly, refused, or granted with the per-message ACL check (SPEC §2, README "ACLs"). */
function subscribeVerdict(acl: ClientAcl, filter: string, qos: 0 | 1 | 2): SubscribeVerdict {
  const decision = aclSubscribe(acl, filter);
  if (decision === 'allow') return qos;
  if (decision === 'deny') return ReasonCode.NotAuthorized;
  return { qos, deliver: decision };
}
