import { InvalidRefundError, RefundConflictError, UnitsUnavailableError } from '../../lambdas/domain/errors';
import { addRefund, applyRefundEvent, ledgerViolations, openOrder, type NewRefund, type Order } from '../../lambdas/domain/order';
import {
  REFUND_STATES,
  planTransition,
  refundDueAt,
  verificationDecision,
  type VerificationDecision,
  type Refund,
  type RefundState,
  type TransitionContext,
} from '../../lambdas/domain/refund';

const now = '2026-03-01T10:00:00.000Z';
const later = '2026-03-01T10:05:00.000Z';
const ctx = { now, claimWindowMs: 120_000 };

function order(): Order {
  return openOrder(
    {
      orderId: 'o-1',
      currency: 'AUD',
      lines: [
        { lineId: 'l1', quantity: 2, valueMinor: 10000 },
        { lineId: 'l2', quantity: 1, valueMinor: 2500 },
      ],
      payments: [{ paymentId: 'p1', capturedMinor: 12500, provider: 'addon_payments', transactionId: '7831830' }],
    },
    now,
  );
}

const apaceRefund = (overrides: Partial<NewRefund> = {}): NewRefund => ({
  refundId: 'r-1',
  lines: { l1: 1 },
  paymentId: 'p1',
  amount: { minor: 5000, currency: 'AUD' },
  route: 'apace',
  offerExpiresAt: '2026-03-11T10:00:00.000Z',
  source: { kind: 'ap21_return', ref: 'ret-1' },
  ...overrides,
});

describe('order ledger', () => {
  it('reserves units and amount when a refund is created, and settles them when it is paid', () => {
    const { order: reserved, refund } = addRefund(order(), apaceRefund(), now);
    expect(refund).toMatchObject({ state: 'offer_pending', channel: 'apace', nextAttemptAt: now });
    expect(reserved.lines.l1).toMatchObject({ purchased: 2, reserved: 1, refunded: 0, available: 1 });
    expect(reserved.payments.p1).toMatchObject({ reservedMinor: 5000, availableMinor: 7500 });

    const paid = applyRefundEvent(reserved, 'r-1', 'apace_paid', ctx).order;
    expect(paid.lines.l1).toMatchObject({ reserved: 0, refunded: 1, available: 1 });
    expect(paid.payments.p1).toMatchObject({ reservedMinor: 0, refundedMinor: 5000, availableMinor: 7500 });
    expect(ledgerViolations(paid)).toEqual([]);
  });

  it('gives units back when a Refundid RMA fails', () => {
    const { order: reserved } = addRefund(order(), apaceRefund({ route: 'refundid', refundId: 'rma-1' }), now);
    const failed = applyRefundEvent(reserved, 'rma-1', 'refundid_failed', ctx).order;
    expect(failed.lines.l1).toMatchObject({ reserved: 0, refunded: 0, available: 2 });
    expect(failed.refunds['rma-1']?.state).toBe('released');
  });

  it('refuses units already refunded or in flight, naming the line', () => {
    const first = addRefund(order(), apaceRefund({ lines: { l1: 2 }, amount: { minor: 10000, currency: 'AUD' } }), now).order;
    expect(() => addRefund(first, apaceRefund({ refundId: 'r-2' }), now)).toThrow(
      new UnitsUnavailableError('line l1: 1 unit(s) asked, 0 not yet refunded or in flight'),
    );
  });

  it('refuses an amount beyond what the payment has left', () => {
    expect(() => addRefund(order(), apaceRefund({ amount: { minor: 12501, currency: 'AUD' } }), now)).toThrow(UnitsUnavailableError);
  });

  it('treats a retried create as the same refund and a different one under the same id as a conflict', () => {
    const first = addRefund(order(), apaceRefund(), now);
    const again = addRefund(first.order, apaceRefund(), later);
    expect(again.created).toBe(false);
    expect(again.order).toBe(first.order);
    expect(() => addRefund(first.order, apaceRefund({ lines: { l2: 1 } }), later)).toThrow(RefundConflictError);
  });

  it.each<[string, Partial<NewRefund>]>([
    ['no lines', { lines: {} }],
    ['a line the order lacks', { lines: { l9: 1 } }],
    ['more units than purchased', { lines: { l2: 2 } }],
    ['fractional units', { lines: { l1: 0.5 } }],
    ['zero amount', { amount: { minor: 0, currency: 'AUD' } }],
    ['another currency', { amount: { minor: 100, currency: 'NZD' } }],
    ['an unknown payment', { paymentId: 'p9' }],
    ['an Apace route without offer expiry', { offerExpiresAt: undefined }],
    ['a reversal that claims to be paid already', { route: 'reversal', alreadyPaid: true }],
    ['an offer expiry written with an offset', { offerExpiresAt: '2026-03-11T20:00:00+10:00' }],
    ['more lines than one conditional write can carry', { lines: Object.fromEntries(Array.from({ length: 41 }, (_, i) => [`x${i}`, 1])) }],
  ])('rejects a refund with %s', (_, overrides) => {
    expect(() => addRefund(order(), apaceRefund(overrides), now)).toThrow(InvalidRefundError);
  });
});

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
