import type { PaymentProvider } from '../domain/order';
import { AddonPaymentsConnector } from '../providers/addon-payments/client';
import { loadAddonPaymentsConfig } from '../providers/addon-payments/config';
import { addonPaymentsSecretSchema } from '../providers/addon-payments/schemas';
import { callbackUrls } from '../providers/apace/callback-token';
import { ApaceClient } from '../providers/apace/client';
import { loadApaceConfig } from '../providers/apace/config';
import { ApaceOffersAdapter } from '../providers/apace/offers';
import { apaceSecretSchema } from '../providers/apace/schemas';
import { OpttyConnector } from '../providers/optty/client';
import { loadOpttyConfig } from '../providers/optty/config';
import { opttySecretSchema } from '../providers/optty/schemas';
import { PayProConnector } from '../providers/paypro/client';
import { loadPayProConnectorConfig } from '../providers/paypro/config';
import { payProSecretSchema } from '../providers/paypro/schemas';
import type { ReversalConnector } from '../providers/reversal';
import type { ApaceOffers } from '../services/apace-offers';
import { Dispatcher, type DispatcherDeps } from '../services/dispatcher';
import type { RetryPolicy } from '../services/retry-policy';
import type { Runtime } from './runtime';

export function retryPolicy(config: Runtime['config']): RetryPolicy {
  return {
    maxAttempts: config.DISPATCH_MAX_ATTEMPTS,
    baseDelayMs: config.DISPATCH_BASE_DELAY_MS,
    maxDelayMs: config.DISPATCH_MAX_DELAY_MS,
    leaseMs: config.DISPATCH_LEASE_MS,
    syncDelayMs: config.DISPATCH_SYNC_DELAY_MS,
  };
}

/** A card-reversal connector for each provider whose base URL is set. */
export function createReversalConnectors(rt: Runtime, env: NodeJS.ProcessEnv = process.env): Partial<Record<PaymentProvider, ReversalConnector>> {
  const reversals: Partial<Record<PaymentProvider, ReversalConnector>> = {};
  if (env.ADDON_PAYMENTS_API_URL)
    reversals.addon_payments = new AddonPaymentsConnector(loadAddonPaymentsConfig(env), rt.secret('addonPayments', addonPaymentsSecretSchema));
  if (env.PAYPRO_API_URL) reversals.paypro = new PayProConnector(rt.secret('paypro', payProSecretSchema), loadPayProConnectorConfig(env));
  if (env.OPTTY_API_URL) reversals.optty = new OpttyConnector(rt.secret('optty', opttySecretSchema), loadOpttyConfig(env));
  return reversals;
}

/** Apace offers, when its base URL is set. */
export function createApaceOffers(rt: Runtime, env: NodeJS.ProcessEnv = process.env): ApaceOffers | undefined {
  return env.APACE_API_URL ? new ApaceOffersAdapter(new ApaceClient(rt.secret('apace', apaceSecretSchema), loadApaceConfig(env))) : undefined;
}

/**
 * The dispatcher with every provider this stage configures: a connector exists only when its base
 * URL is set, so a stage without Optty simply sends Optty refunds to manual review.
 */
export function createDispatcher(rt: Runtime, env: NodeJS.ProcessEnv = process.env, overrides: Partial<DispatcherDeps> = {}): Dispatcher {
  const apaceSecret = rt.secret('apace', apaceSecretSchema);
  const apace = rt.config.ROUTING_POLICY === 'apace_first' ? createApaceOffers(rt, env) : undefined;
  const graceMs = rt.config.APACE_CALLBACK_GRACE_SECONDS * 1000;
  return new Dispatcher({
    store: rt.store,
    ...(apace && { apace }),
    reversals: createReversalConnectors(rt, env),
    policy: retryPolicy(rt.config),
    claimWindowMs: rt.claimWindowMs,
    callbackUrls: async (orderId, refundId, offerExpiresAt) =>
      callbackUrls(rt.config.PUBLIC_BASE_URL, await apaceSecret.get(), orderId, refundId, Date.parse(offerExpiresAt) + graceMs),
    ...overrides,
  });
}
