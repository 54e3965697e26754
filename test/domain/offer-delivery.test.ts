import { planTransition, refundDueAt, offerDeliveryOwed, type Refund, type TransitionContext } from '../../lambdas/domain/refund';

const now = '2026-03-01T10:00:00.000Z';
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

describe('Delivering an Apace offer (docs/design.md §2.6)', () => {
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
