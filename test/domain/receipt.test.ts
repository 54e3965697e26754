import { ConfigurationError } from '../../lambdas/commons/config';
import { InvalidRefundError } from '../../lambdas/domain/errors';
import { addRefund, applyRefundEvent, openOrder, validateRefundShape, type NewRefund, type Order } from '../../lambdas/domain/order';
import { fallbackHeldUntilReceipt, fallbackWaitsForReceipt, parsePayOnReceipt, returnReceived, waitsForReceipt } from '../../lambdas/domain/receipt';
import {
  RECEIPT_OVERDUE_REASON,
  RECEIPT_WAIVED_REF,
  RETURN_RECEIVED_REF,
  refundDueAt,
  verificationDecision,
  type TransitionContext,
} from '../../lambdas/domain/refund';
import { loadAp21LedgerSettings } from '../../lambdas/services/ap21-ledger';

const now = '2026-03-01T10:00:00.000Z';
const waitEnds = '2026-03-31T10:00:00.000Z';
const later = '2026-03-05T10:00:00.000Z';
const ctx: TransitionContext = { now: later, claimWindowMs: 0 };

function order(): Order {
  return openOrder(
    {
      orderId: 'ap21-1',
      currency: 'AUD',
      lines: [{ lineId: '1', quantity: 2, valueMinor: 10000, sku: 'A' }],
      payments: [{ paymentId: '1', capturedMinor: 10000, provider: 'addon_payments', cardLastFour: '7001' }],
    },
    now,
  );
}

const waiting: NewRefund = {
  refundId: 'r-1',
  lines: { '1': 1 },
  paymentId: '1',
  amount: { minor: 5000, currency: 'AUD' },
  route: 'reversal',
  source: { kind: 'ap21_return', ref: '9' },
  awaitReceiptUntil: waitEnds,
};

describe('when money moves, per channel (docs/design.md §2.9)', () => {
  it('starts a refund that waits for the receipt in awaiting_receipt, units reserved, due only when the wait ends, and never a yes to Apace', () => {
    const { order: withRefund, refund } = addRefund(order(), waiting, now);
    expect(refund).toMatchObject({ state: 'awaiting_receipt', nextAttemptAt: waitEnds, attempts: 0 });
    expect(refund.reason).toBeUndefined();
    expect(withRefund.lines['1']).toMatchObject({ reserved: 1, available: 1 });
    expect(refundDueAt(refund)).toBe(waitEnds);
    expect(verificationDecision({ state: 'awaiting_receipt', channel: 'apace', offerExpiresAt: waitEnds }, now)).toBe('refused');
  });

  it('releases it to its channel when the return is received, an Apace offer with an expiry counted from then', () => {
    const card = applyRefundEvent(addRefund(order(), waiting, now).order, 'r-1', 'return_received', ctx);
    expect(card.plan.ok && card.plan.refund).toMatchObject({ state: 'reversal_pending', nextAttemptAt: later });
    const apace = addRefund(order(), { ...waiting, route: 'apace', offerExpiresAt: '2026-03-11T10:00:00.000Z' }, now).order;
    const offered = applyRefundEvent(apace, 'r-1', 'return_received_for_offer', { ...ctx, offerExpiresAt: '2026-03-15T10:00:00.000Z' });
    expect(offered.plan.ok && offered.plan.refund).toMatchObject({ state: 'offer_pending', offerExpiresAt: '2026-03-15T10:00:00.000Z' });
    // Each channel has its own event: neither crosses over.
    expect(applyRefundEvent(apace, 'r-1', 'return_received', ctx).plan).toEqual({ ok: false, why: 'wrong_state' });
  });

  it('sends it to manual review only once the wait has ended, and a receipt seen after that still releases it', () => {
    const created = addRefund(order(), waiting, now).order;
    expect(applyRefundEvent(created, 'r-1', 'receipt_overdue', ctx).plan).toEqual({ ok: false, why: 'not_due' });
    const overdue = applyRefundEvent(created, 'r-1', 'receipt_overdue', { now: waitEnds, claimWindowMs: 0, reason: `${RECEIPT_OVERDUE_REASON} 30 days` });
    expect(overdue.plan.ok && overdue.plan.refund).toMatchObject({ state: 'manual_review', reason: `${RECEIPT_OVERDUE_REASON} 30 days` });
    expect(applyRefundEvent(overdue.order, 'r-1', 'return_received', ctx).plan).toMatchObject({ ok: true, refund: { state: 'reversal_pending' } });
  });

  it('never lets a receipt release a refund in manual review for any other reason', () => {
    const held = addRefund(order(), { ...waiting, awaitReceiptUntil: undefined, held: 'line 1 is not returnable' }, now).order;
    expect(applyRefundEvent(held, 'r-1', 'return_received', ctx).plan).toEqual({ ok: false, why: 'wrong_state' });
  });

  it('refuses a wait on money that already moved, on a held refund or on Refundid', () => {
    expect(() => validateRefundShape({ ...waiting, held: 'why' })).toThrow(InvalidRefundError);
    expect(() => validateRefundShape({ ...waiting, route: 'refundid', source: { kind: 'refundid_rma', ref: 'x' } })).toThrow(InvalidRefundError);
    expect(() => validateRefundShape({ ...waiting, source: { kind: 'ap21_refunded', ref: '9' }, alreadyPaid: true })).toThrow(InvalidRefundError);
    expect(() => validateRefundShape({ ...waiting, awaitReceiptUntil: '2026-03-31' })).toThrow(InvalidRefundError);
  });

  it('reads received statuses ignoring case and spaces, and nothing else as received', () => {
    const rules = { receivedStatuses: ['Return Received', 'Completed'] };
    expect(returnReceived('return received', rules)).toBe(true);
    expect(returnReceived(' ReturnReceived ', rules)).toBe(true);
    expect(returnReceived('COMPLETED', rules)).toBe(true);
    expect(returnReceived('Processing', rules)).toBe(false);
    expect(returnReceived('', rules)).toBe(false);
    expect(returnReceived(undefined, rules)).toBe(false);
  });

  it('waits per channel and per reversal provider, never for a payment no connector reverses', () => {
    const rules = { payOnReceipt: new Set(['paypro'] as const) };
    expect(waitsForReceipt('reversal', 'paypro', rules)).toBe(true);
    expect(waitsForReceipt('reversal', 'addon_payments', rules)).toBe(false);
    expect(waitsForReceipt('apace', 'paypro', rules)).toBe(false);
    expect(waitsForReceipt('reversal', 'other', { payOnReceipt: new Set(['apace', 'addon_payments', 'paypro', 'optty'] as const) })).toBe(false);
  });
});

describe('an Apace refund that falls back to a card reversal the stage holds until receipt (docs/design.md §2.9)', () => {
  const epgHeld = { payOnReceipt: new Set(['addon_payments'] as const) };
  const apaceRefund: NewRefund = { ...waiting, route: 'apace', offerExpiresAt: '2026-03-11T10:00:00.000Z', awaitReceiptUntil: undefined };
  /** Created on Apace, then cancelled there and moved to card reversal. */
  function fallenBack(refs: Record<string, string> = {}) {
    let current = addRefund(order(), { ...apaceRefund, refs }, now).order;
    for (const event of ['offer_cancel_started', 'attempt_started', 'offer_cancelled'] as const) {
      const step = applyRefundEvent(current, 'r-1', event, ctx);
      if (!step.plan.ok) throw new Error(`${event}: ${step.plan.why}`);
      current = step.order;
    }
    return current;
  }

  it('waits only when it came through Apace from an Ap21 return, nothing was sent to the card yet, and neither the receipt nor an operator was seen', () => {
    const refund = fallenBack().refunds['r-1']!;
    expect(refund).toMatchObject({ state: 'reversal_pending', channel: 'reversal', attempts: 0 });
    expect(fallbackWaitsForReceipt(refund, 'addon_payments', epgHeld)).toBe(true);
    expect(fallbackWaitsForReceipt(refund, 'paypro', epgHeld)).toBe(false);
    // A stage that holds Apace too waited before the offer: the goods are back.
    expect(fallbackWaitsForReceipt(refund, 'addon_payments', { payOnReceipt: new Set(['apace', 'addon_payments'] as const) })).toBe(false);
    expect(fallbackWaitsForReceipt({ ...refund, offerExpiresAt: null }, 'addon_payments', epgHeld)).toBe(false);
    expect(fallbackWaitsForReceipt({ ...refund, attempts: 1 }, 'addon_payments', epgHeld)).toBe(false);
    expect(fallbackWaitsForReceipt({ ...refund, source: { kind: 'refundid_rma', ref: 'x' } }, 'addon_payments', epgHeld)).toBe(false);
    expect(fallbackWaitsForReceipt({ ...refund, refs: { [RETURN_RECEIVED_REF]: now } }, 'addon_payments', epgHeld)).toBe(false);
    expect(fallbackWaitsForReceipt({ ...refund, refs: { [RECEIPT_WAIVED_REF]: now } }, 'addon_payments', epgHeld)).toBe(false);
    expect(fallbackHeldUntilReceipt('other', epgHeld)).toBe(false);
  });

  it('moves to awaiting_receipt until the end of the wait, and is released, overdue or paid by a late Apace payout like any waiting refund', () => {
    const waited = applyRefundEvent(fallenBack(), 'r-1', 'fallback_awaits_receipt', { ...ctx, nextAttemptAt: waitEnds });
    expect(waited.plan.ok && waited.plan.refund).toMatchObject({ state: 'awaiting_receipt', channel: 'reversal', nextAttemptAt: waitEnds });
    expect(waited.order.lines['1']).toMatchObject({ reserved: 1, available: 1 });
    expect(applyRefundEvent(waited.order, 'r-1', 'return_received', ctx).plan).toMatchObject({ ok: true, refund: { state: 'reversal_pending' } });
    expect(applyRefundEvent(waited.order, 'r-1', 'receipt_overdue', { now: waitEnds, claimWindowMs: 0 }).plan).toMatchObject({
      ok: true,
      refund: { state: 'manual_review' },
    });
    // Apace paid after all (its cancel not honoured): booked, so the receipt cannot also reverse the card.
    const late = applyRefundEvent(waited.order, 'r-1', 'apace_paid', ctx);
    expect(late.plan).toMatchObject({ ok: true, refund: { state: 'paid', channel: 'apace' } });
    expect(applyRefundEvent(late.order, 'r-1', 'return_received', ctx).plan).toEqual({ ok: false, why: 'wrong_state' });
  });

  it('does not wait once the receipt was noted or an operator sent it on', () => {
    expect(applyRefundEvent(fallenBack({ [RETURN_RECEIVED_REF]: now }), 'r-1', 'fallback_awaits_receipt', ctx).plan).toEqual({ ok: false, why: 'wrong_state' });
    const noted = applyRefundEvent(addRefund(order(), apaceRefund, now).order, 'r-1', 'return_received_noted', {
      ...ctx,
      refs: { [RETURN_RECEIVED_REF]: later },
    });
    // Bookkeeping: the refund stays as due as it was.
    expect(noted.plan.ok && noted.plan.refund).toMatchObject({ state: 'offer_pending', nextAttemptAt: now, refs: { [RETURN_RECEIVED_REF]: later } });
    const redriven = applyRefundEvent(fallenBack(), 'r-1', 'review_required', { ...ctx, reason: 'provider refused' });
    const sentOn = applyRefundEvent(redriven.order, 'r-1', 'redrive_reversal', ctx);
    expect(sentOn.plan.ok && sentOn.plan.refund.refs).toMatchObject({ [RECEIPT_WAIVED_REF]: later });
    expect(applyRefundEvent(sentOn.order, 'r-1', 'fallback_awaits_receipt', ctx).plan).toEqual({ ok: false, why: 'wrong_state' });
  });
});

describe('receipt settings', () => {
  it('defaults to paying every channel when the return is seen, Return Received and Completed as received, a 30-day wait', () => {
    const { receipt } = loadAp21LedgerSettings({});
    expect(receipt).toEqual({ payOnReceipt: new Set(), receivedStatuses: ['Return Received', 'Completed'], waitMs: 30 * 86_400_000 });
  });

  it('reads channels, `reversal` for every reversal provider, and its own statuses and wait', () => {
    const { receipt } = loadAp21LedgerSettings({
      AP21_PAY_ON_RECEIPT: 'Apace, reversal',
      AP21_RECEIVED_RETURN_STATUSES: 'Received',
      AP21_RECEIPT_WAIT_DAYS: '7',
    });
    expect(receipt).toEqual({ payOnReceipt: new Set(['apace', 'addon_payments', 'paypro', 'optty']), receivedStatuses: ['Received'], waitMs: 7 * 86_400_000 });
  });

  it('refuses Refundid (it pays the customer itself), unknown channels, an empty received list while a channel waits, and a wait out of range', () => {
    expect(parsePayOnReceipt('refundid')).toEqual({ problem: expect.stringMatching(/Refundid pays the customer itself/) });
    expect(() => loadAp21LedgerSettings({ AP21_PAY_ON_RECEIPT: 'refundid' })).toThrow(ConfigurationError);
    expect(() => loadAp21LedgerSettings({ AP21_PAY_ON_RECEIPT: 'zip' })).toThrow(ConfigurationError);
    expect(() => loadAp21LedgerSettings({ AP21_PAY_ON_RECEIPT: 'paypro', AP21_RECEIVED_RETURN_STATUSES: '' })).toThrow(ConfigurationError);
    expect(() => loadAp21LedgerSettings({ AP21_RECEIPT_WAIT_DAYS: '0' })).toThrow(ConfigurationError);
    expect(() => loadAp21LedgerSettings({ AP21_RECEIPT_WAIT_DAYS: '1.5' })).toThrow(ConfigurationError);
  });
});
