import { parseXml } from '../../lambdas/commons/xml';
import { orderDocument, type SimOrder } from '../../lambdas/providers/ap21/simulator-documents';
import { readOrder, type Ap21Order } from '../../lambdas/providers/ap21/schemas';
import { isReturnInFeed, originalsNamedBy, returnSignsOf } from '../../lambdas/services/ap21-returns-read';

const context = { currency: 'AUD', timeZone: 'UTC', version: 4 };

const sold: SimOrder = {
  orderId: '20784',
  personId: '3583',
  orderNumber: 'W0020784',
  lines: [
    { lineId: '56025', skuId: '21503', quantity: 2, priceMinor: 5990 },
    { lineId: '56026', skuId: '880', quantity: 1, priceMinor: 4500 },
  ],
  payments: [{ paymentId: '2791', origin: 'CreditCard', cardType: 'VISA', stan: '986516', amountMinor: 16480 }],
  orderedAt: Date.parse('2026-03-04T01:22:10Z'),
  updatedAt: Date.parse('2026-03-04T01:22:10Z'),
};

/** The order as the changed-orders list carries it, with `edit` applied to its XML first. */
function feedOrder(order: SimOrder, edit: (xml: string) => string = (xml) => xml): Ap21Order {
  return readOrder(parseXml(edit(orderDocument(order, 1, undefined, context))), { currency: 'AUD', timeZone: 'UTC' });
}

describe('signs of a return in an order of the changed-orders feed', () => {
  it('finds none on an order that only sells and is on its way (the guide’s full document, every element)', () => {
    expect(returnSignsOf(feedOrder(sold))).toEqual([]);
    for (const status of ['Shipped', 'Despatched', 'Cancelled', 'Completed', ' processing '])
      expect(returnSignsOf(feedOrder(sold, (xml) => xml.replace('<Status>Processing</Status>', `<Status>${status}</Status>`)))).toEqual([]);
  });

  it('reads a Returned line status, and any status it does not know, as a sign (when in doubt, read)', () => {
    const returned = feedOrder(sold, (xml) => xml.replace('<Status>Processing</Status>', '<Status>Returned</Status>'));
    expect(returnSignsOf(returned)).toEqual(['a line with status "returned"']);
    const unknown = feedOrder(sold, (xml) => xml.replace('<Status>Processing</Status>', '<Status>Partly Exchanged</Status>'));
    expect(returnSignsOf(unknown)).toEqual(['a line with status "partly exchanged"']);
  });

  it('reads a returned quantity or a return authorisation with a value as a sign, and ignores NonReturnable and empty or zero ones', () => {
    const quantity = feedOrder(sold, (xml) => xml.replace('<Status>Processing</Status>', '<Status>Processing</Status><QuantityReturned>1</QuantityReturned>'));
    expect(returnSignsOf(quantity)).toEqual(['OrderDetail/QuantityReturned filled in']);
    const authorised = feedOrder(sold, (xml) => xml.replace('</Order>', '<ReturnAuthorisationNumber>6026</ReturnAuthorisationNumber></Order>'));
    expect(returnSignsOf(authorised)).toEqual(['ReturnAuthorisationNumber filled in']);
    const nothing = feedOrder(sold, (xml) =>
      xml
        .replace('<Status>Processing</Status>', '<Status>Processing</Status><QuantityReturned>0</QuantityReturned><RefundedValue>0.00</RefundedValue>')
        .replace('</Order>', '<ReturnAuthorisationNumber /></Order>'),
    );
    expect(nothing.lines[0]?.quantity).toBe(2);
    expect(returnSignsOf(nothing)).toEqual([]);
  });

  it('reads a credit (a negative payment) and a line giving units back as signs', () => {
    const credited = feedOrder({ ...sold, payments: [...sold.payments, { paymentId: '2792', origin: 'CreditCard', amountMinor: -5990 }] });
    expect(returnSignsOf(credited)).toEqual(['a payment with a negative amount (a credit)']);
    const exchanged = feedOrder({ ...sold, lines: [...sold.lines, { lineId: '56027', skuId: '21504', quantity: -1, priceMinor: 5990 }] });
    expect(returnSignsOf(exchanged)).toContain('a line with a negative quantity');
    expect(isReturnInFeed(exchanged)).toBe(false);
  });

  it('knows a return in the feed by its negative lines, and the original it names; a Refundid negative order is not one', () => {
    const ret = feedOrder({
      ...sold,
      orderId: '62347',
      orderNumber: 'W0020784-R1',
      lines: [{ lineId: '56030', skuId: '21503', quantity: -1, priceMinor: 5990 }],
      payments: [],
      origOrderNumber: 'W0020784',
    });
    expect(isReturnInFeed(ret)).toBe(true);
    expect([...originalsNamedBy([feedOrder(sold), ret])]).toEqual(['w0020784']);
    const refundid = feedOrder({
      ...sold,
      orderId: '20790',
      orderNumber: 'W0020790',
      lines: [{ lineId: '56031', skuId: '21503', quantity: -1, priceMinor: 5990 }],
      payments: [{ paymentId: '2793', merchantId: 'Refundid', cardType: 'Refundid', amountMinor: -5990 }],
      origOrderNumber: 'W0020784',
    });
    expect(isReturnInFeed(refundid)).toBe(false);
    expect([...originalsNamedBy([refundid])]).toEqual([]);
  });
});
