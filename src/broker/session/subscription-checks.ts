import type { ClientInfo } from '../client-info.ts';
import type { BrokerHooks, DeliveryFilter, SubscribeVerdict } from '../hooks.ts';
import { isFailure } from '../reason-codes.ts';
import type { Subscription } from './session.ts';

/**
 * A session's subscriptions asked again of `authorizeSubscribe`, for the client that now owns it:
 * after a restart (the delivery filters granted at SUBSCRIBE live in memory only, so a restored
 * subscription would otherwise deliver what its grant withheld) and when a client resumes a session
 * (it may be another device of the namespace, under other rules).
 *
 * A subscription refused now is kept, as the client believes it has it, but withholds every message
 * until the client subscribes again; so do all subscriptions of a session whose client is gone
 * (`client` null: `restoreClient` dropped it, e.g. its token was revoked while the broker was down). A granted
 * QoS lower than the stored one is not applied: the client was told the old one.
 *
 * Cost: one hook call per subscription, at start-up and on resume only. Nothing on the publish path.
 * Returns a promise only when the hook answered with one.
 */
export function recheckSubscriptions(hooks: BrokerHooks, client: ClientInfo | null, subscriptions: Iterable<Subscription>): Promise<void> | undefined {
  const authorize = hooks.authorizeSubscribe;
  if (authorize === undefined) return undefined;
  const waiting: Array<Promise<void>> = [];
  for (const sub of subscriptions) {
    if (client === null) {
      sub.deliver = WITHHOLD_ALL;
      continue;
    }
    let verdict: SubscribeVerdict | Promise<SubscribeVerdict>;
    try {
      verdict = authorize(client, sub.filter, sub.options.qos);
    } catch {
      verdict = WITHHOLD_VERDICT;
    }
    if (verdict instanceof Promise) {
      waiting.push(verdict.then((answer) => apply(sub, answer), () => apply(sub, WITHHOLD_VERDICT)));
    } else {
      apply(sub, verdict);
    }
  }
  return waiting.length === 0 ? undefined : Promise.all(waiting).then(() => undefined);
}

/** Withholds every message: the subscription is no longer authorized. */
const WITHHOLD_ALL: DeliveryFilter = { reason: 'not authorized', allows: () => false };
const WITHHOLD_VERDICT = { qos: 0, deliver: WITHHOLD_ALL } as const;

function apply(sub: Subscription, verdict: SubscribeVerdict): void {
  if (typeof verdict === 'number') sub.deliver = isFailure(verdict) ? WITHHOLD_ALL : null;
  else sub.deliver = verdict.deliver;
}
