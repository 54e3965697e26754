import type { XmlLimits } from '../../../lambdas/commons/xml';
import { createDispatcher } from '../../../lambdas/functions/dispatch-runtime';
import { AddonPaymentsSimulator } from '../../../simulators/addon-payments/simulator';
import { Ap21Client } from '../../../lambdas/providers/ap21/client';
import { loadAp21Config } from '../../../lambdas/providers/ap21/config';
import { Ap21Simulator, type SimLineSeed, type SimOrder, type SimReturn } from '../../../simulators/ap21/simulator';
import { startSimulatorHost, type SimulatorHost } from '../../../simulators/kit';
import { loadAp21LedgerSettings } from '../../../lambdas/services/ap21-ledger';
import { Ap21Poller, type Ap21PollerSettings, type UnprocessablePolicy } from '../../../lambdas/services/ap21-poller';
import { Ap21PushInbox } from '../../../lambdas/services/ap21-push';
import { LocalQueue } from '../../../lambdas/services/local-queue';
import { ReturnIntake } from '../../../lambdas/services/return-intake';
import { sweep } from '../../../lambdas/services/sweeper';
import type { Refund } from '../../../lambdas/domain/refund';
import type { OrderStore, StoredIsolation } from '../../../lambdas/store/order-store';
import { AP21_CREDENTIALS, ap21Env, POLL_SETTINGS, type IngestFeed } from './relay-with-ap21';
import { startTestStack, type TestStack } from '../stack';

/**
 * The world a liveness case runs in: refund-relay on dynalite and real HTTP, the Ap21 simulator
 * serving the guide's full documents and EPG's simulator paying the card reversals, all on
 * loopback. Fault dice are seeded, so a failing case replays. The clock moves a day per case
 * (`newEra`), so orders earlier cases left in Ap21 are older than anything a fresh watermark reads.
 */
export interface LivenessWorld {
  readonly stack: TestStack;
  readonly store: OrderStore;
  readonly ap21: Ap21Simulator;
  readonly epg: AddonPaymentsSimulator;
  readonly host: SimulatorHost;
  readonly env: Record<string, string>;
  /** The return intake the world's pollers share. */
  readonly intake: ReturnIntake;
  clock(): number;
  newEra(): void;
  client(overrides?: Record<string, string>, xmlLimits?: XmlLimits): Ap21Client;
  poller(options?: { settings?: Partial<Ap21PollerSettings>; client?: Ap21Reader; unprocessable?: UnprocessablePolicy; random?: () => number }): Ap21Poller;
  /** `count` orders of `lines` lines each (the guide's full documents), each paid by card at EPG, each with one return of its first line. */
  ordersWithReturns(count: number, lines: number): { orders: SimOrder[]; returns: SimReturn[] };
  /** The refunds of these Ap21 orders, by refund id. */
  refundsOf(orders: readonly SimOrder[]): Promise<Refund[]>;
  /**
   * Starts the dispatcher, as the runtime runs it beside the poller: each new refund rings it, and
   * a sweep finds what a ring missed. `settle` waits until every refund of these orders is paid or
   * in manual review (or `timeoutMs` passes), then stops it.
   */
  startDispatching(): { settle(orders: readonly SimOrder[], timeoutMs: number): Promise<void> };
  /** `startDispatching` and `settle` at once, for refunds already created. */
  dispatch(orders: readonly SimOrder[], timeoutMs: number): Promise<void>;
  /** The Ap21 records set aside now, of these orders only. */
  isolations(orders: readonly SimOrder[]): Promise<StoredIsolation[]>;
  close(): Promise<void>;
}

/** What pollers and the push inbox read Ap21 with. */
export type Ap21Reader = Pick<Ap21Client, 'listOrdersChangedSince' | 'listReturns' | 'getOrder' | 'getOrderByNumber' | 'getReturn'>;

/** `client`, counting the single-order reads it makes (what retrying a pushed return starts with). */
export function countingOrderReads(client: Ap21Reader): Ap21Reader & { readonly orderReads: () => number } {
  let reads = 0;
  return {
    listOrdersChangedSince: (since, page) => client.listOrdersChangedSince(since, page),
    listReturns: (personId, orderId) => client.listReturns(personId, orderId),
    getReturn: (personId, orderId, returnId) => client.getReturn(personId, orderId, returnId),
    getOrder: (personId, orderId) => {
      reads++;
      return client.getOrder(personId, orderId);
    },
    getOrderByNumber: (orderNumber) => {
      reads++;
      return client.getOrderByNumber(orderNumber);
    },
    orderReads: () => reads,
  };
}

/** A small deterministic PRNG (mulberry32), so a failing scenario can be replayed. */
export function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A line as a store's catalogue would have it: SKU, code, colour and size, a realistic price. */
function catalogueLine(order: number, line: number): SimLineSeed {
  const sku = 10_000 + order * 100 + line;
  return {
    skuId: String(sku),
    quantity: 1 + (line % 3),
    priceMinor: 1990 + ((order * 7 + line * 13) % 40) * 250,
    productCode: `ST${sku}`,
    productName: `SLIM TAPERED CHINO ${line + 1}`,
    colourCode: ['NAV', 'BLK', 'SND'][line % 3]!,
    colourName: ['NAVY', 'BLACK', 'SAND'][line % 3]!,
    sizeCode: ['28', '30', '32', '34'][line % 4]!,
    ...(line % 5 === 4 && { discountMinor: 500 }),
  };
}

/**
 * `feed`: Ap21's changed-orders feed as an installation shows it, and the poller's matching
 * AP21_POLL_RETURNS_READ (default: returns in the feed, `on_sign`).
 */
export async function startLivenessWorld(seed = 20260115, feed: IngestFeed = {}): Promise<LivenessWorld> {
  let offsetMs = 0;
  const clock = () => Date.now() + offsetMs;
  const ap21 = new Ap21Simulator({ basic: AP21_CREDENTIALS, timeZone: 'Australia/Melbourne', now: clock, returnsInFeed: feed.returnsInFeed ?? true });
  const stack = await startTestStack();
  const { merchantId, merchantPassword } = stack.secrets.addonPayments as { merchantId: string; merchantPassword: string };
  const epg = new AddonPaymentsSimulator({ merchantId, merchantPassword });
  const host = await startSimulatorHost({ ap21, 'addon-payments': epg }, { random: seeded(seed) });
  const env = { ...ap21Env(host.baseUrl('ap21')), ADDON_PAYMENTS_API_URL: host.baseUrl('addon-payments'), ADDON_PAYMENTS_TIMEOUT_MS: '2000' };
  Object.assign(process.env, env);
  const pushApiKey = String(stack.secrets.ap21.pushApiKey);
  await stack.writeSecrets({ ...stack.secrets, ap21: { ...AP21_CREDENTIALS, pushApiKey } });
  const store = stack.runtime.store;
  const client = (overrides: Record<string, string> = {}, xmlLimits?: XmlLimits) =>
    new Ap21Client(loadAp21Config({ ...env, ...overrides }), { get: async () => AP21_CREDENTIALS, refresh: async () => undefined }, xmlLimits);
  // New refunds ring whichever dispatcher is running, as the poller's doorbell does in the runtime.
  let running: LocalQueue | undefined;
  const doorbell = { ring: async (orderIds: readonly string[]) => running?.ring(orderIds) };
  const intake = new ReturnIntake({
    store,
    ledger: loadAp21LedgerSettings(env),
    routing: { policy: 'apace_first', apaceEnabled: true, offerDays: 10 },
    doorbell,
    now: clock,
  });
  const startDispatching = () => {
    const dispatcher = createDispatcher(stack.runtime, process.env, {
      claimWindowMs: 1_000,
      policy: { maxAttempts: 8, baseDelayMs: 20, maxDelayMs: 200, leaseMs: 3_000, syncDelayMs: 100 },
      // The refunds were written on this world's clock.
      now: clock,
    });
    const queue = new LocalQueue((orderId) => dispatcher.processOrder(orderId), 8);
    running = queue;
    const sweeping = setInterval(() => void sweep(store, queue, clock(), 500).catch(() => undefined), 200);
    return {
      settle: async (orders: readonly SimOrder[], timeoutMs: number) => {
        const deadline = Date.now() + timeoutMs;
        try {
          await queue.ring(orders.map((order) => `ap21-${order.orderId}`));
          for (;;) {
            await queue.drained();
            const open = (await refundsOf(orders)).filter((refund) => refund.state !== 'paid' && refund.state !== 'manual_review');
            if (open.length === 0 || Date.now() > deadline) return;
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        } finally {
          clearInterval(sweeping);
          running = undefined;
          await queue.stop();
        }
      },
    };
  };
  let orderCount = 0;

  const refundsOf = async (orders: readonly SimOrder[]) => {
    const stored = await Promise.all(orders.map((order) => store.getOrder(`ap21-${order.orderId}`)));
    return stored.flatMap((order) => Object.values(order?.refunds ?? {}));
  };

  return {
    stack,
    store,
    ap21,
    epg,
    host,
    env,
    intake,
    clock,
    newEra: () => {
      offsetMs += 2 * 24 * 3600_000;
    },
    client,
    poller: (options = {}) => {
      const reader = options.client ?? client();
      return new Ap21Poller({
        client: reader,
        store,
        intake,
        pushes: new Ap21PushInbox({ store, client: reader, intake, now: clock }),
        settings: { ...POLL_SETTINGS, returnsRead: feed.returnsRead ?? POLL_SETTINGS.returnsRead, ...options.settings },
        now: clock,
        random: options.random ?? seeded(seed + 1),
        ...(options.unprocessable && { unprocessable: options.unprocessable }),
      });
    },
    ordersWithReturns: (count, lines) => {
      const orders: SimOrder[] = [];
      const returns: SimReturn[] = [];
      for (let i = 0; i < count; i++) {
        const n = orderCount++;
        const order = ap21.addOrder({ email: `customer${n}@example.com`, lines: Array.from({ length: lines }, (_, line) => catalogueLine(n, line)) });
        const payment = order.payments[0]!;
        epg.seed({ transactionId: payment.stan!, amount: { minor: payment.amountMinor, currency: 'AUD' } });
        orders.push(order);
        returns.push(ap21.addReturn(order.orderId, { lines: [{ skuId: order.lines[0]!.skuId, quantity: -1 }] }));
      }
      return { orders, returns };
    },
    refundsOf,
    startDispatching,
    dispatch: (orders, timeoutMs) => startDispatching().settle(orders, timeoutMs),
    isolations: async (orders) => {
      const ids = new Set(orders.map((order) => order.orderId));
      return (await store.listIsolations('ap21')).filter((isolation) => ids.has(isolation.attributes.ap21OrderId ?? ''));
    },
    close: async () => {
      await host.close();
      await stack.close();
    },
  };
}

/** Every embedded-metric line written while `body` runs (as Lambda would ship them), by metric name. */
export async function capturingMetrics<T>(body: () => Promise<T>): Promise<{ result: T; metrics: Record<string, number[]> }> {
  const metrics: Record<string, number[]> = {};
  const write = process.stdout.write.bind(process.stdout);
  const previous = process.env.AWS_LAMBDA_FUNCTION_NAME;
  process.env.AWS_LAMBDA_FUNCTION_NAME = 'ap21-poller-test';
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const text = String(chunk);
    if (!text.startsWith('{"_aws"')) return write(chunk, ...(rest as []));
    const record = JSON.parse(text) as { _aws: { CloudWatchMetrics: { Metrics: { Name: string }[] }[] } } & Record<string, number>;
    for (const { Name } of record._aws.CloudWatchMetrics[0]!.Metrics) (metrics[Name] ??= []).push(record[Name]!);
    return true;
  });
  try {
    return { result: await body(), metrics };
  } finally {
    spy.mockRestore();
    if (previous === undefined) delete process.env.AWS_LAMBDA_FUNCTION_NAME;
    else process.env.AWS_LAMBDA_FUNCTION_NAME = previous;
  }
}
