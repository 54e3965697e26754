import * as metrics from '../../lambdas/commons/metrics';
import { ledgerViolations } from '../../lambdas/domain/order';
import { loadAp21LedgerSettings } from '../../lambdas/services/ap21-ledger';
import type { LocalQueue } from '../../lambdas/services/local-queue';
import { createInboxReplay } from '../../lambdas/functions/dispatch-runtime';
import { replayInbox, sweep } from '../../lambdas/services/sweeper';
import type { ProviderSimulators } from '../../local/simulators';
import type { SimOrder, SimReturn } from '../../simulators/ap21/simulator';
import type { Rma, RefundidSimulator } from '../../simulators/refundid/simulator';
import { startRefundidPayoutWorld, type IngestHarness, type RefundidPayoutWorld } from '../support/harness/relay-with-ap21';

/**
 * Review (2026-12-03): a return Refundid is refunding, lodged in Ap21 before Refundid's payment shows on it
 * (docs/design.md §2.3, §2.7). The RMA is reserved with us (`refunding`: a refund on the `refundid` channel,
 * `refundid_pending`, holding the shirt's unit). Ap21's return carries no negative payment yet, so it reads as
 * a plain return; on an order of two shirts the other shirt's unit is still available. Over dynalite, the local
 * server and the Ap21 and EPG simulators on HTTP, with a dispatcher.
 */
let world: RefundidPayoutWorld;
let h: IngestHarness;
let sims: ProviderSimulators;
let queue: LocalQueue;
let portal: RefundidSimulator;
let rounds = 0;

beforeAll(async () => {
  world = await startRefundidPayoutWorld();
  ({ h, sims, queue, portal } = world);
});
afterAll(() => world.close());
beforeEach(() => h.newEra());

const SHIRT = { skuId: '21503', quantity: 2, priceMinor: 5990, productName: 'LINEN SHIRT' };
const BELT = { skuId: '880', quantity: 1, priceMinor: 4500, productName: 'BELT' };

interface Placed {
  readonly sim: SimOrder;
  readonly orderId: string;
  readonly shirt: string;
  readonly belt: string;
}

/** Two shirts paid by an EPG card, the ledger opened by Refundid's order fetch as the portal does before any RMA. */
async function placeOrder(): Promise<Placed> {
  const stan = `LG-${Date.now()}-${++rounds}`;
  const card = { origin: 'CreditCard', cardType: 'VISA', stan, amountMinor: 2 * SHIRT.priceMinor + BELT.priceMinor };
  const sim = h.ap21.addOrder({ email: 'alice@example.com', lines: [SHIRT, BELT], payments: [card] });
  sims.addonPayments.seedTransaction(stan, { amount: { minor: card.amountMinor, currency: 'AUD' }, paymentSolution: 'creditcards' });
  expect((await portal.fetchOrder({ shop: 'demo', order_number: sim.orderNumber, email: 'alice@example.com' })).status).toBe(200);
  return { sim, orderId: `ap21-${sim.orderId}`, shirt: sim.lines[0]!.lineId, belt: sim.lines[1]!.lineId };
}

const oneShirt = (placed: Placed, refundidId: string): Rma => ({
  refundid_id: refundidId,
  line_items: [{ merchant_order_ref: placed.orderId, line_item_ref: placed.shirt, quantity: 1 }],
});

const metricCalls = (spy: jest.SpyInstance, name: string) => spy.mock.calls.filter(([metric]) => metric === name).length;
const orderOf = async (placed: Placed) => (await h.store.getOrder(placed.orderId))!;

/** The poller's read of `ret` and the intake's booking of it, then the dispatcher given every chance to pay. */
async function ingestAndDispatch(placed: Placed, ret: SimReturn) {
  const reader = h.client();
  const outcome = await h
    .intake({ doorbell: queue, ledger: loadAp21LedgerSettings(h.env) })
    .ingest(await reader.getOrder(placed.sim.personId, placed.sim.orderId), await reader.getReturn(placed.sim.personId, placed.sim.orderId, ret.returnId));
  await queue.drained();
  await replayInbox(createInboxReplay(h.stack.runtime, { ...process.env, ...sims.env }), Date.now());
  await sweep(h.store, queue, Date.now() + 60_000);
  await queue.drained();
  return outcome;
}

describe('review: a return Refundid is refunding, lodged in Ap21 before its payment shows there', () => {
  // Before: the intake read the plain return as a card return; the RMA held shirt 1's unit, so it took shirt 2's and
  // the EPG simulator reversed the card: the customer was refunded twice for one shirt, and the ledger said both
  // shirts came back. Now the return is held for an operator with the RMA named (one conditional write, as other
  // holds). Control: with `refundidStillRefunding` in lambdas/services/return-intake.ts answering [], the card is
  // reversed (payout 1) and this test fails.
  it('does not reverse the card for a shirt Refundid is refunding: the return waits for an operator', async () => {
    const placed = await placeOrder();
    const id = `rid-lodged-${++rounds}`;
    const push = oneShirt(placed, id);
    expect(await portal.push('refunding', push)).toMatchObject({ status: 200, body: { state: 'refundid_pending' } });
    const ret = h.ap21.addReturn(placed.sim.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }] });
    const cardRefundId = `ap21-${ret.returnId}`;
    const emitted = jest.spyOn(metrics, 'emitMetric');

    await ingestAndDispatch(placed, ret);

    expect(sims.addonPayments.payouts().get(cardRefundId)).toBeUndefined();
    expect((await orderOf(placed)).refunds[cardRefundId]).toMatchObject({ state: 'manual_review', reason: expect.stringContaining(`Refundid RMA ${id}`) });
    expect(metricCalls(emitted, 'RefundsInManualReview')).toBe(1);
    emitted.mockRestore();
    // Refundid pays its RMA: one shirt refunded, once.
    expect(await portal.push('refundid', push)).toMatchObject({ status: 200, body: { state: 'paid' } });
    const order = await orderOf(placed);
    expect(order.lines[placed.shirt]).toMatchObject({ refunded: 1 });
    expect(ledgerViolations(order)).toEqual([]);

    // Ap21 then shows Refundid's payment on the return (its payments as on a Refundid return): read again, the held
    // refund is marked settled by Refundid, still not paid.
    const reader = h.client();
    const paidShown = h.ap21.addRefundidReturn(placed.sim.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }], stan: id });
    const { payments } = await reader.getReturn(placed.sim.personId, placed.sim.orderId, paidShown.returnId);
    const reread = { ...(await reader.getReturn(placed.sim.personId, placed.sim.orderId, ret.returnId)), payments };
    await h.intake({ doorbell: queue, ledger: loadAp21LedgerSettings(h.env) }).ingest(await reader.getOrder(placed.sim.personId, placed.sim.orderId), reread);
    await sweep(h.store, queue, Date.now() + 60_000);
    await queue.drained();
    expect(sims.addonPayments.payouts().get(cardRefundId)).toBeUndefined();
    expect((await orderOf(placed)).refunds[cardRefundId]).toMatchObject({
      state: 'manual_review',
      refs: { settledElsewhere: expect.stringContaining('already refunded (by Refundid)') },
    });
  });

  it("control: the same return with Refundid's payment shown is tied to the RMA, booked once, and the card is not reversed", async () => {
    const placed = await placeOrder();
    const id = `rid-shown-${++rounds}`;
    const push = oneShirt(placed, id);
    expect((await portal.push('refunding', push)).status).toBe(200);
    const ret = h.ap21.addRefundidReturn(placed.sim.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }], stan: id });

    expect(await ingestAndDispatch(placed, ret)).toEqual({ kind: 'linked', orderId: placed.orderId, refundId: `rfd-${id}` });

    expect(sims.addonPayments.payouts().get(`ap21-${ret.returnId}`)).toBeUndefined();
    expect(await portal.push('refundid', push)).toMatchObject({ status: 200, body: { refund_id: `rfd-${id}`, state: 'paid' } });
    const order = await orderOf(placed);
    expect(Object.keys(order.refunds)).toEqual([`rfd-${id}`]);
    expect(order.lines[placed.shirt]).toMatchObject({ reserved: 0, refunded: 1, available: 1 });
    expect(ledgerViolations(order)).toEqual([]);
  });

  it('control: a plain return of another SKU while the RMA waits is paid on the card', async () => {
    const placed = await placeOrder();
    expect((await portal.push('refunding', oneShirt(placed, `rid-other-${++rounds}`))).status).toBe(200);
    const ret = h.ap21.addReturn(placed.sim.orderId, { lines: [{ skuId: BELT.skuId, quantity: -1 }] });

    await ingestAndDispatch(placed, ret);

    expect(sims.addonPayments.payouts().get(`ap21-${ret.returnId}`)).toBe(1);
    expect((await orderOf(placed)).lines[placed.belt]).toMatchObject({ refunded: 1, available: 0 });
  });
});
