import { signCallbackToken } from '../../lambdas/providers/apace/callback-token';
import type { ApaceSecret } from '../../lambdas/providers/apace/schemas';
import { DAY_MS, apaceUrls, offeredRefund, tableSnapshot } from '../support/fixtures';
import { startTestStack, type TestStack } from '../support/stack';

let stack: TestStack;
let apace: ApaceSecret;

beforeAll(async () => {
  stack = await startTestStack();
  apace = stack.secrets.apace as ApaceSecret;
});
afterAll(() => stack.close());

async function get(url: string, headers: Record<string, string> = {}) {
  const response = await fetch(url, { headers });
  return { status: response.status, body: (await response.json()) as Record<string, unknown>, headers: response.headers };
}

describe('GET /apace/orders/{orderId}/refunds/{refundId}/verification', () => {
  it('allows an offered refund and records that Apace asked', async () => {
    const { orderId, refundId } = await offeredRefund(stack.runtime.store, 'v-ok');
    const { verificationUrl } = apaceUrls(stack.url, apace, orderId, refundId);
    const answer = await get(verificationUrl, { 'x-correlation-id': 'trace-123' });
    expect(answer).toMatchObject({ status: 200, body: { allow_refund: true } });
    expect(answer.headers.get('x-correlation-id')).toBe('trace-123');
    const refund = (await stack.runtime.store.getOrder(orderId))!.refunds[refundId]!;
    expect(refund).toMatchObject({ verifications: 1, state: 'offered' });
    expect(Date.now() - Date.parse(refund.lastVerifiedAt!)).toBeLessThan(10_000);
  });

  it('refuses, and tells the customer the refund was issued, once the card reversal is submitted', async () => {
    const { orderId, refundId } = await offeredRefund(stack.runtime.store, 'v-reversed');
    const ctx = { now: new Date().toISOString(), claimWindowMs: 0 };
    for (const event of ['offer_cancel_started', 'offer_cancelled', 'reversal_submitted'] as const) {
      await stack.runtime.store.applyEvent(orderId, refundId, event, ctx, { actor: 'dispatcher' });
    }
    const { verificationUrl } = apaceUrls(stack.url, apace, orderId, refundId);
    expect((await get(verificationUrl)).body).toEqual({ allow_refund: false, refund_issued: true });
  });

  it('refuses an offer past its expiry', async () => {
    const { orderId, refundId } = await offeredRefund(stack.runtime.store, 'v-expired', 'v-expired-r1', -1000);
    const { verificationUrl } = apaceUrls(stack.url, apace, orderId, refundId);
    expect((await get(verificationUrl)).body).toEqual({ allow_refund: false });
  });

  describe('refuses bad requests with a precise error and writes nothing', () => {
    let orderId: string;
    let refundId: string;
    beforeAll(async () => {
      ({ orderId, refundId } = await offeredRefund(stack.runtime.store, 'v-bad'));
    });

    const base = () => `${stack.url}/apace/orders/${orderId}/refunds/${refundId}/verification`;
    const token = (purpose: 'verify' | 'notify', o = orderId, r = refundId, expires = Date.now() + DAY_MS, secret = apace) =>
      signCallbackToken(secret, purpose, o, r, expires);

    it.each<[string, number, string, () => string]>([
      ['no token', 401, 'missing_token', () => base()],
      ['a malformed token', 401, 'invalid_token', () => `${base()}?auth_token=abc`],
      ['an expired token', 401, 'expired_token', () => `${base()}?auth_token=${token('verify', orderId, refundId, Date.now() - 1000)}`],
      ['a token for another refund', 401, 'invalid_token', () => `${base()}?auth_token=${token('verify', orderId, 'other')}`],
      ['a notification token', 401, 'invalid_token', () => `${base()}?auth_token=${token('notify')}`],
      [
        'a token signed with an unknown key',
        401,
        'invalid_token',
        () =>
          `${base()}?auth_token=${token('verify', orderId, refundId, Date.now() + DAY_MS, { ...apace, callbackKeys: { zz: 'x'.repeat(40) }, callbackKeyId: 'zz' })}`,
      ],
      ['a forged signature', 401, 'invalid_token', () => `${base()}?auth_token=${token('verify').slice(0, -4)}AAAA`],
      ['the token twice', 400, 'repeated_parameter', () => `${base()}?auth_token=${token('verify')}&auth_token=${token('verify')}`],
      [
        'a malformed order id',
        400,
        'invalid_path',
        () => `${stack.url}/apace/orders/%20bad/refunds/${refundId}/verification?auth_token=${token('verify', ' bad')}`,
      ],
      [
        'an unknown refund',
        404,
        'refund_not_found',
        () => `${stack.url}/apace/orders/${orderId}/refunds/nope/verification?auth_token=${token('verify', orderId, 'nope')}`,
      ],
      [
        'an unknown order',
        404,
        'refund_not_found',
        () => `${stack.url}/apace/orders/nope/refunds/${refundId}/verification?auth_token=${token('verify', 'nope')}`,
      ],
    ])('%s → %d %s', async (_, status, code, url) => {
      const before = await tableSnapshot(stack.dynamo.endpoint);
      const answer = await get(url());
      expect(answer).toMatchObject({ status, body: { error: { code } } });
      expect(typeof (answer.body.error as { message: string }).message).toBe('string');
      expect(await tableSnapshot(stack.dynamo.endpoint)).toEqual(before);
    });
  });

  it.each(['constructor', '__proto__', 'toString'])('refuses a token naming key id %s with 401, not a 5xx', async (keyId) => {
    const { orderId, refundId } = await offeredRefund(stack.runtime.store, `proto-${keyId.replace(/_/g, 'x')}`);
    const token = `${keyId}.${Math.floor(Date.now() / 1000) + 3600}.${'A'.repeat(43)}`;
    for (const leaf of ['verification', 'notification']) {
      const response = await fetch(`${stack.url}/apace/orders/${orderId}/refunds/${refundId}/${leaf}?auth_token=${token}`, {
        method: leaf === 'verification' ? 'GET' : 'POST',
        ...(leaf === 'notification' && { headers: { 'content-type': 'application/json' }, body: '{}' }),
      });
      expect([leaf, response.status]).toEqual([leaf, 401]);
    }
  });

  it('answers 405 for the wrong method and 404 for an unknown route, as JSON', async () => {
    const wrongMethod = await fetch(`${stack.url}/apace/orders/a/refunds/b/verification`, { method: 'POST' });
    expect(wrongMethod.status).toBe(405);
    expect(await wrongMethod.json()).toMatchObject({ error: { code: 'method_not_allowed' } });
    const unknown = await fetch(`${stack.url}/nope`);
    expect([unknown.status, ((await unknown.json()) as { error: { code: string } }).error.code]).toEqual([404, 'route_not_found']);
    expect(await (await fetch(`${stack.url}/health`)).json()).toEqual({ ok: true });
  });
});
