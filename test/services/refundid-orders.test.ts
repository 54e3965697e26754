import { openOrder } from '../../lambdas/domain/order';
import type { Ap21Order } from '../../lambdas/providers/ap21/schemas';
import { loadAp21LedgerSettings } from '../../lambdas/services/ap21-ledger';
import { rapiOrder } from '../../lambdas/services/refundid-orders';

const AUD = (minor: number) => ({ minor, currency: 'AUD' });

const ap21Order: Ap21Order = {
  orderId: '20784',
  orderNumber: 'W0020784',
  personId: '3583',
  currency: 'AUD',
  email: 'alice@example.com',
  lines: [
    {
      lineId: '56025',
      skuId: '21503',
      quantity: 3,
      value: AUD(10000),
      price: AUD(3500),
      productCode: 'LS-01',
      productName: 'LINEN SHIRT',
      colourName: 'NAVY',
      sizeCode: 'M',
    },
    { lineId: '56026', skuId: '880', quantity: 1, value: AUD(0), productCode: 'GIFT' },
    { lineId: '56027', skuId: '990', quantity: -1, value: AUD(-4500) },
    { lineId: '56028', skuId: '991', quantity: 2, value: AUD(2000) },
  ],
  payments: [
    { origin: 'GiftVoucher', amount: AUD(2000) },
    { origin: 'CreditCard', cardType: 'MASTERCARD', amount: AUD(10000) },
  ],
  paymentsVisible: true,
};

describe('the RapiOrder answer', () => {
  const ledger = openOrder(
    {
      orderId: 'ap21-20784',
      currency: 'AUD',
      lines: [
        { lineId: '56025', quantity: 3, valueMinor: 10000, sku: '9300000000011' },
        { lineId: '56026', quantity: 1, valueMinor: 0 },
      ],
      payments: [{ paymentId: 'p1', capturedMinor: 12000, provider: 'addon_payments' }],
    },
    '2026-03-01T10:00:00.000Z',
  );
  const reserved = { ...ledger, lines: { ...ledger.lines, '56025': { ...ledger.lines['56025']!, reserved: 1, refunded: 1, available: 1 } } };

  it('describes each line from Ap21 and limits returns to what the ledger still has', () => {
    const answer = rapiOrder(reserved, ap21Order, 'alice@example.com', loadAp21LedgerSettings({}));
    expect(answer).toMatchObject({
      merchant_order_ref: 'ap21-20784',
      order_number: 'W0020784',
      purchased_at: '2026-03-01T10:00:00.000Z',
      payment_method: 'GiftVoucher',
      is_giftcard_used: true,
    });
    expect(answer.line_items).toEqual([
      {
        line_item_ref: '56025',
        title: 'LINEN SHIRT / NAVY / M',
        // 100.00 over 3 units, rounded down: what was paid per unit, never more.
        price: { amount: '33.33', currency: 'AUD' },
        quantity: 3,
        returnable_quantity: 1,
        product_ref: 'LS-01',
        variant_ref: '21503',
        sku: '9300000000011',
        non_returnable_reasons: ['2 of 3 already refunded or being refunded.'],
      },
      {
        line_item_ref: '56026',
        title: 'GIFT',
        price: { amount: '0.00', currency: 'AUD' },
        quantity: 1,
        returnable_quantity: 0,
        product_ref: 'GIFT',
        variant_ref: '880',
        sku: '880',
        non_returnable_reasons: ['This item was free of charge; there is nothing to refund.'],
      },
      {
        line_item_ref: '56028',
        title: 'SKU 991',
        price: { amount: '10.00', currency: 'AUD' },
        quantity: 2,
        returnable_quantity: 0,
        product_ref: '991',
        variant_ref: '991',
        sku: '991',
        non_returnable_reasons: ['This item is not yet recorded for returns; please try again later.'],
      },
    ]);
  });
});

describe('the RapiOrder payment facts (docs/design.md §2.7)', () => {
  const ledger = openOrder(
    {
      orderId: 'ap21-20784',
      currency: 'AUD',
      lines: [{ lineId: '56025', quantity: 3, valueMinor: 10000 }],
      payments: [{ paymentId: 'p1', capturedMinor: 12000, provider: 'addon_payments' }],
    },
    '2026-03-01T10:00:00.000Z',
  );

  it('names as payment_method the payment a return goes back to first under the stage’s tender order', () => {
    const cardFirst = rapiOrder(ledger, ap21Order, 'alice@example.com', loadAp21LedgerSettings({ AP21_TENDER_ORDER: 'CreditCard' }));
    expect([cardFirst.payment_method, cardFirst.is_giftcard_used]).toEqual(['MASTERCARD', true]);
  });

  it('answers 0 returnable with the reason for a line Ap21 now shows cancelled, though the ledger took it as returnable', () => {
    const cancelled = { ...ap21Order, lines: [{ ...ap21Order.lines[0]!, status: 'Cancelled' }] };
    expect(rapiOrder(ledger, cancelled, 'alice@example.com', loadAp21LedgerSettings({})).line_items[0]).toMatchObject({
      returnable_quantity: 0,
      non_returnable_reasons: ['This item was cancelled; there is nothing to return.'],
    });
  });
});
