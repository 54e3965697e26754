import { ledgerViolations } from '../../lambdas/domain/order';
import { RECEIPT_OVERDUE_REASON, type Refund } from '../../lambdas/domain/refund';
import { createDispatcher, createInboxReplay } from '../../lambdas/functions/dispatch-runtime';
import type { Dispatcher } from '../../lambdas/services/dispatcher';
import * as metrics from '../../lambdas/commons/metrics';
import { LocalQueue } from '../../lambdas/services/local-queue';
import { loadAp21LedgerSettings, loadReceiptRules } from '../../lambdas/services/ap21-ledger';
import type { ReceiptRules } from '../../lambdas/domain/receipt';
import { endRefund } from '../../lambdas/services/operator-actions';
import { replayInbox, sweep } from '../../lambdas/services/sweeper';
import { startProviderSimulators, type ProviderSimulators } from '../../local/simulators';
import type { SimOrder, SimReturn } from '../../simulators/ap21/simulator';
import { createRefundidSimulator } from '../../simulators/refundid/simulator';
import { startIngest, type IngestHarness, refundedByAp21 } from '../support/harness/relay-with-ap21';
import { gatedStore } from '../support/gated-store';

/**
 * Review of the Apace → card fallback that waits for the receipt (docs/design.md §2.9), over
 * dynalite, the local server and the Ap21, Apace and EPG simulators on HTTP. The stage pays Apace
 * when the return is seen and reverses EPG cards only once Ap21 shows the return received. Apace
 * is the pessimistic one: 1.5 s from our `allow_refund: true` to its payout, and a cancel that lands
 * in between does not stop it (the case §2.3's claim window exists for).
 */
const RULES = { AP21_PAY_ON_RECEIPT: 'addon_payments', AP21_CARD_LAST_FOUR_FIELD: 'Reference', AP21_RECEIPT_WAIT_DAYS: '30' };
const JACKET = { skuId: '73001', quantity: 1, priceMinor: 9000, productName: 'JACKET' };
const POLICY = { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50, leaseMs: 2_000, syncDelayMs: 100 };
const DAY_MS = 86_400_000;
const PAYOUT_DELAY_MS = 1_500;

let h: IngestHarness;
let sims: ProviderSimulators;
let queue: LocalQueue;
let rounds = 0;

/** The stage's dispatcher, its clock `aheadMs` past the wall clock (the simulators keep the wall clock). */
function dispatcher(aheadMs = 0, receipt?: ReceiptRules): Dispatcher {
  return createDispatcher(
    h.stack.runtime,
    { ...process.env, ...sims.env },
    { policy: POLICY, claimWindowMs: 0, now: () => Date.now() + aheadMs, ...(receipt && { receipt }) },
  );
}

beforeAll(async () => {
  h = await startIngest(RULES);
  sims = await startProviderSimulators(h.stack.secrets, {
    apaceProcessedDelayMs: 3_600_000,
    apaceWebhookRetryGapMs: 3_600_000,
    apacePayoutDelayMs: PAYOUT_DELAY_MS,
    apaceHonoursLateCancel: false,
  });
  const stageDispatcher = dispatcher();
  queue = new LocalQueue((orderId) => stageDispatcher.processOrder(orderId));
});
afterAll(async () => {
  await queue.stop();
  await sims.close();
  await h.close();
});
beforeEach(() => h.newEra());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, ms = 5_000): Promise<T> {
  const deadline = Date.now() + ms;
  let value = await read();
  while (!done(value) && Date.now() < deadline) {
    await sleep(50);
    value = await read();
  }
  return value;
}

interface Case {
  readonly order: SimOrder;
  readonly ret: SimReturn;
  readonly orderId: string;
  readonly refundId: string;
  readonly refund: () => Promise<Refund>;
  readonly poll: () => Promise<unknown>;
}

/** An order of a jacket paid by EPG card (last four in `Reference`), its return just seen by the poller. */
function returnedJacket(): Case {
  const card = { origin: 'CreditCard', cardType: 'VISA', stan: `FRR-${Date.now()}-${++rounds}`, reference: '************7001', amountMinor: JACKET.priceMinor };
  const order = h.ap21.addOrder({ email: 'review3@example.com', lines: [JACKET], payments: [card] });
  sims.addonPayments.seedTransaction(card.stan, { amount: { minor: card.amountMinor, currency: 'AUD' }, paymentSolution: 'creditcards' });
  const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: JACKET.skuId, quantity: -1 }] });
  const orderId = `ap21-${order.orderId}`;
  const refundId = `ap21-${ret.returnId}`;
  return {
    order,
    ret,
    orderId,
    refundId,
    refund: async () => (await h.store.getOrder(orderId))!.refunds[refundId]!,
    poll: () => h.poller({ settings: { watermark: `review3-${++rounds}` }, intake: h.intake({ doorbell: queue }) }).run(),
  };
}

/** The returned jacket offered through Apace: the offer created and e-mailed to the customer. */
async function offered(): Promise<Case & { apaceRefundId: string }> {
  const jacket = returnedJacket();
  await jacket.poll();
  await settle();
  const refund = await jacket.refund();
  expect(refund).toMatchObject({ state: 'offered', channel: 'apace', refs: { offerDelivery: 'delivered' } });
  return { ...jacket, apaceRefundId: refund.refs.apaceRefundId! };
}

/** What the stage's loop does: the queue dispatches what was rung, the sweeper finds the rest. */
async function settle(): Promise<void> {
  await queue.drained();
  await replayInbox(createInboxReplay(h.stack.runtime, { ...process.env, ...sims.env }), Date.now());
  await sweep(h.store, queue, Date.now());
  await queue.drained();
}

describe('a late Apace payout for a fallen-back refund whose wait for the receipt ran out', () => {
  // Before the fix: Apace's record was not booked for a refund in review on the reversal channel (apace_paid_after_review
  // was Apace-channel only), nor does review_required apply there, so the overdue reason stayed and the late receipt
  // released the refund to the card: Apace and EPG both paid.
  it('books the Apace payout, so the receipt seen later does not also reverse the card', async () => {
    const jacket = await offered();
    // The customer opens the link: Apace hears `allow_refund: true` and pays 1.5 s later, whatever happens meanwhile.
    const customer = sims.apace.customerAccepts(jacket.apaceRefundId, '7001');
    await until(jacket.refund, (refund) => refund.lastVerifiedAt !== undefined);
    // The dispatcher, 31 days on (a stuck queue, a paused stage): the offer expired, Apace's cancel is accepted,
    // and the card reversal the stage holds until receipt waits; a wait already over goes to an operator.
    await dispatcher(31 * DAY_MS).processOrder(jacket.orderId);
    expect(await jacket.refund()).toMatchObject({ state: 'manual_review', channel: 'reversal', reason: expect.stringContaining(RECEIPT_OVERDUE_REASON) });
    // Apace pays after all (its cancel not honoured): its `pending` contradicts a refund off Apace, so the
    // sweeper reads Apace's record, which says the payout is under way.
    expect(await customer).toBe('paid');
    await until(
      async () => {
        await settle();
        return jacket.refund();
      },
      (refund) => refund.state === 'paid',
      3_000,
    );
    // The warehouse receives the jacket.
    h.ap21.setReturnStatus(jacket.ret.returnId, 'Return Received');
    await jacket.poll();
    await settle();

    // Apace paid the customer: the card must not be reversed as well.
    expect(sims.addonPayments.payouts().get(jacket.refundId)).toBeUndefined();
    expect(sims.payoutsByReference().get(jacket.refundId)).toBe(1);
    const stored = await h.store.getOrder(jacket.orderId);
    expect(stored!.refunds[jacket.refundId]).toMatchObject({ state: 'paid', channel: 'apace' });
    expect(ledgerViolations(stored!)).toEqual([]);
  });
});

describe('a late Apace payout for a fallen-back refund still waiting for its receipt (tried: holds)', () => {
  it('books the Apace payout, and the receipt read later releases nothing to the card', async () => {
    const jacket = await offered();
    const customer = sims.apace.customerAccepts(jacket.apaceRefundId, '7001');
    await until(jacket.refund, (refund) => refund.lastVerifiedAt !== undefined);
    // Eleven days on the offer expired: cancelled at Apace, the card reversal waits for the receipt.
    await dispatcher(11 * DAY_MS).processOrder(jacket.orderId);
    expect(await jacket.refund()).toMatchObject({ state: 'awaiting_receipt', channel: 'reversal' });
    expect(await customer).toBe('paid');
    await until(
      async () => {
        await settle();
        return jacket.refund();
      },
      (refund) => refund.state === 'paid',
      3_000,
    );
    h.ap21.setReturnStatus(jacket.ret.returnId, 'Return Received');
    await jacket.poll();
    await settle();
    expect(await jacket.refund()).toMatchObject({ state: 'paid', channel: 'apace' });
    expect(sims.payoutsByReference().get(jacket.refundId)).toBe(1);
  });
});

describe('a receipt Ap21 showed while the refund was not where the noting looked', () => {
  // Before the fix: return_received_noted applied only from offer_pending, offered, offer_cancelling and reversal_pending,
  // so a receipt read while the refund was paid through Apace (or in review on Apace) was not noted; the fallback waited.
  it('reverses the card at once when Apace’s payout fails after Ap21 showed the return received while it was paid', async () => {
    const jacket = await offered();
    // The customer claims; Apace's `pending` books the refund paid through Apace.
    expect(await sims.apace.customerAccepts(jacket.apaceRefundId, '7001')).toBe('paid');
    expect(await until(jacket.refund, (refund) => refund.state === 'paid')).toMatchObject({ state: 'paid', channel: 'apace' });
    // The warehouse receives the jacket and the poller reads it: nothing waits for it now.
    h.ap21.setReturnStatus(jacket.ret.returnId, 'Return Received');
    expect(await jacket.poll()).toMatchObject({ outcomes: { already_ingested: 1 } });
    // Then the card network declines Apace's payout: the refund falls back to the EPG card.
    expect(await sims.apace.payoutFails(jacket.apaceRefundId)).toBe(true);
    await until(jacket.refund, (refund) => refund.channel === 'reversal');
    await settle();
    // The goods are back and refund-relay read so: the customer is not made to wait 30 days for an operator.
    // (Ap21 lists the order again only when it changes; nothing would read the receipt again.)
    expect(await jacket.refund()).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(sims.addonPayments.payouts().get(jacket.refundId)).toBe(1);
  });

  // Before the fix: a push of a return already processed was read from Ap21 again only when its refund waited for the
  // receipt, so a receipt pushed while the refund was on Apace was never noted; the fallback waited for a receipt already sent.
  it('reverses the card once when Apace’s payout fails and the fallback waits between the read of the receipt and its note', async () => {
    const jacket = await offered();
    expect(await sims.apace.customerAccepts(jacket.apaceRefundId, '7001')).toBe('paid');
    await until(jacket.refund, (refund) => refund.state === 'paid');
    h.ap21.setReturnStatus(jacket.ret.returnId, 'Return Received');
    const client = h.client();
    const [ap21Order, ap21Return] = await Promise.all([
      client.getOrder(jacket.order.personId, jacket.order.orderId),
      client.getReturn(jacket.order.personId, jacket.order.orderId, jacket.ret.returnId),
    ]);
    // The read saw the refund paid through Apace and is about to note the receipt; meanwhile the payout fails
    // and the dispatcher moves the fallback to wait for the receipt.
    const read = await h
      .intake({
        store: gatedStore(h.store, 'return_received_noted', async () => {
          expect(await sims.apace.payoutFails(jacket.apaceRefundId)).toBe(true);
          await until(jacket.refund, (refund) => refund.channel === 'reversal');
          await dispatcher().processOrder(jacket.orderId);
          expect(await jacket.refund()).toMatchObject({ state: 'awaiting_receipt' });
        }),
        doorbell: queue,
      })
      .ingest(ap21Order, ap21Return);
    // Its note refused, the read looks again and releases the waiting refund.
    expect(read).toMatchObject({ kind: 'received' });
    await settle();
    expect(await jacket.refund()).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(sims.addonPayments.payouts().get(jacket.refundId)).toBe(1);
  });

  it('reverses the card at once when Ap21 pushed the return received while the refund was still on Apace', async () => {
    const jacket = returnedJacket();
    const push = () =>
      fetch(`${h.stack.url}/ap21/returns`, {
        method: 'POST',
        headers: { 'content-type': 'text/xml; charset=utf-8', 'x-api-key': String(h.stack.secrets.ap21.pushApiKey) },
        body: `<?xml version="1.0" encoding="utf-8"?>${h.ap21.returnDocument(jacket.ret.returnId)}`,
      });
    // The installation pushes returns: the refund is offered through Apace.
    expect((await push()).status).toBe(202);
    await settle();
    expect(await jacket.refund()).toMatchObject({ state: 'offered', channel: 'apace' });
    // The warehouse receives the jacket; Ap21 pushes the return again (docs/design.md §2.9: "a push re-sends a return").
    h.ap21.setReturnStatus(jacket.ret.returnId, 'Return Received');
    expect((await push()).status).toBe(202);
    // Eleven days on, the offer has expired unclaimed: the refund falls back to the EPG card.
    await dispatcher(11 * DAY_MS).processOrder(jacket.orderId);
    await settle();
    expect(await jacket.refund()).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(sims.addonPayments.payouts().get(jacket.refundId)).toBe(1);
  });
});

describe('a return Ap21 settles otherwise while its refund is still on Apace, then shows received', () => {
  // Before the fix: the receipt was noted although Ap21 showed the return exchanged, so the fallback did not wait and
  // the card was reversed: the waiting refund's exchange check (docs/design.md §2.9) was bypassed.
  it('does not reverse the card for a return Ap21 shows exchanged: the customer kept the other jacket', async () => {
    const jacket = await offered();
    // The store turns the return into an exchange while the offer is live; the warehouse then receives the jacket.
    h.ap21.addOrder({ personId: jacket.order.personId, orderNumber: jacket.ret.returnAuthorisationNumber, lines: [JACKET], payments: [] });
    h.ap21.setReturnStatus(jacket.ret.returnId, 'Completed');
    await jacket.poll();
    // Unclaimed eleven days on: the offer is cancelled and the refund leaves Apace.
    await dispatcher(11 * DAY_MS).processOrder(jacket.orderId);
    await settle();
    expect(sims.payoutsByReference().get(jacket.refundId)).toBeUndefined();
    // Read again (any change of the order lists it): an operator decides, with the reason.
    h.ap21.touchOrder(jacket.order.orderId);
    await jacket.poll();
    await settle();
    expect(await jacket.refund()).toMatchObject({ state: 'manual_review', reason: expect.stringContaining('settled by exchange') });
    expect(sims.payoutsByReference().get(jacket.refundId)).toBeUndefined();
  });

  it('does not reverse the card for a return Ap21 shows already refunded by Ap21', async () => {
    const jacket = await offered();
    const [ap21Order, refunded] = await refundedByAp21(h, jacket.order, jacket.ret, JACKET.priceMinor, 'Return Received');
    expect(await h.intake({ doorbell: queue }).ingest(ap21Order, refunded)).toMatchObject({ kind: 'already_ingested' });
    await dispatcher(11 * DAY_MS).processOrder(jacket.orderId);
    await settle();
    // The read itself cancels the live offer (test/review/offer-live-vs-ap21.test.ts): an operator decides, no card reversal.
    expect(await jacket.refund()).toMatchObject({ state: 'manual_review', channel: 'apace', reason: expect.stringContaining('already refunded (by Ap21)') });
    expect(sims.payoutsByReference().get(jacket.refundId)).toBeUndefined();
  });
});

describe('a fallen-back refund waiting for its receipt that Ap21 settles otherwise (tried: holds)', () => {
  /** The returned jacket's Apace offer expired unclaimed eleven days on: its card reversal waits for the receipt. */
  async function fallenBackWaiting() {
    const jacket = await offered();
    await dispatcher(11 * DAY_MS).processOrder(jacket.orderId);
    expect(await jacket.refund()).toMatchObject({ state: 'awaiting_receipt', channel: 'reversal' });
    return jacket;
  }

  it('sends no money when Ap21 shows the return settled by an exchange, then received', async () => {
    const jacket = await fallenBackWaiting();
    h.ap21.addOrder({ personId: jacket.order.personId, orderNumber: jacket.ret.returnAuthorisationNumber, lines: [JACKET], payments: [] });
    h.ap21.setReturnStatus(jacket.ret.returnId, 'Return Received');
    await jacket.poll();
    await settle();
    expect(await jacket.refund()).toMatchObject({ state: 'manual_review', reason: expect.stringContaining('settled by exchange while this refund waited') });
    expect(sims.payoutsByReference().get(jacket.refundId)).toBeUndefined();
  });

  it('sends no money when Ap21 shows the return already refunded by Ap21 while it waits', async () => {
    const jacket = await fallenBackWaiting();
    const [ap21Order, refunded] = await refundedByAp21(h, jacket.order, jacket.ret, JACKET.priceMinor, 'Return Received');
    expect(await h.intake({ doorbell: queue }).ingest(ap21Order, refunded)).toMatchObject({ kind: 'already_ingested' });
    await settle();
    expect(await jacket.refund()).toMatchObject({ state: 'manual_review', reason: expect.stringContaining('already refunded (by Ap21)') });
    expect(sims.payoutsByReference().get(jacket.refundId)).toBeUndefined();
  });

  it('keeps its units from a Refundid RMA while it waits: no second channel takes them', async () => {
    process.env.REFUNDID_ALLOWED_IPS = '127.0.0.1';
    const portal = createRefundidSimulator({ baseUrl: h.stack.url, bearerToken: String(h.stack.secrets.refundid.bearerToken) });
    const jacket = await fallenBackWaiting();
    const fetched = await portal.fetchOrder({ shop: 'demo', order_number: jacket.order.orderNumber, email: 'review3@example.com' });
    expect(fetched).toMatchObject({ status: 200, body: { line_items: [{ returnable_quantity: 0 }] } });
    const rma = await portal.runRma({
      refundid_id: `r3-${jacket.order.orderId}`,
      line_items: [{ merchant_order_ref: jacket.orderId, line_item_ref: jacket.order.lines[0]!.lineId, quantity: 1 }],
    });
    expect(rma).toMatchObject({ reserved: { status: 409 }, paid: false });
    h.ap21.setReturnStatus(jacket.ret.returnId, 'Return Received');
    await jacket.poll();
    await settle();
    expect(await jacket.refund()).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(sims.payoutsByReference().get(jacket.refundId)).toBe(1);
    expect(portal.payouts().size).toBe(0);
  });

  it('reverses the card once when two reads see the receipt after the wait ran out', async () => {
    const jacket = await offered();
    await dispatcher(31 * DAY_MS).processOrder(jacket.orderId);
    expect(await jacket.refund()).toMatchObject({ state: 'manual_review', reason: expect.stringContaining(RECEIPT_OVERDUE_REASON) });
    h.ap21.setReturnStatus(jacket.ret.returnId, 'Return Received');
    // Two overlapping poller runs see the receipt at once: one release.
    await Promise.all([jacket.poll(), jacket.poll()]);
    await settle();
    expect(await jacket.refund()).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(sims.payoutsByReference().get(jacket.refundId)).toBe(1);
  });

  it('reverses the card once when an operator re-routes the overdue refund as the receipt is read', async () => {
    const jacket = await offered();
    await dispatcher(31 * DAY_MS).processOrder(jacket.orderId);
    const overdue = await jacket.refund();
    expect(overdue).toMatchObject({ state: 'manual_review', reason: expect.stringContaining(RECEIPT_OVERDUE_REASON) });
    h.ap21.setReturnStatus(jacket.ret.returnId, 'Return Received');
    const reroute = endRefund(h.store, 'reroute', {
      orderId: jacket.orderId,
      refund: overdue,
      reason: 'customer called: the parcel was delivered',
      operator: 'review3',
      now: new Date().toISOString(),
      claimWindowMs: 0,
    });
    await Promise.all([reroute, jacket.poll()]);
    await settle();
    expect(await jacket.refund()).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(sims.payoutsByReference().get(jacket.refundId)).toBe(1);
  });
});

describe('a stage that holds Apace offers until receipt as well (tried: holds)', () => {
  const BOTH = { ...RULES, AP21_PAY_ON_RECEIPT: 'apace,addon_payments' };

  it('does not make a fallback wait again: the offer waited for the goods, the card is reversed at once', async () => {
    const jacket = returnedJacket();
    const ledger = loadAp21LedgerSettings({ ...h.env, ...BOTH });
    const stage = dispatcher(0, loadReceiptRules({ ...h.env, ...BOTH }));
    const read = () => h.poller({ settings: { watermark: `review3-${++rounds}` }, intake: h.intake({ ledger }) }).run();
    await read();
    expect(await jacket.refund()).toMatchObject({ state: 'awaiting_receipt', channel: 'apace' });
    h.ap21.setReturnStatus(jacket.ret.returnId, 'Return Received');
    expect(await read()).toMatchObject({ outcomes: { received: 1 } });
    await stage.processOrder(jacket.orderId);
    expect(await jacket.refund()).toMatchObject({ state: 'offered', channel: 'apace' });
    // Unclaimed eleven days on: cancelled at Apace, and the EPG card reversed at once.
    await dispatcher(11 * DAY_MS, loadReceiptRules({ ...h.env, ...BOTH })).processOrder(jacket.orderId);
    expect(await jacket.refund()).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(sims.payoutsByReference().get(jacket.refundId)).toBe(1);
  });
});

describe('the outbox after a fallback starts to wait (tried: holds)', () => {
  it('is due exactly at the end of the wait, when the sweeper hands it to an operator with the alarm', async () => {
    const jacket = await offered();
    await dispatcher(11 * DAY_MS).processOrder(jacket.orderId);
    const waiting = await jacket.refund();
    const end = new Date(Date.parse(waiting.createdAt) + 30 * DAY_MS).toISOString();
    expect(waiting).toMatchObject({ state: 'awaiting_receipt', nextAttemptAt: end });
    // Nothing due before the wait ends (the sweeper does not wake it), due from then on.
    expect(await h.store.findDueOrders(new Date(Date.parse(end) - 1).toISOString(), 500)).not.toContain(jacket.orderId);
    expect(await h.store.findDueOrders(end, 500)).toContain(jacket.orderId);
    const emitted = jest.spyOn(metrics, 'emitMetric');
    // The sweeper at the wait's end rings the dispatcher (this order only: the other cases' orders are theirs).
    const rung = await sweep(h.store, { ring: async () => undefined }, Date.parse(end));
    expect(rung).toContain(jacket.orderId);
    await dispatcher(31 * DAY_MS).processOrder(jacket.orderId);
    expect(await jacket.refund()).toMatchObject({ state: 'manual_review', reason: expect.stringContaining(RECEIPT_OVERDUE_REASON) });
    expect(emitted.mock.calls.filter(([name]) => name === 'ReturnsNotReceived')).toEqual([['ReturnsNotReceived', 1]]);
    emitted.mockRestore();
  });
});
