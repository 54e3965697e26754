import { addRefund, applyRefundEvent, ledgerViolations } from '../../lambdas/domain/order';
import {
  REFUND_STATES,
  offerDeliveryOwed,
  planTransition,
  refundDueAt,
  verificationDecision,
  type VerificationDecision,
  type Refund,
  type RefundState,
  type TransitionContext,
} from '../../lambdas/domain/refund';
import { apaceRefund, twoLineOrder } from '../support/ledger';

const now = '2026-03-01T10:00:00.000Z';
const later = '2026-03-01T10:05:00.000Z';
const ctx = { now, claimWindowMs: 120_000 };

const order = () => twoLineOrder(now);

describe('refund transitions', () => {
  const offered = (): Refund => {
    const created = addRefund(order(), apaceRefund(), now).order;
    return applyRefundEvent(created, 'r-1', 'offer_created', ctx).order.refunds['r-1']!;
  };

  it('will not leave the Apace channel while an allow_refund answer may still be paid out', () => {
    const refund = { ...offered(), lastVerifiedAt: '2026-03-01T09:59:00.000Z' };
    expect(planTransition(refund, 'offer_cancel_started', ctx)).toEqual({ ok: false, why: 'apace_recently_verified' });
    expect(planTransition(refund, 'offer_cancel_started', { ...ctx, now: later })).toMatchObject({ ok: true, refund: { state: 'offer_cancelling' } });
  });

  it('recognises duplicates: a second pending webhook, a second processed webhook', () => {
    const paid = planTransition(offered(), 'apace_paid', ctx);
    if (!paid.ok) throw new Error('expected paid');
    expect(planTransition(paid.refund, 'apace_paid', ctx)).toEqual({ ok: false, why: 'already_applied' });
    const confirmed = planTransition(paid.refund, 'apace_confirmed', { ...ctx, now: later });
    expect(confirmed).toMatchObject({ ok: true, refund: { paidAt: now, confirmedAt: later } });
    if (!confirmed.ok) throw new Error('expected confirmed');
    expect(planTransition(confirmed.refund, 'apace_confirmed', ctx)).toEqual({ ok: false, why: 'already_applied' });
  });

  it('does not accept an Apace payment once the card reversal was submitted', () => {
    const submitted: Refund = { ...offered(), state: 'reversal_submitted', channel: 'reversal' };
    expect(planTransition(submitted, 'apace_paid', ctx)).toEqual({ ok: false, why: 'wrong_state' });
  });

  it('keeps the reason only while it explains the state, and schedules work states', () => {
    const cancelling = planTransition(offered(), 'offer_cancel_started', { ...ctx, reason: 'offer expired' });
    expect(cancelling).toMatchObject({ ok: true, refund: { state: 'offer_cancelling', reason: 'offer expired', nextAttemptAt: now } });
    if (!cancelling.ok) throw new Error('expected cancelling');
    const refused = planTransition(cancelling.refund, 'offer_cancel_refused', ctx);
    expect(refused.ok && refused.refund.reason).toBeUndefined();
    expect(refused.ok && refused.refund.nextAttemptAt).toBeUndefined();
  });
});

describe('Apace verification decision', () => {
  const future = '2026-03-02T00:00:00.000Z';
  const decisions: Record<RefundState, VerificationDecision> = {
    awaiting_receipt: 'refused',
    offer_pending: 'allowed',
    offered: 'allowed',
    offer_cancelling: 'refused',
    reversal_pending: 'refused',
    reversal_submitted: 'issued_elsewhere',
    refundid_pending: 'issued_elsewhere',
    paid: 'issued_elsewhere',
    manual_review: 'refused',
    released: 'refused',
  };

  it.each(REFUND_STATES)('decides correctly for a refund in %s', (state) => {
    const channel = state === 'paid' ? 'reversal' : 'apace';
    expect(verificationDecision({ state, channel, offerExpiresAt: future }, now)).toBe(decisions[state]);
  });

  it('refuses an offer past its expiry', () => {
    expect(verificationDecision({ state: 'offered', channel: 'apace', offerExpiresAt: now }, now)).toBe('refused');
  });

  it('refuses a second Apace payout of a refund Apace already paid, without claiming another channel paid it', () => {
    expect(verificationDecision({ state: 'paid', channel: 'apace', offerExpiresAt: future }, now)).toBe('refused');
  });
});

describe('Apace payouts that fail, and waits that end (docs/design.md §2.5)', () => {
  const offeredOrder = () => applyRefundEvent(addRefund(order(), apaceRefund(), now).order, 'r-1', 'offer_created', ctx).order;
  const plan = (refund: Refund, event: Parameters<typeof planTransition>[1], at: TransitionContext = ctx) => {
    const planned = planTransition(refund, event, at);
    if (!planned.ok) throw new Error(`${event} not planned: ${planned.why}`);
    return planned.refund;
  };

  it('sends a payout that failed after pending to card reversal, the units held again, and books no Apace payment after it', () => {
    const paid = applyRefundEvent(offeredOrder(), 'r-1', 'apace_paid', ctx).order;
    const failed = applyRefundEvent(paid, 'r-1', 'apace_payout_failed', { ...ctx, now: later }).order;
    expect(failed.refunds['r-1']).toMatchObject({ state: 'reversal_pending', channel: 'reversal', attempts: 0, refs: { apacePayout: 'failed' } });
    expect(failed.lines.l1).toMatchObject({ reserved: 1, refunded: 0, available: 1 });
    expect(ledgerViolations(failed)).toEqual([]);
    for (const event of ['apace_paid', 'apace_processed'] as const)
      expect(planTransition(failed.refunds['r-1']!, event, ctx)).toEqual({ ok: false, why: 'wrong_state' });
  });

  it('sends an offer whose payout failed before we booked it to card reversal without a cancel', () => {
    const refund = plan(offeredOrder().refunds['r-1']!, 'apace_offer_failed');
    expect(refund).toMatchObject({ state: 'reversal_pending', channel: 'reversal', refs: { apacePayout: 'failed' } });
  });

  it('follows a refund paid at pending up with Apace after APACE_PROCESSED_WITHIN_SECONDS, until confirmed', () => {
    const paid = plan(offeredOrder().refunds['r-1']!, 'apace_paid', { ...ctx, apaceProcessedWithinMs: 60_000 });
    expect(paid.nextAttemptAt).toBe('2026-03-01T10:01:00.000Z');
    expect(refundDueAt(paid)).toBe('2026-03-01T10:01:00.000Z');
    const asked = plan(paid, 'apace_follow_up', { ...ctx, nextAttemptAt: later });
    expect(refundDueAt(asked)).toBe(later);
    const confirmed = plan(asked, 'apace_confirmed');
    expect(refundDueAt(confirmed)).toBeUndefined();
    expect(planTransition(confirmed, 'apace_follow_up', ctx)).toMatchObject({ ok: false });
  });

  it('skips Apace at once only for a refund Apace never heard of', () => {
    const pending = addRefund(order(), apaceRefund(), now).refund;
    expect(plan(pending, 'apace_skipped')).toMatchObject({ state: 'reversal_pending', channel: 'reversal' });
    expect(planTransition({ ...pending, attempts: 1 }, 'apace_skipped', ctx)).toEqual({ ok: false, why: 'wrong_state' });
  });

  it('lets an operator re-route a refund in review off Apace only when it is not on Apace', () => {
    const review: Refund = { ...offeredOrder().refunds['r-1']!, state: 'manual_review' };
    expect(planTransition(review, 'rerouted_by_operator', ctx)).toEqual({ ok: false, why: 'wrong_state' });
    expect(plan({ ...review, channel: 'reversal' }, 'rerouted_by_operator', { ...ctx, reason: 'fixed' })).toMatchObject({
      state: 'reversal_pending',
      reason: 'fixed',
    });
  });
});

describe('Delivering an Apace offer (docs/design.md §2.6)', () => {
  const expiry = '2026-03-11T10:00:00.000Z';
  const ctx: TransitionContext = { now, claimWindowMs: 120_000 };

  const pending: Refund = {
    id: 'r-1',
    orderId: 'o-1',
    state: 'offer_pending',
    channel: 'apace',
    source: { kind: 'manual', ref: 'r-1' },
    createdAt: now,
    updatedAt: now,
    offerExpiresAt: expiry,
    attempts: 2,
    refs: {},
    lines: { '1': 1 },
    paymentId: 'pay-1',
    amount: { minor: 5990, currency: 'AUD' },
  };

  function apply(refund: Refund, event: Parameters<typeof planTransition>[1], extra: Partial<TransitionContext> = {}): Refund {
    const plan = planTransition(refund, event, { ...ctx, ...extra });
    if (!plan.ok) throw new Error(`${event} refused: ${plan.why}`);
    return plan.refund;
  }

  const created = apply(pending, 'offer_created', { refs: { apaceRefundId: 'a-1', offerDelivery: 'pending' }, nextAttemptAt: now });

  it('makes a created offer due at once while its delivery is owed, with a fresh attempt budget', () => {
    expect(created).toMatchObject({ state: 'offered', attempts: 0, nextAttemptAt: now });
    expect(offerDeliveryOwed(created)).toBe(true);
    expect(refundDueAt(created)).toBe(now);
  });

  it('claims a delivery only when it is due, counting the attempt and recording the intent', () => {
    const lease = '2026-03-01T10:02:00.000Z';
    const claimed = apply(created, 'offer_delivery_started', { refs: { offerDelivery: 'sending' }, nextAttemptAt: lease });
    expect(claimed).toMatchObject({ attempts: 1, nextAttemptAt: lease, refs: { offerDelivery: 'sending' } });
    expect(planTransition(claimed, 'offer_delivery_started', ctx)).toEqual({ ok: false, why: 'not_due' });
    // Its lease run out, the delivery is owed still: due at the lease's end.
    expect(refundDueAt(claimed)).toBe(lease);
  });

  it('is due only at its expiry once delivered', () => {
    const delivered = apply(created, 'offer_delivered', { refs: { offerDelivery: 'delivered' } });
    expect(delivered.nextAttemptAt).toBeUndefined();
    expect(offerDeliveryOwed(delivered)).toBe(false);
    expect(refundDueAt(delivered)).toBe(expiry);
    expect(planTransition(pending, 'offer_delivered', ctx)).toEqual({ ok: false, why: 'wrong_state' });
  });

  it('leaves an offer made before delivery existed (no offerDelivery) due at its expiry', () => {
    const legacy = apply(pending, 'offer_created', { refs: { apaceRefundId: 'a-1' } });
    expect(offerDeliveryOwed(legacy)).toBe(false);
    expect(refundDueAt(legacy)).toBe(expiry);
  });
});

describe('card reversals Ap21 shows settled elsewhere (docs/design.md §2.3)', () => {
  const mark = { settledElsewhere: 'Ap21 now shows the return already refunded (by Ap21)', settledElsewhereAt: now };
  const onCard = (state: RefundState, refs: Record<string, string> = {}): Refund => {
    const created = addRefund(order(), apaceRefund({ route: 'reversal', offerExpiresAt: undefined }), now).order.refunds['r-1']!;
    return { ...created, state, channel: 'reversal', refs: { ...created.refs, ...refs }, nextAttemptAt: now };
  };

  it('refuses the claims of a card reversal once marked, until an operator sends it on', () => {
    expect(planTransition(onCard('reversal_pending', mark), 'reversal_submitted', ctx)).toEqual({ ok: false, why: 'wrong_state' });
    expect(planTransition(onCard('reversal_submitted', mark), 'attempt_started', ctx)).toEqual({ ok: false, why: 'wrong_state' });
    const redriven = { ...mark, receiptWaivedAt: later, settledElsewhereWaived: mark.settledElsewhereAt };
    expect(planTransition(onCard('reversal_pending', redriven), 'reversal_submitted', { ...ctx, now: later })).toMatchObject({ ok: true });
    expect(planTransition(onCard('reversal_pending'), 'reversal_submitted', ctx)).toMatchObject({ ok: true });
  });

  it('lets a marked submitted reversal only be asked about, and a marked Apace offer still be cancelled', () => {
    expect(planTransition(onCard('reversal_submitted', mark), 'reversal_status_started', ctx)).toMatchObject({ ok: true, refund: { attempts: 1 } });
    const cancelling = { ...onCard('offer_cancelling', mark), channel: 'apace' as const };
    expect(planTransition(cancelling, 'attempt_started', ctx)).toMatchObject({ ok: true });
  });

  it('marks a submitted or paid card reversal without touching its schedule, and a paid refund of any channel', () => {
    const submitted = planTransition(onCard('reversal_submitted'), 'settled_elsewhere_noted', { ...ctx, now: later, refs: mark });
    expect(submitted).toMatchObject({ ok: true, refund: { state: 'reversal_submitted', nextAttemptAt: now, refs: mark } });
    const paid = { ...onCard('paid'), nextAttemptAt: undefined };
    expect(planTransition(paid, 'paid_twice_noted', { ...ctx, refs: mark })).toMatchObject({ ok: true, refund: { state: 'paid', refs: mark } });
    // Refundid paid for units Apace already paid (refundid-rma stopMove): the same double payment.
    expect(planTransition({ ...paid, channel: 'apace' }, 'paid_twice_noted', { ...ctx, refs: mark })).toMatchObject({ ok: true, refund: { state: 'paid' } });
  });
});
