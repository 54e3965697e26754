import * as metrics from '../../lambdas/commons/metrics';
import { ledgerViolations } from '../../lambdas/domain/order';
import type { Refund } from '../../lambdas/domain/refund';
import { createDispatcher, createInboxReplay } from '../../lambdas/functions/dispatch-runtime';
import { loadAp21LedgerSettings } from '../../lambdas/services/ap21-ledger';
import type { Dispatcher } from '../../lambdas/services/dispatcher';
import type { LocalQueue } from '../../lambdas/services/local-queue';
import { endRefund } from '../../lambdas/services/operator-actions';
import type { ReturnIntake } from '../../lambdas/services/return-intake';
import type { RetryPolicy } from '../../lambdas/services/retry-policy';
import { settle as settleProof } from '../../lambdas/services/reversal-notices';
import { replayInbox, sweep } from '../../lambdas/services/sweeper';
import type { OrderStore } from '../../lambdas/store/order-store';
import type { ProviderSimulators } from '../../local/simulators';
import type { SimOrder, SimReturn } from '../../simulators/ap21/simulator';
import { redrive } from '../../tools/ops/commands';
import type { OpsTarget } from '../../tools/ops/target';
import { gatedStore } from '../support/gated-store';
import { refundedByAp21, startPayoutWorld, type IngestHarness, type PayoutWorld } from '../support/harness/relay-with-ap21';

/**
 * Review: a refund on the card-reversal channel (the card's last four unknown, so no Apace offer) whose
 * return Ap21 later shows refunded at the till or exchanged (docs/design.md §2.3, §2.8). refund-relay
 * does not write refunds back to Ap21, so someone else settled it: the card must not be reversed as well.
 * Over dynalite and the Ap21 and EPG simulators on HTTP; the EPG simulator counts every payout.
 */
let h: IngestHarness;
let sims: ProviderSimulators;
let queue: LocalQueue;
let world: PayoutWorld;
let rounds = 0;
const HOUR_MS = 3_600_000;
const EPG = 'addon-payments';
const FAST: RetryPolicy = { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50, leaseMs: 2_000, syncDelayMs: 100 };
/** A stage whose retries of a failed reversal back off for hours. */
const SLOW: RetryPolicy = { ...FAST, baseDelayMs: 2 * HOUR_MS, maxDelayMs: 4 * HOUR_MS };

beforeAll(async () => {
  world = await startPayoutWorld();
  ({ h, sims, queue } = world);
});
afterAll(() => world.close());
beforeEach(() => h.newEra());
afterEach(() => {
  sims.host.setFaults(EPG, { failureRate: 0 });
  jest.restoreAllMocks();
});

const JACKET = { skuId: '65001', quantity: 1, priceMinor: 12000, productName: 'JACKET' };

/** The stage's intake; rings the stage's dispatcher only when asked to. */
function intake(ring = true): ReturnIntake {
  return h.intake({ ledger: loadAp21LedgerSettings(h.env), ...(ring && { doorbell: queue }) });
}

/** A dispatcher of the stage, its clock `aheadMs` past the wall clock. */
function dispatcher(options: { aheadMs?: number; policy?: RetryPolicy; store?: OrderStore } = {}): Dispatcher {
  return createDispatcher(
    h.stack.runtime,
    { ...process.env, ...sims.env },
    {
      policy: options.policy ?? FAST,
      claimWindowMs: 0,
      now: () => Date.now() + (options.aheadMs ?? 0),
      // Full jitter at one half: a backoff of half its ceiling.
      random: () => 0.5,
      ...(options.store && { store: options.store }),
    },
  );
}

async function settle(): Promise<void> {
  await queue.drained();
  await replayInbox(createInboxReplay(h.stack.runtime, { ...process.env, ...sims.env }), Date.now());
  await sweep(h.store, queue, Date.now());
  await queue.drained();
}

interface Returned {
  readonly order: SimOrder;
  readonly ret: SimReturn;
  readonly orderId: string;
  readonly refundId: string;
  refund(): Promise<Refund>;
  poll(ring?: boolean): Promise<unknown>;
  /** The return as a read after a store refunded it at the till shows it, handed to the intake. */
  refundedAtTill(): Promise<unknown>;
  payouts(): number;
}

/** A jacket paid by EPG card (last four not known to Ap21: card reversal), its return seen by the poller. */
async function returnedJacket(ring = true): Promise<Returned> {
  const card = { origin: 'CreditCard', cardType: 'VISA', stan: `CR-${Date.now()}-${++rounds}`, amountMinor: JACKET.priceMinor };
  const order = h.ap21.addOrder({ lines: [JACKET], payments: [card] });
  sims.addonPayments.seedTransaction(card.stan, { amount: { minor: card.amountMinor, currency: 'AUD' }, paymentSolution: 'creditcards' });
  const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: JACKET.skuId, quantity: -1 }] });
  const orderId = `ap21-${order.orderId}`;
  const refundId = `ap21-${ret.returnId}`;
  const jacket: Returned = {
    order,
    ret,
    orderId,
    refundId,
    refund: async () => (await h.store.getOrder(orderId))!.refunds[refundId]!,
    poll: (ringAgain = true) => h.poller({ settings: { watermark: `cardrev-${++rounds}` }, intake: intake(ringAgain) }).run(),
    refundedAtTill: async () => {
      const [ap21Order, refunded] = await refundedByAp21(h, order, ret, JACKET.priceMinor);
      return intake().ingest(ap21Order, refunded);
    },
    payouts: () => sims.addonPayments.payouts().get(refundId) ?? 0,
  };
  await jacket.poll(ring);
  expect(await jacket.refund()).toMatchObject({ channel: 'reversal', source: { kind: 'ap21_return' } });
  return jacket;
}

/** The jacket's reversal tried once, EPG down (503): it waits hours for its next attempt in `reversal_pending`. */
async function backingOff(): Promise<Returned> {
  const jacket = await returnedJacket(false);
  sims.host.setFaults(EPG, { failureRate: 1 });
  await dispatcher({ policy: SLOW }).processOrder(jacket.orderId);
  sims.host.setFaults(EPG, { failureRate: 0 });
  const waiting = await jacket.refund();
  expect(waiting).toMatchObject({ state: 'reversal_pending', attempts: 1 });
  expect(Date.parse(waiting.nextAttemptAt!)).toBeGreaterThan(Date.now() + 10 * 60_000);
  return jacket;
}

/** Hours later: the stage's dispatcher finds everything due; nothing may reach the card. */
async function hoursLater(jacket: Returned): Promise<void> {
  await dispatcher({ aheadMs: 5 * HOUR_MS }).processOrder(jacket.orderId);
  await settle();
}

const metricCalls = (spy: jest.SpyInstance, name: string) => spy.mock.calls.filter(([metric]) => metric === name).length;

describe('a card reversal not yet sent when Ap21 shows its return settled elsewhere', () => {
  // Before the fix: the intake acknowledged the read (already_ingested) and left the refund in reversal_pending; hours
  // later the dispatcher's retry reversed the card for a return the store had already refunded at the till.
  it('goes to manual review, not to the card, when Ap21 shows the return refunded at the till during a backoff', async () => {
    const jacket = await backingOff();
    const emitted = jest.spyOn(metrics, 'emitMetric');
    expect(await jacket.refundedAtTill()).toMatchObject({ kind: 'already_ingested' });
    await hoursLater(jacket);
    expect(jacket.payouts()).toBe(0);
    expect(await jacket.refund()).toMatchObject({
      state: 'manual_review',
      channel: 'reversal',
      reason: expect.stringContaining('already refunded (by Ap21)'),
      refs: { settledElsewhere: expect.any(String), settledElsewhereAt: expect.any(String) },
    });
    expect(metricCalls(emitted, 'RefundsInManualReview')).toBe(1);
    expect(ledgerViolations((await h.store.getOrder(jacket.orderId))!)).toEqual([]);
  });

  it('goes to manual review when Ap21 shows the return exchanged by its status', async () => {
    const jacket = await backingOff();
    h.ap21.setReturnStatus(jacket.ret.returnId, 'Return Merged');
    await jacket.poll();
    await hoursLater(jacket);
    expect(jacket.payouts()).toBe(0);
    expect(await jacket.refund()).toMatchObject({ state: 'manual_review', reason: expect.stringContaining('settled by exchange') });
  });

  it.each(['redrive', 'reroute'] as const)(
    'lets an operator who finds the till refund was voided %s it: the card is reversed exactly once, and a later read changes nothing',
    async (action) => {
      const jacket = await backingOff();
      await jacket.refundedAtTill();
      const held = await jacket.refund();
      expect(held).toMatchObject({ state: 'manual_review' });
      const reason = 'the till refund was voided';
      if (action === 'redrive') {
        const target: OpsTarget = {
          name: 'local',
          tableName: h.stack.dynamo.tableName,
          store: h.store,
          claimWindowMs: 0,
          doorbell: queue,
          reversals: {},
          ap21Poller: () => h.poller(),
        };
        await redrive(target, jacket.refundId, { orderId: jacket.orderId, operator: 'cardrev', reason });
      } else {
        const rerouted = await endRefund(h.store, 'reroute', {
          orderId: jacket.orderId,
          refund: held,
          reason,
          operator: 'cardrev',
          now: new Date().toISOString(),
          claimWindowMs: 0,
        });
        expect(rerouted).toMatchObject({ done: true });
      }
      await settle();
      expect(await jacket.refund()).toMatchObject({ state: 'paid', channel: 'reversal' });
      expect(jacket.payouts()).toBe(1);
      // Ap21 read again, still showing the till refund: the operator's decision stands, no alarm.
      const emitted = jest.spyOn(metrics, 'emitMetric');
      await jacket.refundedAtTill();
      await hoursLater(jacket);
      expect(jacket.payouts()).toBe(1);
      expect(await jacket.refund()).toMatchObject({ state: 'paid' });
      expect(metricCalls(emitted, 'RefundsPaidTwice')).toBe(0);
    },
  );

  it('control: with Ap21 showing the return unchanged, the retry after the backoff reverses the card once', async () => {
    const jacket = await backingOff();
    await jacket.poll();
    await hoursLater(jacket);
    expect(jacket.payouts()).toBe(1);
    expect(await jacket.refund()).toMatchObject({ state: 'paid', channel: 'reversal' });
  });
});

describe('a card reversal submitted when Ap21 shows its return settled elsewhere', () => {
  // Before the fix: nothing was recorded; EPG answered 503, the refund went back to reversal_pending and the next
  // attempt reversed the card. Now the read marks the submitted refund (note-only), and the dispatcher never submits
  // a marked refund again: it goes to manual review.
  it('is not submitted again after EPG answers a retryable failure: manual review, no payout', async () => {
    const jacket = await returnedJacket(false);
    const emitted = jest.spyOn(metrics, 'emitMetric');
    let read: unknown;
    // EPG answers 503; between its answer and the dispatcher's write of it, the store refunds the return at the till
    // and a read of Ap21 sees it (forced, not timed: gatedStore).
    sims.host.setFaults(EPG, { failureRate: 1 });
    const inFlight = dispatcher({
      store: gatedStore(h.store, 'reversal_retry', async () => {
        read = await jacket.refundedAtTill();
      }),
    });
    await inFlight.processOrder(jacket.orderId);
    sims.host.setFaults(EPG, { failureRate: 0 });
    expect(read).toMatchObject({ kind: 'already_ingested' });
    await settle();
    await hoursLater(jacket);
    expect(jacket.payouts()).toBe(0);
    expect(metricCalls(emitted, 'ReversalsInFlightSettledElsewhere')).toBe(1);
    expect(await jacket.refund()).toMatchObject({ state: 'manual_review', reason: expect.stringContaining('not submitted again') });
    const timeline = await h.store.readTimeline(jacket.orderId);
    expect(timeline.filter((entry) => entry.event === 'settled_elsewhere_noted')).toHaveLength(1);
  });

  // Before the fix: the follow-up's claim (attempt_started) held no guard against the mark, so a dispatcher that read
  // the refund before the mark still claimed it, found EPG had no record and submitted: the card was reversed.
  it('is not submitted by a dispatcher whose snapshot predates the mark', async () => {
    const jacket = await returnedJacket(false);
    // A dispatcher claimed the reversal and stopped before its call reached EPG (a crash): the lease ran out.
    const pending = await jacket.refund();
    const now = new Date().toISOString();
    const claimed = await h.store.applyEvent(
      jacket.orderId,
      jacket.refundId,
      'reversal_submitted',
      { now, claimWindowMs: 0, nextAttemptAt: now },
      { actor: 'dispatcher' },
      pending,
    );
    expect(claimed.applied).toBe(true);
    // The next dispatcher reads the order; before its claim, a read of Ap21 marks the refund (forced: gatedStore).
    const stale = dispatcher({ aheadMs: 1_000, store: gatedStore(h.store, 'attempt_started', () => jacket.refundedAtTill()) });
    await stale.processOrder(jacket.orderId);
    expect(jacket.payouts()).toBe(0);
    await settle();
    await hoursLater(jacket);
    expect(jacket.payouts()).toBe(0);
    expect(await jacket.refund()).toMatchObject({ state: 'manual_review', refs: { settledElsewhere: expect.any(String) } });
  });
});

describe('a card reversal whose provider pays while Ap21 shows its return settled elsewhere', () => {
  // The answer to a call made before the mark is recorded from the dispatcher's snapshot, which has no mark: before
  // reversal_succeeded held guard mark_as_seen, it was booked without the dispatcher knowing, and since later reads
  // find the refund marked, the double payment raised no alarm at all.
  it('is booked paid and raises RefundsPaidTwice once, also when the mark landed while EPG was answering', async () => {
    const jacket = await returnedJacket(false);
    const emitted = jest.spyOn(metrics, 'emitMetric');
    const inFlight = dispatcher({ store: gatedStore(h.store, 'reversal_succeeded', () => jacket.refundedAtTill()) });
    await inFlight.processOrder(jacket.orderId);
    expect(jacket.payouts()).toBe(1);
    expect(await jacket.refund()).toMatchObject({ state: 'paid', channel: 'reversal', refs: { settledElsewhere: expect.stringContaining('in flight') } });
    expect(metricCalls(emitted, 'ReversalsInFlightSettledElsewhere')).toBe(1);
    expect(metricCalls(emitted, 'RefundsPaidTwice')).toBe(1);
    await jacket.refundedAtTill();
    expect(metricCalls(emitted, 'RefundsPaidTwice')).toBe(1);
  });
});

describe("a provider's own proof of payment for a card reversal Ap21 shows settled elsewhere", () => {
  // Before: a PayPro IPN or Optty's record booked the marked refund paid (reversal_succeeded, or reversal_confirmed from
  // review) and nobody was told; later reads found the refund marked and stayed quiet.
  it('books it paid and raises RefundsPaidTwice once, also for a proof read before the mark', async () => {
    const jacket = await returnedJacket(false);
    const now = new Date().toISOString();
    const claimed = await h.store.applyEvent(
      jacket.orderId,
      jacket.refundId,
      'reversal_submitted',
      { now, claimWindowMs: 0, nextAttemptAt: new Date(Date.now() + 60_000).toISOString() },
      { actor: 'dispatcher' },
      await jacket.refund(),
    );
    expect(claimed.applied).toBe(true);
    // The notice handler locates the refund; before it writes, a read of Ap21 marks it.
    const located = { order: (await h.store.getOrder(jacket.orderId))!, refund: await jacket.refund() };
    await jacket.refundedAtTill();
    const emitted = jest.spyOn(metrics, 'emitMetric');
    await settleProof(h.store, located, { now: new Date().toISOString(), claimWindowMs: 0 }, 'addon_payments', '{}', 'the provider reports the rebate paid');
    expect(await jacket.refund()).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(metricCalls(emitted, 'RefundsPaidTwice')).toBe(1);
    await jacket.refundedAtTill();
    expect(metricCalls(emitted, 'RefundsPaidTwice')).toBe(1);
  });
});

describe('a card reversal already paid when Ap21 shows its return refunded at the till', () => {
  // Before the fix: nothing: the customer had been refunded twice and nobody was told.
  it('stays paid, is marked once in its timeline and raises RefundsPaidTwice once across two reads', async () => {
    const jacket = await returnedJacket();
    await settle();
    expect(await jacket.refund()).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(jacket.payouts()).toBe(1);
    const emitted = jest.spyOn(metrics, 'emitMetric');
    expect(await jacket.refundedAtTill()).toMatchObject({ kind: 'already_ingested' });
    expect(await jacket.refundedAtTill()).toMatchObject({ kind: 'already_ingested' });
    expect(metricCalls(emitted, 'RefundsPaidTwice')).toBe(1);
    expect(await jacket.refund()).toMatchObject({ state: 'paid', channel: 'reversal', refs: { settledElsewhere: expect.stringContaining('paid twice') } });
    const marks = (await h.store.readTimeline(jacket.orderId)).filter((entry) => entry.event === 'paid_twice_noted');
    expect(marks).toHaveLength(1);
    expect(marks[0]!.note).toContain('already refunded (by Ap21)');
    expect(jacket.payouts()).toBe(1);
  });
});
