import { ledgerViolations } from '../../lambdas/domain/order';
import type { SimOrder, SimReturn } from '../../simulators/ap21/simulator';
import type { RapiOrder } from '../../lambdas/providers/refundid/schemas';
import { createRefundidSimulator, type RefundidSimulator, type RmaLine } from '../../simulators/refundid/simulator';
import { loadAp21LedgerSettings } from '../../lambdas/services/ap21-ledger';
import type { LocalQueue } from '../../lambdas/services/local-queue';
import { applyRmaPush } from '../../lambdas/services/refundid-rma';
import { sweep } from '../../lambdas/services/sweeper';
import type { ProviderSimulators } from '../../local/simulators';
import { AP21_CREDENTIALS, startPayoutWorld, type IngestHarness, type PayoutWorld } from '../support/harness/relay-with-ap21';

/**
 * Issue 15 point 1 (docs/design.md §2.8), over dynalite, the Ap21 simulator on real HTTP and the
 * payment provider simulators: a return Ap21 settled by an exchange order moves no money (or only
 * the difference, when the stage says so) and its units stop being returnable; a reversed exchange
 * is refunded on the next change; a Refundid RMA line compensated by exchange or credit moves no
 * money. Each CONTROL runs the same with the rule off (EXCHANGE_POLICY=refund) and shows the money
 * the rule keeps.
 */
let h: IngestHarness;
let sims: ProviderSimulators;
let queue: LocalQueue;
let portal: RefundidSimulator;
let watermarks = 0;

let world: PayoutWorld;
beforeAll(async () => {
  world = await startPayoutWorld();
  ({ h, sims, queue } = world);
  process.env.REFUNDID_ALLOWED_IPS = '127.0.0.1';
  portal = createRefundidSimulator({ baseUrl: h.stack.url, bearerToken: String(h.stack.secrets.refundid.bearerToken) });
});
afterAll(() => world.close());
beforeEach(() => h.newEra());

const JACKET_M = { skuId: '52001', quantity: 1, priceMinor: 12000, productName: 'JACKET M' };
const JACKET_L = { skuId: '52002', quantity: 1, priceMinor: 12000, productName: 'JACKET L' };
const VEST = { skuId: '52003', quantity: 1, priceMinor: 8000, productName: 'VEST' };
const TEE = { skuId: '52004', quantity: 2, priceMinor: 3000, productName: 'TEE' };
const EMAIL = 'exchange@example.com';

const orderIdOf = (order: SimOrder) => `ap21-${order.orderId}`;
const stored = async (order: SimOrder) => (await h.store.getOrder(orderIdOf(order)))!;
const paidBy = (reference: string) => sims.payoutsByReference().get(reference);

/** Polls once (on this stage's settings plus `env`), then lets the dispatcher and the sweeper finish. */
async function pollAndDispatch(env: Record<string, string> = {}) {
  const intake = h.intake({ doorbell: queue, ledger: loadAp21LedgerSettings({ ...h.env, ...env }) });
  const run = await h.poller({ settings: { watermark: `exchanges-${++watermarks}` }, intake }).run();
  await queue.drained();
  await sweep(h.store, queue, Date.now());
  await queue.drained();
  return run;
}

/** An order of a jacket and two tees, paid by a card EPG knows. */
function cardOrder(): SimOrder {
  const order = h.ap21.addOrder({ email: EMAIL, lines: [JACKET_M, TEE] });
  const payment = order.payments[0]!;
  sims.addonPayments.seedTransaction(payment.stan!, { amount: { minor: payment.amountMinor, currency: 'AUD' }, paymentSolution: 'creditcards' });
  return order;
}

/** How often Ap21 was asked for the order this return's number names. */
const lookupsOf = (ret: SimReturn) => h.ap21.calls('GET /OrderNumbers/{n}').filter((call) => call.path.endsWith(`/${ret.returnAuthorisationNumber}`)).length;

async function reasons(order: SimOrder): Promise<Record<string, readonly string[]>> {
  const { body } = await portal.fetchOrder({ shop: 'demo', order_number: order.orderNumber, email: EMAIL });
  return Object.fromEntries((body as RapiOrder).line_items.map((line) => [line.line_item_ref, line.non_returnable_reasons ?? []]));
}

async function returnable(order: SimOrder): Promise<Record<string, number>> {
  const { status, body } = await portal.fetchOrder({ shop: 'demo', order_number: order.orderNumber, email: EMAIL });
  expect(status).toBe(200);
  return Object.fromEntries((body as RapiOrder).line_items.map((line) => [line.line_item_ref, line.returnable_quantity]));
}

/** The jacket exchanged for `exchangeLines`; `merged: false` leaves the return's status `Processing`, so only the order lookup tells. */
const swapJacket = (order: SimOrder, exchangeLines = [JACKET_L], merged = true) =>
  h.ap21.addExchange(order.orderId, { lines: [{ skuId: JACKET_M.skuId, quantity: -1 }], exchangeLines, merged });

describe('exchanges are not refunds (issue 15.1)', () => {
  it('records a size exchange Ap21 confirms by its order number as settled by exchange: no money moves, the unit is no longer returnable, and Ap21 is asked once per read', async () => {
    const order = cardOrder();
    const [jacket, tee] = order.lines.map((line) => line.lineId) as [string, string];
    const [payment] = order.payments.map((p) => p.paymentId) as [string];
    const { ret, exchangeOrder } = swapJacket(order, [JACKET_L], false);

    expect((await pollAndDispatch()).outcomes).toMatchObject({ created: 1 });

    const after = await stored(order);
    expect(after.refunds[`ap21-${ret.returnId}`]).toMatchObject({
      state: 'paid',
      channel: 'exchange',
      amount: { minor: 0, currency: 'AUD' },
      lines: { [jacket]: 1 },
      source: { kind: 'ap21_exchange', ref: ret.returnId },
      settledBy: `Ap21 exchange order ${exchangeOrder.orderNumber}`,
      refs: { ap21ExchangeOrder: exchangeOrder.orderNumber },
    });
    expect(paidBy(`ap21-${ret.returnId}`)).toBeUndefined();
    expect(after.lines[jacket]).toMatchObject({ available: 0, reserved: 0, refunded: 1 });
    expect(after.payments[payment]).toMatchObject({ availableMinor: 18000, refundedMinor: 0, reservedMinor: 0 });
    expect(after.timeline.filter((entry) => entry.event === 'refund_created')).toMatchObject([
      { to: 'paid', note: expect.stringContaining(`settled by exchange (order ${exchangeOrder.orderNumber} in Ap21): no money`) },
    ]);
    expect(ledgerViolations(after)).toEqual([]);
    // Refundid's order fetch shows the exchanged jacket as not returnable; the tees still are.
    expect(await returnable(order)).toEqual({ [jacket]: 0, [tee]: 2 });
    expect(await reasons(order)).toEqual({ [jacket]: ['1 of 1 exchanged for another item.'], [tee]: [] });
    expect(lookupsOf(ret)).toBe(1);

    // Read again: already booked. Ap21 is asked once more, as on every read of an exchanged return, to see a reversal.
    h.ap21.touchOrder(order.orderId);
    expect((await pollAndDispatch()).outcomes).toMatchObject({ already_ingested: 1 });
    expect(lookupsOf(ret)).toBe(2);

    // A second return of the same jacket finds no unit left: set aside for an operator, nothing paid.
    const again = h.ap21.addReturn(order.orderId, { lines: [{ skuId: JACKET_M.skuId, quantity: -1 }] });
    expect((await pollAndDispatch()).outcomes).toMatchObject({ isolated: 1 });
    expect((await stored(order)).refunds[`ap21-${again.returnId}`]).toBeUndefined();
    expect(paidBy(`ap21-${again.returnId}`)).toBeUndefined();
  });

  it('loses nothing when Ap21 is unavailable for the lookup: the run stops there, and the next one settles the exchange', async () => {
    const order = cardOrder();
    const { ret } = swapJacket(order, [JACKET_L], false);
    h.beforeAp21 = (request) => {
      if (request.path.endsWith(`/OrderNumbers/${ret.returnAuthorisationNumber}`) && lookupsOf(ret) === 0) h.ap21.injectFailures(3, { status: 503 });
    };
    try {
      const first = await pollAndDispatch();
      expect(first.stop).toBe('ap21_unavailable');
      expect((await h.store.getOrder(orderIdOf(order)))?.refunds[`ap21-${ret.returnId}`]).toBeUndefined();
    } finally {
      h.beforeAp21 = undefined;
    }
    expect((await pollAndDispatch()).outcomes).toMatchObject({ created: 1 });
    expect((await stored(order)).refunds[`ap21-${ret.returnId}`]).toMatchObject({ state: 'paid', channel: 'exchange', amount: { minor: 0 } });
    expect(paidBy(`ap21-${ret.returnId}`)).toBeUndefined();
  });

  it('CONTROL: with the rule off (EXCHANGE_POLICY=refund) the exchanged jacket is refunded to the card as well', async () => {
    const order = cardOrder();
    const { ret } = swapJacket(order, [JACKET_L], false);
    expect((await pollAndDispatch({ EXCHANGE_POLICY: 'refund' })).outcomes).toMatchObject({ created: 1 });
    expect((await stored(order)).refunds[`ap21-${ret.returnId}`]).toMatchObject({ state: 'paid', channel: 'reversal', amount: { minor: 12000 } });
    expect(paidBy(`ap21-${ret.returnId}`)).toBe(1);
  });

  it('is an exchange by its status alone (Return Merged), without asking Ap21, when no difference is ever refunded', async () => {
    const order = cardOrder();
    const { ret } = swapJacket(order);
    expect(ret.status).toBe('Return Merged');
    expect((await pollAndDispatch()).outcomes).toMatchObject({ created: 1 });
    const after = await stored(order);
    expect(after.refunds[`ap21-${ret.returnId}`]).toMatchObject({ channel: 'exchange', amount: { minor: 0 } });
    expect(after.timeline.find((entry) => entry.event === 'refund_created')?.note).toContain('settled by exchange (status Return Merged): no money');
    expect(lookupsOf(ret)).toBe(0);
    expect(paidBy(`ap21-${ret.returnId}`)).toBeUndefined();
  });

  it('refunds a plain return whose ReturnAuthorisationNumber names no order in Ap21, after asking once', async () => {
    const order = cardOrder();
    const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: JACKET_M.skuId, quantity: -1 }] });
    expect((await pollAndDispatch()).outcomes).toMatchObject({ created: 1 });
    const after = await stored(order);
    expect(after.refunds[`ap21-${ret.returnId}`]).toMatchObject({ state: 'paid', channel: 'reversal', amount: { minor: 12000 } });
    expect(after.timeline.find((entry) => entry.event === 'refund_created')?.note).toBe(
      `Ap21 return ${ret.orderNumber} (${ret.returnId}): not an exchange (no order ${ret.returnAuthorisationNumber} in Ap21)`,
    );
    expect(paidBy(`ap21-${ret.returnId}`)).toBe(1);
    expect(lookupsOf(ret)).toBe(1);
    h.ap21.touchOrder(order.orderId);
    expect((await pollAndDispatch()).outcomes).toMatchObject({ already_ingested: 1 });
    expect(lookupsOf(ret)).toBe(1);
    // Ap21 reverses exchanges only: a plain return is refused.
    expect((await deleteReturn(ret.returnId)).status).toBe(403);
  });

  it('refunds only the difference of an exchange for a cheaper item when the stage says so (EXCHANGE_POLICY=refund_difference)', async () => {
    const order = cardOrder();
    const [jacket] = order.lines.map((line) => line.lineId) as [string];
    const [payment] = order.payments.map((p) => p.paymentId) as [string];
    const { ret, exchangeOrder } = swapJacket(order, [VEST]);

    expect((await pollAndDispatch({ EXCHANGE_POLICY: 'refund_difference' })).outcomes).toMatchObject({ created: 1 });

    const after = await stored(order);
    expect(after.refunds[`ap21-${ret.returnId}`]).toMatchObject({
      state: 'paid',
      channel: 'reversal',
      amount: { minor: 4000 },
      lines: { [jacket]: 1 },
      settledBy: `Ap21 exchange order ${exchangeOrder.orderNumber}`,
    });
    expect(paidBy(`ap21-${ret.returnId}`)).toBe(1);
    expect(sims.addonPayments.payouts().get(`ap21-${ret.returnId}`)).toBe(1);
    expect(after.payments[payment]).toMatchObject({ refundedMinor: 4000, availableMinor: 14000 });
    expect(after.timeline.find((entry) => entry.event === 'refund_created')?.note).toContain(
      `settled by exchange (order ${exchangeOrder.orderNumber} in Ap21): only the difference 4000 refunded`,
    );
    expect(ledgerViolations(after)).toEqual([]);
  });

  it('CONTROL: on the default policy the same cheaper exchange moves no money, and the timeline says what was not refunded', async () => {
    const order = cardOrder();
    // Not merged yet, so Ap21 is asked, and the exchange order's value is known.
    const { ret } = swapJacket(order, [VEST], false);
    expect((await pollAndDispatch()).outcomes).toMatchObject({ created: 1 });
    const after = await stored(order);
    expect(after.refunds[`ap21-${ret.returnId}`]).toMatchObject({ state: 'paid', channel: 'exchange', amount: { minor: 0 } });
    expect(after.timeline.find((entry) => entry.event === 'refund_created')?.note).toContain(
      'no money; difference 4000 not refunded (EXCHANGE_POLICY no_money)',
    );
    expect(paidBy(`ap21-${ret.returnId}`)).toBeUndefined();
  });

  it('refunds no difference for an exchange worth as much or more, whatever the policy', async () => {
    const order = cardOrder();
    const { ret } = swapJacket(order, [{ ...JACKET_L, priceMinor: 15000 }]);
    expect((await pollAndDispatch({ EXCHANGE_POLICY: 'refund_difference' })).outcomes).toMatchObject({ created: 1 });
    expect((await stored(order)).refunds[`ap21-${ret.returnId}`]).toMatchObject({ channel: 'exchange', amount: { minor: 0 } });
    expect(paidBy(`ap21-${ret.returnId}`)).toBeUndefined();
  });

  it('refunds an exchange Ap21 reversed (DELETE /Returns/{rid}) on the next change, once', async () => {
    const order = cardOrder();
    const [jacket] = order.lines.map((line) => line.lineId) as [string];
    const { ret, exchangeOrder } = swapJacket(order);
    await pollAndDispatch();
    expect((await stored(order)).refunds[`ap21-${ret.returnId}`]).toMatchObject({ state: 'paid', channel: 'exchange' });

    expect((await deleteReturn(ret.returnId)).status).toBe(200);
    expect(h.ap21.order(exchangeOrder.orderId)).toBeUndefined();

    expect((await pollAndDispatch()).outcomes).toMatchObject({ created: 1 });
    const after = await stored(order);
    expect(after.refunds[`ap21-${ret.returnId}`]).toMatchObject({ state: 'released', channel: 'exchange' });
    expect(after.refunds[`ap21-${ret.returnId}-after-exchange`]).toMatchObject({
      state: 'paid',
      channel: 'reversal',
      amount: { minor: 12000 },
      lines: { [jacket]: 1 },
      source: { kind: 'ap21_return', ref: ret.returnId },
    });
    expect(paidBy(`ap21-${ret.returnId}-after-exchange`)).toBe(1);
    expect(after.timeline.filter((entry) => entry.refundId === `ap21-${ret.returnId}` && entry.event === 'exchange_reversed')).toMatchObject([
      { from: 'paid', to: 'released', note: expect.stringContaining('is reversed in Ap21 (status Processing); refunded as a plain return') },
    ]);
    expect(after.lines[jacket]).toMatchObject({ available: 0, refunded: 1 });
    expect(ledgerViolations(after)).toEqual([]);

    // Read again: nothing more is paid.
    h.ap21.touchOrder(order.orderId);
    expect((await pollAndDispatch()).outcomes).toMatchObject({ already_ingested: 1 });
    expect(paidBy(`ap21-${ret.returnId}-after-exchange`)).toBe(1);
  });
});

describe('Refundid lines compensated by exchange or credit (issue 15.1)', () => {
  const rmaLines = (order: SimOrder, lines: readonly [lineId: string, quantity: number, method?: RmaLine['compensation_method']][]): RmaLine[] =>
    lines.map(([lineId, quantity, method]) => ({
      merchant_order_ref: orderIdOf(order),
      line_item_ref: lineId,
      quantity,
      ...(method !== undefined && { compensation_method: method }),
    }));

  it('takes the units of an exchange or credit line but moves no money for them; a refund line beside them is priced as before', async () => {
    const order = cardOrder();
    const [jacket, tee] = order.lines.map((line) => line.lineId) as [string, string];
    const [payment] = order.payments.map((p) => p.paymentId) as [string];
    expect(await returnable(order)).toEqual({ [jacket]: 1, [tee]: 2 });

    const exchange = await portal.runRma({ refundid_id: `ex-${order.orderId}`, line_items: rmaLines(order, [[jacket, 1, 'exchange']]) });
    expect(exchange.reserved.status).toBe(200);
    const mixed = await portal.runRma({
      refundid_id: `mix-${order.orderId}`,
      line_items: rmaLines(order, [
        [tee, 1, 'credit'],
        [tee, 1, 'refund'],
      ]),
    });
    expect(mixed.reserved.status).toBe(200);

    const after = await stored(order);
    expect(after.refunds[`rfd-ex-${order.orderId}`]).toMatchObject({
      state: 'paid',
      channel: 'refundid',
      amount: { minor: 0 },
      lines: { [jacket]: 1 },
      settledBy: `Refundid exchange (line ${jacket})`,
    });
    expect(after.refunds[`rfd-mix-${order.orderId}`]).toMatchObject({
      state: 'paid',
      amount: { minor: 3000 },
      lines: { [tee]: 2 },
      settledBy: `Refundid credit (line ${tee})`,
    });
    expect(after.payments[payment]).toMatchObject({ refundedMinor: 3000, availableMinor: 15000 });
    expect(after.timeline.find((entry) => entry.event === 'refund_created' && entry.refundId === `rfd-ex-${order.orderId}`)?.note).toContain(
      `settled without money: Refundid exchange (line ${jacket})`,
    );
    expect(await returnable(order)).toEqual({ [jacket]: 0, [tee]: 0 });
    expect(ledgerViolations(after)).toEqual([]);
  });

  it('CONTROL: with the rule off (EXCHANGE_POLICY=refund) an exchange line is booked as money', async () => {
    const order = cardOrder();
    const [jacket] = order.lines.map((line) => line.lineId) as [string];
    await returnable(order);
    const push = {
      refundid_id: `ctl-${order.orderId}`,
      status: 'refunding' as const,
      line_items: rmaLines(order, [[jacket, 1, 'exchange']]).map((line) => ({ ...line })),
    };
    const ctx = { now: new Date().toISOString(), claimWindowMs: 0 };
    expect(await applyRmaPush(h.store, push, JSON.stringify(push), ctx, 'refund')).toMatchObject({ state: 'refundid_pending' });
    expect((await stored(order)).refunds[`rfd-ctl-${order.orderId}`]).toMatchObject({ amount: { minor: 12000 } });
  });
});

/** `DELETE /Returns/{rid}?CountryCode=` over HTTP, as an Ap21 user reverses an exchange. */
function deleteReturn(returnId: string): Promise<Response> {
  const authorization = `Basic ${Buffer.from(`${AP21_CREDENTIALS.username}:${AP21_CREDENTIALS.password}`).toString('base64')}`;
  return fetch(`${h.host.baseUrl('ap21')}/Returns/${returnId}?CountryCode=AU`, { method: 'DELETE', headers: { authorization } });
}
