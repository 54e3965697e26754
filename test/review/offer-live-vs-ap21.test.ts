import { ledgerViolations } from '../../lambdas/domain/order';
import type { Refund } from '../../lambdas/domain/refund';
import { loadAp21LedgerSettings } from '../../lambdas/services/ap21-ledger';
import type { LocalQueue } from '../../lambdas/services/local-queue';
import type { ReturnIntake } from '../../lambdas/services/return-intake';
import { createDispatcher, createInboxReplay } from '../../lambdas/functions/dispatch-runtime';
import { endRefund } from '../../lambdas/services/operator-actions';
import { replayInbox, sweep } from '../../lambdas/services/sweeper';
import type { ProviderSimulators } from '../../local/simulators';
import type { SimOrder, SimReturn } from '../../simulators/ap21/simulator';
import { gatedStore } from '../support/gated-store';
import { startPayoutWorld, type IngestHarness, type PayoutWorld, refundedByAp21 } from '../support/harness/relay-with-ap21';

/**
 * Review: an Apace offer still live (created and e-mailed, the customer has not accepted) when Ap21
 * later shows its return exchanged (docs/design.md §2.8) or already refunded by Ap21. The units were
 * settled elsewhere, so Apace must not pay for them (§2.3: one channel per unit). Over dynalite, the
 * local server and the Ap21, Apace and EPG simulators on HTTP; a stage that pays every channel when the
 * return is seen (no pay on receipt), the card's last four in Ap21's `Reference`.
 */
let h: IngestHarness;
let sims: ProviderSimulators;
let queue: LocalQueue;
let world: PayoutWorld;
let rounds = 0;
const DAY_MS = 86_400_000;

beforeAll(async () => {
  world = await startPayoutWorld({ AP21_CARD_LAST_FOUR_FIELD: 'Reference' });
  ({ h, sims, queue } = world);
});
afterAll(() => world.close());
beforeEach(() => h.newEra());

const JACKET_M = { skuId: '64001', quantity: 1, priceMinor: 11000, productName: 'JACKET M' };
const JACKET_L = { skuId: '64002', quantity: 1, priceMinor: 11000, productName: 'JACKET L' };

function intake(): ReturnIntake {
  return h.intake({ doorbell: queue, ledger: loadAp21LedgerSettings(h.env) });
}

async function settle(): Promise<void> {
  await queue.drained();
  await replayInbox(createInboxReplay(h.stack.runtime, { ...process.env, ...sims.env }), Date.now());
  await sweep(h.store, queue, Date.now());
  await queue.drained();
}

async function pollAndDispatch() {
  const run = await h.poller({ settings: { watermark: `offerlive-${++rounds}` }, intake: intake() }).run();
  await settle();
  return run;
}

interface Offered {
  readonly order: SimOrder;
  readonly ret: SimReturn;
  readonly orderId: string;
  readonly refundId: string;
  readonly apaceRefundId: string;
  refund(): Promise<Refund>;
}

/** A jacket paid by EPG card (last four in `Reference`), returned, its refund offered through Apace and e-mailed. */
async function offeredJacket(): Promise<Offered> {
  const card = {
    origin: 'CreditCard',
    cardType: 'VISA',
    stan: `OL-${Date.now()}-${++rounds}`,
    reference: '************7001',
    amountMinor: JACKET_M.priceMinor,
  };
  const order = h.ap21.addOrder({ lines: [JACKET_M], payments: [card] });
  sims.addonPayments.seedTransaction(card.stan, { amount: { minor: card.amountMinor, currency: 'AUD' }, paymentSolution: 'creditcards' });
  const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: JACKET_M.skuId, quantity: -1 }] });
  const orderId = `ap21-${order.orderId}`;
  const refundId = `ap21-${ret.returnId}`;
  const refund = async () => (await h.store.getOrder(orderId))!.refunds[refundId]!;
  expect((await pollAndDispatch()).outcomes).toMatchObject({ created: 1 });
  const offered = await refund();
  expect(offered).toMatchObject({ state: 'offered', channel: 'apace', refs: { offerDelivery: 'delivered' } });
  return { order, ret, orderId, refundId, apaceRefundId: offered.refs.apaceRefundId!, refund };
}

/** What must hold once Ap21 showed the return settled elsewhere: no Apace payout, no card reversal, an operator told. */
async function expectNoMoneyAndReview(jacket: Offered, reason: string): Promise<void> {
  // The customer opens the e-mailed link and claims: Apace must not pay (the dispatcher cancelled the offer at Apace).
  expect(await sims.apace.customerAccepts(jacket.apaceRefundId, '7001')).toBe('unavailable');
  await settle();
  expect(sims.payoutsByReference().get(jacket.refundId)).toBeUndefined();
  expect(sims.addonPayments.payouts().get(jacket.refundId)).toBeUndefined();
  expect(await jacket.refund()).toMatchObject({ state: 'manual_review', channel: 'apace', reason: expect.stringContaining(reason) });
  expect(ledgerViolations((await h.store.getOrder(jacket.orderId))!)).toEqual([]);
  // Read again: the refund stays with the operator, nothing is paid.
  h.ap21.touchOrder(jacket.order.orderId);
  await pollAndDispatch();
  expect(await jacket.refund()).toMatchObject({ state: 'manual_review' });
  expect(sims.payoutsByReference().get(jacket.refundId)).toBeUndefined();
}

describe('an Apace offer still live when Ap21 shows its return settled elsewhere', () => {
  // Before the fix: the intake sent a known refund to review only while it waited for its receipt; for a refund
  // whose Apace offer was live, a return Ap21 then showed exchanged or refunded was acknowledged (already_ingested)
  // and nothing else: verification kept answering allow_refund: true and Apace paid the customer's claim. Now the
  // read takes the cancel-first path (offer_cancel_started, marked refs.settledElsewhere); once Apace cancels, the
  // dispatcher sends the refund to manual review with the reason, never to the card.
  it('cancels the offer when Ap21 shows the return exchanged (the exchange order its number names, merged status)', async () => {
    const jacket = await offeredJacket();
    // The store swaps the jacket: an exchange order takes the return's authorisation number, the return merges.
    h.ap21.addOrder({ personId: jacket.order.personId, orderNumber: jacket.ret.returnAuthorisationNumber, lines: [JACKET_L], payments: [] });
    h.ap21.setReturnStatus(jacket.ret.returnId, 'Return Merged');
    await pollAndDispatch();
    await expectNoMoneyAndReview(jacket, 'exchange');
  });

  it('cancels the offer when the exchange order the return names exists, its status not (yet) an exchange one', async () => {
    const jacket = await offeredJacket();
    h.ap21.addOrder({ personId: jacket.order.personId, orderNumber: jacket.ret.returnAuthorisationNumber, lines: [JACKET_L], payments: [] });
    h.ap21.touchOrder(jacket.order.orderId);
    await pollAndDispatch();
    await expectNoMoneyAndReview(jacket, 'settled by exchange');
  });

  it('cancels the offer when Ap21 shows the return already refunded by Ap21 (a negative card payment)', async () => {
    const jacket = await offeredJacket();
    const [ap21Order, refunded] = await refundedByAp21(h, jacket.order, jacket.ret, JACKET_M.priceMinor);
    expect(await intake().ingest(ap21Order, refunded)).toMatchObject({ kind: 'already_ingested' });
    await settle();
    await expectNoMoneyAndReview(jacket, 'already refunded');
  });

  it('lets an operator who finds no exchange was made reroute it: the card is reversed once, Apace pays nothing', async () => {
    const jacket = await offeredJacket();
    h.ap21.addOrder({ personId: jacket.order.personId, orderNumber: jacket.ret.returnAuthorisationNumber, lines: [JACKET_L], payments: [] });
    h.ap21.touchOrder(jacket.order.orderId);
    await pollAndDispatch();
    const held = await jacket.refund();
    expect(held).toMatchObject({ state: 'manual_review', channel: 'apace' });
    const rerouted = await endRefund(h.store, 'reroute', {
      orderId: jacket.orderId,
      refund: held,
      reason: 'the exchange order was cancelled at the till',
      operator: 'offerlive',
      now: new Date().toISOString(),
      claimWindowMs: 0,
    });
    expect(rerouted).toMatchObject({ done: true, event: 'redrive_apace' });
    await settle();
    // The operator's redrive, later than the mark, lets the cancelled offer go on to the card.
    expect(await jacket.refund()).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(sims.addonPayments.payouts().get(jacket.refundId)).toBe(1);
    expect(sims.payoutsByReference().get(jacket.refundId)).toBe(1);
  });

  it('control: with Ap21 showing the return unchanged, the customer claims the live offer and Apace pays once', async () => {
    const jacket = await offeredJacket();
    h.ap21.touchOrder(jacket.order.orderId);
    await pollAndDispatch();
    expect(await sims.apace.customerAccepts(jacket.apaceRefundId, '7001')).toBe('paid');
    // Apace's `pending` webhook is delivered asynchronously: bounded wait for our booking of it.
    const deadline = Date.now() + 5_000;
    while ((await jacket.refund()).state !== 'paid' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      await settle();
    }
    expect(sims.payoutsByReference().get(jacket.refundId)).toBe(1);
    expect(await jacket.refund()).toMatchObject({ state: 'paid', channel: 'apace' });
  });

  // Before the fix: the read marked only a refund whose offer is live (offer_pending, offered); one already being
  // cancelled (offer_cancelling: an expiry cancel retrying while Apace fails) got no mark, so once Apace's cancel went
  // through the refund went on to the card for units Ap21 showed exchanged. Now the read takes settled_elsewhere_noted
  // (the mark only, its schedule untouched) and the completed cancel goes to review.
  it('sends the refund to review, not to the card, when Ap21 shows the return exchanged while Apace is answering the cancel', async () => {
    const jacket = await offeredJacket();
    // Thirty-one days on the offer has expired: the dispatcher cancels it at Apace. Between Apace's answer and the
    // dispatcher's write of it, a read of Ap21 finds the return exchanged (forced, not timed: gatedStore).
    const late = createDispatcher(
      h.stack.runtime,
      { ...process.env, ...sims.env },
      {
        store: gatedStore(h.store, 'offer_cancelled', async () => {
          h.ap21.addOrder({ personId: jacket.order.personId, orderNumber: jacket.ret.returnAuthorisationNumber, lines: [JACKET_L], payments: [] });
          h.ap21.setReturnStatus(jacket.ret.returnId, 'Return Merged');
          await h.poller({ settings: { watermark: `offerlive-${++rounds}` }, intake: intake() }).run();
        }),
        policy: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50, leaseMs: 2_000, syncDelayMs: 100 },
        claimWindowMs: 0,
        now: () => Date.now() + 31 * DAY_MS,
      },
    );
    await late.processOrder(jacket.orderId);
    await late.processOrder(jacket.orderId);
    await settle();
    expect(sims.addonPayments.payouts().get(jacket.refundId)).toBeUndefined();
    await expectNoMoneyAndReview(jacket, 'exchange');
  });

  it('sends a refund whose expiry cancel is in flight to review, not to the card, when Ap21 shows the return exchanged meanwhile', async () => {
    const jacket = await offeredJacket();
    // Thirty-one days on the offer has expired; the dispatcher starts the cancel, but Apace answers 503 to everything.
    const late = createDispatcher(
      h.stack.runtime,
      { ...process.env, ...sims.env },
      { policy: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50, leaseMs: 2_000, syncDelayMs: 100 }, claimWindowMs: 0, now: () => Date.now() + 31 * DAY_MS },
    );
    sims.host.setFaults('apace', { failureRate: 1 });
    try {
      await late.processOrder(jacket.orderId);
      expect(await jacket.refund()).toMatchObject({ state: 'offer_cancelling', channel: 'apace' });
      // Meanwhile the store swaps the jacket: Ap21 shows the return exchanged.
      h.ap21.addOrder({ personId: jacket.order.personId, orderNumber: jacket.ret.returnAuthorisationNumber, lines: [JACKET_L], payments: [] });
      h.ap21.setReturnStatus(jacket.ret.returnId, 'Return Merged');
      await pollAndDispatch();
      expect(await jacket.refund()).toMatchObject({ state: 'offer_cancelling' });
    } finally {
      sims.host.setFaults('apace', { failureRate: 0 });
    }
    // Apace is back: the cancel retried goes through.
    await late.processOrder(jacket.orderId);
    await settle();
    expect(sims.addonPayments.payouts().get(jacket.refundId)).toBeUndefined();
    await expectNoMoneyAndReview(jacket, 'exchange');
  });
});
