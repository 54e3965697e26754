import { ap21Origin } from '../../lambdas/domain/ap21-origin';
import { loadApaceOfferLinks } from '../../lambdas/providers/apace/config';
import { fillTemplate } from '../../lambdas/providers/apace/offer-links';
import { money } from '../../lambdas/domain/money';
import { openOrder } from '../../lambdas/domain/order';
import { DAY_MS, demoOrder } from '../support/fixtures';
import { startApaceLivenessWorld, type ApaceLivenessWorld } from './apace-harness';

const TEMPLATES = {
  APACE_ORDER_URL_TEMPLATE: 'https://shop.example.com/account/orders/{orderNumber}',
  APACE_REDIRECT_URL_TEMPLATE: 'https://shop.example.com/refunded?order={orderNumber}',
  APACE_ITEM_URL_TEMPLATE: 'https://shop.example.com/products/{sku}',
};

let world: ApaceLivenessWorld;
beforeAll(async () => {
  world = await startApaceLivenessWorld(TEMPLATES);
});
afterAll(() => world.close());

let transactions = 0;

/** An Ap21 order (its number W00…, the customer's e-mail as Ap21 carries it) with one refund on the Apace route, not yet dispatched. */
async function ap21Refund(orderId: string, options: { email?: string } = {}): Promise<{ refundId: string; orderNumber: string }> {
  const { store } = world.stack.runtime;
  const now = new Date().toISOString();
  const orderNumber = `W00${orderId.replace(/\D/g, '').padStart(5, '0')}-${++transactions}`;
  const transactionId = `79${String(transactions).padStart(5, '0')}`;
  world.epg.seed({ transactionId, amount: money(16480, 'AUD') });
  const order = demoOrder(orderId, {
    payments: [{ paymentId: 'pay-1', capturedMinor: 16480, provider: 'addon_payments', transactionId, cardLastFour: '7001' }],
    origin: ap21Origin({ personId: '3583', orderId: orderId.replace(/\D/g, '') || '1', orderNumber }),
    ...(options.email !== undefined && { customer: { email: options.email } }),
  });
  await store.putOrder(openOrder(order, now));
  const refundId = `${orderId}-r1`;
  await store.createRefund(
    orderId,
    {
      refundId,
      lines: { '1': 1 },
      paymentId: 'pay-1',
      amount: money(5990, 'AUD'),
      route: 'apace',
      offerExpiresAt: new Date(Date.now() + 10 * DAY_MS).toISOString(),
      source: { kind: 'manual', ref: refundId },
    },
    now,
    { actor: 'seed' },
  );
  return { refundId, orderNumber };
}

describe('What an Apace offer shows the customer', () => {
  it('carries the order number the customer knows as order_id, and the order, redirect and item links of the stage templates', async () => {
    const { refundId, orderNumber } = await ap21Refund('dl-fields-1', { email: 'jo@example.com' });
    await world.dispatcher.processOrder('dl-fields-1');
    const { apaceRefundId } = (await world.refund('dl-fields-1', refundId)).refs;
    const offer = world.apace.offers().find((candidate) => candidate.apaceRefundId === apaceRefundId);
    expect(offer).toMatchObject({
      orderId: orderNumber,
      orderUrl: `https://shop.example.com/account/orders/${orderNumber}`,
      redirectUrl: `https://shop.example.com/refunded?order=${orderNumber}`,
      itemUrls: { [`${refundId}:1`]: 'https://shop.example.com/products/SKU-21503' },
      customerEmail: 'jo@example.com',
    });
  });
});

describe('Offer link templates (stage configuration)', () => {
  it('are checked when the function starts: only known placeholders, a host Apace accepts', () => {
    expect(loadApaceOfferLinks({ APACE_ORDER_URL_TEMPLATE: 'https://shop.example.com/o/{orderNumber}' })).toEqual({
      orderUrl: 'https://shop.example.com/o/{orderNumber}',
    });
    expect(() => loadApaceOfferLinks({ APACE_ORDER_URL_TEMPLATE: 'https://shop.example.com/o/{orderId}' })).toThrow(/unknown placeholder\(s\) \{orderId\}/);
    expect(() => loadApaceOfferLinks({ APACE_REDIRECT_URL_TEMPLATE: 'http://localhost:3000/done' })).toThrow(/no top-level domain/);
    expect(() => loadApaceOfferLinks({ APACE_ITEM_URL_TEMPLATE: 'shop/{sku}' })).toThrow(/not a URL/);
    expect(loadApaceOfferLinks({ APACE_ITEM_URL_TEMPLATE: 'https://shop.example.com/p/{sku}?o={orderNumber}' }).itemUrl).toBeDefined();
  });

  it('fill in URL-encoded values, and make no link when a value is missing', () => {
    expect(fillTemplate('https://shop.example.com/o/{orderNumber}', { orderNumber: 'W 1/2' })).toBe('https://shop.example.com/o/W%201%2F2');
    expect(fillTemplate('https://shop.example.com/p/{sku}', { orderNumber: 'W1' })).toBeUndefined();
  });
});
