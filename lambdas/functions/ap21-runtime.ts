import { Ap21Client } from '../providers/ap21/client';
import { loadAp21Config } from '../providers/ap21/config';
import { ap21SecretSchema } from '../providers/ap21/schemas';
import { loadApaceOfferDays } from '../providers/apace/config';
import { loadAp21LedgerSettings } from '../services/ap21-ledger';
import { Ap21Poller, loadAp21PollerSettings } from '../services/ap21-poller';
import { Ap21PushInbox } from '../services/ap21-push';
import { ReturnIntake } from '../services/return-intake';
import type { Doorbell } from '../services/sweeper';
import type { Runtime } from './runtime';

/**
 * Composition of the Ap21 return intake: the poller, the push inbox and what they share. Lambda
 * entries and the local runtime build them here, each from the same environment.
 */

/** `maxTimeoutMs` caps AP21_TIMEOUT_MS for callers that answer an HTTP request while they wait. */
export function createAp21Client(rt: Runtime, env: NodeJS.ProcessEnv = process.env, maxTimeoutMs = Number.POSITIVE_INFINITY): Ap21Client {
  const config = loadAp21Config(env);
  return new Ap21Client({ ...config, timeoutMs: Math.min(config.timeoutMs, maxTimeoutMs) }, rt.secret('ap21', ap21SecretSchema));
}

/**
 * Apace takes refunds when the stage's ROUTING_POLICY is `apace_first` (the dispatcher of such a
 * stage has APACE_API_URL); a refund goes there only with a trusted card last four (routing.ts).
 * `ap21` is asked whether the exchange order a return names exists (docs/design.md §2.8): every
 * intake that books returns has it; one that only opens ledgers does not need it.
 */
export function createReturnIntake(
  rt: Runtime,
  env: NodeJS.ProcessEnv = process.env,
  doorbell?: Doorbell,
  ap21?: Pick<Ap21Client, 'getOrderByNumber'>,
): ReturnIntake {
  return new ReturnIntake({
    store: rt.store,
    ledger: loadAp21LedgerSettings(env),
    routing: { policy: rt.config.ROUTING_POLICY, apaceEnabled: rt.config.ROUTING_POLICY === 'apace_first', offerDays: loadApaceOfferDays(env) },
    ...(doorbell && { doorbell }),
    ...(ap21 && { exchangeOrders: ap21 }),
  });
}

export function createAp21PushInbox(rt: Runtime, client: Ap21Client, intake: ReturnIntake): Ap21PushInbox {
  return new Ap21PushInbox({ store: rt.store, client, intake });
}

export function createAp21Poller(rt: Runtime, env: NodeJS.ProcessEnv = process.env, doorbell?: Doorbell): Ap21Poller {
  const client = createAp21Client(rt, env);
  const intake = createReturnIntake(rt, env, doorbell, client);
  return new Ap21Poller({ client, store: rt.store, intake, pushes: createAp21PushInbox(rt, client, intake), settings: loadAp21PollerSettings(env) });
}
