import { openOrder } from '../../lambdas/domain/order';
import { createDispatcher } from '../../lambdas/functions/dispatch-runtime';
import { refundReason } from '../../lambdas/providers/paypro/client';
import { ipnDeliveryKey, ipnHash, ipnSignature, refundIdFromReason } from '../../lambdas/providers/paypro/ipn';
import type { PayProSecret } from '../../lambdas/providers/paypro/schemas';
import { createPayProSimulator, type PayProSimulator } from '../../simulators/paypro/simulator';
import { startSimulatorHost, type SimulatorHost } from '../../simulators/kit';
import type { Dispatcher } from '../../lambdas/services/dispatcher';
import { keptRaw, tableSnapshot } from '../support/fixtures';
import { requestFrom } from '../support/source-address';
import { startTestStack, type TestStack } from '../support/stack';

let stack: TestStack;
let keys: PayProSecret;
/** Sends a signed OrderRefunded IPN to refund-relay after each refund, as PayPro does. */
let paypro: PayProSimulator;
/** The same PayPro whose IPNs never arrive (lost, or delayed until a resend). */
let quiet: PayProSimulator;
let hosts: SimulatorHost[];
let ipnUrl: string;

beforeAll(async () => {
  stack = await startTestStack({ PAYPRO_IPN_SOURCE_IPS: '127.0.0.1' });
  keys = stack.secrets.paypro as unknown as PayProSecret;
  ipnUrl = `${stack.url}/providers/paypro/ipn`;
  const account = { vendorAccountId: keys.vendorAccountId, apiSecretKey: keys.apiSecretKey, orders: [] };
  paypro = createPayProSimulator({ ...account, ipn: { url: ipnUrl, ipnSecretKey: keys.ipnSecretKey, ipnValidationKey: keys.ipnValidationKey } });
  quiet = createPayProSimulator(account);
  // The second host acts on every call and then drops the connection: PayPro refunded, we never hear.
  hosts = [await startSimulatorHost({ paypro, quiet }), await startSimulatorHost({ paypro, quiet }, { random: () => 0.25 })];
  hosts[1]!.setFaults('paypro', { resetRate: 1 });
  hosts[1]!.setFaults('quiet', { resetRate: 1 });
});
afterAll(async () => {
  await Promise.all(hosts.map((host) => host.close()));
  await stack.close();
});

const POLICY = { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5, leaseMs: 2_000, syncDelayMs: 50 };
const dispatcherVia = (url: string): Dispatcher =>
  createDispatcher(stack.runtime, { ...process.env, PAYPRO_API_URL: url }, { policy: POLICY, claimWindowMs: 1_000 });

let nextPayProOrder = 700_001;

/** An order paid through PayPro (order id = the payment's transaction id) and a whole-order refund of it. */
async function payProRefund(sim: PayProSimulator) {
  const payProOrderId = nextPayProOrder++;
  const orderId = `pp-${payProOrderId}`;
  const refundId = `${orderId}-r1`;
  sim.seed!({ orderId: payProOrderId, email: `c${payProOrderId}@example.com`, amount: { minor: 4990, currency: 'AUD' } });
  const now = new Date().toISOString();
  await stack.runtime.store.putOrder(
    openOrder(
      {
        orderId,
        currency: 'AUD',
        lines: [{ lineId: '1', quantity: 1, valueMinor: 4990 }],
        payments: [{ paymentId: 'p1', capturedMinor: 4990, provider: 'paypro', transactionId: String(payProOrderId) }],
      },
      now,
    ),
  );
  await stack.runtime.store.createRefund(
    orderId,
    {
      refundId,
      lines: { '1': 1 },
      paymentId: 'p1',
      amount: { minor: 4990, currency: 'AUD' },
      route: 'reversal',
      source: { kind: 'ap21_return', ref: refundId },
    },
    now,
    { actor: 'ap21' },
  );
  return { payProOrderId, orderId, refundId };
}

/** What PayPro posts for a refund of `payProOrderId` with our reason, signed with the stack's keys. */
function ipnForm(payProOrderId: number, reason: string, extra: Record<string, string> = {}, signingKeys: PayProSecret = keys): string {
  const fields = {
    ORDER_ID: String(payProOrderId),
    ORDER_STATUS: 'Refunded',
    ORDER_TOTAL_AMOUNT: '49.90',
    ORDER_CURRENCY_CODE: 'AUD',
    IPN_TYPE_ID: '2',
    IPN_TYPE_NAME: 'OrderRefunded',
    IS_RESENT: '0',
    TEST_MODE: '0' as const,
    REFUND_ISSUED_BY: 'Vendor',
    ACTION_REASON: reason,
    CUSTOMER_EMAIL: `c${payProOrderId}@example.com`,
    ...extra,
  };
  return new URLSearchParams({
    ...fields,
    HASH: ipnHash(fields.ORDER_ID, signingKeys.ipnSecretKey),
    SIGNATURE: ipnSignature(fields, signingKeys.ipnValidationKey),
  }).toString();
}

const postIpn = (body: string, from = '127.0.0.1') =>
  requestFrom(from, ipnUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
const reason = (refundId: string) => refundReason({ refundId, description: 'Customer return' });
const inboxOf = async (partition: string) =>
  (await tableSnapshot(stack.dynamo.endpoint)).filter((item) => (item as { PK: string }).PK === partition && (item as { SK: string }).SK.startsWith('INBOX#'));

async function settleDispatcher(dispatcher: Dispatcher, orderId: string, refundId: string, until: (state: string) => boolean) {
  for (let round = 0; round < 20; round++) {
    const state = (await stack.runtime.store.getOrder(orderId))!.refunds[refundId]!.state;
    if (until(state)) return state;
    await new Promise((resolve) => setTimeout(resolve, 20));
    await dispatcher.processOrder(orderId);
  }
  return (await stack.runtime.store.getOrder(orderId))!.refunds[refundId]!.state;
}

describe('PayPro IPN, end to end with the simulator as sender', () => {
  it('stores the OrderRefunded IPN of a refund we just made and answers 200; the refund stays paid once', async () => {
    const { payProOrderId, orderId, refundId } = await payProRefund(paypro);
    await dispatcherVia(hosts[0]!.baseUrl('paypro')).processOrder(orderId);
    expect(await paypro.ipnDeliveries()).toContainEqual({ orderId: payProOrderId, status: 200 });
    const order = (await stack.runtime.store.getOrder(orderId))!;
    expect(order.refunds[refundId]).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(order.timeline.filter((entry) => entry.to === 'paid')).toHaveLength(1);
    expect(await inboxOf(`ORDER#${orderId}`)).toEqual([
      expect.objectContaining({
        source: 'paypro',
        note: expect.stringContaining(`PayPro IPN 2 OrderRefunded for PayPro order ${payProOrderId}, refund ${refundId}`),
      }),
    ]);
    expect(paypro.payouts().get(String(payProOrderId))).toBe(1);
  });

  it('settles a refund whose DoRefund answer was lost from the IPN alone, and a retry pays nothing more', async () => {
    const { payProOrderId, orderId, refundId } = await payProRefund(paypro);
    const dispatcher = dispatcherVia(hosts[1]!.baseUrl('paypro'));
    await dispatcher.processOrder(orderId);
    expect(await paypro.ipnDeliveries()).toContainEqual({ orderId: payProOrderId, status: 200 });
    expect(await settleDispatcher(dispatcher, orderId, refundId, (state) => state === 'paid')).toBe('paid');
    const order = (await stack.runtime.store.getOrder(orderId))!;
    expect(order.timeline.find((entry) => entry.to === 'paid')).toMatchObject({
      actor: 'paypro',
      event: expect.stringMatching(/^reversal_(succeeded|confirmed)$/),
    });
    expect(order.lines['1']).toMatchObject({ reserved: 0, refunded: 1 });
    expect(paypro.payouts().get(String(payProOrderId))).toBe(1);
  });

  it('settles a refund parked in manual review ("already refunded") when the IPN finally arrives; resends change nothing', async () => {
    const { payProOrderId, orderId, refundId } = await payProRefund(quiet);
    const dispatcher = dispatcherVia(hosts[1]!.baseUrl('quiet'));
    await dispatcher.processOrder(orderId);
    expect(await settleDispatcher(dispatcher, orderId, refundId, (state) => state === 'manual_review')).toBe('manual_review');

    const resent = ipnForm(payProOrderId, reason(refundId), { IS_RESENT: '1' });
    expect((await postIpn(resent)).status).toBe(200);
    const order = (await stack.runtime.store.getOrder(orderId))!;
    expect(order.refunds[refundId]).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(order.timeline.at(-1)).toMatchObject({ event: 'reversal_confirmed', actor: 'paypro', from: 'manual_review', to: 'paid' });
    expect(await keptRaw(stack.runtime.store, orderId, order.timeline.at(-1))).toBe(resent);
    expect(order.lines['1']).toMatchObject({ reserved: 0, refunded: 1, available: 0 });

    const before = await tableSnapshot(stack.dynamo.endpoint);
    for (const again of [resent, ipnForm(payProOrderId, reason(refundId)), resent]) expect((await postIpn(again)).status).toBe(200);
    expect(await tableSnapshot(stack.dynamo.endpoint)).toEqual(before);
    expect(quiet.payouts().get(String(payProOrderId))).toBe(1);
  });

  it('keeps an IPN for a refund made outside refund-relay, unmatched, and answers 200', async () => {
    const body = ipnForm(812_345, 'Refunded from the PayPro control panel', { REFUND_ISSUED_BY: 'PayPro Global' });
    expect((await postIpn(body)).status).toBe(200);
    expect(await inboxOf('INBOX#UNMATCHED#paypro')).toContainEqual(
      expect.objectContaining({ raw: body, note: 'PayPro IPN 2 OrderRefunded for PayPro order 812345' }),
    );
  });

  it('does not settle a refund from an IPN about another PayPro order, nor one an operator released', async () => {
    const other = await payProRefund(quiet);
    await dispatcherVia(hosts[0]!.baseUrl('quiet')).processOrder(other.orderId);
    const released = await payProRefund(quiet);
    const { store, claimWindowMs } = stack.runtime;
    const ctx = () => ({ now: new Date().toISOString(), claimWindowMs });
    for (const event of ['review_required', 'released_by_operator'] as const)
      await store.applyEvent(released.orderId, released.refundId, event, ctx(), { actor: 'operator' });
    await store.linkReference('refund', released.refundId, { orderId: released.orderId }, ctx().now);

    const pending = await payProRefund(quiet);
    await store.linkReference('refund', pending.refundId, { orderId: pending.orderId }, ctx().now);
    expect((await postIpn(ipnForm(other.payProOrderId, reason(pending.refundId)))).status).toBe(200);
    expect((await postIpn(ipnForm(released.payProOrderId, reason(released.refundId)))).status).toBe(200);
    expect((await store.getOrder(pending.orderId))!.refunds[pending.refundId]!.state).toBe('reversal_pending');
    expect((await store.getOrder(released.orderId))!.refunds[released.refundId]!.state).toBe('released');
    expect(await inboxOf(`ORDER#${pending.orderId}`)).toHaveLength(1);
  });

  it.each<[string, () => Promise<{ status: number; body: string }>, number, string]>([
    ['an address that is not PayPro’s', async () => postIpn(ipnForm(700_001, reason('pp-700001-r1')), '127.0.0.2'), 403, 'forbidden_source'],
    [
      'a HASH made with another key',
      async () => postIpn(ipnForm(700_001, reason('pp-700001-r1'), {}, { ...keys, ipnSecretKey: 'wrong' })),
      401,
      'invalid_hash',
    ],
    [
      'a SIGNATURE made with another key',
      async () => postIpn(ipnForm(700_001, reason('pp-700001-r1'), {}, { ...keys, ipnValidationKey: 'wrong' })),
      401,
      'invalid_signature',
    ],
    [
      'a signed field changed afterwards',
      async () => postIpn(ipnForm(700_001, reason('pp-700001-r1')).replace('ORDER_STATUS=Refunded', 'ORDER_STATUS=Processed')),
      401,
      'invalid_signature',
    ],
    ['a test-mode IPN', async () => postIpn(ipnForm(700_001, reason('pp-700001-r1'), { TEST_MODE: '1' })), 403, 'test_mode'],
    [
      'a JSON body',
      async () => requestFrom('127.0.0.1', ipnUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"ORDER_ID":"1"}' }),
      415,
      'unsupported_media_type',
    ],
  ])('refuses %s and writes nothing', async (_, send, status, code) => {
    const before = await tableSnapshot(stack.dynamo.endpoint);
    const answer = await send();
    expect([answer.status, (JSON.parse(answer.body) as { error: { code: string } }).error.code]).toEqual([status, code]);
    expect(await tableSnapshot(stack.dynamo.endpoint)).toEqual(before);
  });
});

describe('PayPro IPN keys', () => {
  it('reads our refund id back from the reason we sent, and nothing from other reasons', () => {
    expect(refundIdFromReason(reason('ap21-62347-r1'))).toBe('ap21-62347-r1');
    expect(refundIdFromReason(`  ${refundReason({ refundId: 'x:1', description: 'Parcel (refund later) lost' })} `)).toBe('x:1');
    expect(refundIdFromReason('Refunded from the control panel')).toBeUndefined();
    expect(refundIdFromReason('(refund a b)')).toBeUndefined();
  });

  it('keys a resend like its first delivery, and the per-product posts of one order apart', () => {
    const first = ipnForm(1, 'r', { PRODUCT_ID: '10' });
    expect(ipnDeliveryKey(ipnForm(1, 'r', { PRODUCT_ID: '10', IS_RESENT: '1' }))).toBe(ipnDeliveryKey(first));
    expect(ipnDeliveryKey(ipnForm(1, 'r', { PRODUCT_ID: '11' }))).not.toBe(ipnDeliveryKey(first));
    expect(ipnDeliveryKey(first)).toMatch(/^1#2#[0-9a-f]{32}$/);
  });
});
