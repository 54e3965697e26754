import { ledgerViolations } from '../../lambdas/domain/order';
import { DOCUMENTED_TENDERS, type SimOrder } from '../../simulators/ap21/simulator';
import { loadAp21LedgerSettings } from '../../lambdas/services/ap21-ledger';
import { LocalQueue } from '../../lambdas/services/local-queue';
import { sweep } from '../../lambdas/services/sweeper';
import type { ProviderSimulators } from '../../local/simulators';
import { startPayoutWorld, type IngestHarness, type PayoutWorld } from '../support/harness/relay-with-ap21';

/**
 * Issue 15 points 2 and 3 (docs/design.md §2.7), over dynalite, the Ap21 simulator and the payment
 * provider simulators: a return of a unit that is not returnable, or of money no connector may
 * reverse, is held for an operator with the reason and never reaches EPG, PayPro or Optty.
 */
let h: IngestHarness;
let sims: ProviderSimulators;
let queue: LocalQueue;
let watermarks = 0;

let world: PayoutWorld;
beforeAll(async () => {
  world = await startPayoutWorld();
  ({ h, sims, queue } = world);
});
afterAll(() => world.close());
beforeEach(() => h.newEra());

const SCARF = { skuId: '41001', quantity: 1, priceMinor: 3000, productName: 'SCARF' };
const SOCKS = { skuId: '41002', quantity: 1, priceMinor: 2000, productName: 'SOCKS' };
const CAP = { skuId: '41003', quantity: 1, priceMinor: 4000, productName: 'CAP' };

const orderIdOf = (order: SimOrder) => `ap21-${order.orderId}`;

/** Polls once with an intake (on this stage's ledger settings) that rings the dispatcher, then lets the dispatcher and the sweeper finish. */
async function pollAndDispatch(env: Record<string, string> = {}) {
  const intake = h.intake({ doorbell: queue, ledger: loadAp21LedgerSettings({ ...h.env, ...env }) });
  const run = await h.poller({ settings: { watermark: `tenders-${++watermarks}` }, intake }).run();
  await queue.drained();
  await sweep(h.store, queue, Date.now());
  await queue.drained();
  return run;
}

/** The card payment as the EPG simulator knows it, so its reversal can be paid. */
function chargedByCard(order: SimOrder, index: number): void {
  const payment = order.payments[index]!;
  sims.addonPayments.seedTransaction(payment.stan!, { amount: { minor: payment.amountMinor, currency: 'AUD' }, paymentSolution: 'creditcards' });
}

const paidBy = (reference: string) => sims.payoutsByReference().get(reference);

describe('only returnable units are returnable (issue 15.2)', () => {
  it('holds a return of a cancelled or a non-returnable line for an operator with the reason, and pays the returnable unit of the same SKU', async () => {
    const order = h.ap21.addOrder({
      lines: [
        { ...SCARF, status: 'Cancelled' },
        { ...SOCKS, nonReturnable: true },
        { ...SCARF, status: 'Shipped' },
      ],
    });
    chargedByCard(order, 0);
    const [cancelled, finalSale, shipped] = order.lines.map((line) => line.lineId) as [string, string, string];
    // The SCARF comes off the shipped line, not the cancelled one with the lower id.
    const scarf = h.ap21.addReturn(order.orderId, { lines: [{ skuId: SCARF.skuId, quantity: -1 }] });
    const socks = h.ap21.addReturn(order.orderId, { lines: [{ skuId: SOCKS.skuId, quantity: -1 }] });
    // A second SCARF can only come off the cancelled line.
    const secondScarf = h.ap21.addReturn(order.orderId, { lines: [{ skuId: SCARF.skuId, quantity: -1 }] });

    expect((await pollAndDispatch()).outcomes).toEqual({ created: 3 });

    const stored = (await h.store.getOrder(orderIdOf(order)))!;
    expect(stored.refunds[`ap21-${scarf.returnId}`]).toMatchObject({ lines: { [shipped]: 1 }, state: 'paid', channel: 'reversal' });
    expect(stored.refunds[`ap21-${socks.returnId}`]).toMatchObject({
      lines: { [finalSale]: 1 },
      state: 'manual_review',
      reason: `line ${finalSale} is not returnable: This item cannot be returned: the retailer marked it non-returnable.`,
    });
    expect(stored.refunds[`ap21-${secondScarf.returnId}`]).toMatchObject({
      lines: { [cancelled]: 1 },
      state: 'manual_review',
      reason: `line ${cancelled} is not returnable: This item was cancelled; there is nothing to return.`,
    });
    expect([scarf, socks, secondScarf].map((ret) => paidBy(`ap21-${ret.returnId}`))).toEqual([1, undefined, undefined]);
    const created = stored.timeline.filter((entry) => entry.event === 'refund_created' && entry.refundId === `ap21-${socks.returnId}`);
    expect(created).toMatchObject([{ to: 'manual_review', note: expect.stringContaining('held for an operator: line') }]);
    expect(ledgerViolations(stored)).toEqual([]);
  });

  it('holds a return of a line Ap21 cancelled after the order was opened', async () => {
    const order = h.ap21.addOrder({ lines: [CAP] });
    chargedByCard(order, 0);
    await pollAndDispatch();
    expect((await h.store.getOrder(orderIdOf(order)))!.lines[order.lines[0]!.lineId]!.nonReturnable).toBeUndefined();
    h.ap21.setLineStatus(order.orderId, CAP.skuId, 'Cancelled');
    const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: CAP.skuId, quantity: -1 }] });
    expect((await pollAndDispatch()).outcomes).toMatchObject({ created: 1 });
    expect((await h.store.getOrder(orderIdOf(order)))!.refunds[`ap21-${ret.returnId}`]).toMatchObject({
      state: 'manual_review',
      attempts: 0,
      reason: `line ${order.lines[0]!.lineId} is not returnable: This item was cancelled; there is nothing to return.`,
    });
    expect(paidBy(`ap21-${ret.returnId}`)).toBeUndefined();
  });
});

describe('a stated tender rule (issue 15.3)', () => {
  const VOUCHER = { origin: 'GiftVoucher', merchantId: 'VoucherGate', reference: 'GV-77', amountMinor: 3000 };
  const CARD = (stan: string, amountMinor: number) => ({ origin: 'CreditCard', cardType: 'VISA', stan, amountMinor });

  it('never sends a gift-voucher-paid unit to a card provider, even when a provider rule names a connector for it', async () => {
    const order = h.ap21.addOrder({ lines: [SCARF, CAP], payments: [VOUCHER, CARD(`${Date.now()}1`, 4000)] });
    chargedByCard(order, 1);
    const [voucher, card] = order.payments.map((payment) => payment.paymentId) as [string, string];
    const scarf = h.ap21.addReturn(order.orderId, { lines: [{ skuId: SCARF.skuId, quantity: -1 }] });
    const cap = h.ap21.addReturn(order.orderId, { lines: [{ skuId: CAP.skuId, quantity: -1 }] });

    const env = { AP21_PAYMENT_PROVIDERS: 'MerchantId:VoucherGate=addon_payments,CardType:VISA=addon_payments' };
    expect((await pollAndDispatch(env)).outcomes).toEqual({ created: 2 });

    const stored = (await h.store.getOrder(orderIdOf(order)))!;
    expect(stored.payments[voucher]).toMatchObject({ tender: 'GiftVoucher', provider: 'addon_payments', reservedMinor: 3000 });
    expect(stored.refunds[`ap21-${scarf.returnId}`]).toMatchObject({
      paymentId: voucher,
      state: 'manual_review',
      reason: `payment ${voucher} was made by GiftVoucher, which this stage refunds through an operator`,
    });
    // The voucher has nothing left: the next unit's money is the card's.
    expect(stored.refunds[`ap21-${cap.returnId}`]).toMatchObject({ paymentId: card, state: 'paid' });
    expect([paidBy(`ap21-${scarf.returnId}`), paidBy(`ap21-${cap.returnId}`)]).toEqual([undefined, 1]);
    expect(ledgerViolations(stored)).toEqual([]);
  });

  it('holds money that straddles two payments for an operator, unless the stage refunds one tender first', async () => {
    const lines = [
      { ...CAP, priceMinor: 5000 },
      { ...SCARF, priceMinor: 5000 },
    ];
    const seed = (n: number) => h.ap21.addOrder({ lines, payments: [VOUCHER, CARD(`${Date.now()}${n}`, 7000)] });
    const split = seed(2);
    const splitReturn = h.ap21.addReturn(split.orderId, { lines: [{ skuId: CAP.skuId, quantity: -1 }] });
    expect((await pollAndDispatch()).outcomes).toEqual({ created: 1 });
    const [voucher, card] = split.payments.map((payment) => payment.paymentId) as [string, string];
    expect((await h.store.getOrder(orderIdOf(split)))!.refunds[`ap21-${splitReturn.returnId}`]).toMatchObject({
      paymentId: card,
      state: 'manual_review',
      reason: `the returned units' 5000 is split over the payments ${voucher} (GiftVoucher, 3000 left), ${card} (CreditCard, 7000 left): an operator divides it`,
    });
    expect(paidBy(`ap21-${splitReturn.returnId}`)).toBeUndefined();

    const cardFirst = seed(3);
    chargedByCard(cardFirst, 1);
    const ret = h.ap21.addReturn(cardFirst.orderId, { lines: [{ skuId: CAP.skuId, quantity: -1 }] });
    expect((await pollAndDispatch({ AP21_TENDER_ORDER: 'CreditCard' })).outcomes).toMatchObject({ created: 1 });
    expect((await h.store.getOrder(orderIdOf(cardFirst)))!.refunds[`ap21-${ret.returnId}`]).toMatchObject({
      paymentId: cardFirst.payments[1]!.paymentId,
      state: 'paid',
    });
    expect(paidBy(`ap21-${ret.returnId}`)).toBe(1);
  });

  it('reverses only the card of every documented tender on the default settings; every other tender waits for an operator', async () => {
    const orders = DOCUMENTED_TENDERS.map((origin, index) => {
      const order = h.ap21.addOrder({
        lines: [CAP],
        payments: [{ origin, cardType: origin === 'CreditCard' ? 'VISA' : '', stan: `${Date.now()}${index}9`, amountMinor: 4000 }],
      });
      chargedByCard(order, 0);
      return { origin, order, ret: h.ap21.addReturn(order.orderId, { lines: [{ skuId: CAP.skuId, quantity: -1 }] }) };
    });
    expect((await pollAndDispatch()).outcomes).toEqual({ created: DOCUMENTED_TENDERS.length });
    const outcomes: Record<string, [string | undefined, string | undefined, number | undefined]> = {};
    for (const { origin, order, ret } of orders) {
      const stored = (await h.store.getOrder(orderIdOf(order)))!;
      outcomes[origin] = [stored.payments[order.payments[0]!.paymentId]!.tender, stored.refunds[`ap21-${ret.returnId}`]!.state, paidBy(`ap21-${ret.returnId}`)];
    }
    expect(outcomes).toEqual({
      CreditCard: ['CreditCard', 'paid', 1],
      GiftVoucher: ['GiftVoucher', 'manual_review', undefined],
      Zip: ['Zip', 'manual_review', undefined],
      Openpay: ['Openpay', 'manual_review', undefined],
      DirectDebit: ['DirectDebit', 'manual_review', undefined],
      AdyenWallet: ['AdyenWallet', 'manual_review', undefined],
    });
  });

  it('holds money paid by a tender without a connector at intake, with the tender named', async () => {
    const order = h.ap21.addOrder({ lines: [CAP], payments: [{ origin: 'Zip', reference: 'ZIP-9', amountMinor: 4000 }] });
    const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: CAP.skuId, quantity: -1 }] });
    expect((await pollAndDispatch()).outcomes).toEqual({ created: 1 });
    expect((await h.store.getOrder(orderIdOf(order)))!.refunds[`ap21-${ret.returnId}`]).toMatchObject({
      state: 'manual_review',
      attempts: 0,
      reason: `payment ${order.payments[0]!.paymentId} was made by Zip, which refund-relay cannot reverse (no connector for it)`,
    });
  });
});
