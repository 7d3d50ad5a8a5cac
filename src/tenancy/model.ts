/** The tenancy data model (SPEC §1), as the API returns it: plain JSON-ready objects. */

export type Permission = 'full' | 'read' | 'write';
export type DeviceType = 'immutable' | 'mutable';

export interface TagItem {
  key: string;
  value: string;
}

export interface ParamItem {
  id: string;
  key: string;
  value: string;
  sent: boolean;
}

export interface Account {
  id: string;
  name: string;
  plan: string;
  created_at: string;
}

export interface Device {
  id: string;
  name: string;
  type: DeviceType;
  /** Immutable devices: days records are kept (null = forever). */
  retention_days: number | null;
  /** Mutable devices: maximum number of records kept. */
  record_cap: number | null;
  tags: TagItem[];
  params: ParamItem[];
  payload_parser: string | null;
  active: boolean;
  last_input: string | null;
  created_at: string;
  updated_at: string;
  /** Live connectivity (SPEC §1): whether an MQTT session is connected now, and why it last dropped. */
  connected: boolean;
  last_connect: string | null;
  last_disconnect: string | null;
  last_disconnect_cause: string | null;
}

export interface DeviceToken {
  id: string;
  device_id: string;
  name: string;
  permission: Permission;
  /** "never" or an ISO date. */
  expire_time: string;
  serie_number: string | null;
  created_at: string;
  last_authorization: string | null;
}

export interface AccountToken {
  id: string;
  name: string;
  permission: Permission;
  expire_time: string;
  created_at: string;
}

export interface Plan {
  name: string;
  /** Per-minute rates and resource caps (SPEC §7); enforced by src/limits. */
  limits: Record<string, number>;
}

/** What a successful device-token login yields. */
export interface DeviceIdentity {
  accountId: string;
  deviceId: string;
  tokenId: string;
  permission: Permission;
  /** Epoch ms, or null for never. */
  expiresAt: number | null;
}

export interface AccountIdentity {
  accountId: string;
  tokenId: string;
  permission: Permission;
}

export const PERMISSIONS: readonly Permission[] = ['full', 'read', 'write'];

export function canPublish(permission: Permission): boolean {
  return permission === 'full' || permission === 'write';
}

export function canSubscribe(permission: Permission): boolean {
  return permission === 'full' || permission === 'read';
}
