import { openOrder, type NewRefund, type Order } from '../../lambdas/domain/order';

/**
 * An order of two lines (2 × 50.00 and 1 × 25.00 AUD) paid by one EPG card payment, opened at
 * `now`: the ledger the domain tests of orders and refunds start from.
 */
export function twoLineOrder(now: string): Order {
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

/** A refund of one unit of line l1 (50.00 AUD) offered through Apace, from an Ap21 return. */
export const apaceRefund = (overrides: Partial<NewRefund> = {}): NewRefund => ({
  refundId: 'r-1',
  lines: { l1: 1 },
  paymentId: 'p1',
  amount: { minor: 5000, currency: 'AUD' },
  route: 'apace',
  offerExpiresAt: '2026-03-11T10:00:00.000Z',
  source: { kind: 'ap21_return', ref: 'ret-1' },
  ...overrides,
});
