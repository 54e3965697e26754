import fc from 'fast-check';
import { ConfigurationError } from '../../lambdas/commons/config';
import { InvalidRefundError } from '../../lambdas/domain/errors';
import { addRefund, openOrder, validateRefundShape, type NewPayment, type NewRefund, type Order } from '../../lambdas/domain/order';
import { notReturnableReason } from '../../lambdas/domain/returnability';
import { allocateReturnedUnits } from '../../lambdas/domain/returns';
import { DEFAULT_TENDER_RULES, paymentForReturn, type TenderRules } from '../../lambdas/domain/tenders';
import { loadAp21LedgerSettings } from '../../lambdas/services/ap21-ledger';

const now = '2026-03-01T10:00:00.000Z';

function order(payments: readonly NewPayment[], lines = [{ lineId: '1', quantity: 4, valueMinor: 10000, sku: 'A' }]): Order {
  return openOrder({ orderId: 'ap21-1', currency: 'AUD', lines, payments }, now);
}

const voucher = (paymentId: string, capturedMinor: number): NewPayment => ({ paymentId, capturedMinor, provider: 'other', tender: 'GiftVoucher' });
const card = (paymentId: string, capturedMinor: number): NewPayment => ({ paymentId, capturedMinor, provider: 'addon_payments', tender: 'CreditCard' });

describe('the tender rule (docs/design.md §2.7)', () => {
  it('refunds the first payment in Ap21 order by default, and the stage’s tender order when it names one', () => {
    const split = order([voucher('2', 4000), card('10', 6000)]);
    expect(paymentForReturn(split, 3000, DEFAULT_TENDER_RULES)).toEqual({
      paymentId: '2',
      hold: 'payment 2 was made by GiftVoucher, which this stage refunds through an operator',
    });
    expect(paymentForReturn(split, 3000, { ...DEFAULT_TENDER_RULES, order: ['creditcard'] })).toEqual({ paymentId: '10' });
  });

  it('gives a tender an operator refunds to an operator even when a provider rule names a connector for it', () => {
    const mapped = order([{ ...voucher('1', 5000), provider: 'addon_payments' }]);
    expect(paymentForReturn(mapped, 100, DEFAULT_TENDER_RULES)?.hold).toMatch(/GiftVoucher, which this stage refunds through an operator/);
    expect(paymentForReturn(mapped, 100, { order: [], operatorTenders: [] })).toEqual({ paymentId: '1' });
  });

  it('holds money a tender without a connector paid, naming the tender', () => {
    const zip = order([{ paymentId: '1', capturedMinor: 5000, provider: 'other', tender: 'Zip' }]);
    expect(paymentForReturn(zip, 100, DEFAULT_TENDER_RULES)?.hold).toBe('payment 1 was made by Zip, which refund-relay cannot reverse (no connector for it)');
  });

  it('never books more on a payment than it has left, and holds money that straddles two payments', () => {
    const rules: TenderRules = { order: ['CreditCard'], operatorTenders: [] };
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10000 }),
        fc.integer({ min: 1, max: 10000 }),
        fc.integer({ min: 1, max: 12000 }),
        (cardMinor, voucherMinor, amount) => {
          const payments = [...(cardMinor > 0 ? [card('1', cardMinor)] : []), voucher('2', voucherMinor)];
          const decision = paymentForReturn(order(payments), amount, rules);
          if (amount > Math.max(cardMinor, voucherMinor)) return decision === undefined;
          const chosen = payments.find((payment) => payment.paymentId === decision!.paymentId)!;
          const firstInOrder = cardMinor > 0 ? 'card' : 'voucher';
          const straddles = firstInOrder === 'card' && cardMinor < amount;
          return chosen.capturedMinor >= amount && (decision!.hold !== undefined) === (straddles || chosen.tender === 'GiftVoucher');
        },
      ),
    );
  });

  it('skips payments with nothing left', () => {
    const paid = addRefund(
      order([voucher('1', 2000), card('2', 8000)]),
      { refundId: 'r1', route: 'reversal', source: { kind: 'manual', ref: 'x' }, lines: { '1': 1 }, paymentId: '1', amount: { minor: 2000, currency: 'AUD' } },
      now,
    ).order;
    expect(paymentForReturn(paid, 2500, DEFAULT_TENDER_RULES)).toEqual({ paymentId: '2' });
  });
});

describe('returnability (docs/design.md §2.7)', () => {
  it('knows a cancelled line, a non-returnable one, and the statuses a stage adds', () => {
    expect(notReturnableReason({ status: ' cancelled ' }, ['Cancelled'])).toBe('This item was cancelled; there is nothing to return.');
    expect(notReturnableReason({ status: 'Shipped', nonReturnable: true }, ['Cancelled'])).toBe(
      'This item cannot be returned: the retailer marked it non-returnable.',
    );
    expect(notReturnableReason({ status: 'Shipped' }, ['Cancelled'])).toBeUndefined();
    expect(notReturnableReason({ status: 'Returned' }, ['Cancelled'])).toBeUndefined();
    expect(notReturnableReason({ status: 'Returned' }, ['Cancelled', 'Returned'])).toBe('This item cannot be returned: its order line is Returned.');
    expect(notReturnableReason({}, ['Cancelled'])).toBeUndefined();
  });

  it('takes a SKU from returnable lines before lines that are not', () => {
    const lines = [
      { lineId: '1', quantity: 1, valueMinor: 1000, sku: 'A', nonReturnable: 'cancelled' },
      { lineId: '2', quantity: 1, valueMinor: 1000, sku: 'A' },
      { lineId: '3', quantity: 1, valueMinor: 1000, sku: 'A' },
    ];
    const ledger = order([card('1', 3000)], lines);
    expect(allocateReturnedUnits(ledger, { A: 1 })).toEqual({ '2': 1 });
    expect(allocateReturnedUnits(ledger, { A: 1 }, new Set(['2']))).toEqual({ '3': 1 });
    expect(allocateReturnedUnits(ledger, { A: 3 })).toEqual({ '1': 1, '2': 1, '3': 1 });
  });

  it('lets only an unpaid card-reversal refund with a reason start held', () => {
    const base: NewRefund = {
      refundId: 'r',
      route: 'reversal',
      source: { kind: 'ap21_return', ref: '1' },
      lines: { '1': 1 },
      paymentId: '1',
      amount: { minor: 1, currency: 'AUD' },
    };
    expect(() => validateRefundShape({ ...base, held: 'why' })).not.toThrow();
    expect(() => validateRefundShape({ ...base, held: ' ' })).toThrow(InvalidRefundError);
    expect(() => validateRefundShape({ ...base, source: { kind: 'ap21_refunded', ref: '1' }, alreadyPaid: true, held: 'why' })).toThrow(InvalidRefundError);
    expect(() => validateRefundShape({ ...base, route: 'apace', offerExpiresAt: now, held: 'why' })).toThrow(InvalidRefundError);
    const held = addRefund(order([card('1', 3000)]), { ...base, held: 'why' }, now).refund;
    expect(held).toMatchObject({ state: 'manual_review', reason: 'why', attempts: 0 });
    expect(held.nextAttemptAt).toBeUndefined();
  });
});

describe('returnability and tender settings', () => {
  it('defaults to Cancelled lines, Ap21’s payment order and gift vouchers through an operator', () => {
    expect(loadAp21LedgerSettings({})).toMatchObject({ nonReturnableStatuses: ['Cancelled'], tenders: { order: [], operatorTenders: ['GiftVoucher'] } });
    expect(
      loadAp21LedgerSettings({ AP21_NON_RETURNABLE_STATUSES: 'Cancelled, Returned', AP21_TENDER_ORDER: 'CreditCard,Zip', AP21_OPERATOR_TENDERS: '' }),
    ).toMatchObject({ nonReturnableStatuses: ['Cancelled', 'Returned'], tenders: { order: ['CreditCard', 'Zip'], operatorTenders: [] } });
  });

  it('refuses a list entry that is not a name', () => {
    expect(() => loadAp21LedgerSettings({ AP21_TENDER_ORDER: 'CreditCard=1' })).toThrow(ConfigurationError);
    expect(() => loadAp21LedgerSettings({ AP21_NON_RETURNABLE_STATUSES: 'Cancelled;Returned' })).toThrow(ConfigurationError);
  });
});
