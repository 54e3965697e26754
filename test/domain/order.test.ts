import { InvalidRefundError, RefundConflictError, UnitsUnavailableError } from '../../lambdas/domain/errors';
import { addRefund, applyRefundEvent, ledgerViolations, type NewRefund } from '../../lambdas/domain/order';
import { apaceRefund, twoLineOrder } from '../support/ledger';

const now = '2026-03-01T10:00:00.000Z';
const later = '2026-03-01T10:05:00.000Z';
const ctx = { now, claimWindowMs: 120_000 };
const order = () => twoLineOrder(now);

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
