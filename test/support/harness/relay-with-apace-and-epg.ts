import { money } from '../../../lambdas/domain/money';
import type { Refund } from '../../../lambdas/domain/refund';
import { createDispatcher, createInboxReplay } from '../../../lambdas/functions/dispatch-runtime';
import { AddonPaymentsSimulator } from '../../../simulators/addon-payments/simulator';
import { callbackUrls } from '../../../lambdas/providers/apace/callback-token';
import type { ApaceSecret } from '../../../lambdas/providers/apace/schemas';
import { createApaceSimulator, type ApaceSimulator } from '../../../simulators/apace/simulator';
import { startSimulatorHost, type SimRequest, type SimulatorHost } from '../../../simulators/kit';
import type { Dispatcher } from '../../../lambdas/services/dispatcher';
import { replayInbox, sweep, type InboxReplayDeps } from '../../../lambdas/services/sweeper';
import { DAY_MS, demoOrderWithRefund } from '../fixtures';
import { forwardingGate } from '../forwarding-gate';
import { startTestStack, type TestStack } from '../stack';

/**
 * refund-relay on dynalite and real HTTP with Apace's and EPG's simulators on loopback: Apace
 * calls our verification and notification URLs (the latter through a gate that can refuse a
 * delivery, as a crash or an outage would), the dispatcher creates offers and reverses on the card.
 */
export interface ApaceLivenessWorld {
  readonly stack: TestStack;
  readonly apace: ApaceSimulator;
  readonly epg: AddonPaymentsSimulator;
  readonly host: SimulatorHost;
  readonly dispatcher: Dispatcher;
  readonly inbox: InboxReplayDeps;
  /** Requests that reached the Apace simulator (`METHOD /path [order_id]`). */
  readonly apaceRequests: readonly string[];
  /** The next `count` webhook deliveries are answered 503 before reaching us (Apace will retry them later). */
  refuseDeliveries(count: number): void;
  /** A refund on the Apace route with its offer created at Apace; returns Apace's id for it. */
  offeredRefund(orderId: string, currency?: string): Promise<{ refundId: string; apaceRefundId?: string }>;
  refund(orderId: string, refundId: string): Promise<Refund>;
  /**
   * Runs what the runtime runs in the background — the sweeper (inbox replay, then the outbox) and
   * the dispatcher — `rounds` times, `nowOffsetMs` ahead of the wall clock.
   */
  runSweeper(options?: { rounds?: number; nowOffsetMs?: number; replay?: boolean }): Promise<void>;
  close(): Promise<void>;
}

export async function startApaceLivenessWorld(env: Record<string, string> = {}): Promise<ApaceLivenessWorld> {
  const stack = await startTestStack({ APACE_PROCESSED_WITHIN_SECONDS: '1', ...env });
  const secret = stack.secrets.apace as ApaceSecret;
  const { merchantId, merchantPassword } = stack.secrets.addonPayments as { merchantId: string; merchantPassword: string };
  // Apace's own retries come ≥ 30 minutes later and a payout takes its time: neither happens by
  // itself while a case runs; cases replay deliveries and settle payouts when they need to.
  const apace = createApaceSimulator({
    apiKeys: [{ publicId: secret.publicId, apiSecret: secret.apiSecret }],
    processedDelayMs: 3_600_000,
    webhookRetryGapMs: 3_600_000,
  });
  const epg = new AddonPaymentsSimulator({ merchantId, merchantPassword });
  // Every request that reaches the Apace simulator, as method and path (body `order_id` for a create).
  const apaceRequests: string[] = [];
  const countedApace = {
    ...apace,
    handle: (request: SimRequest) => {
      const orderId = /"order_id":"([^"]*)"/.exec(request.body.toString('utf8'))?.[1];
      apaceRequests.push(`${request.method} ${request.path}${orderId ? ` ${orderId}` : ''}`);
      return apace.handle(request);
    },
  };
  const host = await startSimulatorHost({ apace: countedApace, 'addon-payments': epg });
  Object.assign(process.env, { APACE_API_URL: host.baseUrl('apace'), ADDON_PAYMENTS_API_URL: host.baseUrl('addon-payments'), ...env });
  let refusals = 0;
  const gate = await forwardingGate(stack.url, () => refusals-- > 0);
  const dispatcher = createDispatcher(stack.runtime, process.env, {
    claimWindowMs: 0,
    policy: { maxAttempts: 8, baseDelayMs: 20, maxDelayMs: 200, leaseMs: 3_000, syncDelayMs: 100 },
    callbackUrls: async (orderId, refundId, offerExpiresAt) => {
      const urls = callbackUrls(stack.url, secret, orderId, refundId, Date.parse(offerExpiresAt) + 7 * DAY_MS);
      return { ...urls, notificationUrl: urls.notificationUrl.replace(stack.url, gate.origin) };
    },
  });
  const inbox = createInboxReplay(stack.runtime, process.env);
  let orders = 0;
  const refund = async (orderId: string, refundId: string) => (await stack.runtime.store.getOrder(orderId))!.refunds[refundId]!;

  return {
    stack,
    apace,
    epg,
    host,
    dispatcher,
    inbox,
    apaceRequests,
    refuseDeliveries: (count) => {
      refusals = count;
    },
    offeredRefund: async (orderId, currency = 'AUD') => {
      const { store } = stack.runtime;
      const now = new Date().toISOString();
      const transactionId = `78${String(++orders).padStart(5, '0')}`;
      epg.seed({ transactionId, amount: { minor: 16480, currency } });
      const { refundId } = await demoOrderWithRefund(
        store,
        orderId,
        { route: 'apace', amount: money(5990, currency), offerExpiresAt: new Date(Date.now() + 10 * DAY_MS).toISOString() },
        {
          now,
          order: { currency, payments: [{ paymentId: 'pay-1', capturedMinor: 16480, provider: 'addon_payments', transactionId, cardLastFour: '7001' }] },
        },
      );
      await dispatcher.processOrder(orderId);
      const apaceRefundId = (await refund(orderId, refundId)).refs.apaceRefundId;
      return { refundId, ...(apaceRefundId && { apaceRefundId }) };
    },
    refund,
    runSweeper: async ({ rounds = 3, nowOffsetMs = 0, replay = true } = {}) => {
      for (let round = 0; round < rounds; round++) {
        const now = Date.now() + nowOffsetMs;
        if (replay) await replayInbox(inbox, now);
        for (const orderId of await sweep(stack.runtime.store, { ring: async () => undefined }, now)) await dispatcher.processOrder(orderId);
        await new Promise((resolve) => setTimeout(resolve, 120));
      }
    },
    close: async () => {
      apace.close();
      await gate.close();
      await host.close();
      await stack.close();
    },
  };
}
