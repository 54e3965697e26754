import fc from 'fast-check';
import { InvalidRefundError, UnitsUnavailableError } from '../../lambdas/domain/errors';
import { addRefund, applyRefundEvent, openOrder, type Order } from '../../lambdas/domain/order';
import { allocateReturnedUnits, choosePayment, matchingRefundidRma, proportionalValue } from '../../lambdas/domain/returns';

const now = '2026-03-01T10:00:00.000Z';

/** SKU 21503 is sold on two lines (e.g. two sizes billed apart), 880 on one. */
function order(): Order {
  return openOrder(
    {
      orderId: 'ap21-1',
      currency: 'AUD',
      lines: [
        { lineId: '10', quantity: 2, valueMinor: 11980, sku: '21503' },
        { lineId: '9', quantity: 1, valueMinor: 5990, sku: '21503' },
        { lineId: '11', quantity: 3, valueMinor: 1000, sku: '880' },
      ],
      payments: [
        { paymentId: 'gv', capturedMinor: 5000, provider: 'other', transactionId: 'GV-1' },
        { paymentId: 'card', capturedMinor: 13970, provider: 'addon_payments', transactionId: '2078401' },
      ],
    },
    now,
  );
}

describe('allocating returned units to order lines', () => {
  it('takes a SKU sold on several lines from the lowest line id first (numerically)', () => {
    expect(allocateReturnedUnits(order(), { '21503': 1 })).toEqual({ '9': 1 });
    expect(allocateReturnedUnits(order(), { '21503': 3, '880': 2 })).toEqual({ '9': 1, '10': 2, '11': 2 });
  });

  it('skips units already refunded or in flight, so a second return of the SKU lands on the next line', () => {
    const first = addRefund(
      order(),
      {
        refundId: 'r1',
        lines: { '9': 1 },
        paymentId: 'card',
        amount: { minor: 5990, currency: 'AUD' },
        route: 'reversal',
        source: { kind: 'ap21_return', ref: '1' },
      },
      now,
    ).order;
    expect(allocateReturnedUnits(first, { '21503': 1 })).toEqual({ '10': 1 });
  });

  it('refuses more units than are left, and a SKU the order does not have', () => {
    expect(() => allocateReturnedUnits(order(), { '21503': 4 })).toThrow(
      new UnitsUnavailableError('SKU 21503: 4 unit(s) returned, 3 not yet refunded or in flight'),
    );
    expect(() => allocateReturnedUnits(order(), { '999': 1 })).toThrow(new InvalidRefundError('order has no line with SKU 999'));
    expect(() => allocateReturnedUnits(order(), { '880': 0 })).toThrow(InvalidRefundError);
  });
});

describe('the value of returned units', () => {
  it('is exact for whole lines and rounds a part down', () => {
    expect(proportionalValue(order(), { '10': 2, '9': 1 })).toEqual({ minor: 17970, currency: 'AUD' });
    expect(proportionalValue(order(), { '11': 1 })).toEqual({ minor: 333, currency: 'AUD' });
    expect(proportionalValue(order(), { '11': 2 })).toEqual({ minor: 666, currency: 'AUD' });
  });

  it('never adds up to more than the line, whatever parts are returned and released in whatever order', () => {
    const step = fc.record({ units: fc.integer({ min: 1, max: 7 }), release: fc.boolean() });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 0, max: 10_000_000 }),
        fc.array(step, { maxLength: 20 }),
        (purchased, valueMinor, steps) => {
          let ledger = openOrder(
            {
              orderId: 'o',
              currency: 'AUD',
              lines: [{ lineId: '1', quantity: purchased, valueMinor, sku: 's' }],
              payments: [{ paymentId: 'p', capturedMinor: 10_000_000, provider: 'other' }],
            },
            now,
          );
          steps.forEach(({ units, release }, i) => {
            if (units > ledger.lines['1']!.available) return;
            const amount = proportionalValue(ledger, { '1': units });
            if (amount.minor === 0) return;
            ledger = addRefund(
              ledger,
              { refundId: `r${i}`, lines: { '1': units }, paymentId: 'p', amount, route: 'refundid', source: { kind: 'refundid_rma', ref: `${i}` } },
              now,
            ).order;
            ledger = applyRefundEvent(ledger, `r${i}`, release ? 'refundid_failed' : 'refundid_refunded', { now, claimWindowMs: 0 }).order;
          });
          const paid = Object.values(ledger.refunds).filter((refund) => refund.state === 'paid');
          expect(paid.reduce((sum, refund) => sum + refund.amount.minor, 0)).toBeLessThanOrEqual(valueMinor);
          if (ledger.lines['1']!.refunded === purchased && paid.length === 1) expect(paid[0]!.amount.minor).toBe(valueMinor);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('choosing the payment a refund goes back to', () => {
  it('prefers a payment with a reversal connector, then the most left to refund', () => {
    expect(choosePayment(order(), 4000)).toBe('card');
    expect(choosePayment(order(), 14_000)).toBeUndefined();
  });

  it('takes the payment Ap21 itself refunded when it names one that can cover it', () => {
    expect(choosePayment(order(), 4000, 'GV-1')).toBe('gv');
    expect(choosePayment(order(), 6000, 'GV-1')).toBe('card');
  });
});

describe('matching a Refundid-paid Ap21 return to an RMA we hold', () => {
  const rma = (base: Order, refundId: string, lines: Record<string, number>, refs: Record<string, string> = {}) =>
    addRefund(
      base,
      { refundId, lines, paymentId: 'card', amount: { minor: 100, currency: 'AUD' }, route: 'refundid', source: { kind: 'refundid_rma', ref: refundId }, refs },
      now,
    ).order;

  it('matches by units per SKU, whichever of the SKU lines the RMA named, and prefers the one naming the payment reference', () => {
    let held = rma(order(), 'rfd-a', { '10': 1 });
    held = rma(held, 'rfd-b', { '9': 1 }, { refundidId: '0938' });
    expect(matchingRefundidRma(held, { '21503': 1 }, [], 'ap21ReturnId')?.id).toBe('rfd-a');
    expect(matchingRefundidRma(held, { '21503': 1 }, ['0938'], 'ap21ReturnId')?.id).toBe('rfd-b');
  });

  it('ignores RMAs for other units, already tied to a return, or released', () => {
    let held = rma(order(), 'rfd-units', { '10': 2 });
    held = rma(held, 'rfd-tied', { '11': 1 }, { ap21ReturnId: '62347' });
    held = rma(held, 'rfd-failed', { '9': 1 });
    held = applyRefundEvent(held, 'rfd-failed', 'refundid_failed', { now, claimWindowMs: 0 }).order;
    expect(matchingRefundidRma(held, { '21503': 1 }, [], 'ap21ReturnId')).toBeUndefined();
    expect(matchingRefundidRma(held, { '880': 1 }, [], 'ap21ReturnId')).toBeUndefined();
  });
});
