import type { ApaceSecret } from '../../lambdas/providers/apace/schemas';
import { applyApaceNotification } from '../../lambdas/services/apace-callbacks';
import { APACE_SIGNATURE_HEADER, signApaceBody } from '../../lambdas/providers/apace/signature';
import { apaceUrls, apaceWebhook, keptRaw, offeredRefund, postWebhook, tableSnapshot } from '../support/fixtures';
import { startTestStack, type TestStack } from '../support/stack';

let stack: TestStack;
let apace: ApaceSecret;

beforeAll(async () => {
  stack = await startTestStack();
  apace = stack.secrets.apace as ApaceSecret;
});
afterAll(() => stack.close());

async function setup(orderId: string) {
  const { refundId } = await offeredRefund(stack.runtime.store, orderId);
  return { orderId, refundId, url: apaceUrls(stack.url, apace, orderId, refundId).notificationUrl };
}

const refundOf = async (orderId: string, _refundId: string) => (await stack.runtime.store.getOrder(orderId))!;

describe('POST /apace/orders/{orderId}/refunds/{refundId}/notification', () => {
  it('marks the refund paid at pending, settles the ledger, and keeps the raw webhook in the timeline', async () => {
    const { orderId, refundId, url } = await setup('n-pending');
    const body = apaceWebhook(orderId, 'pending');
    const response = await postWebhook(url, body, apace.apiSecret);
    expect([response.status, await response.json()]).toEqual([200, { received: true }]);
    const order = await refundOf(orderId, refundId);
    expect(order.refunds[refundId]).toMatchObject({ state: 'paid', channel: 'apace' });
    expect(order.refunds[refundId]!.confirmedAt).toBeUndefined();
    expect(order.lines['1']).toMatchObject({ reserved: 0, refunded: 1, available: 1 });
    expect(order.payments['pay-1']).toMatchObject({ reservedMinor: 0, refundedMinor: 5990 });
    expect(order.timeline.at(-1)).toMatchObject({
      event: 'apace_paid',
      actor: 'apace',
      from: 'offered',
      to: 'paid',
      inbox: expect.stringMatching(/^INBOX#apace#/),
    });
    expect(await keptRaw(stack.runtime.store, orderId, order.timeline.at(-1))).toBe(body);
  });

  it('confirms at processed; each body is stored once before it is applied, and duplicates and retries change nothing', async () => {
    const { orderId, refundId, url } = await setup('n-dup');
    await postWebhook(url, apaceWebhook(orderId, 'pending'), apace.apiSecret);
    const processed = apaceWebhook(orderId, 'processed');
    expect((await postWebhook(url, processed, apace.apiSecret)).status).toBe(200);
    const confirmed = await refundOf(orderId, refundId);
    expect(confirmed.refunds[refundId]!.confirmedAt).toBeDefined();

    const before = await tableSnapshot(stack.dynamo.endpoint);
    for (const body of [processed, processed, apaceWebhook(orderId, 'pending')]) {
      expect((await postWebhook(url, body, apace.apiSecret)).status).toBe(200);
    }
    const after = await tableSnapshot(stack.dynamo.endpoint);
    const inbox = after.filter((item) => String((item as { SK: string }).SK).startsWith('INBOX#apace#'));
    // Storage first: both bodies were kept (and marked processed) when they first came; the
    // repeats add nothing and leave the order item untouched.
    expect(after.length - before.length).toBe(0);
    const kept = inbox.filter((item) => String((item as { PK: string }).PK) === `ORDER#${orderId}`);
    expect(kept.map((item) => (item as { status: string }).status)).toEqual(['processed', 'processed']);
    const order = await refundOf(orderId, refundId);
    expect(order.lines['1']).toMatchObject({ refunded: 1, reserved: 0 });
    expect(order.version).toBe(confirmed.version);
  });

  it('accepts processed before pending: paid and confirmed in one step, the late pending is a duplicate', async () => {
    const { orderId, refundId, url } = await setup('n-order');
    await postWebhook(url, apaceWebhook(orderId, 'processed'), apace.apiSecret);
    await postWebhook(url, apaceWebhook(orderId, 'pending'), apace.apiSecret);
    const order = await refundOf(orderId, refundId);
    expect(order.refunds[refundId]).toMatchObject({ state: 'paid', channel: 'apace' });
    expect(order.refunds[refundId]!.confirmedAt).toBe(order.refunds[refundId]!.paidAt);
    expect(order.lines['1']!.refunded).toBe(1);
  });

  it('sends a refund to card reversal, units kept, when Apace reports its payout failed after pending', async () => {
    const { orderId, refundId, url } = await setup('n-failed');
    expect((await postWebhook(url, apaceWebhook(orderId, 'pending'), apace.apiSecret)).status).toBe(200);
    const failed = apaceWebhook(orderId, 'pending', { refund_status: 'failed', refund_success: false });
    expect((await postWebhook(url, failed, apace.apiSecret)).status).toBe(200);
    const order = await refundOf(orderId, refundId);
    // Apace can no longer pay a failed offer: no cancel, straight to the card, the unit still held.
    expect(order.refunds[refundId]).toMatchObject({ state: 'reversal_pending', channel: 'reversal', refs: { apacePayout: 'failed' } });
    expect(order.lines['1']).toMatchObject({ reserved: 1, refunded: 0, available: 1 });
    expect(order.timeline.at(-1)).toMatchObject({ event: 'apace_payout_failed', from: 'paid', to: 'reversal_pending' });
    expect(await keptRaw(stack.runtime.store, orderId, order.timeline.at(-1))).toBe(failed);
    expect(order.dueAt).toBeDefined();
  });

  it("changes nothing on a webhook that contradicts what we know, and keeps it pending until Apace's own record is read", async () => {
    const { orderId, refundId, url } = await setup('n-contradicts');
    const store = stack.runtime.store;
    const ctx = { now: new Date().toISOString(), claimWindowMs: 0 };
    // We cancelled the offer and went to the card: Apace now says it is paying.
    await store.applyEvent(orderId, refundId, 'offer_cancel_started', ctx, { actor: 'dispatcher' });
    await store.applyEvent(orderId, refundId, 'offer_cancelled', ctx, { actor: 'dispatcher' });
    const before = await refundOf(orderId, refundId);
    for (const status of ['pending', 'processed'] as const) expect((await postWebhook(url, apaceWebhook(orderId, status), apace.apiSecret)).status).toBe(200);
    const after = await refundOf(orderId, refundId);
    expect(after.version).toBe(before.version);
    expect(after.refunds[refundId]).toMatchObject({ state: 'reversal_pending', channel: 'reversal' });
    const waiting = (await store.findPendingInbound('apace', new Date(Date.now() + 1000).toISOString(), 100)).filter((record) => record.orderId === orderId);
    expect(waiting).toHaveLength(2);
  });

  it('does not undo a confirmed payout on a failed webhook before Apace confirms it', async () => {
    const { orderId, refundId, url } = await setup('n-failed-after-processed');
    await postWebhook(url, apaceWebhook(orderId, 'processed'), apace.apiSecret);
    const confirmed = await refundOf(orderId, refundId);
    const failed = apaceWebhook(orderId, 'pending', { refund_status: 'failed', refund_success: false });
    expect((await postWebhook(url, failed, apace.apiSecret)).status).toBe(200);
    const after = await refundOf(orderId, refundId);
    expect(after.version).toBe(confirmed.version);
    expect(after.refunds[refundId]).toMatchObject({ state: 'paid', channel: 'apace' });
  });

  it('books a pending webhook even when the dispatcher moves the refund to manual review between our read and our write', async () => {
    const { orderId, refundId } = await setup('n-review-race');
    const store = stack.runtime.store;
    const ctx = { now: new Date().toISOString(), claimWindowMs: 0 };
    await store.applyEvent(orderId, refundId, 'offer_cancel_started', ctx, { actor: 'dispatcher' });
    const racing = Object.assign(Object.create(store) as typeof store, {
      getOrder: async (id: string) => {
        const order = await store.getOrder(id);
        await store.applyEvent(orderId, refundId, 'review_required', { ...ctx, reason: 'Apace cancel failed after 8 attempts' }, { actor: 'dispatcher' });
        return order;
      },
    });
    const body = { refund_id: 'a-1', order_id: orderId, refund_success: false, refund_status: 'pending' as const };
    const result = await applyApaceNotification(racing, { orderId, refundId }, body, JSON.stringify(body), ctx);
    expect(result).toMatchObject({ applied: true, refund: { state: 'paid', channel: 'apace' } });
  });

  it('reads the older webhook without refund_status from refund_success', async () => {
    const { orderId, refundId, url } = await setup('n-legacy');
    const body = JSON.stringify({ ...JSON.parse(apaceWebhook(orderId, 'pending')), refund_status: undefined });
    expect((await postWebhook(url, body, apace.apiSecret)).status).toBe(200);
    expect((await refundOf(orderId, refundId)).refunds[refundId]!.state).toBe('paid');
  });

  it('handles 40 concurrent deliveries of both webhooks: one settlement, one confirmation', async () => {
    const { orderId, refundId, url } = await setup('n-race');
    const bodies = Array.from({ length: 40 }, (_, i) => apaceWebhook(orderId, i % 2 ? 'processed' : 'pending'));
    const statuses = await Promise.all(bodies.map(async (body) => (await postWebhook(url, body, apace.apiSecret)).status));
    expect(new Set(statuses)).toEqual(new Set([200]));
    const order = await refundOf(orderId, refundId);
    expect(order.lines['1']).toMatchObject({ purchased: 2, reserved: 0, refunded: 1, available: 1 });
    expect(order.timeline.filter((entry) => entry.refundId === refundId && entry.to === 'paid')).toHaveLength(
      order.timeline.filter((e) => e.event === 'apace_confirmed').length + 1,
    );
    expect(order.refunds[refundId]!.confirmedAt).toBeDefined();
  });

  describe('refuses bad requests with a precise error and writes nothing', () => {
    let orderId: string;
    let url: string;
    let verificationUrl: string;
    beforeAll(async () => {
      let refundId: string;
      ({ orderId, refundId, url } = await setup('n-bad'));
      ({ verificationUrl } = apaceUrls(stack.url, apace, orderId, refundId));
    });
    const signed = (body: string | Buffer, type = 'application/json') => ({
      'content-type': type,
      [APACE_SIGNATURE_HEADER]: signApaceBody(apace.apiSecret, body),
    });

    const cases: [string, number, string, () => { url: string; body: string | Buffer; headers: Record<string, string> }][] = [
      ['no signature', 401, 'missing_signature', () => ({ url, body: apaceWebhook(orderId, 'pending'), headers: { 'content-type': 'application/json' } })],
      [
        'a signature of another body',
        401,
        'invalid_signature',
        () => ({ url, body: apaceWebhook(orderId, 'pending'), headers: signed(apaceWebhook(orderId, 'processed')) }),
      ],
      [
        'a signature with the wrong key',
        401,
        'invalid_signature',
        () => {
          const body = apaceWebhook(orderId, 'pending');
          return { url, body, headers: { 'content-type': 'application/json', [APACE_SIGNATURE_HEADER]: signApaceBody('not-the-secret', body) } };
        },
      ],
      [
        'a signature that is not hex',
        401,
        'invalid_signature',
        () => ({ url, body: apaceWebhook(orderId, 'pending'), headers: { 'content-type': 'application/json', [APACE_SIGNATURE_HEADER]: 'zz' } }),
      ],
      [
        'the verification token on the notification URL',
        401,
        'invalid_token',
        () => ({
          url: verificationUrl.replace('/verification?', '/notification?'),
          body: apaceWebhook(orderId, 'pending'),
          headers: signed(apaceWebhook(orderId, 'pending')),
        }),
      ],
      [
        'a form body',
        415,
        'unsupported_media_type',
        () => ({ url, body: 'refund_status=pending', headers: signed('refund_status=pending', 'application/x-www-form-urlencoded') }),
      ],
      ['malformed JSON', 400, 'malformed_json', () => ({ url, body: '{"refund_status":', headers: signed('{"refund_status":') })],
      [
        'invalid UTF-8',
        400,
        'invalid_encoding',
        () => ({ url, body: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), headers: signed(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])) }),
      ],
      [
        'a missing order_id',
        422,
        'invalid_request',
        () => {
          const body = JSON.stringify({ ...JSON.parse(apaceWebhook(orderId, 'pending')), order_id: undefined });
          return { url, body, headers: signed(body) };
        },
      ],
      [
        'an unknown refund_status',
        422,
        'invalid_request',
        () => {
          const body = apaceWebhook(orderId, 'pending', { refund_status: 'approved' });
          return { url, body, headers: signed(body) };
        },
      ],
      [
        'refund_success as a string',
        422,
        'invalid_request',
        () => {
          const body = apaceWebhook(orderId, 'pending', { refund_success: 'false' });
          return { url, body, headers: signed(body) };
        },
      ],
      [
        'a body about another order',
        422,
        'order_mismatch',
        () => {
          const body = apaceWebhook('someone-else', 'pending');
          return { url, body, headers: signed(body) };
        },
      ],
      [
        'a 40 KB body',
        413,
        'payload_too_large',
        () => {
          const body = apaceWebhook(orderId, 'pending', { padding: 'x'.repeat(40_000) });
          return { url, body, headers: signed(body) };
        },
      ],
    ];

    it.each(cases)('%s → %d %s', async (_, status, code, request) => {
      const { url: target, body, headers } = request();
      const before = await tableSnapshot(stack.dynamo.endpoint);
      const response = await fetch(target, { method: 'POST', headers, body });
      expect([response.status, ((await response.json()) as { error: { code: string } }).error.code]).toEqual([status, code]);
      expect(await tableSnapshot(stack.dynamo.endpoint)).toEqual(before);
    });

    it('answers 404 for a refund it does not know, even when correctly signed, and writes nothing', async () => {
      const { notificationUrl } = apaceUrls(stack.url, apace, orderId, 'unknown-refund');
      const body = apaceWebhook(orderId, 'pending');
      const before = await tableSnapshot(stack.dynamo.endpoint);
      const response = await postWebhook(notificationUrl, body, apace.apiSecret);
      expect([response.status, ((await response.json()) as { error: { code: string } }).error.code]).toEqual([404, 'refund_not_found']);
      expect(await tableSnapshot(stack.dynamo.endpoint)).toEqual(before);
    });
  });
});
