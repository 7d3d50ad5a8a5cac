import { EventEmitter } from 'node:events';
import { migrate, type Database } from '../storage/sqlite-database.ts';
import { invalid, notFound } from './errors.ts';
import { formatExpireTime, parseExpireTime } from './expire-time.ts';
import {
  PERMISSIONS,
  type Account,
  type AccountIdentity,
  type AccountToken,
  type Device,
  type DeviceIdentity,
  type DeviceToken,
  type DeviceType,
  type ParamItem,
  type Permission,
  type Plan,
  type TagItem,
} from './model.ts';
import { DEFAULT_PLAN_NAME, DEFAULT_PLANS } from './plans.ts';
import { REGISTRY_MIGRATIONS } from './registry-schema.ts';
import { generateId, generateToken, hashToken, sameDigest } from './secrets.ts';

/** Why sessions must be cut (SPEC §1/§2 revocation). The tenancy layer disconnects matching clients. */
export type Revocation =
  | { kind: 'token-deleted'; tokenIds: string[] }
  | { kind: 'device-deleted'; deviceId: string }
  | { kind: 'device-deactivated'; deviceId: string };

export interface RegistryEvents {
  revoked: [revocation: Revocation];
  /** A device's stored details changed or it was deleted; in-memory copies (the data path's device cache) drop it. */
  'device-changed': [deviceId: string];
}

export interface DeviceInput {
  name: string;
  type?: DeviceType;
  retention_days?: number | null;
  record_cap?: number | null;
  tags?: TagItem[];
  params?: Array<{ key: string; value: string; sent?: boolean }>;
  payload_parser?: string | null;
  active?: boolean;
}

export type DevicePatch = Partial<Omit<DeviceInput, 'type' | 'params'>>;

export interface TokenInput {
  name: string;
  permission: Permission;
  expire_time?: string;
  serie_number?: string | null;
}

export interface ListOptions {
  /** Substring of the name, case-insensitive. */
  name?: string;
  /** Every listed tag must be on the device. */
  tags?: TagItem[];
  page?: number;
  amount?: number;
}

const TOUCH_INTERVAL_MS = 60_000;

/**
 * A device token's row is reused for this long after it was read: every HTTP data request and every
 * CONNECT authenticates, and the lookup (a join) was ~20 µs, the largest single cost of a 1-record
 * POST /data. Changes made by this process drop the cache at once; changes by another process (the
 * CLI) are seen within this time, inside the 1 s SPEC §2 allows for revocation.
 */
const TOKEN_CACHE_MS = 1_000;
/** Cached token rows at most; beyond it the cache starts over. */
const TOKEN_CACHE_SIZE = 100_000;

/** Default record cap of a mutable device (SPEC §1: mutable devices keep a capped count). */
export const DEFAULT_RECORD_CAP = 50_000;

interface DeviceRow {
  id: string;
  account_id: string;
  name: string;
  type: string;
  retention_days: number | null;
  record_cap: number | null;
  tags: string;
  params: string;
  payload_parser: string | null;
  active: number;
  last_input: string | null;
  last_connect: string | null;
  last_disconnect: string | null;
  last_disconnect_cause: string | null;
  created_at: string;
  updated_at: string;
}

interface TokenRow {
  id: string;
  name: string;
  permission: string;
  digest: Buffer;
  expire_at: number | null;
  created_at: string;
}

interface DeviceTokenRow extends TokenRow {
  device_id: string;
  account_id: string;
  serie_number: string | null;
  last_authorization: string | null;
}

/**
 * Accounts, plans, devices and tokens in the node's SQLite database (SPEC §1). Tokens are stored as
 * SHA-256 digests only; the plain token is returned once, when it is created. Deleting a token or a
 * device, or deactivating a device, emits `revoked` so live sessions can be cut.
 */
export class Registry extends EventEmitter<RegistryEvents> {
  readonly #db: Database;
  readonly #now: () => number;
  /** When each token's last_authorization was last written. */
  readonly #lastTouch = new Map<string, number>();
  /** Digest (latin1) → the token's row and when it was read; only tokens that exist are kept. */
  #tokenCache = new Map<string, { row: DeviceTokenRow & { active: number }; readAt: number }>();
  /** Connected MQTT sessions per device on this node (live state, not stored). */
  readonly #connections = new Map<string, number>();
  readonly #stmt;

  constructor(db: Database, options: { now?: () => number } = {}) {
    super();
    this.#db = db;
    this.#now = options.now ?? Date.now;
    migrate(db, 'registry', REGISTRY_MIGRATIONS);
    // Any revocation or device change here may change what a cached token row says.
    const forgetTokens = (): void => {
      if (this.#tokenCache.size > 0) this.#tokenCache = new Map();
    };
    this.on('revoked', forgetTokens);
    this.on('device-changed', forgetTokens);
    this.#stmt = {
      insertPlan: db.prepare('INSERT INTO plans (name, limits) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET limits = excluded.limits'),
      plan: db.prepare<[string], { name: string; limits: string }>('SELECT name, limits FROM plans WHERE name = ?'),
      plans: db.prepare<[], { name: string; limits: string }>('SELECT name, limits FROM plans ORDER BY name'),
      insertAccount: db.prepare('INSERT INTO accounts (id, name, plan, created_at) VALUES (?, ?, ?, ?)'),
      account: db.prepare<[string], Account>('SELECT id, name, plan, created_at FROM accounts WHERE id = ?'),
      accounts: db.prepare<[], Account>('SELECT id, name, plan, created_at FROM accounts ORDER BY created_at, rowid'),
      accountByName: db.prepare<[string], Account>('SELECT id, name, plan, created_at FROM accounts WHERE name = ? ORDER BY created_at LIMIT 1'),
      updateAccountPlan: db.prepare('UPDATE accounts SET plan = ? WHERE id = ?'),
      deleteAccount: db.prepare('DELETE FROM accounts WHERE id = ?'),
      insertAccountToken: db.prepare('INSERT INTO account_tokens (id, account_id, name, permission, digest, expire_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      accountTokenByDigest: db.prepare<[Buffer], TokenRow & { account_id: string }>('SELECT * FROM account_tokens WHERE digest = ?'),
      accountTokens: db.prepare<[string], TokenRow>('SELECT * FROM account_tokens WHERE account_id = ? ORDER BY created_at, rowid'),
      deleteAccountToken: db.prepare('DELETE FROM account_tokens WHERE id = ? AND account_id = ?'),
      insertDevice: db.prepare(`INSERT INTO devices (id, account_id, name, type, retention_days, record_cap, tags, params, payload_parser, active, created_at, updated_at)
        VALUES (@id, @account_id, @name, @type, @retention_days, @record_cap, @tags, @params, @payload_parser, @active, @created_at, @updated_at)`),
      device: db.prepare<[string, string], DeviceRow>('SELECT * FROM devices WHERE id = ? AND account_id = ?'),
      deviceAnyAccount: db.prepare<[string], DeviceRow>('SELECT * FROM devices WHERE id = ?'),
      devices: db.prepare<[string], DeviceRow>('SELECT * FROM devices WHERE account_id = ? ORDER BY created_at, rowid'),
      countDevices: db.prepare<[string], number>('SELECT count(*) FROM devices WHERE account_id = ?').pluck(),
      updateDevice: db.prepare(`UPDATE devices SET name = @name, retention_days = @retention_days, record_cap = @record_cap, tags = @tags, params = @params,
        payload_parser = @payload_parser, active = @active, updated_at = @updated_at WHERE id = @id AND account_id = @account_id`),
      deleteDevice: db.prepare('DELETE FROM devices WHERE id = ? AND account_id = ?'),
      connectivity: db.prepare('UPDATE devices SET last_connect = coalesce(?, last_connect), last_disconnect = coalesce(?, last_disconnect), last_disconnect_cause = coalesce(?, last_disconnect_cause) WHERE id = ?'),
      lastInput: db.prepare('UPDATE devices SET last_input = ? WHERE id = ?'),
      insertDeviceToken: db.prepare(`INSERT INTO device_tokens (id, device_id, account_id, name, permission, digest, expire_at, serie_number, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      deviceTokenByDigest: db.prepare<[Buffer], DeviceTokenRow & { active: number }>(
        'SELECT t.*, d.active FROM device_tokens t JOIN devices d ON d.id = t.device_id WHERE t.digest = ?',
      ),
      deviceTokens: db.prepare<[string], DeviceTokenRow>('SELECT * FROM device_tokens WHERE device_id = ? ORDER BY created_at, rowid'),
      deviceTokenIds: db.prepare<[string], string>('SELECT id FROM device_tokens WHERE device_id = ?').pluck(),
      deleteDeviceToken: db.prepare('DELETE FROM device_tokens WHERE id = ? AND device_id = ?'),
      touchDeviceToken: db.prepare('UPDATE device_tokens SET last_authorization = ? WHERE id = ?'),
      revocations: db.prepare<[], number>("SELECT value FROM registry_state WHERE key = 'revocations'").pluck(),
      bumpRevocations: db.prepare("UPDATE registry_state SET value = value + 1 WHERE key = 'revocations'"),
      tokenStillValid: db.prepare<[string], number>(
        'SELECT 1 FROM device_tokens t JOIN devices d ON d.id = t.device_id WHERE t.id = ? AND d.active = 1',
      ).pluck(),
    };
  }

  /** Counts changes that may revoke sessions, across processes sharing the database. */
  revocationCounter(): number {
    return this.#stmt.revocations.get() ?? 0;
  }

  /** Whether a device token still exists and its device is active (expiry is checked separately). */
  tokenStillValid(tokenId: string): boolean {
    return this.#stmt.tokenStillValid.get(tokenId) === 1;
  }

  #revoked(revocation: Revocation): void {
    this.#stmt.bumpRevocations.run();
    this.emit('revoked', revocation);
  }

  // ---- plans -----------------------------------------------------------------------------------

  /** Installs the default plans, then `plans` from the configuration (which may override them). */
  installPlans(plans: readonly Plan[] = []): void {
    this.#db.transaction(() => {
      for (const plan of [...DEFAULT_PLANS, ...plans]) this.#stmt.insertPlan.run(plan.name, JSON.stringify(plan.limits));
    })();
  }

  plan(name: string): Plan | null {
    const row = this.#stmt.plan.get(name);
    return row === undefined ? null : { name: row.name, limits: JSON.parse(row.limits) as Record<string, number> };
  }

  plans(): Plan[] {
    return this.#stmt.plans.all().map((row) => ({ name: row.name, limits: JSON.parse(row.limits) as Record<string, number> }));
  }

  // ---- accounts --------------------------------------------------------------------------------

  /** Creates an account with one `full` account token, returned in plain text this once. */
  createAccount(input: { name: string; plan?: string }): { account: Account; token: string } {
    const plan = input.plan ?? DEFAULT_PLAN_NAME;
    if (this.plan(plan) === null) throw invalid(`plan: "${plan}" does not exist`);
    const account: Account = { id: generateId(), name: input.name, plan, created_at: this.#iso() };
    const token = this.#db.transaction(() => {
      this.#stmt.insertAccount.run(account.id, account.name, account.plan, account.created_at);
      return this.createAccountToken(account.id, { name: 'default', permission: 'full' }).token;
    })();
    return { account, token };
  }

  account(id: string): Account | null {
    return this.#stmt.account.get(id) ?? null;
  }

  accountByName(name: string): Account | null {
    return this.#stmt.accountByName.get(name) ?? null;
  }

  accounts(): Account[] {
    return this.#stmt.accounts.all();
  }

  setAccountPlan(accountId: string, plan: string): Account {
    if (this.plan(plan) === null) throw invalid(`plan: "${plan}" does not exist`);
    if (this.#stmt.updateAccountPlan.run(plan, accountId).changes === 0) throw notFound(`account ${accountId}`);
    return this.account(accountId)!;
  }

  /** Deletes an account with its devices and tokens; their sessions are revoked. */
  deleteAccount(accountId: string): void {
    const devices = this.#stmt.devices.all(accountId);
    if (this.#stmt.deleteAccount.run(accountId).changes === 0) throw notFound(`account ${accountId}`);
    for (const device of devices) {
      this.emit('device-changed', device.id);
      this.#revoked({ kind: 'device-deleted', deviceId: device.id });
    }
  }

  createAccountToken(accountId: string, input: TokenInput): { token: string; info: AccountToken } {
    if (this.account(accountId) === null) throw notFound(`account ${accountId}`);
    checkPermission(input.permission);
    const expireAt = this.#expireAt(input.expire_time);
    const token = generateToken();
    const info: AccountToken = { id: generateId(), name: input.name, permission: input.permission, expire_time: formatExpireTime(expireAt), created_at: this.#iso() };
    this.#stmt.insertAccountToken.run(info.id, accountId, info.name, info.permission, hashToken(token), expireAt, info.created_at);
    return { token, info };
  }

  accountTokens(accountId: string): AccountToken[] {
    return this.#stmt.accountTokens.all(accountId).map(toAccountToken);
  }

  deleteAccountToken(accountId: string, tokenId: string): void {
    if (this.#stmt.deleteAccountToken.run(tokenId, accountId).changes === 0) throw notFound(`account token ${tokenId}`);
  }

  /** Resolves an account token (admin API). Null when unknown or expired. */
  authenticateAccountToken(token: string): AccountIdentity | null {
    const digest = hashToken(token);
    const row = this.#stmt.accountTokenByDigest.get(digest);
    if (row === undefined || !sameDigest(row.digest, digest)) return null;
    if (row.expire_at !== null && row.expire_at <= this.#now()) return null;
    return { accountId: row.account_id, tokenId: row.id, permission: row.permission as Permission };
  }

  // ---- devices ---------------------------------------------------------------------------------

  /** Creates a device with its first device token (SPEC §1), returned in plain text this once. */
  createDevice(accountId: string, input: DeviceInput): { device: Device; token: string; tokenInfo: DeviceToken } {
    const account = this.account(accountId);
    if (account === null) throw notFound(`account ${accountId}`);
    const cap = this.plan(account.plan)?.limits.devices;
    if (cap !== undefined && this.#stmt.countDevices.get(accountId)! >= cap) {
      throw invalid(`devices: the ${account.plan} plan allows ${cap} devices`);
    }
    const type = input.type ?? 'immutable';
    const now = this.#iso();
    const row: DeviceRow = {
      id: generateId(),
      account_id: accountId,
      name: input.name,
      type,
      retention_days: type === 'immutable' ? input.retention_days ?? null : null,
      record_cap: type === 'mutable' ? input.record_cap ?? DEFAULT_RECORD_CAP : null,
      tags: JSON.stringify(input.tags ?? []),
      params: JSON.stringify((input.params ?? []).map((p) => ({ id: generateId(), key: p.key, value: p.value, sent: p.sent ?? false }))),
      payload_parser: input.payload_parser ?? null,
      active: input.active === false ? 0 : 1,
      last_input: null,
      last_connect: null,
      last_disconnect: null,
      last_disconnect_cause: null,
      created_at: now,
      updated_at: now,
    };
    return this.#db.transaction(() => {
      this.#stmt.insertDevice.run(row);
      const { token, info } = this.createDeviceToken(accountId, row.id, { name: 'Default', permission: 'full' });
      return { device: this.#toDevice(row), token, tokenInfo: info };
    })();
  }

  device(accountId: string, deviceId: string): Device | null {
    const row = this.#stmt.device.get(deviceId, accountId);
    return row === undefined ? null : this.#toDevice(row);
  }

  /** Looks a device up by id alone (for the platform, after a token resolved to it). */
  deviceById(deviceId: string): (Device & { account_id: string }) | null {
    const row = this.#stmt.deviceAnyAccount.get(deviceId);
    return row === undefined ? null : { ...this.#toDevice(row), account_id: row.account_id };
  }

  devices(accountId: string, options: ListOptions = {}): Device[] {
    const name = options.name?.toLowerCase();
    const tags = options.tags ?? [];
    let rows = this.#stmt.devices.all(accountId).map((row) => this.#toDevice(row));
    if (name !== undefined) rows = rows.filter((d) => d.name.toLowerCase().includes(name));
    if (tags.length > 0) rows = rows.filter((d) => tags.every((t) => d.tags.some((dt) => dt.key === t.key && dt.value === t.value)));
    const amount = options.amount ?? 20;
    const page = options.page ?? 1;
    return rows.slice((page - 1) * amount, page * amount);
  }

  updateDevice(accountId: string, deviceId: string, patch: DevicePatch): Device {
    const row = this.#stmt.device.get(deviceId, accountId);
    if (row === undefined) throw notFound(`device ${deviceId}`);
    const wasActive = row.active === 1;
    const next: DeviceRow = {
      ...row,
      name: patch.name ?? row.name,
      retention_days: row.type === 'immutable' && patch.retention_days !== undefined ? patch.retention_days : row.retention_days,
      record_cap: row.type === 'mutable' && patch.record_cap !== undefined ? patch.record_cap ?? DEFAULT_RECORD_CAP : row.record_cap,
      tags: patch.tags !== undefined ? JSON.stringify(patch.tags) : row.tags,
      payload_parser: patch.payload_parser !== undefined ? patch.payload_parser : row.payload_parser,
      active: patch.active === undefined ? row.active : patch.active ? 1 : 0,
      updated_at: this.#iso(),
    };
    this.#stmt.updateDevice.run(next);
    this.emit('device-changed', deviceId);
    if (wasActive && next.active === 0) this.#revoked({ kind: 'device-deactivated', deviceId });
    return this.#toDevice(next);
  }

  deleteDevice(accountId: string, deviceId: string): void {
    if (this.#stmt.deleteDevice.run(deviceId, accountId).changes === 0) throw notFound(`device ${deviceId}`);
    this.#connections.delete(deviceId);
    this.emit('device-changed', deviceId);
    this.#revoked({ kind: 'device-deleted', deviceId });
  }

  /** Adds or updates params by key (the hosted API's "edit params" shape). */
  setParams(accountId: string, deviceId: string, params: Array<{ key: string; value: string; sent?: boolean }>): ParamItem[] {
    const row = this.#stmt.device.get(deviceId, accountId);
    if (row === undefined) throw notFound(`device ${deviceId}`);
    const current = JSON.parse(row.params) as ParamItem[];
    for (const p of params) {
      const existing = current.find((c) => c.key === p.key);
      if (existing !== undefined) {
        existing.value = p.value;
        existing.sent = p.sent ?? existing.sent;
      } else {
        current.push({ id: generateId(), key: p.key, value: p.value, sent: p.sent ?? false });
      }
    }
    this.#stmt.updateDevice.run({ ...row, params: JSON.stringify(current), updated_at: this.#iso() });
    this.emit('device-changed', deviceId);
    return current;
  }

  deleteParam(accountId: string, deviceId: string, paramId: string): ParamItem[] {
    const row = this.#stmt.device.get(deviceId, accountId);
    if (row === undefined) throw notFound(`device ${deviceId}`);
    const current = JSON.parse(row.params) as ParamItem[];
    const next = current.filter((p) => p.id !== paramId);
    if (next.length === current.length) throw notFound(`param ${paramId}`);
    this.#stmt.updateDevice.run({ ...row, params: JSON.stringify(next), updated_at: this.#iso() });
    this.emit('device-changed', deviceId);
    return next;
  }

  // ---- device tokens ---------------------------------------------------------------------------

  createDeviceToken(accountId: string, deviceId: string, input: TokenInput): { token: string; info: DeviceToken } {
    if (this.#stmt.device.get(deviceId, accountId) === undefined) throw notFound(`device ${deviceId}`);
    checkPermission(input.permission);
    const expireAt = this.#expireAt(input.expire_time);
    const token = generateToken();
    const info: DeviceToken = {
      id: generateId(),
      device_id: deviceId,
      name: input.name,
      permission: input.permission,
      expire_time: formatExpireTime(expireAt),
      serie_number: input.serie_number ?? null,
      created_at: this.#iso(),
      last_authorization: null,
    };
    this.#stmt.insertDeviceToken.run(info.id, deviceId, accountId, info.name, info.permission, hashToken(token), expireAt, info.serie_number, info.created_at);
    return { token, info };
  }

  deviceTokens(accountId: string, deviceId: string): DeviceToken[] {
    if (this.#stmt.device.get(deviceId, accountId) === undefined) throw notFound(`device ${deviceId}`);
    return this.#stmt.deviceTokens.all(deviceId).map(toDeviceToken);
  }

  deleteDeviceToken(accountId: string, deviceId: string, tokenId: string): void {
    if (this.#stmt.device.get(deviceId, accountId) === undefined) throw notFound(`device ${deviceId}`);
    if (this.#stmt.deleteDeviceToken.run(tokenId, deviceId).changes === 0) throw notFound(`token ${tokenId}`);
    this.#lastTouch.delete(tokenId);
    this.#revoked({ kind: 'token-deleted', tokenIds: [tokenId] });
  }

  /**
   * Resolves a device token (MQTT CONNECT and the device data API). Null when the token is unknown,
   * expired, or its device is inactive.
   */
  authenticateDeviceToken(token: string): DeviceIdentity | null {
    if (token.length === 0 || token.length > 256) return null;
    const digest = hashToken(token);
    const now = this.#now();
    const row = this.#deviceTokenRow(digest, now);
    if (row === undefined || !sameDigest(row.digest, digest)) return null;
    if (row.active !== 1) return null;
    if (row.expire_at !== null && row.expire_at <= now) return null;
    // last_authorization is informational: writing it on every HTTP request would make each request
    // a write transaction, so it is refreshed at most once a minute per token.
    const touched = this.#lastTouch.get(row.id) ?? 0;
    if (now - touched >= TOUCH_INTERVAL_MS) {
      this.#lastTouch.set(row.id, now);
      this.#stmt.touchDeviceToken.run(new Date(now).toISOString(), row.id);
    }
    return { accountId: row.account_id, deviceId: row.device_id, tokenId: row.id, permission: row.permission as Permission, expiresAt: row.expire_at };
  }

  #deviceTokenRow(digest: Buffer, now: number): (DeviceTokenRow & { active: number }) | undefined {
    const key = digest.toString('latin1');
    const cached = this.#tokenCache.get(key);
    if (cached !== undefined && now - cached.readAt < TOKEN_CACHE_MS) return cached.row;
    const row = this.#stmt.deviceTokenByDigest.get(digest);
    if (row === undefined) {
      this.#tokenCache.delete(key);
      return undefined;
    }
    if (this.#tokenCache.size >= TOKEN_CACHE_SIZE) this.#tokenCache = new Map();
    this.#tokenCache.set(key, { row, readAt: now });
    return row;
  }

  // ---- connectivity ----------------------------------------------------------------------------

  recordConnect(deviceId: string): void {
    this.#connections.set(deviceId, (this.#connections.get(deviceId) ?? 0) + 1);
    this.#stmt.connectivity.run(this.#iso(), null, null, deviceId);
  }

  recordDisconnect(deviceId: string, cause: string): void {
    const n = (this.#connections.get(deviceId) ?? 1) - 1;
    if (n <= 0) this.#connections.delete(deviceId);
    else this.#connections.set(deviceId, n);
    this.#stmt.connectivity.run(null, this.#iso(), cause, deviceId);
  }

  recordInput(deviceId: string): void {
    this.#stmt.lastInput.run(this.#iso(), deviceId);
  }

  // ---- helpers ---------------------------------------------------------------------------------

  #expireAt(value: string | undefined): number | null {
    try {
      return parseExpireTime(value, this.#now());
    } catch (err) {
      throw invalid((err as Error).message);
    }
  }

  #iso(): string {
    return new Date(this.#now()).toISOString();
  }

  #toDevice(row: DeviceRow): Device {
    return {
      id: row.id,
      name: row.name,
      type: row.type as DeviceType,
      retention_days: row.retention_days,
      record_cap: row.record_cap,
      tags: JSON.parse(row.tags) as TagItem[],
      params: JSON.parse(row.params) as ParamItem[],
      payload_parser: row.payload_parser,
      active: row.active === 1,
      last_input: row.last_input,
      created_at: row.created_at,
      updated_at: row.updated_at,
      connected: (this.#connections.get(row.id) ?? 0) > 0,
      last_connect: row.last_connect,
      last_disconnect: row.last_disconnect,
      last_disconnect_cause: row.last_disconnect_cause,
    };
  }
}

function checkPermission(permission: string): void {
  if (!PERMISSIONS.includes(permission as Permission)) throw invalid(`permission: "${permission}" is not one of full, read, write`);
}

function toAccountToken(row: TokenRow): AccountToken {
  return { id: row.id, name: row.name, permission: row.permission as Permission, expire_time: formatExpireTime(row.expire_at), created_at: row.created_at };
}

function toDeviceToken(row: DeviceTokenRow): DeviceToken {
  return {
    id: row.id,
    device_id: row.device_id,
    name: row.name,
    permission: row.permission as Permission,
    expire_time: formatExpireTime(row.expire_at),
    serie_number: row.serie_number,
    created_at: row.created_at,
    last_authorization: row.last_authorization,
  };
}
