import type { Context, SQSBatchItemFailure, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { lambdaDeadline, withDeadline } from '../commons/deadline';
import { withLambdaContext } from '../commons/lambda-context';
import { logger } from '../commons/logger';
import type { PaymentProvider } from '../domain/order';
import { callbackUrls } from '../providers/apace/callback-token';
import { loadApaceConfig, loadApaceOfferDelivery, loadApaceOfferLinks } from '../providers/apace/config';
import { apaceSecretSchema } from '../providers/apace/schemas';
import { providerModules } from '../providers/modules';
import type { ProviderModule } from '../providers/provider-module';
import type { ReversalConnector } from '../providers/reversal';
import { loadReceiptRules } from '../services/ap21-ledger';
import { apaceOffersLoadedOnFirstUse, type ApaceOffers } from '../services/apace-offers';
import { Dispatcher, type CallBudget, type DispatcherDeps } from '../services/dispatcher';
import type { OfferDelivery } from '../services/offer-delivery';
import { EVENTBRIDGE_TIMEOUT_MS, EventBridgeOfferEvents } from '../services/offer-events-eventbridge';
import { LoggedOfferEvents } from '../services/offer-events-log';
import type { RetryPolicy } from '../services/retry-policy';
import type { InboxReplayDeps } from '../services/sweeper';
import { reversalConnector } from './reversal-connector';
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

/**
 * How long one provider operation may take, from the timeouts the connectors are configured with:
 * the dispatcher starts a call only when it fits in the invocation (lib/dispatch-queue.ts).
 */
export function callBudget(
  config: Runtime['config'],
  env: NodeJS.ProcessEnv = process.env,
  modules: readonly ProviderModule[] = providerModules(),
): CallBudget {
  const timeoutMs: Record<string, number> = {
    ...(env.APACE_API_URL && { apace: loadApaceConfig(env).timeoutMs }),
    ...(env.APACE_OFFER_EVENT_BUS && { events: EVENTBRIDGE_TIMEOUT_MS }),
  };
  for (const { id, reversal } of modules) if (reversal && env[reversal.enabledBy]) timeoutMs[id] = reversal.callTimeoutMs(reversal.loadSettings(env));
  return { timeoutMs, marginMs: config.DISPATCH_CALL_MARGIN_MS };
}

/**
 * A card-reversal connector for each provider whose base URL is set (reversal-connector.ts): settings
 * read now, so a wrong one stops the container at start; code loaded when it first has work, so an
 * invocation loads only the providers it pays through.
 */
export function createReversalConnectors(
  rt: Runtime,
  env: NodeJS.ProcessEnv = process.env,
  modules: readonly ProviderModule[] = providerModules(),
): Partial<Record<PaymentProvider, ReversalConnector>> {
  const reversals: Record<string, ReversalConnector> = {};
  for (const module of modules) {
    const connector = reversalConnector(rt, module, env);
    if (connector) reversals[module.id] = connector;
  }
  return reversals;
}

/** Apace offers, when its base URL is set; its client loads on first use, as the reversal connectors do. */
export function createApaceOffers(rt: Runtime, env: NodeJS.ProcessEnv = process.env): ApaceOffers | undefined {
  if (!env.APACE_API_URL) return undefined;
  const config = loadApaceConfig(env);
  return apaceOffersLoadedOnFirstUse(async () => {
    const [{ ApaceOffersAdapter }, { ApaceClient }] = await Promise.all([import('../providers/apace/offers.js'), import('../providers/apace/client.js')]);
    return new ApaceOffersAdapter(new ApaceClient(rt.secret('apace', apaceSecretSchema), config));
  });
}

/** What the sweeper's inbox replay needs: the store, and Apace's own record when Apace is configured. */
export function createInboxReplay(rt: Runtime, env: NodeJS.ProcessEnv = process.env): InboxReplayDeps {
  const apace = createApaceOffers(rt, env);
  return { store: rt.store, claimWindowMs: rt.claimWindowMs, apaceProcessedWithinMs: rt.apaceProcessedWithinMs, ...(apace && { apace }) };
}

/** How the stage delivers created Apace offers (`APACE_OFFER_DELIVERY`): e-mail, or events to its bus or, locally, a log. */
export function createOfferDelivery(env: NodeJS.ProcessEnv = process.env): OfferDelivery {
  const config = loadApaceOfferDelivery(env);
  if (config.mode === 'email') return { mode: 'email' };
  return { mode: 'event', events: config.eventBus ? new EventBridgeOfferEvents(config.eventBus) : new LoggedOfferEvents(config.localEventsFile) };
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
    callBudget: callBudget(rt.config, env),
    claimWindowMs: rt.claimWindowMs,
    apaceProcessedWithinMs: rt.apaceProcessedWithinMs,
    apaceCurrency: rt.config.APACE_CURRENCY,
    offerLinks: loadApaceOfferLinks(env),
    receipt: loadReceiptRules(env),
    ...(apace && { offerDelivery: createOfferDelivery(env) }),
    callbackUrls: async (orderId, refundId, offerExpiresAt) =>
      callbackUrls(rt.config.PUBLIC_BASE_URL, await apaceSecret.get(), orderId, refundId, Date.parse(offerExpiresAt) + graceMs),
    ...overrides,
  });
}

function orderIdOf(body: string): string | undefined {
  try {
    const { orderId } = JSON.parse(body) as { orderId?: unknown };
    return typeof orderId === 'string' && orderId ? orderId : undefined;
  } catch {
    return undefined;
  }
}

/** Kept back from the invocation's timeout to report the batch's result. */
const REPORT_RESERVE_MS = 500;

/**
 * The SQS consumer of the outbox doorbell. Each message names an order; the table says what is
 * due. A failed order is reported back alone (partial batch failure) so SQS retries only it, and
 * after five receives it lands in the DLQ — its refunds stay due in the table for the sweeper
 * either way. The invocation's deadline is its own timeout: a provider call starts only if it
 * fits, and an order with a refund whose call did not fit is handed back the same way
 * (lib/dispatch-queue.ts shows how batch size, timeouts, lease and visibility timeout fit).
 */
export function dispatchHandler(dispatcher: Dispatcher): (event: SQSEvent, context: Context) => Promise<SQSBatchResponse> {
  const dispatchBatch = async (event: SQSEvent): Promise<SQSBatchResponse> => {
    const failures: SQSBatchItemFailure[] = [];
    const byOrder = new Map<string, string[]>();
    for (const record of event.Records) {
      const orderId = orderIdOf(record.body);
      if (!orderId) {
        logger.error('dropping a doorbell message without an order id', { message_id: record.messageId });
        continue;
      }
      byOrder.set(orderId, [...(byOrder.get(orderId) ?? []), record.messageId]);
    }
    await Promise.all(
      [...byOrder].map(async ([orderId, messageIds]) => {
        try {
          const steps = await dispatcher.processOrder(orderId);
          logger.info('order dispatched', { order_id: orderId, steps });
          if (steps.some((step) => step.handedBack)) failures.push(...messageIds.map((itemIdentifier) => ({ itemIdentifier })));
        } catch (error) {
          logger.error('order dispatch failed; SQS will retry', { order_id: orderId, error });
          failures.push(...messageIds.map((itemIdentifier) => ({ itemIdentifier })));
        }
      }),
    );
    return { batchItemFailures: failures };
  };
  return withLambdaContext(async (event: SQSEvent, context: Context) => withDeadline(lambdaDeadline(context, REPORT_RESERVE_MS), () => dispatchBatch(event)));
}
