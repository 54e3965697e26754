import { createReturnIntake } from '../lambdas/functions/ap21-runtime';
import type { Runtime } from '../lambdas/functions/runtime';
import { Ap21Client } from '../lambdas/providers/ap21/client';
import { Ap21Simulator, type SimOrder } from '../simulators/ap21/simulator';
import { startSimulatorHost } from '../simulators/kit';
import { ledgerOrderId } from '../lambdas/services/ap21-ledger';
import { Ap21Poller, loadAp21PollerSettings } from '../lambdas/services/ap21-poller';
import type { ReturnsReadMode } from '../lambdas/services/ap21-returns-read';
import { withStdoutDiscarded } from './support';

/** The window: 2,000 changed orders in the feed, 2% of them returns. */
const CHANGED_ORDERS = 2_000;
const RETURN_SHARE = 0.02;
/** Ap21's rate the issue reckons with (AP21_MAX_CALLS_PER_SECOND's default). */
const AP21_CALLS_PER_SECOND = 2;
const CREDENTIALS = { username: 'bench', password: 'bench-password' };

export interface PollerModeResult {
  /** Ap21 calls the poller made to read the whole window. */
  readonly calls: number;
  readonly callsPerChangedOrder: number;
  /** Changed orders an hour that rate implies at AP21_CALLS_PER_SECOND. */
  readonly changedOrdersPerHour: number;
  /** Returns of the window with no refund after the pass (must be 0). */
  readonly missedReturns: number;
}

export interface PollerResult {
  readonly changedOrders: number;
  readonly returns: number;
  readonly modes: Readonly<Record<ReturnsReadMode, PollerModeResult>>;
}

/**
 * Ap21 calls per changed order (issue 11 point 3): the poller reads one window of the simulator's
 * changed-orders feed — 1,960 orders, 40 of which then get a return, and the 40 returns the feed
 * lists themselves, 2,000 rows — over loopback HTTP into the bench's dynalite, once with
 * AP21_POLL_RETURNS_READ=on_sign and once with always, with the default page size and overlap.
 * Calls are counted at the simulator. The client is not throttled here: calls, not seconds, are
 * measured, and the hourly figure is what they cost at Ap21's 2 calls/s.
 */
export async function benchPoller(rt: Runtime): Promise<PollerResult> {
  const started = Date.now();
  const ap21 = new Ap21Simulator({ basic: CREDENTIALS, timeZone: 'UTC', now: () => started });
  const host = await startSimulatorHost({ ap21 });
  try {
    const returns = Math.round(CHANGED_ORDERS * RETURN_SHARE);
    const orders: SimOrder[] = [];
    for (let i = 0; i < CHANGED_ORDERS - returns; i++) {
      orders.push(ap21.addOrder({ lines: [{ skuId: String(21_000 + (i % 50)), quantity: 2, priceMinor: 5990 }], updatedAt: started - 60_000 + i }));
    }
    // Every 49th order gets a return, spread over the window.
    const returned = orders.filter((_, i) => i % Math.floor(orders.length / returns) === 0).slice(0, returns);
    const returnIds = returned.map((order) => ap21.addReturn(order.orderId, { lines: [{ skuId: order.lines[0]!.skuId, quantity: -1 }] }).returnId);

    const client = new Ap21Client(
      {
        apiUrl: host.baseUrl('ap21'),
        countryCode: 'AU',
        apiVersion: '4.0',
        maxCallsPerSecond: 1000,
        timeoutMs: 10_000,
        timeZone: 'UTC',
        currency: 'AUD',
        returnsListPath: 'Persons/{personId}/Orders/{orderId}/Returns',
      },
      { get: async () => CREDENTIALS, refresh: async () => undefined },
    );
    // As the stage composes it: the intake asks Ap21 once about the exchange order a new return names (docs/design.md §2.8).
    const intake = createReturnIntake(rt, { ...process.env, AP21_PAYMENT_PROVIDERS: 'CardType:VISA=addon_payments' }, undefined, client);
    const measure = async (mode: ReturnsReadMode): Promise<PollerModeResult> => {
      const settings = {
        ...loadAp21PollerSettings({ AP21_POLL_MAX_PAGES: '1000', AP21_POLL_MAX_SECONDS: '600', AP21_POLL_RETURNS_READ: mode }),
        watermark: `bench-poller-${mode}`,
        initialLookbackMs: 3_600_000,
      };
      const before = ap21.calls().length;
      const poller = new Ap21Poller({ client, store: rt.store, intake, settings, now: () => started });
      const run = await withStdoutDiscarded(() => poller.run());
      if (run.stop !== 'caught_up') throw new Error(`the ${mode} poller stopped ${run.stop}`);
      const calls = ap21.calls().length - before;
      const refunds = await Promise.all(returned.map((order) => rt.store.getOrder(ledgerOrderId(order.orderId))));
      const missedReturns = returnIds.filter((id, i) => !refunds[i]?.refunds[`ap21-${id}`]).length;
      const callsPerChangedOrder = calls / CHANGED_ORDERS;
      return { calls, callsPerChangedOrder, changedOrdersPerHour: Math.floor((AP21_CALLS_PER_SECOND * 3600) / callsPerChangedOrder), missedReturns };
    };
    const onSign = await measure('on_sign');
    const always = await measure('always');
    return { changedOrders: CHANGED_ORDERS, returns, modes: { on_sign: onSign, always } };
  } finally {
    await host.close();
  }
}
