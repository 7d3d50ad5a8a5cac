import type { Broker } from '../broker.ts';
import { fromStoredWill, toStoredWill, type Will } from '../channel/will.ts';
import { fromStoredClient, toStoredClient, type ClientInfo, type StoredClient } from '../client-info.ts';
import type { DisconnectCause } from '../hooks.ts';
import { ReasonCode } from '../reason-codes.ts';
import type { Router } from '../routing/router.ts';
import { splitSubscriptionFilter } from '../routing/topic.ts';
import { SessionExpiry, expiredBy } from '../timers/session-expiry.ts';
import { TakeoverGuard } from '../timers/takeover-guard.ts';
import { WillDelay, willDelaySeconds } from '../timers/will-delay.ts';
import { Session, sessionKey, type SessionLink, type Subscription } from './session.ts';
import type { SessionStore } from './session-store.ts';
import { recheckSubscriptions } from './subscription-checks.ts';

/** What the registry uses of the broker: its settings, clock, events, the will publisher and the session observer. */
export type RegistryBroker = Pick<Broker, 'limits' | 'hooks' | 'clock' | 'emit' | 'publishWill' | 'messageDropped' | 'messageStored'>;

/** What `open` answers: the session to attach, or a refusal for the CONNACK. */
export type OpenedSession = { session: Session; sessionPresent: boolean } | { refused: number; reasonString: string };

/**
 * The session registry (EMQX's emqx_cm): one session per (namespace, client id). Opens, resumes,
 * takes over and ends sessions, settles a connection's will and session when it closes, and runs the
 * timers that end them later (will delay, session expiry). Restores persistent sessions and their
 * delayed wills at start-up.
 *
 * Rules: a new connection with the client id of a live one takes it over (MQTT 5 §3.1.4: the old one
 * gets 0x8E), unless the id is taken over in a loop (takeover-guard.ts). A resumed session cancels
 * its pending will and expiry. Only the connection that owns a session settles it on close; a
 * taken-over one only publishes its will. Ending a session publishes a will still waiting.
 *
 * Cost: a Map lookup per CONNECT and per close, one hook call per subscription on resume (their
 * checks). Nothing on the publish path: dispatch reaches sessions through the router.
 */
export class SessionRegistry {
  readonly #sessions = new Map<string, Session>();
  readonly #broker: RegistryBroker;
  readonly #store: SessionStore;
  readonly #router: Router;
  readonly #wills: WillDelay;
  readonly #expiries: SessionExpiry;
  readonly #takeovers: TakeoverGuard;

  constructor(broker: RegistryBroker, store: SessionStore, router: Router) {
    this.#broker = broker;
    this.#store = store;
    this.#router = router;
    this.#takeovers = new TakeoverGuard(broker.limits.takeoverLimit, broker.limits.takeoverBackoffMs);
    this.#wills = new WillDelay(broker.clock, (key, will) => {
      // Forget the stored will first: its removal and the copies it queues commit in one batch.
      this.#sessions.get(key)?.saveWill(null);
      broker.publishWill(will);
    });
    this.#expiries = new SessionExpiry(broker.clock, (session) => {
      if (session.link === null && this.#sessions.get(session.key) === session) this.end(session);
    });
  }

  /** Sessions known (connected or not). */
  get size(): number {
    return this.#sessions.size;
  }

  /** Every session known, connected or not (metrics and $SYS walk them every few seconds). */
  values(): IterableIterator<Session> {
    return this.#sessions.values();
  }

  /**
   * Loads persisted sessions; call once before listening. Timers that ran while the process was down
   * are caught up (SPEC §2): a session whose expiry passed is deleted, a delayed will whose delay passed
   * (or whose session expired) is published now, once, after every session is back so persistent
   * subscribers get it; the others are scheduled for what is left.
   */
  async restore(): Promise<void> {
    const restoreClient = this.#broker.hooks.restoreClient;
    const now = this.#broker.clock.now();
    const due: Will[] = [];
    for (const stored of await this.#store.loadAll()) {
      // A session that was connected when the process stopped counts as disconnected from now.
      const disconnectedAt = stored.disconnectedAt || now;
      const will = stored.will === null ? null : fromStoredWill(stored.namespace, stored.will, restoreClient);
      if (expiredBy(stored.expiryInterval, disconnectedAt, now)) {
        // The session ended while we were down, and with it the will delay (MQTT 5 §3.1.3.2.2).
        this.#store.deleteSession(stored.key);
        if (will !== null) due.push(will);
        continue;
      }
      const session = this.#newSession(stored.namespace, stored.clientId, stored.expiryInterval);
      session.restore({ ...stored, disconnectedAt });
      for (const [filter, options] of stored.subscriptions) {
        // Checked when granted; a row that does not split (never written by SUBSCRIBE) is skipped.
        const parsed = splitSubscriptionFilter(filter);
        if (parsed === null) continue;
        const sub: Subscription = { session, filter, topicFilter: parsed.filter, group: parsed.group, options, deliver: null };
        session.restoreSubscription(sub);
        this.#router.add(session.namespace, sub);
      }
      // Rows stored before sessions kept their client were granted without delivery filters.
      if (stored.client !== null) {
        await recheckSubscriptions(this.#broker.hooks, fromStoredClient(stored.namespace, stored.client, restoreClient), session.subscriptions.values());
      }
      this.#sessions.set(session.key, session);
      this.#expiries.schedule(session, disconnectedAt);
      if (will === null) {
        session.saveWill(null); // dropped by restoreClient, if there was one
        continue;
      }
      if (!this.#wills.wait(session.key, will, stored.expiryInterval, disconnectedAt, now)) {
        session.saveWill(null);
        due.push(will);
      }
    }
    for (const will of due) this.#broker.publishWill(will);
  }

  /**
   * Takes over any live connection of the same client id in the namespace (MQTT 5 §3.1.4: the old
   * one gets DISCONNECT 0x8E), then resumes or replaces its session.
   */
  open(link: SessionLink, client: ClientInfo, cleanStart: boolean, expiryInterval: number): OpenedSession {
    const { namespace, clientId } = client;
    const key = sessionKey(namespace, clientId);
    const now = this.#broker.clock.now();
    const blockedUntil = this.#takeovers.blockedUntil(key, now);
    if (blockedUntil > 0) {
      return { refused: ReasonCode.ConnectionRateExceeded, reasonString: `client id "${clientId}" is taken over in a loop; refused for ${Math.ceil((blockedUntil - now) / 1000)} s` };
    }
    const old = this.#sessions.get(key)?.link;
    if (old != null && old !== link) {
      const verdict = this.#takeovers.record(key, now);
      if (verdict.startedBlock) {
        this.#broker.emit('client.takeover-storm', { namespace, clientId, addresses: [old.remoteAddress, link.remoteAddress], blockedUntil: verdict.blockedUntil });
      }
      old.kick(ReasonCode.SessionTakenOver, 'takeover', `client id taken over by ${link.remoteAddress}`);
    }
    const existing = this.#sessions.get(key);
    if (existing !== undefined && !cleanStart) {
      // A new connection to the session before the will delay ends cancels the will (§3.1.3.2.2).
      this.#wills.cancel(key);
      this.#expiries.cancel(key);
      const wasPersistent = existing.persistent;
      existing.expiryInterval = expiryInterval;
      existing.owner = storedOwner(client, expiryInterval);
      // The subscriptions were granted to the previous owner (maybe another device of the namespace).
      void recheckSubscriptions(this.#broker.hooks, client, existing.subscriptions.values());
      if (!wasPersistent) existing.saveAll();
      else existing.save();
      return { session: existing, sessionPresent: true };
    }
    if (existing !== undefined) this.end(existing);
    const session = this.#newSession(namespace, clientId, expiryInterval);
    session.owner = storedOwner(client, expiryInterval);
    this.#sessions.set(key, session);
    session.save();
    return { session, sessionPresent: false };
  }

  /**
   * Called once a CONNECT is accepted: a will with a delay is stored with its persistent session,
   * so that a restart, or a crash, does not lose it (MQTT 5 §3.1.3.2.2); a will left by an earlier
   * connection is removed.
   */
  keepWill(session: Session, will: Will | null): void {
    session.saveWill(will !== null && willDelaySeconds(will, session.expiryInterval) > 0 ? toStoredWill(will) : null);
  }

  /** Ends a session: its subscriptions leave the router and a pending will is published now. */
  end(session: Session): void {
    if (this.#sessions.get(session.key) !== session) return;
    this.#sessions.delete(session.key);
    this.#expiries.cancel(session.key);
    for (const sub of session.subscriptions.values()) this.#router.remove(session.namespace, sub);
    session.discard();
    const will = this.#wills.cancel(session.key);
    if (will !== undefined) this.#broker.publishWill(will);
  }

  /**
   * A connected client's connection ended: its will is published, left to wait, or discarded (normal
   * DISCONNECT, server shutdown: `will` is then null or `cause` says so), and the session it owns is
   * detached, then ended or left to expire.
   */
  connectionClosed(link: SessionLink, session: Session, will: Will | null, cause: DisconnectCause): void {
    const ownsSession = session.link === link;
    if (ownsSession) session.detach();
    const now = this.#broker.clock.now();
    let willWaits = false;
    if (will !== null && cause !== 'server-shutdown') {
      willWaits = ownsSession && this.#wills.wait(session.key, will, session.expiryInterval, now, now);
      if (!willWaits) this.#broker.publishWill(will);
    }
    if (!ownsSession) return;
    // A will discarded (normal DISCONNECT, server shutdown) or published leaves the store; a waiting
    // one stays there from CONNECT, its delay counted from the disconnectedAt saved below.
    if (!willWaits) session.saveWill(null);
    if (session.expiryInterval === 0) {
      this.end(session);
      return;
    }
    session.disconnectedAt = now;
    session.save();
    this.#expiries.schedule(session, session.disconnectedAt);
  }

  /** Stops the timers (shutdown); what they guard stays in the store for the next start. */
  close(): void {
    this.#wills.clear();
    this.#expiries.clear();
  }

  #newSession(namespace: string, clientId: string, expiryInterval: number): Session {
    return new Session(namespace, clientId, expiryInterval, this.#store, this.#broker, this.#broker.limits);
  }
}

/**
 * `Session.owner`: only a persistent session is written to the store, and a session becomes
 * persistent only through `open` (a v5 DISCONNECT cannot extend an expiry of 0, §3.14.2.2.2), so a
 * clean one needs none: ~0.3 KB per connection and a JSON.stringify per CONNECT saved (issue 15).
 */
function storedOwner(client: ClientInfo, expiryInterval: number): StoredClient | null {
  return expiryInterval > 0 ? toStoredClient(client) : null;
}
