import { money } from '../../../lambdas/domain/money';
import { apaceOfferBody } from '../../../lambdas/providers/apace/client';
import { startSimulatorHost, type SimulatorHost } from '../../../simulators/kit';
import { createApaceSimulator } from '../../../simulators/apace/simulator';
import { DEFAULT_LOOKUP } from '../../../lambdas/providers/apace/config';
import type { ApaceSecret } from '../../../lambdas/providers/apace/schemas';
import { fixedSecrets, pendingOffer, startApaceWorld, type ApaceWorld } from '../../support/harness/relay-with-apace';

let world: ApaceWorld;
beforeAll(async () => {
  world = await startApaceWorld();
});
afterAll(() => world.close());

const offersOf = (orderId: string) => world.simulator.offers().filter((offer) => offer.orderId === orderId);
const refundOf = async (orderId: string, refundId: string) => (await world.stack.runtime.store.getOrder(orderId))!.refunds[refundId]!;

async function rawApace(method: string, path: string, body?: unknown, keys: Partial<ApaceSecret> = world.secret) {
  const response = await fetch(`${world.config.apiUrl}${path}`, {
    method,
    headers: { 'apace-public-id': keys.publicId ?? '', 'apace-secret': keys.apiSecret ?? '', 'content-type': 'application/json' },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('Apace create-offer body', () => {
  it('sends amounts as decimal text from minor units, the order date as MM/DD/YYYY, and leaves absent facts out', () => {
    const body = apaceOfferBody({
      orderId: 'o-1',
      cardLastFour: '0042',
      amount: money(105, 'AUD'),
      items: [{ itemId: '1', displayName: 'Belt', unitPrice: money(105, 'AUD') }],
      expiresAt: '2026-07-01T00:00:00Z',
      orderDate: '2026-06-02T23:59:00Z',
      customer: { email: 'a@example.com' },
      verificationUrl: 'https://api.example.com/v',
      notificationUrl: 'https://api.example.com/n',
    });
    expect(body).toEqual({
      card_last_four: '0042',
      order_id: 'o-1',
      refund_amount: '1.05',
      items: [{ item_id: '1', display_name: 'Belt', unit_price: '1.05' }],
      expiration_date: '2026-07-01T00:00:00.000Z',
      order_date: '06/02/2026',
      customer: { email: 'a@example.com' },
      refund_verification: { url: 'https://api.example.com/v', method: 'GET' },
      refund_notification: { webhook_url: 'https://api.example.com/n' },
    });
    const bare = apaceOfferBody({
      orderId: 'o-2',
      cardLastFour: '1234',
      amount: money(5, 'JPY'),
      items: [{ itemId: '9', displayName: 'Cup' }],
      expiresAt: '2026-07-01T00:00:00.000Z',
      customer: {},
      verificationUrl: 'https://a.io/v',
      notificationUrl: 'https://a.io/n',
    });
    expect(bare).toEqual({
      card_last_four: '1234',
      order_id: 'o-2',
      refund_amount: '5',
      items: [{ item_id: '9', display_name: 'Cup' }],
      expiration_date: '2026-07-01T00:00:00.000Z',
      refund_verification: { url: 'https://a.io/v', method: 'GET' },
      refund_notification: { webhook_url: 'https://a.io/n' },
    });
  });
});

describe('Apace create offer, with Apace verifying through our real handler', () => {
  it('creates the offer after Apace asked our verification URL, which records the claim', async () => {
    const { orderId, refundId, request } = await pendingOffer(world, 'c-ok');
    const result = await world.client.createOffer(request);
    expect(result).toMatchObject({ kind: 'created', recovered: false, activeUntil: request.expiresAt });
    if (result.kind !== 'created') throw new Error('not created');
    expect(result.link).toContain(`refund_id=${result.apaceRefundId}`);

    expect(world.simulator.verificationCalls().filter((call) => call.merchantRefundId === refundId)).toEqual([
      { phase: 'create', merchantRefundId: refundId, answer: { allow_refund: true } },
    ]);
    expect(await refundOf(orderId, refundId)).toMatchObject({ state: 'offer_pending', verifications: 1 });

    const fetched = await world.client.get(result.apaceRefundId);
    expect(fetched).toEqual({
      kind: 'found',
      offer: expect.objectContaining({ apaceRefundId: result.apaceRefundId, orderId, itemIds: ['1'], status: 'initialized', amount: '59.9', expired: false }),
    });
  });

  it('refuses to send an offer without 4 card digits, before calling Apace', async () => {
    const { orderId, request } = await pendingOffer(world, 'c-card');
    const calls = world.simulator.verificationCalls().length;
    for (const cardLastFour of ['', '700', '70O1', '17001']) {
      expect(await world.client.createOffer({ ...request, cardLastFour })).toEqual({
        kind: 'failed',
        retryable: false,
        code: 'invalid_request',
        reason: 'card_last_four must be 4 digits',
      });
    }
    expect(offersOf(orderId)).toHaveLength(0);
    expect(world.simulator.verificationCalls()).toHaveLength(calls);
  });

  it('reports localhost callback URLs as a permanent failure carrying Apace’s messages', async () => {
    const { orderId, request } = await pendingOffer(world, 'c-localhost');
    const local = (url: string) => url.replace('127.0.0.1', 'localhost');
    const result = await world.client.createOffer({
      ...request,
      verificationUrl: local(request.verificationUrl),
      notificationUrl: local(request.notificationUrl),
    });
    expect(result).toEqual({
      kind: 'failed',
      retryable: false,
      code: 'invalid_request',
      reason:
        'Apace create offer answered 400: 5001: refund_verification.url: Please provide a valid url for refund_verification.url; ' +
        '5001: refund_notification.webhook_url: Please provide a valid url for refund_notification.webhook_url',
    });
    expect(offersOf(orderId)).toHaveLength(0);
  });

  it('reports every failed check at once, validates nulls, and calls no verification URL for an invalid body', async () => {
    const calls = world.simulator.verificationCalls().length;
    const answer = await rawApace('POST', '/ext/refunds', {
      card_last_four: '12a4',
      customer: null,
      order_id: 'c-raw',
      refund_amount: '0',
      expiration_date: '2001-01-01T00:00:00Z',
      items: [{ item_id: 5, display_name: 'Cup', unit_price: null }],
      refund_verification: { url: 'http://localhost:3000/verify' },
      refund_notification: { webhook_url: 'http://127.0.0.1:3000/notify' },
    });
    expect(answer).toEqual({
      status: 400,
      body: {
        refund_created: false,
        errors: [
          'card_last_four: Please provide an integer for cardLastFour',
          'customer: Please provide an object for customer',
          'expiration_date: Please provide valid expiration_date',
          'refund_amount: Please provide a valid number for amount',
          'items[0].item_id: Please provide valid string of items.item_id',
          'items[0].unit_price: Please provide a valid float for unit_price',
          'refund_verification.url: Please provide a valid url for refund_verification.url',
        ].map((error_message) => ({ error_code: 5001, error_message })),
      },
    });
    expect(world.simulator.verificationCalls()).toHaveLength(calls);
  });

  it('fails retryably when our verification URL does not answer allow_refund (here: a token for another refund)', async () => {
    const { orderId, request } = await pendingOffer(world, 'c-verify');
    const foreign = await pendingOffer(world, 'c-verify-other');
    const result = await world.client.createOffer({ ...request, verificationUrl: foreign.request.verificationUrl.replaceAll('c-verify-other', 'c-verify') });
    expect(result).toEqual({
      kind: 'failed',
      retryable: true,
      code: 'verification_unanswered',
      reason: 'Apace create offer answered 400: 5001: refund_verification.url does not return the correct response',
    });
    expect(offersOf(orderId)).toHaveLength(0);
  });

  it('adopts its own offer when Apace refuses the retry as a duplicate (after verifying again)', async () => {
    const { orderId, refundId, request } = await pendingOffer(world, 'c-dup');
    const first = await world.client.createOffer(request);
    const retry = await world.client.createOffer(request);
    expect(first).toMatchObject({ kind: 'created', recovered: false });
    expect(retry).toEqual({ ...first, recovered: true });
    expect(offersOf(orderId)).toHaveLength(1);
    expect(
      world.simulator
        .verificationCalls()
        .filter((call) => call.merchantRefundId === refundId)
        .map((call) => call.phase),
    ).toEqual(['create', 'create']);
  });

  it('never adopts the live offer of another refund for the same order line', async () => {
    const first = await pendingOffer(world, 'c-other');
    const created = await world.client.createOffer(first.request);
    if (created.kind !== 'created') throw new Error('not created');
    const second = await pendingOffer(world, 'c-other', { refundId: 'c-other-r2', amountMinor: 2990 });
    const result = await world.client.createOffer(second.request);
    expect(result).toEqual({
      kind: 'failed',
      retryable: true,
      code: 'items_already_offered',
      reason: `Apace refused a second live offer for these items; live offer(s) ${created.apaceRefundId} of other refunds cover these items`,
    });
    expect(offersOf('c-other')).toHaveLength(1);
  });

  it('recovers the offer when the create answer is lost after Apace acted, leaving exactly one offer', async () => {
    const { orderId, request } = await pendingOffer(world, 'c-timeout');
    world.loseNextAnswer('after_acting', 1500);
    const result = await world.clientWith({ timeoutMs: 500 }).createOffer(request);
    expect(result).toMatchObject({ kind: 'created', recovered: true, activeUntil: request.expiresAt });
    expect(offersOf(orderId)).toEqual([expect.objectContaining({ apaceRefundId: (result as { apaceRefundId: string }).apaceRefundId })]);
  });

  it('reports a lost answer with no offer behind it as retryable: Apace’s guard keeps a retry from making two', async () => {
    const { orderId, request } = await pendingOffer(world, 'c-lost');
    world.loseNextAnswer('before_acting', 1500);
    expect(await world.clientWith({ timeoutMs: 500 }).createOffer(request)).toEqual({
      kind: 'failed',
      retryable: true,
      code: 'unreachable',
      reason: 'create got no answer (apace did not answer within 500 ms); no offer of this order was found yet, so the create may be retried',
    });
    expect(offersOf(orderId)).toHaveLength(0);
  });
});

describe('Apace offer lookup', () => {
  it('pages through the newest-first list to find an older live offer, within its bounds', async () => {
    const target = await pendingOffer(world, 'c-page-target');
    const created = await world.client.createOffer(target.request);
    for (const orderId of ['c-page-a', 'c-page-b', 'c-page-c']) {
      expect(await world.client.createOffer((await pendingOffer(world, orderId)).request)).toMatchObject({ kind: 'created' });
    }
    const paging = world.clientWith({ lookup: { pageLength: 1, maxPages: 10 } });
    expect(await paging.findLiveOffer('c-page-target', ['1'])).toEqual({
      kind: 'found',
      offer: expect.objectContaining({ apaceRefundId: (created as { apaceRefundId: string }).apaceRefundId, status: 'initialized' }),
    });
    expect(await paging.findLiveOffer('c-page-target', ['2'])).toEqual({ kind: 'none' });
    const bounded = world.clientWith({ lookup: { pageLength: 1, maxPages: 2 } });
    expect(await bounded.findLiveOffer('c-page-target', ['1'])).toEqual({ kind: 'none' });
    const since = new Date(Date.now() + 11 * 60 * 1000).toISOString();
    expect(await paging.findLiveOffer('c-page-target', ['1'], { createdSince: since })).toEqual({ kind: 'none' });
  });

  it('does not report a canceled offer as live', async () => {
    const { request } = await pendingOffer(world, 'c-page-cancelled');
    const created = await world.client.createOffer(request);
    if (created.kind !== 'created') throw new Error('not created');
    expect(await world.client.cancel(created.apaceRefundId)).toEqual({ kind: 'cancelled' });
    expect(await world.client.findLiveOffer('c-page-cancelled', ['1'])).toEqual({ kind: 'none' });
  });
});

describe('Apace offer e-mail', () => {
  it('asks Apace to e-mail the customer', async () => {
    const created = await world.client.createOffer((await pendingOffer(world, 'c-mail')).request);
    if (created.kind !== 'created') throw new Error('not created');
    expect(await world.client.sendOfferEmail(created.apaceRefundId)).toEqual({ kind: 'sent' });
  });

  it('reports an offer without customer e-mail (4012) as a permanent failure', async () => {
    const created = await world.client.createOffer((await pendingOffer(world, 'c-nomail', { email: null })).request);
    if (created.kind !== 'created') throw new Error('not created');
    expect(await world.client.sendOfferEmail(created.apaceRefundId)).toEqual({
      kind: 'failed',
      retryable: false,
      code: 'no_customer_email',
      reason: 'Apace send offer email answered 400: 4012: The refund does not have customer email associated with it',
    });
  });
});

describe('Apace cancel', () => {
  it('cancels a live offer, and a repeated cancel still reports it cancelled', async () => {
    const created = await world.client.createOffer((await pendingOffer(world, 'c-cancel')).request);
    if (created.kind !== 'created') throw new Error('not created');
    expect(await world.client.cancel(created.apaceRefundId)).toEqual({ kind: 'cancelled' });
    expect(await world.client.cancel(created.apaceRefundId)).toEqual({ kind: 'cancelled' });
    expect(await world.client.get(created.apaceRefundId)).toMatchObject({ kind: 'found', offer: { status: 'canceled' } });
  });

  it('reports an offer Apace does not know as not found, though Apace answers its usual cancel refusal', async () => {
    expect(await rawApace('POST', '/ext/refunds/no-such-offer/cancel')).toEqual({
      status: 400,
      body: { refund_created: false, errors: [{ error_code: 5001, error_message: 'Cannot cancel refund at this time' }] },
    });
    expect(await world.client.cancel('no-such-offer')).toEqual({ kind: 'not_found' });
    expect(await world.client.get('no-such-offer')).toEqual({ kind: 'not_found' });
  });
});

describe('Apace authentication', () => {
  let host: SimulatorHost;
  const lockoutMs = 400;
  beforeAll(async () => {
    const simulator = createApaceSimulator({ apiKeys: [{ publicId: world.secret.publicId, apiSecret: world.secret.apiSecret }], lockoutMs });
    host = await startSimulatorHost({ apace: simulator });
  });
  afterAll(() => host.close());

  const client = (secret: ApaceSecret, fresh?: ApaceSecret) =>
    world.clientWith({ apiUrl: host.baseUrl('apace'), lookup: DEFAULT_LOOKUP }, fixedSecrets(secret, fresh));

  it('reports wrong keys as permanent without repeating them, and a locked-out IP (429) as retryable', async () => {
    const wrong = { ...world.secret, apiSecret: 'not-the-secret' };
    expect(await client(wrong).get('x')).toEqual({
      kind: 'failed',
      retryable: false,
      code: 'unauthorized',
      reason: 'Apace get offer answered 401: Not authorized vendor, please check your api key id/secret',
    });
    expect(await client(wrong).get('x')).toMatchObject({ code: 'unauthorized' });
    // Each refused call cost one failed auth, not more: two so far, so the right keys still get through.
    expect(await client(world.secret).get('x')).toEqual({ kind: 'not_found' });
    await client(wrong).get('x');
    expect(await client(world.secret).get('x')).toEqual({
      kind: 'failed',
      retryable: true,
      code: 'throttled',
      reason: 'Apace get offer answered 429: Too many wrong auth requests, please wait before retrying',
    });
    await new Promise((resolve) => setTimeout(resolve, lockoutMs + 50));
    expect(await client(world.secret).get('x')).toEqual({ kind: 'not_found' });
  });

  it('re-reads a rotated key pair once after a 401 and succeeds with it', async () => {
    const old = { ...world.secret, publicId: 'retired-key' };
    expect(await client(old, world.secret).get('x')).toEqual({ kind: 'not_found' });
  });
});

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
