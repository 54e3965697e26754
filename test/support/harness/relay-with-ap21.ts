import { Ap21Client } from '../../../lambdas/providers/ap21/client';
import { loadAp21Config } from '../../../lambdas/providers/ap21/config';
import type { Ap21Order, Ap21Return } from '../../../lambdas/providers/ap21/schemas';
import { Ap21Simulator, type SimOrder, type SimReturn } from '../../../simulators/ap21/simulator';
import { startSimulatorHost, type SimRequest, type SimResponse, type Simulator, type SimulatorHost } from '../../../simulators/kit';
import { loadAp21LedgerSettings } from '../../../lambdas/services/ap21-ledger';
import { Ap21Poller, type Ap21PollerSettings } from '../../../lambdas/services/ap21-poller';
import { Ap21PushInbox } from '../../../lambdas/services/ap21-push';
import type { ReturnsReadMode } from '../../../lambdas/services/ap21-returns-read';
import { ReturnIntake, type ReturnIntakeDeps } from '../../../lambdas/services/return-intake';
import type { OrderStore } from '../../../lambdas/store/order-store';
import { createDispatcher } from '../../../lambdas/functions/dispatch-runtime';
import type { Dispatcher } from '../../../lambdas/services/dispatcher';
import { LocalQueue } from '../../../lambdas/services/local-queue';
import { startProviderSimulators, type ProviderSimulators } from '../../../local/simulators';
import { createRefundidSimulator, type RefundidSimulator } from '../../../simulators/refundid/simulator';
import { startTestStack, type TestStack } from '../stack';

export const AP21_CREDENTIALS = { username: 'refund-relay', password: 'correct-horse-battery-staple' };

/** The environment a stage reading this simulator would have (the local runtime sets the same names). */
export function ap21Env(baseUrl: string): Record<string, string> {
  return {
    AP21_API_URL: baseUrl,
    AP21_COUNTRY_CODE: 'AU',
    AP21_TIME_ZONE: 'Australia/Melbourne',
    AP21_MAX_CALLS_PER_SECOND: '50',
    AP21_TIMEOUT_MS: '1000',
    AP21_PAYMENT_PROVIDERS: 'CardType:VISA=addon_payments,MerchantId:Refundid=refundid',
    AP21_PUSH_ALLOWED_IPS: '127.0.0.1,::1,198.51.100.0/24',
  };
}

export const POLL_SETTINGS: Ap21PollerSettings = {
  watermark: 'ap21-orders',
  overlapMs: 600_000,
  pageRows: 3,
  pageOverlap: 1,
  maxPages: 100,
  maxDurationMs: 20_000,
  initialLookbackMs: 3600_000,
  pendingPushes: 20,
  retries: 2,
  retryBaseMs: 5,
  retryMaxMs: 50,
  maxRefusalsInARow: 5,
  returnsRead: 'on_sign',
};

/**
 * A refund-relay stack (dynalite, local server) in front of the Ap21 simulator, the ap21 secret
 * matching the simulator's credentials. `beforeAp21` runs before each request reaches the
 * simulator: the hook tests use to change Ap21 between two pages, as a busy store would.
 */
export interface IngestHarness {
  readonly stack: TestStack;
  readonly store: OrderStore;
  readonly ap21: Ap21Simulator;
  readonly host: SimulatorHost;
  readonly env: Record<string, string>;
  beforeAp21: ((request: SimRequest) => void) | undefined;
  /**
   * Ap21's and the poller's clock. Each test moves it to a day of its own (`newEra`), so the
   * orders earlier tests left in the simulator are older than anything a fresh watermark reads.
   */
  clock(): number;
  newEra(): void;
  client(env?: Record<string, string>): Ap21Client;
  intake(overrides?: Partial<ReturnIntakeDeps>): ReturnIntake;
  poller(overrides?: {
    settings?: Partial<Ap21PollerSettings>;
    client?: Ap21Client;
    store?: OrderStore;
    intake?: ReturnIntake;
    now?: () => number;
  }): Ap21Poller;
  close(): Promise<void>;
}

/** How an installation's changed-orders feed shows returns, and the AP21_POLL_RETURNS_READ that goes with it. */
export interface IngestFeed {
  /** Returns listed in the feed themselves (default true, as Ap21 does). */
  readonly returnsInFeed?: boolean;
  /** Default `on_sign`. */
  readonly returnsRead?: ReturnsReadMode;
}

export async function startIngest(extraEnv: Record<string, string> = {}, feed: IngestFeed = {}): Promise<IngestHarness> {
  let offsetMs = 0;
  const clock = () => Date.now() + offsetMs;
  const ap21 = new Ap21Simulator({ basic: AP21_CREDENTIALS, timeZone: 'Australia/Melbourne', now: clock, returnsInFeed: feed.returnsInFeed ?? true });
  const harness = { beforeAp21: undefined } as { beforeAp21: ((request: SimRequest) => void) | undefined };
  const watched: Simulator = {
    name: 'ap21',
    payouts: () => ap21.payouts(),
    handle: (request: SimRequest): Promise<SimResponse> => {
      harness.beforeAp21?.(request);
      return ap21.handle(request);
    },
  };
  const host = await startSimulatorHost({ ap21: watched });
  const env = { ...ap21Env(host.baseUrl('ap21')), ...extraEnv };
  const stack = await startTestStack(env);
  const pushApiKey = String(stack.secrets.ap21.pushApiKey);
  await stack.writeSecrets({ ...stack.secrets, ap21: { ...AP21_CREDENTIALS, pushApiKey } });
  const store = stack.runtime.store;
  const client = (overrides: Record<string, string> = {}) =>
    new Ap21Client(loadAp21Config({ ...env, ...overrides }), { get: async () => AP21_CREDENTIALS, refresh: async () => undefined });
  // As the stage composes it (ap21-runtime.ts): the intake asks Ap21 about the exchange order a return names.
  const intake = (overrides: Partial<ReturnIntakeDeps> = {}) =>
    new ReturnIntake({
      store,
      ledger: loadAp21LedgerSettings(env),
      routing: { policy: 'apace_first', apaceEnabled: true, offerDays: 10 },
      exchangeOrders: client(),
      ...overrides,
    });
  return Object.assign(harness, {
    stack,
    store,
    ap21,
    host,
    env,
    clock,
    newEra: () => {
      offsetMs += 2 * 24 * 3600_000;
    },
    client,
    intake,
    poller: (overrides: Parameters<IngestHarness['poller']>[0] = {}) => {
      const reader = overrides.client ?? client();
      const usedStore = overrides.store ?? store;
      // One client for the poller and its intake, as the stage has: one Ap21 rate limit for both.
      const usedIntake = overrides.intake ?? intake({ store: usedStore, exchangeOrders: reader });
      return new Ap21Poller({
        client: reader,
        store: usedStore,
        intake: usedIntake,
        pushes: new Ap21PushInbox({ store: usedStore, client: reader, intake: usedIntake, now: overrides.now ?? clock }),
        settings: { ...POLL_SETTINGS, returnsRead: feed.returnsRead ?? POLL_SETTINGS.returnsRead, ...overrides.settings },
        now: overrides.now ?? clock,
      });
    },
    close: async () => {
      await host.close();
      await stack.close();
    },
  });
}

export const SHIRT = { skuId: '21503', quantity: 2, priceMinor: 5990, productName: 'LINEN SHIRT' };
export const BELT = { skuId: '880', quantity: 1, priceMinor: 4500, productName: 'BELT' };

/** Every refund of every Ap21 order given, by refund id. */
export async function refundsOf(store: OrderStore, orders: readonly SimOrder[]) {
  const stored = await Promise.all(orders.map((order) => store.getOrder(`ap21-${order.orderId}`)));
  return stored.flatMap((order) => Object.values(order?.refunds ?? {}));
}

/** The ingest harness with the payment providers' simulators, a dispatcher and its local queue: returns through to payouts. */
export interface PayoutWorld {
  readonly h: IngestHarness;
  readonly sims: ProviderSimulators;
  readonly dispatcher: Dispatcher;
  readonly queue: LocalQueue;
  close(): Promise<void>;
}

export async function startPayoutWorld(extraEnv: Record<string, string> = {}): Promise<PayoutWorld> {
  const h = await startIngest(extraEnv);
  const sims = await startProviderSimulators(h.stack.secrets, { apaceProcessedDelayMs: 50, apaceWebhookRetryGapMs: 100 });
  const dispatcher = createDispatcher(
    h.stack.runtime,
    { ...process.env, ...sims.env },
    { policy: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50, leaseMs: 2_000, syncDelayMs: 100 } },
  );
  const queue = new LocalQueue((orderId) => dispatcher.processOrder(orderId));
  return {
    h,
    sims,
    dispatcher,
    queue,
    close: async () => {
      await queue.stop();
      await sims.close();
      await h.close();
    },
  };
}

/**
 * The order and one of its returns as Ap21 serves them, the return shown refunded to the order's
 * first card by Ap21 itself (a negative payment of `amountMinor`) and with `status` when given:
 * what a later read sees after a store refunded at the till.
 */
export async function refundedByAp21(
  h: IngestHarness,
  order: SimOrder,
  ret: SimReturn,
  amountMinor: number,
  status?: string,
): Promise<[Ap21Order, Ap21Return]> {
  const client = h.client();
  const [ap21Order, ap21Return] = await Promise.all([
    client.getOrder(order.personId, order.orderId),
    client.getReturn(order.personId, order.orderId, ret.returnId),
  ]);
  const card = order.payments[0]!;
  return [
    ap21Order,
    {
      ...ap21Return,
      ...(status !== undefined && { status }),
      payments: [{ origin: 'CreditCard', cardType: 'VISA', stan: card.stan!, amount: { minor: -amountMinor, currency: 'AUD' } }],
    },
  ];
}

/** The payout world with Refundid's portal pointed at it (its pushes allowed from loopback), as the Refundid reviews use it. */
export interface RefundidPayoutWorld extends PayoutWorld {
  readonly portal: RefundidSimulator;
}

export async function startRefundidPayoutWorld(extraEnv: Record<string, string> = {}): Promise<RefundidPayoutWorld> {
  const world = await startPayoutWorld({ REFUNDID_ALLOWED_IPS: '127.0.0.1', ...extraEnv });
  const portal = createRefundidSimulator({ baseUrl: world.h.stack.url, bearerToken: String(world.h.stack.secrets.refundid.bearerToken) });
  return { ...world, portal };
}
