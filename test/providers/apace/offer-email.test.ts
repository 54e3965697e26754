import { apaceOfferBody } from '../../../lambdas/providers/apace/client';
import { pendingOffer, startApaceWorld, type ApaceWorld } from '../../support/harness/relay-with-apace';

let world: ApaceWorld;
beforeAll(async () => {
  world = await startApaceWorld();
});
afterAll(() => world.close());

/** GET /ext/refunds/:id as Apace answers it, with the vendor's key pair. */
async function apaceDetails(apaceRefundId: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${world.config.apiUrl}/ext/refunds/${apaceRefundId}`, {
    headers: { 'apace-public-id': world.secret.publicId, 'apace-secret': world.secret.apiSecret },
  });
  return ((await response.json()) as { refundData: Record<string, unknown> }).refundData;
}

describe('Apace offer fields and Send Refund Offer Email (docs/providers.md §1)', () => {
  it('sends order_url, refund_notification.redirect_url and item_url only when given, and Apace shows them with the order_id', async () => {
    const { request } = await pendingOffer(world, 'of-fields');
    const withLinks = {
      ...request,
      orderId: 'W0020784',
      orderUrl: 'https://shop.example.com/orders/W0020784',
      redirectUrl: 'https://shop.example.com/refunded',
      items: request.items.map((item) => ({ ...item, itemUrl: 'https://shop.example.com/p/SKU-21503' })),
    };
    const body = apaceOfferBody(withLinks);
    expect(body).toMatchObject({
      order_id: 'W0020784',
      order_url: 'https://shop.example.com/orders/W0020784',
      refund_notification: { webhook_url: request.notificationUrl, redirect_url: 'https://shop.example.com/refunded' },
      items: [expect.objectContaining({ item_url: 'https://shop.example.com/p/SKU-21503' })],
    });
    expect(apaceOfferBody(request)).not.toHaveProperty('order_url');
    expect(apaceOfferBody(request).refund_notification).toEqual({ webhook_url: request.notificationUrl });

    const created = await world.client.createOffer(withLinks);
    if (created.kind !== 'created') throw new Error(created.reason);
    expect(await apaceDetails(created.apaceRefundId)).toMatchObject({
      orderId: 'W0020784',
      orderUrl: 'https://shop.example.com/orders/W0020784',
      redirectUrl: 'https://shop.example.com/refunded',
      refundItems: [expect.objectContaining({ itemId: '1', itemUrl: 'https://shop.example.com/p/SKU-21503' })],
      emailSentAt: null,
    });
  });

  it('e-mails the customer on each accepted request (not idempotent), and answers 4012 for an offer without an e-mail', async () => {
    const { request } = await pendingOffer(world, 'of-email');
    const created = await world.client.createOffer(request);
    if (created.kind !== 'created') throw new Error(created.reason);
    expect(await world.client.sendOfferEmail(created.apaceRefundId)).toEqual({ kind: 'sent' });
    expect(await world.client.sendOfferEmail(created.apaceRefundId)).toEqual({ kind: 'sent' });
    expect(world.simulator.emailRequests().filter((email) => email.apaceRefundId === created.apaceRefundId)).toEqual([
      { apaceRefundId: created.apaceRefundId, status: 200, sentTo: 'jane.doe@example.com' },
      { apaceRefundId: created.apaceRefundId, status: 200, sentTo: 'jane.doe@example.com' },
    ]);
    expect((await apaceDetails(created.apaceRefundId)).emailSentAt).toEqual(expect.any(String));

    const { request: noEmail } = await pendingOffer(world, 'of-noemail', { email: null });
    const bare = await world.client.createOffer(noEmail);
    if (bare.kind !== 'created') throw new Error(bare.reason);
    expect(await world.client.sendOfferEmail(bare.apaceRefundId)).toMatchObject({ kind: 'failed', retryable: false, code: 'no_customer_email' });
  });
});
