import { createRefundidSimulator } from '../../simulators/refundid/simulator';
import { openAp21Order, startAp21ForStack, type Ap21ForStack } from '../support/ap21-orders';
import { tableSnapshot } from '../support/fixtures';
import { requestFrom } from '../support/source-address';
import { startTestStack, type TestStack } from '../support/stack';

let stack: TestStack;
let ap21: Ap21ForStack;
let orderQuery: string;
let rmaBody: string;

beforeAll(async () => {
  stack = await startTestStack({ REFUNDID_ALLOWED_IPS: '127.0.0.1, 10.0.0.0/8' });
  ap21 = await startAp21ForStack(stack);
  Object.assign(process.env, ap21.env);
  const { ap21: placed, order } = await openAp21Order(stack.runtime.store, ap21.sim, {
    email: 'alice@example.com',
    lines: [{ skuId: '880', quantity: 2, priceMinor: 4500 }],
  });
  orderQuery = `${stack.url}/refundid/order?${new URLSearchParams({ order_number: placed.orderNumber, email: 'alice@example.com' }).toString()}`;
  rmaBody = JSON.stringify({
    refundid_id: 'rid-auth',
    status: 'refunding',
    line_items: [{ merchant_order_ref: order.orderId, line_item_ref: placed.lines[0]!.lineId, quantity: 1 }],
  });
});
afterAll(async () => {
  await ap21.host.close();
  await stack.close();
});

const bearer = () => `Bearer ${String(stack.secrets.refundid.bearerToken)}`;
const errorCode = (body: string) => (JSON.parse(body) as { error: { code: string } }).error.code;

describe('Refundid authentication', () => {
  // First in the file: a token mismatch re-reads the secret at most once per 30 s.
  it('accepts a rotated bearer token after re-reading the secret once, and refuses the old one', async () => {
    const rotated = { ...stack.secrets, refundid: { ...stack.secrets.refundid, bearerToken: 'rotated-token-0123456789abcdefghijklmnopqrstuvwxyz' } };
    await stack.writeSecrets(rotated);
    const portal = createRefundidSimulator({ baseUrl: stack.url, bearerToken: rotated.refundid.bearerToken });
    expect((await portal.fetchOrder(Object.fromEntries(new URL(orderQuery).searchParams))).status).toBe(200);
    const old = await requestFrom('127.0.0.1', orderQuery, { headers: { authorization: bearer() } });
    expect([old.status, errorCode(old.body)]).toEqual([401, 'invalid_token']);
    stack.secrets.refundid.bearerToken = rotated.refundid.bearerToken;
  });

  it.each([
    ['GET /refundid/order', () => ({ url: orderQuery, method: 'GET' })],
    ['POST /refundid/refund', () => ({ url: `${stack.url}/refundid/refund`, method: 'POST', body: rmaBody })],
  ])('%s: refuses a caller outside the allowlist with 403 even with the right token, writing nothing', async (_, target) => {
    const { url, method, body } = target() as { url: string; method: string; body?: string };
    const before = await tableSnapshot(stack.dynamo.endpoint);
    const answer = await requestFrom('127.0.0.2', url, {
      method,
      headers: { authorization: bearer(), 'content-type': 'application/json' },
      ...(body && { body }),
    });
    expect([answer.status, errorCode(answer.body)]).toEqual([403, 'forbidden_source']);
    expect(await tableSnapshot(stack.dynamo.endpoint)).toEqual(before);
  });

  it.each([
    ['no Authorization header', undefined, 'missing_token'],
    ['another scheme', () => `Basic ${Buffer.from('refundid:secret').toString('base64')}`, 'invalid_token'],
    ['a wrong token', () => 'Bearer not-the-token-0123456789abcdefghijklmnop', 'invalid_token'],
    ['the right token with a suffix', () => `${bearer()}x`, 'invalid_token'],
    ['an empty bearer', () => 'Bearer ', 'invalid_token'],
  ])('refuses %s with 401 on both routes, writing nothing', async (_, header, code) => {
    const headers: Record<string, string> = { 'content-type': 'application/json', ...(header && { authorization: header() }) };
    const before = await tableSnapshot(stack.dynamo.endpoint);
    const fetched = await requestFrom('127.0.0.1', orderQuery, { headers });
    const pushed = await requestFrom('127.0.0.1', `${stack.url}/refundid/refund`, { method: 'POST', headers, body: rmaBody });
    expect([fetched.status, errorCode(fetched.body), pushed.status, errorCode(pushed.body)]).toEqual([401, code, 401, code]);
    expect(await tableSnapshot(stack.dynamo.endpoint)).toEqual(before);
  });

  it('accepts the right token from an allowlisted address', async () => {
    const answer = await requestFrom('127.0.0.1', `${stack.url}/refundid/refund`, {
      method: 'POST',
      headers: { authorization: bearer(), 'content-type': 'application/json' },
      body: rmaBody,
    });
    expect([answer.status, JSON.parse(answer.body)]).toEqual([200, { received: true, refund_id: 'rfd-rid-auth', state: 'refundid_pending' }]);
  });
});
