import type { Database } from '../../storage/sqlite-database.ts';
import { migrate } from '../../storage/sqlite-database.ts';
import { notifyWaiters, type DurableWaiter } from '../durability.ts';
import type { Message, MessageProperties } from '../message.ts';
import type { SessionRow as SavedSession, SessionStore, StoredOutbound, StoredSession, StoredWill, SubscriptionOptions } from './session-store.ts';

const MIGRATIONS = [
  `CREATE TABLE mqtt_sessions (
     key             TEXT    PRIMARY KEY,
     namespace       TEXT    NOT NULL,
     client_id       TEXT    NOT NULL,
     expiry_interval INTEGER NOT NULL,
     disconnected_at INTEGER NOT NULL
   );
   CREATE TABLE mqtt_subscriptions (
     session_key         TEXT    NOT NULL,
     filter              TEXT    NOT NULL,
     qos                 INTEGER NOT NULL,
     no_local            INTEGER NOT NULL,
     retain_as_published INTEGER NOT NULL,
     retain_handling     INTEGER NOT NULL,
     subscription_id     INTEGER NOT NULL,
     PRIMARY KEY (session_key, filter)
   ) WITHOUT ROWID;
   -- A rowid table (not WITHOUT ROWID): rows carry payloads, which SQLite advises against clustering.
   CREATE TABLE mqtt_outbound (
     session_key      TEXT    NOT NULL,
     seq              INTEGER NOT NULL,
     delivery_qos     INTEGER NOT NULL,
     delivery_retain  INTEGER NOT NULL,
     packet_id        INTEGER NOT NULL,
     state            TEXT    NOT NULL,
     subscription_ids TEXT    NOT NULL,
     topic            TEXT    NOT NULL,
     payload          BLOB    NOT NULL,
     qos              INTEGER NOT NULL,
     retain           INTEGER NOT NULL,
     properties       TEXT,
     expires_at       INTEGER NOT NULL,
     origin           TEXT    NOT NULL,
     PRIMARY KEY (session_key, seq)
   );
   CREATE TABLE mqtt_inbound_qos2 (
     session_key TEXT    NOT NULL,
     packet_id   INTEGER NOT NULL,
     PRIMARY KEY (session_key, packet_id)
   ) WITHOUT ROWID;`,
  // Delayed wills (MQTT 5 §3.1.3.2.2), one per session; `client` is the StoredWill client as JSON.
  `CREATE TABLE mqtt_wills (
     session_key TEXT    PRIMARY KEY,
     delay       INTEGER NOT NULL,
     client      TEXT    NOT NULL,
     topic       TEXT    NOT NULL,
     payload     BLOB    NOT NULL,
     qos         INTEGER NOT NULL,
     retain      INTEGER NOT NULL,
     properties  TEXT,
     expires_at  INTEGER NOT NULL,
     origin      TEXT    NOT NULL
   );`,
  // The client that last connected (StoredSession.client as JSON), to ask authorizeSubscribe again after a restart.
  `ALTER TABLE mqtt_sessions ADD COLUMN client TEXT;`,
];

/** Reports a write that could not be made durable. Default: a line on stderr. */
export type StoreErrorReporter = (context: string, error: unknown) => void;

export const reportToStderr: StoreErrorReporter = (context, error) => {
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(`[bucketmq] ${context}: ${detail}\n`);
};

export interface SqliteStoreOptions {
  reportError?: StoreErrorReporter;
}

/** Counters for tests and metrics: how write-behind is batching. */
export interface WriteBehindStats {
  /** Transactions committed. */
  batches: number;
  /** Operations written successfully. */
  ops: number;
  /** Operations that failed (reported and skipped, or lost with their batch). */
  failed: number;
}

/** A mutation waiting for the next flush; plain data so queuing allocates one small object. */
type SessionOp =
  | { kind: 'saveSession'; key: string; namespace: string; clientId: string; expiryInterval: number; disconnectedAt: number; client: string | null }
  | { kind: 'deleteSession'; key: string }
  | { kind: 'setSubscription'; key: string; filter: string; options: SubscriptionOptions }
  | { kind: 'deleteSubscription'; key: string; filter: string }
  | { kind: 'addOutbound'; key: string; entry: StoredOutbound; subscriptionIds: string }
  | { kind: 'updateOutbound'; key: string; seq: number; packetId: number; state: StoredOutbound['state'] }
  | { kind: 'removeOutbound'; key: string; seq: number }
  | { kind: 'addInboundQos2'; key: string; packetId: number }
  | { kind: 'removeInboundQos2'; key: string; packetId: number }
  | { kind: 'setWill'; key: string; will: StoredWill | null };

/**
 * Sessions in SQLite (component 'broker-sessions', tables `mqtt_*`). Write-behind: each mutation is
 * queued and one setImmediate per tick writes the whole queue in a single transaction, so a QoS 1/2
 * flow never waits on disk and a burst of N publishes costs one commit, not N. A failing operation is
 * reported and skipped; the rest of its batch still commits. Acknowledgements waiting for the batch
 * (`whenDurable`: a publisher's PUBACK/PUBREC for a message queued here) are told right after its
 * commit, in the same setImmediate. The database belongs to the caller:
 * `close` flushes and stops accepting writes but leaves the connection open (other stores share it).
 */
export class SqliteSessionStore implements SessionStore {
  #db: Database;
  #reportError: StoreErrorReporter;
  #pending: SessionOp[] = [];
  /** Acknowledgements waiting for the pending batch (SPEC §2: durable before PUBACK/PUBREC). */
  #waiters: DurableWaiter[] = [];
  #scheduled: NodeJS.Immediate | null = null;
  #closed = false;
  #stats: WriteBehindStats = { batches: 0, ops: 0, failed: 0 };
  #flushOnTimer = (): void => {
    this.#scheduled = null;
    this.#writePending();
  };

  #upsertSession;
  #deleteSessionRow;
  #deleteSessionSubscriptions;
  #deleteSessionOutbound;
  #deleteSessionInbound;
  #upsertSubscription;
  #deleteSubscription;
  #insertOutbound;
  #updateOutbound;
  #deleteOutbound;
  #insertInbound;
  #deleteInbound;
  #deleteSessionWill;
  #upsertWill;
  #writeBatch;

  constructor(db: Database, options: SqliteStoreOptions = {}) {
    this.#db = db;
    this.#reportError = options.reportError ?? reportToStderr;
    migrate(db, 'broker-sessions', MIGRATIONS);

    this.#upsertSession = db.prepare<[string, string, string, number, number, string | null]>(
      `INSERT INTO mqtt_sessions (key, namespace, client_id, expiry_interval, disconnected_at, client) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET namespace = excluded.namespace, client_id = excluded.client_id,
         expiry_interval = excluded.expiry_interval, disconnected_at = excluded.disconnected_at, client = excluded.client`,
    );
    this.#deleteSessionRow = db.prepare<[string]>('DELETE FROM mqtt_sessions WHERE key = ?');
    this.#deleteSessionSubscriptions = db.prepare<[string]>('DELETE FROM mqtt_subscriptions WHERE session_key = ?');
    this.#deleteSessionOutbound = db.prepare<[string]>('DELETE FROM mqtt_outbound WHERE session_key = ?');
    this.#deleteSessionInbound = db.prepare<[string]>('DELETE FROM mqtt_inbound_qos2 WHERE session_key = ?');
    this.#upsertSubscription = db.prepare<[string, string, number, number, number, number, number]>(
      `INSERT OR REPLACE INTO mqtt_subscriptions
         (session_key, filter, qos, no_local, retain_as_published, retain_handling, subscription_id)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#deleteSubscription = db.prepare<[string, string]>('DELETE FROM mqtt_subscriptions WHERE session_key = ? AND filter = ?');
    this.#insertOutbound = db.prepare<[string, number, number, number, number, string, string, ...MessageColumnValues]>(
      `INSERT OR REPLACE INTO mqtt_outbound
         (session_key, seq, delivery_qos, delivery_retain, packet_id, state, subscription_ids,
          topic, payload, qos, retain, properties, expires_at, origin)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#updateOutbound = db.prepare<[number, string, string, number]>(
      'UPDATE mqtt_outbound SET packet_id = ?, state = ? WHERE session_key = ? AND seq = ?',
    );
    this.#deleteOutbound = db.prepare<[string, number]>('DELETE FROM mqtt_outbound WHERE session_key = ? AND seq = ?');
    this.#insertInbound = db.prepare<[string, number]>('INSERT OR IGNORE INTO mqtt_inbound_qos2 (session_key, packet_id) VALUES (?, ?)');
    this.#deleteInbound = db.prepare<[string, number]>('DELETE FROM mqtt_inbound_qos2 WHERE session_key = ? AND packet_id = ?');
    this.#deleteSessionWill = db.prepare<[string]>('DELETE FROM mqtt_wills WHERE session_key = ?');
    this.#upsertWill = db.prepare<[string, number, string, ...MessageColumnValues]>(
      `INSERT OR REPLACE INTO mqtt_wills (session_key, delay, client, topic, payload, qos, retain, properties, expires_at, origin)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#writeBatch = db.transaction((ops: SessionOp[]) => {
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i] as SessionOp;
        try {
          this.#apply(op);
        } catch (error) {
          // Some errors (disk full, I/O) make SQLite roll the whole transaction back; the batch is lost.
          if (!db.inTransaction) throw error;
          this.#stats.failed++;
          this.#reportError(`session store: ${op.kind} failed for session ${JSON.stringify(op.key)}`, error);
        }
      }
    });
  }

  /** Copy of the batching counters. */
  get stats(): WriteBehindStats {
    return { ...this.#stats };
  }

  async loadAll(): Promise<StoredSession[]> {
    this.#writePending();
    const db = this.#db;
    const sessions = new Map<string, StoredSession>();
    for (const row of db.prepare<[], SessionRow>('SELECT * FROM mqtt_sessions ORDER BY key').all()) {
      sessions.set(row.key, {
        key: row.key,
        namespace: row.namespace,
        clientId: row.client_id,
        expiryInterval: row.expiry_interval,
        disconnectedAt: row.disconnected_at,
        client: row.client === null ? null : (JSON.parse(row.client) as StoredSession['client']),
        subscriptions: [],
        outbound: [],
        inboundQos2: [],
        will: null,
      });
    }
    // Rows whose session row is missing are ignored, as the memory store does.
    for (const row of db.prepare<[], SubscriptionRow>('SELECT * FROM mqtt_subscriptions ORDER BY session_key, filter').all()) {
      sessions.get(row.session_key)?.subscriptions.push([row.filter, subscriptionFromRow(row)]);
    }
    for (const row of db.prepare<[], OutboundRow>('SELECT * FROM mqtt_outbound ORDER BY session_key, seq').all()) {
      sessions.get(row.session_key)?.outbound.push(outboundFromRow(row));
    }
    for (const row of db.prepare<[], InboundRow>('SELECT * FROM mqtt_inbound_qos2 ORDER BY session_key, packet_id').all()) {
      sessions.get(row.session_key)?.inboundQos2.push(row.packet_id);
    }
    for (const row of db.prepare<[], WillRow>('SELECT * FROM mqtt_wills').all()) {
      const session = sessions.get(row.session_key);
      if (session !== undefined) session.will = { client: JSON.parse(row.client) as StoredWill['client'], message: messageFromColumns(row), delay: row.delay };
    }
    return [...sessions.values()];
  }

  saveSession(session: SavedSession): void {
    const { key, namespace, clientId, expiryInterval, disconnectedAt } = session;
    this.#enqueue({ kind: 'saveSession', key, namespace, clientId, expiryInterval, disconnectedAt, client: session.client === null ? null : JSON.stringify(session.client) });
  }

  deleteSession(key: string): void {
    this.#enqueue({ kind: 'deleteSession', key });
  }

  setSubscription(key: string, filter: string, options: SubscriptionOptions): void {
    this.#enqueue({ kind: 'setSubscription', key, filter, options: { ...options } });
  }

  deleteSubscription(key: string, filter: string): void {
    this.#enqueue({ kind: 'deleteSubscription', key, filter });
  }

  addOutbound(key: string, entry: StoredOutbound): void {
    // Snapshot the mutable fields now: the session may update the entry before the flush runs.
    this.#enqueue({ kind: 'addOutbound', key, entry: { ...entry }, subscriptionIds: entry.subscriptionIds.length === 0 ? '[]' : JSON.stringify(entry.subscriptionIds) });
  }

  updateOutbound(key: string, seq: number, packetId: number, state: StoredOutbound['state']): void {
    this.#enqueue({ kind: 'updateOutbound', key, seq, packetId, state });
  }

  removeOutbound(key: string, seq: number): void {
    this.#enqueue({ kind: 'removeOutbound', key, seq });
  }

  addInboundQos2(key: string, packetId: number): void {
    this.#enqueue({ kind: 'addInboundQos2', key, packetId });
  }

  removeInboundQos2(key: string, packetId: number): void {
    this.#enqueue({ kind: 'removeInboundQos2', key, packetId });
  }

  setWill(key: string, will: StoredWill | null): void {
    this.#enqueue({ kind: 'setWill', key, will });
  }

  whenDurable(waiter: DurableWaiter): void {
    if (this.#closed) waiter.durable(false);
    else if (this.#pending.length === 0) waiter.durable(true);
    else this.#waiters.push(waiter);
  }

  async flush(): Promise<void> {
    this.#writePending();
  }

  async close(): Promise<void> {
    this.#writePending();
    this.#closed = true;
  }

  #enqueue(op: SessionOp): void {
    if (this.#closed) {
      this.#stats.failed++;
      this.#reportError(`session store: ${op.kind} for session ${JSON.stringify(op.key)} after close, dropped`, new Error('store closed'));
      return;
    }
    this.#pending.push(op);
    if (this.#scheduled === null) this.#scheduled = setImmediate(this.#flushOnTimer);
  }

  /** Writes the queue in one transaction. Never throws: it also runs from the timer. */
  #writePending(): void {
    if (this.#scheduled !== null) {
      clearImmediate(this.#scheduled);
      this.#scheduled = null;
    }
    if (this.#pending.length === 0) return;
    const ops = this.#pending;
    this.#pending = [];
    const waiters = this.#waiters;
    if (waiters.length > 0) this.#waiters = [];
    const failedBefore = this.#stats.failed;
    try {
      this.#writeBatch(ops);
      this.#stats.batches++;
      this.#stats.ops += ops.length - (this.#stats.failed - failedBefore);
    } catch (error) {
      this.#stats.failed = failedBefore + ops.length;
      this.#reportError(`session store: batch of ${ops.length} writes lost`, error);
    }
    // A write that failed inside the batch fails every waiter of it: the waiters do not say which write is theirs.
    if (waiters.length > 0) notifyWaiters(waiters, this.#stats.failed === failedBefore, (error) => this.#reportError('session store: a durability waiter threw', error));
  }

  #apply(op: SessionOp): void {
    switch (op.kind) {
      case 'saveSession':
        this.#upsertSession.run(op.key, op.namespace, op.clientId, op.expiryInterval, op.disconnectedAt, op.client);
        return;
      case 'deleteSession':
        this.#deleteSessionSubscriptions.run(op.key);
        this.#deleteSessionOutbound.run(op.key);
        this.#deleteSessionInbound.run(op.key);
        this.#deleteSessionWill.run(op.key);
        this.#deleteSessionRow.run(op.key);
        return;
      case 'setSubscription': {
        const o = op.options;
        this.#upsertSubscription.run(op.key, op.filter, o.qos, +o.noLocal, +o.retainAsPublished, o.retainHandling, o.subscriptionId);
        return;
      }
      case 'deleteSubscription':
        this.#deleteSubscription.run(op.key, op.filter);
        return;
      case 'addOutbound': {
        const e = op.entry;
        const m = e.message;
        // Columns spelled out rather than spread from messageColumnValues: this runs once per QoS 1/2 delivery.
        this.#insertOutbound.run(op.key, e.seq, e.qos, +e.retain, e.packetId, e.state, op.subscriptionIds,
          m.topic, m.payload, m.qos, +m.retain, propertiesToJson(m.properties), m.expiresAt, m.origin);
        return;
      }
      case 'updateOutbound':
        this.#updateOutbound.run(op.packetId, op.state, op.key, op.seq);
        return;
      case 'removeOutbound':
        this.#deleteOutbound.run(op.key, op.seq);
        return;
      case 'addInboundQos2':
        this.#insertInbound.run(op.key, op.packetId);
        return;
      case 'removeInboundQos2':
        this.#deleteInbound.run(op.key, op.packetId);
        return;
      case 'setWill': {
        const w = op.will;
        if (w === null) this.#deleteSessionWill.run(op.key);
        else this.#upsertWill.run(op.key, w.delay, JSON.stringify(w.client), ...messageColumnValues(w.message));
        return;
      }
    }
  }
}

interface SessionRow {
  key: string;
  namespace: string;
  client_id: string;
  expiry_interval: number;
  disconnected_at: number;
  client: string | null;
}

interface SubscriptionRow {
  session_key: string;
  filter: string;
  qos: number;
  no_local: number;
  retain_as_published: number;
  retain_handling: number;
  subscription_id: number;
}

interface OutboundRow extends MessageColumns {
  session_key: string;
  seq: number;
  delivery_qos: number;
  delivery_retain: number;
  packet_id: number;
  state: string;
  subscription_ids: string;
}

interface WillRow extends MessageColumns {
  session_key: string;
  delay: number;
  client: string;
}

interface InboundRow {
  session_key: string;
  packet_id: number;
}

function subscriptionFromRow(row: SubscriptionRow): SubscriptionOptions {
  return {
    qos: row.qos as SubscriptionOptions['qos'],
    noLocal: row.no_local === 1,
    retainAsPublished: row.retain_as_published === 1,
    retainHandling: row.retain_handling as SubscriptionOptions['retainHandling'],
    subscriptionId: row.subscription_id,
  };
}

function outboundFromRow(row: OutboundRow): StoredOutbound {
  return {
    seq: row.seq,
    message: messageFromColumns(row),
    qos: row.delivery_qos as StoredOutbound['qos'],
    subscriptionIds: JSON.parse(row.subscription_ids) as number[],
    retain: row.delivery_retain === 1,
    packetId: row.packet_id,
    state: row.state as StoredOutbound['state'],
  };
}

// ---- Message columns, shared with SqliteRetainedStore ----

/** How a Message is laid out in a row: payload as a BLOB, MQTT 5 properties as JSON (NULL when none). */
export interface MessageColumns {
  topic: string;
  payload: Buffer;
  qos: number;
  retain: number;
  properties: string | null;
  expires_at: number;
  origin: string;
}

/** topic, payload, qos, retain, properties, expires_at, origin — in that column order. */
export type MessageColumnValues = [string, Buffer, number, number, string | null, number, string];

/** Properties as JSON: correlationData as base64, userProperties kept as the ordered [name, value] array. */
interface PropertiesJson extends Omit<MessageProperties, 'correlationData'> {
  correlationData?: string;
}

export function messageColumnValues(message: Message): MessageColumnValues {
  return [message.topic, message.payload, message.qos, +message.retain, propertiesToJson(message.properties), message.expiresAt, message.origin];
}

export function messageFromColumns(row: MessageColumns): Message {
  return {
    topic: row.topic,
    payload: row.payload,
    qos: row.qos as Message['qos'],
    retain: row.retain === 1,
    properties: propertiesFromJson(row.properties),
    expiresAt: row.expires_at,
    origin: row.origin,
  };
}

function propertiesToJson(properties: MessageProperties | null): string | null {
  if (properties === null) return null;
  // JSON.stringify would turn a Buffer into {type, data}; write it as base64 instead.
  if (properties.correlationData === undefined) return JSON.stringify(properties);
  const json: PropertiesJson = { ...properties, correlationData: properties.correlationData.toString('base64') };
  return JSON.stringify(json);
}

function propertiesFromJson(text: string | null): MessageProperties | null {
  if (text === null) return null;
  const { correlationData, ...rest } = JSON.parse(text) as PropertiesJson;
  return correlationData === undefined ? rest : { ...rest, correlationData: Buffer.from(correlationData, 'base64') };
}
