import * as metrics from '../../lambdas/commons/metrics';
import { ledgerViolations } from '../../lambdas/domain/order';
import type { Refund } from '../../lambdas/domain/refund';
import { createDispatcher, createInboxReplay } from '../../lambdas/functions/dispatch-runtime';
import { loadAp21LedgerSettings } from '../../lambdas/services/ap21-ledger';
import { applyApaceNotification } from '../../lambdas/services/apace-callbacks';
import type { Dispatcher } from '../../lambdas/services/dispatcher';
import type { LocalQueue } from '../../lambdas/services/local-queue';
import type { RetryPolicy } from '../../lambdas/services/retry-policy';
import { settle as settleProof } from '../../lambdas/services/reversal-notices';
import { replayInbox, sweep } from '../../lambdas/services/sweeper';
import type { OrderStore } from '../../lambdas/store/order-store';
import type { ProviderSimulators } from '../../local/simulators';
import type { SimOrder, SimReturn } from '../../simulators/ap21/simulator';
import { redrive } from '../../tools/ops/commands';
import type { OpsTarget } from '../../tools/ops/target';
import type { RefundidSimulator } from '../../simulators/refundid/simulator';
import { gatedStore } from '../support/gated-store';
import { refundedByAp21, startRefundidPayoutWorld, type IngestHarness, type RefundidPayoutWorld } from '../support/harness/relay-with-ap21';

/**
 * Review of the day's money-path changes (2026-12-03): the card refund settled elsewhere (docs/design.md §2.3),
 * the operator's waive-receipt and the liveness work, and the Refundid path. Each case is what the real world
 * may do to a refund these rules name: a refund in a state the rule leaves out, another channel's push landing
 * while the card reversal is in flight. Over dynalite, the local server and the Ap21, EPG and Refundid portal
 * simulators on HTTP; the EPG simulator counts every payout.
 */
let world: RefundidPayoutWorld;
let h: IngestHarness;
let sims: ProviderSimulators;
let queue: LocalQueue;
let portal: RefundidSimulator;
let rounds = 0;
const HOUR_MS = 3_600_000;
const EPG = 'addon-payments';
const FAST: RetryPolicy = { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50, leaseMs: 2_000, syncDelayMs: 100 };

beforeAll(async () => {
  world = await startRefundidPayoutWorld({ AP21_CARD_LAST_FOUR_FIELD: 'Reference' });
  ({ h, sims, queue, portal } = world);
});
afterAll(() => world.close());
beforeEach(() => h.newEra());
afterEach(() => {
  sims.host.setFaults(EPG, { failureRate: 0 });
  jest.restoreAllMocks();
});

const SHIRT = { skuId: '21503', quantity: 2, priceMinor: 5990, productName: 'LINEN SHIRT' };

/** A dispatcher of the stage, its clock `aheadMs` past the wall clock. */
function dispatcher(options: { aheadMs?: number; store?: OrderStore } = {}): Dispatcher {
  return createDispatcher(
    h.stack.runtime,
    { ...process.env, ...sims.env },
    { policy: FAST, claimWindowMs: 0, now: () => Date.now() + (options.aheadMs ?? 0), random: () => 0.5, ...(options.store && { store: options.store }) },
  );
}

async function settle(): Promise<void> {
  await queue.drained();
  await replayInbox(createInboxReplay(h.stack.runtime, { ...process.env, ...sims.env }), Date.now());
  await sweep(h.store, queue, Date.now());
  await queue.drained();
}

const metricCalls = (spy: jest.SpyInstance, name: string) => spy.mock.calls.filter(([metric]) => metric === name).length;

interface Returned {
  readonly order: SimOrder;
  readonly ret: SimReturn;
  readonly orderId: string;
  readonly refundId: string;
  readonly shirt: string;
  refund(): Promise<Refund>;
  /** The return as a read after a store refunded it at the till shows it, handed to the intake. */
  refundedAtTill(): Promise<unknown>;
  payouts(): number;
}

/**
 * Two shirts paid by an EPG card (last four unknown: card reversal), the order opened by Refundid's order fetch as
 * the portal does, and their return seen by the intake: a card refund in `reversal_pending`, nobody rung.
 */
async function returnedShirts(): Promise<Returned> {
  const card = { origin: 'CreditCard', cardType: 'VISA', stan: `TR-${Date.now()}-${++rounds}`, amountMinor: 2 * SHIRT.priceMinor };
  const order = h.ap21.addOrder({ email: 'alice@example.com', lines: [SHIRT], payments: [card] });
  sims.addonPayments.seedTransaction(card.stan, { amount: { minor: card.amountMinor, currency: 'AUD' }, paymentSolution: 'creditcards' });
  expect((await portal.fetchOrder({ shop: 'demo', order_number: order.orderNumber, email: 'alice@example.com' })).status).toBe(200);
  const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -2 }] });
  const orderId = `ap21-${order.orderId}`;
  const refundId = `ap21-${ret.returnId}`;
  const intake = () => h.intake({ ledger: loadAp21LedgerSettings(h.env) });
  const reader = h.client();
  await intake().ingest(await reader.getOrder(order.personId, order.orderId), await reader.getReturn(order.personId, order.orderId, ret.returnId));
  const returned: Returned = {
    order,
    ret,
    orderId,
    refundId,
    shirt: order.lines[0]!.lineId,
    refund: async () => (await h.store.getOrder(orderId))!.refunds[refundId]!,
    refundedAtTill: async () => intake().ingest(...(await refundedByAp21(h, order, ret, 2 * SHIRT.priceMinor))),
    payouts: () => sims.addonPayments.payouts().get(refundId) ?? 0,
  };
  expect(await returned.refund()).toMatchObject({ state: 'reversal_pending', channel: 'reversal', source: { kind: 'ap21_return' } });
  return returned;
}

describe('review: a card refund in manual review when Ap21 shows its return refunded at the till', () => {
  // The rule acts on reversal_pending, reversal_submitted and paid (return-intake CARD_REVERSAL_STAGES), not on a card
  // refund already in review. A reversal sent whose answer never came ("no final answer from the provider") is in
  // review with its units held and its money possibly paid. Before: the read of Ap21 showing the till refund was
  // acknowledged and nothing recorded: the operator saw only the old reason (and could redrive it to the card), and
  // when the provider's own proof of payment came (reversal_confirmed from review) it was booked paid with no
  // RefundsPaidTwice: a double payment nobody was told of. Now the read marks it (and replaces its reason) in one
  // conditional write, with RefundsInManualReview; control: with return-intake's CARD_REVERSAL_STAGES without
  // manual_review, this test fails on the mark, and RefundsPaidTwice stays 0.
  it('marks it with the reason for the operator, and a later proof of payment raises RefundsPaidTwice', async () => {
    const shirts = await returnedShirts();
    const at = () => new Date().toISOString();
    const submitted = await h.store.applyEvent(
      shirts.orderId,
      shirts.refundId,
      'reversal_submitted',
      { now: at(), claimWindowMs: 0, nextAttemptAt: at() },
      { actor: 'dispatcher' },
      await shirts.refund(),
    );
    expect(submitted.applied).toBe(true);
    const reviewed = await h.store.applyEvent(
      shirts.orderId,
      shirts.refundId,
      'review_required',
      { now: at(), claimWindowMs: 0, reason: 'no final answer from the provider after 3 attempts' },
      { actor: 'dispatcher' },
      submitted.refund,
    );
    expect(reviewed.applied).toBe(true);
    // The provider's proof is located before the read of Ap21 marks the refund (its snapshot has no mark).
    const located = { order: (await h.store.getOrder(shirts.orderId))!, refund: await shirts.refund() };
    const emitted = jest.spyOn(metrics, 'emitMetric');
    expect(await shirts.refundedAtTill()).toMatchObject({ kind: 'already_ingested' });
    expect(await shirts.refund()).toMatchObject({
      state: 'manual_review',
      reason: expect.stringContaining('already refunded (by Ap21)'),
      refs: { settledElsewhere: expect.stringContaining('already refunded (by Ap21)') },
    });
    expect(metricCalls(emitted, 'RefundsInManualReview')).toBe(1);
    await settleProof(h.store, located, { now: at(), claimWindowMs: 0 }, 'addon_payments', '{}', 'the provider reports the rebate paid');
    expect(await shirts.refund()).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(metricCalls(emitted, 'RefundsPaidTwice')).toBe(1);
    // Read again: the mark is there, nobody is told twice.
    await shirts.refundedAtTill();
    expect(metricCalls(emitted, 'RefundsPaidTwice')).toBe(1);
    expect(ledgerViolations((await h.store.getOrder(shirts.orderId))!)).toEqual([]);
  });

  it('control: a card refund in review whose return Ap21 shows unchanged keeps its reason, and its proof books it paid quietly', async () => {
    const shirts = await returnedShirts();
    const at = () => new Date().toISOString();
    const reviewed = await h.store.applyEvent(
      shirts.orderId,
      shirts.refundId,
      'review_required',
      { now: at(), claimWindowMs: 0, reason: 'provider refused the reversal: do not honour' },
      { actor: 'dispatcher' },
      await shirts.refund(),
    );
    expect(reviewed.applied).toBe(true);
    const emitted = jest.spyOn(metrics, 'emitMetric');
    const reader = h.client();
    await h
      .intake({ ledger: loadAp21LedgerSettings(h.env) })
      .ingest(
        await reader.getOrder(shirts.order.personId, shirts.order.orderId),
        await reader.getReturn(shirts.order.personId, shirts.order.orderId, shirts.ret.returnId),
      );
    expect(await shirts.refund()).toMatchObject({ state: 'manual_review', reason: 'provider refused the reversal: do not honour' });
    const located = { order: (await h.store.getOrder(shirts.orderId))!, refund: await shirts.refund() };
    await settleProof(h.store, located, { now: at(), claimWindowMs: 0 }, 'addon_payments', '{}', 'the provider reports the rebate paid');
    expect(await shirts.refund()).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(metricCalls(emitted, 'RefundsPaidTwice')).toBe(0);
    expect(metricCalls(emitted, 'RefundsInManualReview')).toBe(0);
  });
});

describe("review: an operator's redrive and a later mark, on two clocks", () => {
  // settledElsewhere() let an operator's waiver outrank the mark by comparing two times from two clocks: the ops CLI's
  // (the operator's machine, or the console's host) and the intake's (the poller's Lambda). With the operator's clock
  // ahead, a mark written after the redrive read as older: a reversal in flight that Ap21 then showed refunded at the
  // till was, after a retryable failure, sent again and paid (EPG payout 1), and nobody was told. Now the redrive
  // names the mark it overrides (refs.settledElsewhereWaived) and no time is compared; control: with the time
  // comparison back in settledElsewhere() and the store's condition, EPG payout 1.
  it('a mark written after the redrive stands, whatever the clocks say: no second submission, review', async () => {
    const shirts = await returnedShirts();
    const reviewed = await h.store.applyEvent(
      shirts.orderId,
      shirts.refundId,
      'review_required',
      { now: new Date().toISOString(), claimWindowMs: 0, reason: 'provider refused the reversal: do not honour' },
      { actor: 'dispatcher' },
      await shirts.refund(),
    );
    expect(reviewed.applied).toBe(true);
    // The operator's machine runs ten minutes ahead.
    const target: OpsTarget = {
      name: 'local',
      tableName: h.stack.dynamo.tableName,
      store: h.store,
      claimWindowMs: 0,
      reversals: {},
      ap21Poller: () => h.poller(),
    };
    await redrive(target, shirts.refundId, { orderId: shirts.orderId, operator: 'todays', reason: 'EPG says try again', now: new Date(Date.now() + 600_000) });
    // EPG answers 503; before the dispatcher writes it, a read of Ap21 shows the till refund and marks the reversal in flight.
    sims.host.setFaults(EPG, { failureRate: 1 });
    // (The redrive made it due by the operator's clock: the dispatcher takes it then.)
    await dispatcher({ aheadMs: 660_000, store: gatedStore(h.store, 'reversal_retry', () => shirts.refundedAtTill()) }).processOrder(shirts.orderId);
    sims.host.setFaults(EPG, { failureRate: 0 });
    expect((await shirts.refund()).refs).toMatchObject({ settledElsewhere: expect.stringContaining('in flight') });
    await dispatcher({ aheadMs: HOUR_MS }).processOrder(shirts.orderId);
    await settle();
    expect(shirts.payouts()).toBe(0);
    expect(await shirts.refund()).toMatchObject({ state: 'manual_review', reason: expect.stringContaining('already refunded (by Ap21)') });
  });
});

describe('review: Refundid pays for units a card reversal in flight holds', () => {
  // Refundid's stop (refundid-rma stopMove) acts on a card refund not yet sent and names one in flight in the error
  // log only; unlike the read of Ap21 showing the return refunded (settled_elsewhere_noted), it leaves no mark. So a
  // reversal in flight whose provider then answered a retryable failure went back to reversal_pending and was sent
  // again: the card was reversed for units Refundid had paid (EPG payout 1), and nobody was told. Now the push marks it
  // (settled_elsewhere_noted, ReversalsInFlightSettledElsewhere); control: without stopMove's reversal_submitted case
  // both tests below fail (EPG payout 1; RefundsPaidTwice 0).
  it('is never submitted again once Refundid paid: EPG fails retryably, then the refund goes to review, no payout', async () => {
    const shirts = await returnedShirts();
    const id = `rid-inflight-${++rounds}`;
    let pushed: { status: number } | undefined;
    // EPG answers 503; between its answer and the dispatcher's write of it, Refundid pays one shirt and pushes (gatedStore).
    sims.host.setFaults(EPG, { failureRate: 1 });
    const inFlight = dispatcher({
      store: gatedStore(h.store, 'reversal_retry', async () => {
        pushed = await portal.push('refundid', {
          refundid_id: id,
          line_items: [{ merchant_order_ref: shirts.orderId, line_item_ref: shirts.shirt, quantity: 1 }],
        });
      }),
    });
    await inFlight.processOrder(shirts.orderId);
    sims.host.setFaults(EPG, { failureRate: 0 });
    expect(pushed).toMatchObject({ status: 409 });
    await dispatcher({ aheadMs: HOUR_MS }).processOrder(shirts.orderId);
    await settle();
    expect(shirts.payouts()).toBe(0);
    expect(await shirts.refund()).toMatchObject({
      state: 'manual_review',
      reason: expect.stringContaining(`Refundid RMA ${id}`),
      refs: { settledElsewhere: expect.stringContaining(`Refundid RMA ${id}`) },
    });
  });

  it('once Refundid paid, a reversal in flight that pays after all raises RefundsPaidTwice', async () => {
    const shirts = await returnedShirts();
    const id = `rid-inflight-paid-${++rounds}`;
    const emitted = jest.spyOn(metrics, 'emitMetric');
    const inFlight = dispatcher({
      store: gatedStore(h.store, 'reversal_succeeded', () =>
        portal.push('refundid', { refundid_id: id, line_items: [{ merchant_order_ref: shirts.orderId, line_item_ref: shirts.shirt, quantity: 1 }] }),
      ),
    });
    await inFlight.processOrder(shirts.orderId);
    expect(shirts.payouts()).toBe(1);
    expect(await shirts.refund()).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(metricCalls(emitted, 'ReversalsInFlightSettledElsewhere')).toBe(1);
    expect(metricCalls(emitted, 'RefundsPaidTwice')).toBe(1);
  });

  // The card reversal already paid the shirts when Refundid pays one of them too and pushes `refundid`: refused 409
  // and kept (the units are refunded), its stop acts only on refunds still holding units, so nobody is told that the
  // customer was paid twice: the push's 409 and an error log, no metric an alarm watches (RefundsPaidTwice is the
  // card rule's, for the same money story).
  it('raises RefundsPaidTwice when Refundid pays for units a card reversal already paid', async () => {
    const shirts = await returnedShirts();
    await dispatcher().processOrder(shirts.orderId);
    expect(await shirts.refund()).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(shirts.payouts()).toBe(1);
    const emitted = jest.spyOn(metrics, 'emitMetric');
    const id = `rid-after-card-${++rounds}`;
    const pushed = await portal.push('refundid', {
      refundid_id: id,
      line_items: [{ merchant_order_ref: shirts.orderId, line_item_ref: shirts.shirt, quantity: 1 }],
    });
    expect(pushed).toMatchObject({ status: 409 });
    expect(metricCalls(emitted, 'RefundsPaidTwice')).toBe(1);
    // Refundid retries the same push: the kept push is not counted again.
    await portal.push('refundid', { refundid_id: id, line_items: [{ merchant_order_ref: shirts.orderId, line_item_ref: shirts.shirt, quantity: 1 }] });
    expect(metricCalls(emitted, 'RefundsPaidTwice')).toBe(1);
  });

  it('control: with no Refundid push, the retry after the retryable failure reverses the card once', async () => {
    const shirts = await returnedShirts();
    sims.host.setFaults(EPG, { failureRate: 1 });
    await dispatcher().processOrder(shirts.orderId);
    sims.host.setFaults(EPG, { failureRate: 0 });
    expect(await shirts.refund()).toMatchObject({ state: 'reversal_pending' });
    await dispatcher({ aheadMs: HOUR_MS }).processOrder(shirts.orderId);
    await settle();
    expect(shirts.payouts()).toBe(1);
    expect(await shirts.refund()).toMatchObject({ state: 'paid', channel: 'reversal' });
  });
});

describe('review: an Apace offer Ap21 showed settled elsewhere, paid or reviewed', () => {
  const JACKET = { skuId: '64001', quantity: 1, priceMinor: 11000, productName: 'JACKET' };

  interface Offer {
    readonly ids: { orderId: string; refundId: string };
    readonly apaceRefundId: string;
    /** The jacket's line id, as Refundid's push names it. */
    readonly line: string;
    refund(): Promise<Refund>;
    /** A read of Ap21 after the store refunded the jacket at the till. */
    refundedAtTill(): Promise<unknown>;
    /** Apace's `pending` webhook for the payout of the customer's claim, through `store`. */
    apacePays(store?: OrderStore): Promise<unknown>;
  }

  /** A jacket paid by EPG card (last four in `Reference`), returned, its refund offered through Apace. */
  async function offeredJacket(): Promise<Offer> {
    const card = {
      origin: 'CreditCard',
      cardType: 'VISA',
      stan: `TA-${Date.now()}-${++rounds}`,
      reference: '************7001',
      amountMinor: JACKET.priceMinor,
    };
    const order = h.ap21.addOrder({ lines: [JACKET], payments: [card] });
    sims.addonPayments.seedTransaction(card.stan, { amount: { minor: card.amountMinor, currency: 'AUD' }, paymentSolution: 'creditcards' });
    const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: JACKET.skuId, quantity: -1 }] });
    const ids = { orderId: `ap21-${order.orderId}`, refundId: `ap21-${ret.returnId}` };
    const refund = async () => (await h.store.getOrder(ids.orderId))!.refunds[ids.refundId]!;
    const intake = () => h.intake({ doorbell: queue, ledger: loadAp21LedgerSettings(h.env) });
    await h.poller({ settings: { watermark: `todays-${++rounds}` }, intake: intake() }).run();
    await settle();
    const offered = await refund();
    expect(offered).toMatchObject({ state: 'offered', channel: 'apace' });
    const apaceRefundId = offered.refs.apaceRefundId!;
    return {
      ids,
      apaceRefundId,
      line: order.lines[0]!.lineId,
      refund,
      refundedAtTill: async () => intake().ingest(...(await refundedByAp21(h, order, ret, JACKET.priceMinor))),
      apacePays: (store = h.store) => {
        const body = { refund_id: apaceRefundId, order_id: ids.orderId, refund_success: false, refund_status: 'pending' as const };
        return applyApaceNotification(store, ids, body, JSON.stringify(body), { now: new Date().toISOString(), claimWindowMs: 0 });
      },
    };
  }

  // Ap21 showed the return refunded at the till while the offer was live: the read took the cancel-first path
  // (marked, no claim window: "a payout Apace already approved is booked as Apace's"), Apace cancelled and the refund
  // is with an operator. Apace had approved the customer's claim just before and pays it (its pending webhook
  // comes now): booked paid through Apace, for units the till refunded. Before: booked with no RefundsPaidTwice
  // (only the card reversal raised it), and no later read looks at a paid Apace refund: a double payment nobody
  // was told of. Now every booking of an Apace payment reports a marked refund (paid-twice.ts reportApacePaidTwice);
  // control: without that call here (apace-callbacks), RefundsPaidTwice is 0.
  it("raises RefundsPaidTwice when Apace's payment for the marked offer is booked", async () => {
    const jacket = await offeredJacket();
    const emitted = jest.spyOn(metrics, 'emitMetric');
    await jacket.refundedAtTill();
    await settle();
    expect(await jacket.refund()).toMatchObject({
      state: 'manual_review',
      channel: 'apace',
      refs: { settledElsewhere: expect.stringContaining('already refunded') },
    });
    expect(await jacket.apacePays()).toMatchObject({ applied: true, refund: { state: 'paid', channel: 'apace' } });
    expect(metricCalls(emitted, 'RefundsPaidTwice')).toBe(1);
  });

  // The offer is already being cancelled (an expiry cancel Apace keeps failing): the read only marks it
  // (settled_elsewhere_noted), its state unchanged. Apace's webhook read the refund before the mark and books it
  // after (forced: gatedStore): from that snapshot the booking knows no mark. Now apace_paid holds guard mark_as_seen,
  // so it is refused once and booked again knowing it; control: without mark_as_seen on apace_paid, RefundsPaidTwice is 0.
  it('raises RefundsPaidTwice also when the mark lands between the webhook reading the refund and booking it', async () => {
    const jacket = await offeredJacket();
    const cancelling = await h.store.applyEvent(
      jacket.ids.orderId,
      jacket.ids.refundId,
      'offer_cancel_started',
      { now: new Date().toISOString(), claimWindowMs: 0, nextAttemptAt: new Date(Date.now() + HOUR_MS).toISOString(), reason: 'the Apace offer expired' },
      { actor: 'dispatcher' },
      await jacket.refund(),
    );
    expect(cancelling).toMatchObject({ applied: true, refund: { state: 'offer_cancelling' } });
    const emitted = jest.spyOn(metrics, 'emitMetric');
    const booked = await jacket.apacePays(gatedStore(h.store, 'apace_paid', () => jacket.refundedAtTill()));
    expect(booked).toMatchObject({ applied: true, refund: { state: 'paid', channel: 'apace' } });
    expect((await jacket.refund()).refs).toMatchObject({ settledElsewhere: expect.stringContaining('already refunded') });
    expect(metricCalls(emitted, 'RefundsPaidTwice')).toBe(1);
  });

  // The cancel-first path's mark says why no money is owed, but the dispatcher's review() wrote only its own reason:
  // a marked offer whose cancel Apace kept failing reached the operator as "Apace cancel failed after 3 attempts",
  // with nothing about Ap21; the operator's redrive (whose waiver outranks the mark) then sends it to the card, for
  // a jacket refunded at the till. The same for a marked card reversal in flight ending in review for "no final
  // answer" or "provider refused". Now the dispatcher's review() adds the mark to whatever reason it writes;
  // control: without that, the reason is the path's alone.
  it('reaches the operator with the mark in its reason when Apace keeps failing the cancel', async () => {
    const jacket = await offeredJacket();
    sims.host.setFaults('apace', { failureRate: 1 });
    try {
      await jacket.refundedAtTill();
      await settle();
      for (let round = 0; round < 4 && (await jacket.refund()).state !== 'manual_review'; round++) {
        await dispatcher({ aheadMs: (round + 1) * HOUR_MS }).processOrder(jacket.ids.orderId);
      }
    } finally {
      sims.host.setFaults('apace', { failureRate: 0 });
    }
    expect(await jacket.refund()).toMatchObject({
      state: 'manual_review',
      channel: 'apace',
      reason: expect.stringMatching(/Apace cancel failed after 3 attempts.*already refunded \(by Ap21\)/),
    });
  });

  // Refundid's stop marks a refund of another channel holding the units it paid (refundid-rma stopMove), and a card
  // reversal already paid takes paid_twice_noted (RefundsPaidTwice). One Apace already paid does not: heldElsewhere
  // lists only holding states and paid card reversals, and paid_twice_noted was the card's alone. Refundid paying for
  // a jacket Apace paid was the push's 409 and an error log: the customer paid twice, no metric an alarm watches.
  // Now every paid refund of another channel takes the mark; control: with heldElsewhere's paid card reversals only,
  // RefundsPaidTwice is 0.
  it('raises RefundsPaidTwice once when Refundid pays for units Apace already paid', async () => {
    const jacket = await offeredJacket();
    expect(await jacket.apacePays()).toMatchObject({ applied: true, refund: { state: 'paid', channel: 'apace' } });
    const emitted = jest.spyOn(metrics, 'emitMetric');
    const push = {
      refundid_id: `rid-after-apace-${++rounds}`,
      line_items: [{ merchant_order_ref: jacket.ids.orderId, line_item_ref: jacket.line, quantity: 1 }],
    };
    expect(await portal.push('refundid', push)).toMatchObject({ status: 409 });
    expect(metricCalls(emitted, 'RefundsPaidTwice')).toBe(1);
    expect((await jacket.refund()).refs).toMatchObject({ settledElsewhere: expect.stringContaining(`Refundid RMA ${push.refundid_id}`) });
    // Refundid retries the push: the mark is there, nobody is told twice.
    expect(await portal.push('refundid', push)).toMatchObject({ status: 409 });
    expect(metricCalls(emitted, 'RefundsPaidTwice')).toBe(1);
  });

  it('control: Apace paying an offer Ap21 shows unchanged is booked without RefundsPaidTwice', async () => {
    const jacket = await offeredJacket();
    const emitted = jest.spyOn(metrics, 'emitMetric');
    expect(await jacket.apacePays()).toMatchObject({ applied: true, refund: { state: 'paid', channel: 'apace' } });
    expect(metricCalls(emitted, 'RefundsPaidTwice')).toBe(0);
  });
});
