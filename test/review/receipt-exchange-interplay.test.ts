import { ledgerViolations } from '../../lambdas/domain/order';
import type { SimOrder, SimReturn } from '../../simulators/ap21/simulator';
import { loadAp21LedgerSettings } from '../../lambdas/services/ap21-ledger';
import type { LocalQueue } from '../../lambdas/services/local-queue';
import type { ReturnIntake } from '../../lambdas/services/return-intake';
import { createRefundidSimulator } from '../../simulators/refundid/simulator';
import { endRefund } from '../../lambdas/services/operator-actions';
import { sweep } from '../../lambdas/services/sweeper';
import type { ProviderSimulators } from '../../local/simulators';
import { startPayoutWorld, type IngestHarness, type PayoutWorld, refundedByAp21 } from '../support/harness/relay-with-ap21';

/**
 * Review of the merge of issue 15.1 (exchanges) and 15.4 (pay on receipt), over dynalite and the
 * Ap21 and EPG simulators on HTTP. A stage that reverses EPG cards only on receipt.
 */
let h: IngestHarness;
let sims: ProviderSimulators;
let queue: LocalQueue;
let world: PayoutWorld;
let watermarks = 0;

beforeAll(async () => {
  world = await startPayoutWorld({ AP21_PAY_ON_RECEIPT: 'addon_payments', AP21_RECEIPT_WAIT_DAYS: '30' });
  ({ h, sims, queue } = world);
});
afterAll(() => world.close());
beforeEach(() => h.newEra());

const JACKET_M = { skuId: '61001', quantity: 1, priceMinor: 12000, productName: 'JACKET M' };
const JACKET_L = { skuId: '61002', quantity: 1, priceMinor: 12000, productName: 'JACKET L' };
const refundOf = async (order: SimOrder, ret: SimReturn) => (await h.store.getOrder(`ap21-${order.orderId}`))!.refunds[`ap21-${ret.returnId}`]!;
const paidBy = (ret: SimReturn) => sims.payoutsByReference().get(`ap21-${ret.returnId}`);

function intake(): ReturnIntake {
  return h.intake({ doorbell: queue, ledger: loadAp21LedgerSettings(h.env) });
}

async function pollAndDispatch() {
  const run = await h.poller({ settings: { watermark: `review2-${++watermarks}` }, intake: intake() }).run();
  await queue.drained();
  await sweep(h.store, queue, Date.now());
  await queue.drained();
  return run;
}

function returnedJacket(): { order: SimOrder; ret: SimReturn } {
  const order = h.ap21.addOrder({ lines: [JACKET_M] });
  const payment = order.payments[0]!;
  sims.addonPayments.seedTransaction(payment.stan!, { amount: { minor: payment.amountMinor, currency: 'AUD' }, paymentSolution: 'creditcards' });
  return { order, ret: h.ap21.addReturn(order.orderId, { lines: [{ skuId: JACKET_M.skuId, quantity: -1 }] }) };
}

describe('a plain return waiting for its receipt that Ap21 then settles by an exchange', () => {
  it('sends no money once the exchange order its number names exists: the customer has the exchanged jacket', async () => {
    const { order, ret } = returnedJacket();
    // Seen as a plain return (its number names no order yet): a card reversal waiting for the receipt.
    expect((await pollAndDispatch()).outcomes).toMatchObject({ created: 1 });
    expect(await refundOf(order, ret)).toMatchObject({ state: 'awaiting_receipt', channel: 'reversal' });

    // While the jacket travels, the store turns the return into an exchange: the exchange order takes the
    // return's authorisation number. Then the warehouse receives the returned jacket.
    h.ap21.addOrder({ personId: order.personId, orderNumber: ret.returnAuthorisationNumber, lines: [JACKET_L], payments: [] });
    h.ap21.setReturnStatus(ret.returnId, 'Return Received');
    await pollAndDispatch();

    // The customer keeps the L jacket: refunding the M jacket to the card as well pays them twice.
    expect(paidBy(ret)).toBeUndefined();
    const after = await h.store.getOrder(`ap21-${order.orderId}`);
    expect(ledgerViolations(after!)).toEqual([]);
    // Not silent: the refund goes to manual review with the reason, where an operator releases its units at once.
    const held = await refundOf(order, ret);
    expect(held).toMatchObject({ state: 'manual_review', reason: expect.stringContaining('settled by exchange while this refund waited') });
    const released = await endRefund(h.store, 'release', {
      orderId: `ap21-${order.orderId}`,
      refund: held,
      reason: 'exchanged for the L',
      operator: 'review2',
      now: new Date().toISOString(),
      claimWindowMs: 0,
    });
    expect(released).toMatchObject({ done: true, refund: { state: 'released' } });
    // Read again: nothing more happens, nothing is paid.
    h.ap21.touchOrder(order.orderId);
    expect((await pollAndDispatch()).outcomes).toMatchObject({ already_ingested: 1 });
    expect(paidBy(ret)).toBeUndefined();
  });

  it('sends no money when the return shows merged into an exchange while it waits, then received', async () => {
    const { order, ret } = returnedJacket();
    expect((await pollAndDispatch()).outcomes).toMatchObject({ created: 1 });
    h.ap21.addOrder({ personId: order.personId, orderNumber: ret.returnAuthorisationNumber, lines: [JACKET_L], payments: [] });
    h.ap21.setReturnStatus(ret.returnId, 'Return Merged');
    await pollAndDispatch();
    expect(paidBy(ret)).toBeUndefined();
    // The merged status alone says so, without asking Ap21: the refund waits for an operator, not for the receipt.
    expect(await refundOf(order, ret)).toMatchObject({ state: 'manual_review', reason: expect.stringContaining('settled by exchange') });
    h.ap21.setReturnStatus(ret.returnId, 'Completed');
    await pollAndDispatch();
    expect(paidBy(ret)).toBeUndefined();
  });
});

describe('a receipt Ap21 pushes', () => {
  it('releases a refund waiting for its receipt when Ap21 pushes the return again, received', async () => {
    const { order, ret } = returnedJacket();
    const push = () =>
      fetch(`${h.stack.url}/ap21/returns`, {
        method: 'POST',
        headers: { 'content-type': 'text/xml; charset=utf-8', 'x-api-key': String(h.stack.secrets.ap21.pushApiKey) },
        body: `<?xml version="1.0" encoding="utf-8"?>${h.ap21.returnDocument(ret.returnId)}`,
      });
    expect((await push()).status).toBe(202);
    expect(await refundOf(order, ret)).toMatchObject({ state: 'awaiting_receipt' });

    // The installation pushes returns (docs/design.md §2.9: "a push re-sends a return"); the poller has not run.
    h.ap21.setReturnStatus(ret.returnId, 'Return Received');
    expect((await push()).status).toBe(202);
    // The stack's own doorbell rang; here the sweeper finds the released refund.
    await sweep(h.store, queue, Date.now());
    await queue.drained();
    expect(await refundOf(order, ret)).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(paidBy(ret)).toBe(1);
    // Pushed once more: nothing waits any more, so Ap21 is not asked again and nothing more is paid.
    const calls = h.ap21.calls().length;
    expect(await (await push()).json()).toMatchObject({ duplicate: true, status: 'processed' });
    expect(h.ap21.calls()).toHaveLength(calls);
    expect(paidBy(ret)).toBe(1);
  });
});

describe('a return Ap21 shows refunded while its refund waits for the receipt', () => {
  it('does not also reverse the card when Ap21 (or Refundid) already refunded the return', async () => {
    const { order, ret } = returnedJacket();
    expect((await pollAndDispatch()).outcomes).toMatchObject({ created: 1 });
    expect(await refundOf(order, ret)).toMatchObject({ state: 'awaiting_receipt' });

    // The return as Ap21 serves it later: received, and refunded to the card by Ap21 itself (a negative payment).
    const [ap21Order, refunded] = await refundedByAp21(h, order, ret, JACKET_M.priceMinor, 'Return Received');
    // Set aside for an operator (the poller isolates a DomainError), the refund still holding its units.
    expect(await intake().ingest(ap21Order, refunded)).toMatchObject({ kind: 'already_ingested' });
    await queue.drained();
    await sweep(h.store, queue, Date.now());
    await queue.drained();
    expect(paidBy(ret)).toBeUndefined();
    expect(await refundOf(order, ret)).toMatchObject({
      state: 'manual_review',
      reason: expect.stringContaining('already refunded (by Ap21) while this refund waited'),
    });
  });
});

describe('an exchange Ap21 shows by its status alone (no ReturnAuthorisationNumber)', () => {
  it('is not taken as reversed, and refunded in money, when the return later shows received or completed', async () => {
    const { order, ret } = returnedJacket();
    const client = h.client();
    const [ap21Order, served] = await Promise.all([
      client.getOrder(order.personId, order.orderId),
      client.getReturn(order.personId, order.orderId, ret.returnId),
    ]);
    // Ap21 shows the exchange by the merged status only: there is no number to ask Ap21 about.
    const { returnAuthorisationNumber: _number, ...numberless } = served;
    expect(await intake().ingest(ap21Order, { ...numberless, status: 'Return Merged' })).toMatchObject({ kind: 'created' });
    expect(await refundOf(order, ret)).toMatchObject({ state: 'paid', channel: 'exchange' });

    // The warehouse then receives the swapped jacket: the return's status moves on, nothing in Ap21 reversed the exchange.
    await expect(intake().ingest(ap21Order, { ...numberless, status: 'Completed' })).rejects.toThrow('names no exchange order to check');
    await queue.drained();
    await sweep(h.store, queue, Date.now());
    await queue.drained();
    expect(sims.payoutsByReference().get(`ap21-${ret.returnId}-after-exchange`)).toBeUndefined();
    expect(await refundOf(order, ret)).toMatchObject({ state: 'paid', channel: 'exchange' });
  });
});

describe('an Apace refund paid when seen that falls back to a card reversal the stage holds until receipt', () => {
  // The design's "does not wait again (the goods are back by then)" holds only when Apace itself waited: here the
  // fallback waits for the receipt as a new card reversal would (docs/design.md §2.9).
  it('does not reverse the EPG card before Ap21 shows the return received, then reverses it once', async () => {
    // The stage holds EPG reversals until receipt; Apace pays when the return is seen. Seen eleven days ago,
    // while Apace was down: its ten-day offer has run out, so the refund leaves Apace for card reversal (the
    // same as an offer the customer let expire or declined).
    const { order, ret, poll, seen } = apaceJacketSeenLongAgo(queue);
    await poll();
    await queue.drained();
    await sweep(h.store, queue, Date.now());
    await queue.drained();

    const refund = await refundOf(order, ret);
    // Ap21 still shows the return Processing: the EPG card must not be reversed yet. The wait counts from when
    // the return was seen, as a new refund's does.
    expect(refund).toMatchObject({ channel: 'reversal', state: 'awaiting_receipt', nextAttemptAt: new Date(seen + 30 * 86_400_000).toISOString() });
    expect(paidBy(ret)).toBeUndefined();

    // The warehouse receives the jacket: the same release as any refund waiting for its receipt.
    h.ap21.setReturnStatus(ret.returnId, 'Return Received');
    await poll();
    await queue.drained();
    await sweep(h.store, queue, Date.now());
    await queue.drained();
    expect(await refundOf(order, ret)).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(paidBy(ret)).toBe(1);
  });

  /** An Apace refund of a jacket whose return was seen eleven days ago (`seen`): its offer has run out. */
  function apaceJacketSeenLongAgo(doorbell: LocalQueue | undefined) {
    const env = { AP21_PAY_ON_RECEIPT: 'addon_payments', AP21_CARD_LAST_FOUR_FIELD: 'Reference' };
    const card = { origin: 'CreditCard', cardType: 'VISA', stan: `R2-${Date.now()}`, reference: '************7001', amountMinor: JACKET_M.priceMinor };
    const order = h.ap21.addOrder({ lines: [JACKET_M], payments: [card] });
    sims.addonPayments.seedTransaction(card.stan, { amount: { minor: card.amountMinor, currency: 'AUD' }, paymentSolution: 'creditcards' });
    const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: JACKET_M.skuId, quantity: -1 }] });
    const seen = Date.now() - 11 * 86_400_000;
    const used = h.intake({ ...(doorbell && { doorbell }), ledger: loadAp21LedgerSettings({ ...h.env, ...env }), now: () => seen });
    const poll = () => h.poller({ settings: { watermark: `review2-${++watermarks}` }, intake: used }).run();
    return { order, ret, poll, seen };
  }

  it('reverses the card at once when Ap21 already showed the return received when it was seen', async () => {
    const { order, ret, poll } = apaceJacketSeenLongAgo(queue);
    h.ap21.setReturnStatus(ret.returnId, 'Return Received');
    await poll();
    await queue.drained();
    await sweep(h.store, queue, Date.now());
    await queue.drained();
    expect(await refundOf(order, ret)).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(paidBy(ret)).toBe(1);
  });

  it('reverses the card at once when Ap21 showed the return received while the refund was still with Apace', async () => {
    // Nothing dispatched yet: the refund is still on Apace when Ap21 shows the return received.
    const { order, ret, poll } = apaceJacketSeenLongAgo(undefined);
    await poll();
    expect(await refundOf(order, ret)).toMatchObject({ state: 'offer_pending', channel: 'apace' });
    h.ap21.setReturnStatus(ret.returnId, 'Return Received');
    expect((await poll()).outcomes).toMatchObject({ already_ingested: 1 });
    expect((await refundOf(order, ret)).refs).toMatchObject({ returnReceivedAt: expect.any(String) });
    await sweep(h.store, queue, Date.now());
    await queue.drained();
    expect(await refundOf(order, ret)).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(paidBy(ret)).toBe(1);
  });
});

describe('a Refundid RMA settled by exchange, then an Ap21 return of the same units', () => {
  it('pays nothing for the Ap21 return: the units were settled by the RMA, and the return is set aside for an operator', async () => {
    process.env.REFUNDID_ALLOWED_IPS = '127.0.0.1';
    const portal = createRefundidSimulator({ baseUrl: h.stack.url, bearerToken: String(h.stack.secrets.refundid.bearerToken) });
    const order = h.ap21.addOrder({ email: 'review2@example.com', lines: [JACKET_M] });
    const payment = order.payments[0]!;
    sims.addonPayments.seedTransaction(payment.stan!, { amount: { minor: payment.amountMinor, currency: 'AUD' }, paymentSolution: 'creditcards' });
    expect((await portal.fetchOrder({ shop: 'demo', order_number: order.orderNumber, email: 'review2@example.com' })).status).toBe(200);
    const jacket = order.lines[0]!.lineId;
    const rma = await portal.runRma({
      refundid_id: `r2ex-${order.orderId}`,
      line_items: [{ merchant_order_ref: `ap21-${order.orderId}`, line_item_ref: jacket, quantity: 1, compensation_method: 'exchange' }],
    });
    expect(rma.reserved.status).toBe(200);

    const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: JACKET_M.skuId, quantity: -1 }] });
    h.ap21.setReturnStatus(ret.returnId, 'Return Received');
    expect((await pollAndDispatch()).outcomes).toMatchObject({ isolated: 1 });
    expect(paidBy(ret)).toBeUndefined();
    expect((await h.store.getOrder(`ap21-${order.orderId}`))!.refunds[`ap21-${ret.returnId}`]).toBeUndefined();
  });
});

describe('a StockUpdate=False return on a stage that pays on receipt', () => {
  it('is recorded paid by Ap21 at once: no wait, no card reversal of ours', async () => {
    const order = h.ap21.addOrder({ lines: [JACKET_M] });
    const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: JACKET_M.skuId, quantity: -1 }], stockUpdate: false });
    expect((await pollAndDispatch()).outcomes).toMatchObject({ created: 1 });
    expect(await refundOf(order, ret)).toMatchObject({ state: 'paid', source: { kind: 'ap21_refunded' } });
    expect(paidBy(ret)).toBeUndefined();
  });
});
