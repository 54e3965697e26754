import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { withDeadline } from '../../lambdas/commons/deadline';
import { ap21Origin } from '../../lambdas/domain/ap21-origin';
import { loadApaceOfferLinks } from '../../lambdas/providers/apace/config';
import { fillTemplate } from '../../lambdas/providers/apace/offer-links';
import { createDispatcher } from '../../lambdas/functions/dispatch-runtime';
import { callbackUrls } from '../../lambdas/providers/apace/callback-token';
import type { ApaceSecret } from '../../lambdas/providers/apace/schemas';
import { EventBridgeOfferEvents } from '../../lambdas/services/offer-events-eventbridge';
import { publishedOfferEvents } from '../../lambdas/services/offer-events-log';
import { money } from '../../lambdas/domain/money';
import { DAY_MS, demoOrderWithRefund } from '../support/fixtures';
import { startApaceLivenessWorld, type ApaceLivenessWorld } from '../support/harness/relay-with-apace-and-epg';
import { capturingMetrics } from '../support/harness/relay-with-ap21-and-epg';

const TEMPLATES = {
  APACE_ORDER_URL_TEMPLATE: 'https://shop.example.com/account/orders/{orderNumber}',
  APACE_REDIRECT_URL_TEMPLATE: 'https://shop.example.com/refunded?order={orderNumber}',
  APACE_ITEM_URL_TEMPLATE: 'https://shop.example.com/products/{sku}',
};

let world: ApaceLivenessWorld;
beforeAll(async () => {
  // A short Apace timeout, so that an answer Apace holds back is lost within a test.
  world = await startApaceLivenessWorld({ ...TEMPLATES, APACE_OFFER_DELIVERY: 'email', APACE_TIMEOUT_MS: '1000' });
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
  const { refundId } = await demoOrderWithRefund(
    store,
    orderId,
    { route: 'apace', amount: money(5990, 'AUD'), offerExpiresAt: new Date(Date.now() + 10 * DAY_MS).toISOString() },
    {
      now,
      order: {
        payments: [{ paymentId: 'pay-1', capturedMinor: 16480, provider: 'addon_payments', transactionId, cardLastFour: '7001' }],
        origin: ap21Origin({ personId: '3583', orderId: orderId.replace(/\D/g, '') || '1', orderNumber }),
        ...(options.email !== undefined && { customer: { email: options.email } }),
      },
    },
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

const timelineOf = async (orderId: string) => (await world.stack.runtime.store.getOrder(orderId))!.timeline;
const emailsFor = (apaceRefundId: string | undefined) => world.apace.emailRequests().filter((request) => request.apaceRefundId === apaceRefundId);

describe('Apace’s webhooks for an offer under the customer’s order number', () => {
  it('are booked: Apace echoes the order number as order_id, and the refund is paid once', async () => {
    const { refundId, orderNumber } = await ap21Refund('dl-hook-1', { email: 'fay@example.com' });
    await world.dispatcher.processOrder('dl-hook-1');
    const { apaceRefundId } = (await world.refund('dl-hook-1', refundId)).refs;
    expect(await world.apace.customerAccepts(apaceRefundId!, '7001')).toBe('paid');
    // Our handler books the webhook before Apace's side records its answer: wait (bounded) for both.
    const delivered = () => world.apace.webhookDeliveries().some((d) => d.apaceRefundId === apaceRefundId && d.event === 'pending' && d.status === 200);
    for (let round = 0; round < 100 && ((await world.refund('dl-hook-1', refundId)).state !== 'paid' || !delivered()); round++)
      await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await world.refund('dl-hook-1', refundId)).toMatchObject({ state: 'paid', channel: 'apace' });
    expect(world.apace.webhookDeliveries()).toContainEqual(expect.objectContaining({ apaceRefundId, event: 'pending', status: 200 }));
    expect(world.apace.offers().find((offer) => offer.apaceRefundId === apaceRefundId)?.orderId).toBe(orderNumber);
  });
});

describe('Delivering an Apace offer by e-mail (APACE_OFFER_DELIVERY=email)', () => {
  it('asks Apace to e-mail the customer once, right after the offer is created, and records it in the timeline', async () => {
    const { refundId } = await ap21Refund('dl-email-1', { email: 'ann@example.com' });
    await world.dispatcher.processOrder('dl-email-1');
    const refund = await world.refund('dl-email-1', refundId);
    expect(refund).toMatchObject({ state: 'offered', refs: { offerDelivery: 'delivered', offerDeliveredBy: 'email' } });
    expect(refund.nextAttemptAt).toBeUndefined();
    expect(emailsFor(refund.refs.apaceRefundId)).toEqual([{ apaceRefundId: refund.refs.apaceRefundId, status: 200, sentTo: 'ann@example.com' }]);
    const events = (await timelineOf('dl-email-1')).map((entry) => entry.event);
    expect(events).toEqual(expect.arrayContaining(['offer_created', 'offer_delivery_started', 'offer_delivered']));
    expect(await timelineOf('dl-email-1')).toContainEqual(
      expect.objectContaining({ event: 'offer_delivered', note: 'Apace e-mailed the offer to the customer' }),
    );

    // Nothing that runs later sends it again.
    await world.runSweeper({ rounds: 2 });
    await world.dispatcher.processOrder('dl-email-1');
    expect(emailsFor(refund.refs.apaceRefundId)).toHaveLength(1);
  });

  it('retries an e-mail Apace failed to send, with backoff, until it is sent once', async () => {
    const { refundId } = await ap21Refund('dl-email-2', { email: 'bo@example.com' });
    world.apace.failEmails(2);
    await world.dispatcher.processOrder('dl-email-2');
    const first = await world.refund('dl-email-2', refundId);
    expect(first).toMatchObject({ state: 'offered', refs: { offerDelivery: 'pending' } });
    expect(await timelineOf('dl-email-2')).toContainEqual(
      expect.objectContaining({ event: 'rescheduled', note: expect.stringMatching(/^offer delivery failed: Apace send offer email answered 503/) }),
    );
    for (let round = 0; round < 10 && (await world.refund('dl-email-2', refundId)).refs.offerDelivery !== 'delivered'; round++)
      await world.runSweeper({ rounds: 1 });
    expect(emailsFor(first.refs.apaceRefundId).map((request) => request.status)).toEqual([503, 503, 200]);
    expect(await world.refund('dl-email-2', refundId)).toMatchObject({ state: 'offered', refs: { offerDelivery: 'delivered' } });
  });

  it('sends the refund to card reversal when Apace cannot e-mail the offer (4012), cancelling the offer first, and raises ApaceOffersUndelivered', async () => {
    const { refundId } = await ap21Refund('dl-email-3', { email: 'cy@example.com' });
    world.apace.failEmails(1, 'no_customer_email');
    const { metrics } = await capturingMetrics(() => world.dispatcher.processOrder('dl-email-3'));
    expect(metrics.ApaceOffersUndelivered).toEqual([1]);
    const refund = await world.refund('dl-email-3', refundId);
    expect(refund).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(world.epg.payouts().get(refundId)).toBe(1);
    expect(world.apace.offers().find((offer) => offer.apaceRefundId === refund.refs.apaceRefundId)?.status).toBe('canceled');
    expect(await timelineOf('dl-email-3')).toContainEqual(
      expect.objectContaining({
        event: 'offer_cancel_started',
        note: expect.stringMatching(/^the offer cannot reach the customer: Apace send offer email answered 400/),
      }),
    );
  });

  it('sends the refund to card reversal when the e-mail keeps failing past the attempt budget', async () => {
    const { refundId } = await ap21Refund('dl-email-4', { email: 'di@example.com' });
    world.apace.failEmails(Infinity);
    await world.dispatcher.processOrder('dl-email-4');
    for (let round = 0; round < 20 && (await world.refund('dl-email-4', refundId)).state !== 'paid'; round++) await world.runSweeper({ rounds: 1 });
    world.apace.failEmails(0);
    const refund = await world.refund('dl-email-4', refundId);
    expect(refund).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(emailsFor(refund.refs.apaceRefundId).every((request) => request.status === 503)).toBe(true);
    expect(emailsFor(refund.refs.apaceRefundId)).toHaveLength(8);
    expect(await timelineOf('dl-email-4')).toContainEqual(
      expect.objectContaining({ event: 'offer_cancel_started', note: 'the offer could not reach the customer after 8 attempts' }),
    );
  });

  it('never offers through Apace when the customer’s e-mail is unknown: card reversal at once, the reason in the timeline', async () => {
    const { refundId } = await ap21Refund('dl-email-5');
    await world.dispatcher.processOrder('dl-email-5');
    expect(await world.refund('dl-email-5', refundId)).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(world.apaceRequests.filter((request) => request.startsWith('POST /ext/refunds ') && request.includes('-5-'))).toEqual([]);
    expect(await timelineOf('dl-email-5')).toContainEqual(
      expect.objectContaining({ event: 'apace_skipped', note: 'the customer’s e-mail is unknown, so Apace cannot e-mail them the offer' }),
    );
  });

  it('asks again after a lost answer, knowingly: Apace may have e-mailed already, and a second e-mail beats an offer never seen', async () => {
    const { refundId } = await ap21Refund('dl-email-7', { email: 'gus@example.com' });
    world.apace.failEmails(1, 'answer_lost', 1_500);
    await world.dispatcher.processOrder('dl-email-7');
    const after = await world.refund('dl-email-7', refundId);
    expect(after.refs.offerDelivery).toBe('pending');
    for (let round = 0; round < 10 && (await world.refund('dl-email-7', refundId)).refs.offerDelivery !== 'delivered'; round++)
      await world.runSweeper({ rounds: 1 });
    // Both requests were e-mails at Apace: the documented cost of not knowing (docs/design.md §2.6).
    expect(emailsFor(after.refs.apaceRefundId).map((request) => request.status)).toEqual([200, 200]);
    expect(await world.refund('dl-email-7', refundId)).toMatchObject({ refs: { offerDelivery: 'delivered' } });
  });

  it('sends again after an attempt whose outcome it never learnt (a crash after the claim), and notes it', async () => {
    const { refundId } = await ap21Refund('dl-email-6', { email: 'ed@example.com' });
    world.apace.failEmails(Infinity);
    await world.dispatcher.processOrder('dl-email-6');
    world.apace.failEmails(0);
    const { store } = world.stack.runtime;
    const pending = await world.refund('dl-email-6', refundId);
    // A dispatcher claims the delivery and dies before its answer is recorded; its lease runs out.
    const past = new Date(Date.parse(pending.nextAttemptAt!) + 1).toISOString();
    const claimed = await store.applyEvent(
      'dl-email-6',
      refundId,
      'offer_delivery_started',
      { now: past, claimWindowMs: 0, refs: { offerDelivery: 'sending' }, nextAttemptAt: new Date(Date.now() - 1000).toISOString() },
      { actor: 'dispatcher' },
      pending,
    );
    expect(claimed.applied).toBe(true);
    await world.dispatcher.processOrder('dl-email-6');
    expect(await world.refund('dl-email-6', refundId)).toMatchObject({ refs: { offerDelivery: 'delivered' } });
    expect(await timelineOf('dl-email-6')).toContainEqual(
      expect.objectContaining({ event: 'offer_delivery_started', note: 'the previous attempt’s outcome is unknown; asking Apace to e-mail the offer' }),
    );
  });
});

/** A dispatcher that delivers offers by event (APACE_OFFER_DELIVERY=event); `overrides` replace its deps. */
const eventDispatcher = (overrides: Parameters<typeof createDispatcher>[2] = {}) =>
  createDispatcher(
    world.stack.runtime,
    { ...process.env, APACE_OFFER_DELIVERY: 'event' },
    {
      claimWindowMs: 0,
      policy: { maxAttempts: 8, baseDelayMs: 20, maxDelayMs: 200, leaseMs: 3_000, syncDelayMs: 100 },
      callbackUrls: async (orderId, refundId, offerExpiresAt) =>
        callbackUrls(world.stack.url, world.stack.secrets.apace as ApaceSecret, orderId, refundId, Date.parse(offerExpiresAt) + DAY_MS),
      ...overrides,
    },
  );

describe('Delivering an Apace offer by event (APACE_OFFER_DELIVERY=event)', () => {
  it('publishes one event carrying the link, sends no e-mail, and needs no e-mail address', async () => {
    const { refundId, orderNumber } = await ap21Refund('dl-event-1');
    const dispatcher = eventDispatcher();
    await dispatcher.processOrder('dl-event-1');
    const refund = await world.refund('dl-event-1', refundId);
    expect(refund).toMatchObject({ state: 'offered', refs: { offerDelivery: 'delivered', offerDeliveredBy: 'event' } });
    const events = publishedOfferEvents().filter((event) => event.refundId === refundId);
    expect(events).toEqual([
      {
        refundId,
        orderId: 'dl-event-1',
        orderNumber,
        apaceRefundId: refund.refs.apaceRefundId,
        link: refund.refs.apaceLink,
        amount: money(5990, 'AUD'),
        expiresAt: refund.offerExpiresAt,
      },
    ]);
    expect(events[0]!.link).toMatch(/^https:\/\/customer\.apacerefunds\.com\//);
    expect(emailsFor(refund.refs.apaceRefundId)).toEqual([]);
    expect(await timelineOf('dl-event-1')).toContainEqual(expect.objectContaining({ event: 'offer_delivered', note: 'offer event published' }));

    await dispatcher.processOrder('dl-event-1');
    expect(publishedOfferEvents().filter((event) => event.refundId === refundId)).toHaveLength(1);
  });
});

describe('Offer delivery within the invocation’s time', () => {
  it('hands the delivery back, unclaimed, when the event call would not fit in the time left', async () => {
    const { refundId } = await ap21Refund('dl-time-1');
    const dispatcher = eventDispatcher({ callBudget: { timeoutMs: { apace: 1_000, events: 5_000 }, marginMs: 500 } });
    // Time for the offer's create (1 s + 0.5 s), not for the event's call (5 s + 0.5 s).
    const steps = await withDeadline(Date.now() + 3_000, () => dispatcher.processOrder('dl-time-1'));
    expect(steps).toEqual([expect.objectContaining({ refundId, handedBack: true })]);
    const refund = await world.refund('dl-time-1', refundId);
    expect(refund).toMatchObject({ state: 'offered', refs: { offerDelivery: 'pending' } });
    expect(publishedOfferEvents().filter((event) => event.refundId === refundId)).toEqual([]);
    await dispatcher.processOrder('dl-time-1');
    expect(publishedOfferEvents().filter((event) => event.refundId === refundId)).toHaveLength(1);
  });
});

describe('Offer events to EventBridge (AWS)', () => {
  const eventbridge = mockClient(EventBridgeClient);
  afterEach(() => eventbridge.reset());
  const event = {
    refundId: 'r-1',
    orderId: 'o-1',
    orderNumber: 'W1',
    apaceRefundId: 'a-1',
    link: 'https://customer.apacerefunds.com/x',
    amount: money(100, 'AUD'),
    expiresAt: '2027-01-01T00:00:00.000Z',
  };

  it('puts the event on the configured bus, as ApaceOfferCreated from refund-relay', async () => {
    eventbridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
    expect(await new EventBridgeOfferEvents('refund-relay-dev-offers').publish(event)).toEqual({ kind: 'published' });
    expect(eventbridge.commandCalls(PutEventsCommand)[0]!.args[0].input.Entries).toEqual([
      { EventBusName: 'refund-relay-dev-offers', Source: 'refund-relay', DetailType: 'ApaceOfferCreated', Detail: JSON.stringify(event) },
    ]);
  });

  it('reports a throttled entry as retryable and a refused one as not', async () => {
    eventbridge
      .on(PutEventsCommand)
      .resolvesOnce({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'ThrottlingException', ErrorMessage: 'slow down' }] })
      .resolvesOnce({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'AccessDeniedException', ErrorMessage: 'no' }] });
    const publisher = new EventBridgeOfferEvents('bus');
    expect(await publisher.publish(event)).toMatchObject({ kind: 'failed', retryable: true });
    expect(await publisher.publish(event)).toMatchObject({
      kind: 'failed',
      retryable: false,
      reason: 'EventBridge refused the offer event: AccessDeniedException no',
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
