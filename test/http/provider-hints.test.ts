import { openOrder, type NewPayment } from '../../lambdas/domain/order';
import { createDispatcher } from '../../lambdas/functions/dispatch-runtime';
import type { Dispatcher } from '../../lambdas/services/dispatcher';
import { startProviderSimulators, type ProviderSimulators } from '../../local/simulators';
import { keptRaw, tableSnapshot } from '../support/fixtures';
import { startTestStack, type TestStack } from '../support/stack';

const LEASE_MS = 1_000;
let stack: TestStack;
let sims: ProviderSimulators;
let dispatcher: Dispatcher;
let opttyUrl: string;
const addonPaymentsUrl = () => `${stack.url}/providers/addon-payments/status`;

beforeAll(async () => {
  stack = await startTestStack({ DISPATCH_LEASE_MS: String(LEASE_MS) });
  sims = await startProviderSimulators(stack.secrets);
  Object.assign(process.env, sims.env);
  // The dispatcher waits a minute before asking a provider again about a pending refund.
  dispatcher = createDispatcher(stack.runtime, process.env, {
    policy: { maxAttempts: 8, baseDelayMs: 10, maxDelayMs: 50, leaseMs: LEASE_MS, syncDelayMs: 60_000 },
    claimWindowMs: 1_000,
  });
  opttyUrl = `${stack.url}/providers/optty/notifications?token=${String(stack.secrets.optty.notificationSecret)}`;
});
afterAll(async () => {
  await sims.close();
  await stack.close();
});

let sequence = 0;

/** A card refund through `provider`, submitted by the dispatcher and left PENDING by the provider. */
async function pendingRefund(provider: 'optty' | 'addon_payments') {
  const orderId = `hint-${provider}-${++sequence}`;
  const refundId = `${orderId}-r1`;
  const reference = `ref-${orderId}`;
  const amount = { minor: 3000, currency: 'AUD' };
  const payment: NewPayment =
    provider === 'optty'
      ? { paymentId: 'p1', capturedMinor: 3000, provider, reference }
      : { paymentId: 'p1', capturedMinor: 3000, provider, transactionId: reference };
  if (provider === 'optty') {
    sims.optty.api.seed!({ reference, captured: amount });
    sims.optty.setPendingMode(true);
  } else {
    sims.addonPayments.seed({ transactionId: reference, amount });
    sims.addonPayments.setMode('pending');
  }
  const now = new Date().toISOString();
  await stack.runtime.store.putOrder(
    openOrder({ orderId, currency: 'AUD', lines: [{ lineId: '1', quantity: 1, valueMinor: 3000 }], payments: [payment] }, now),
  );
  await stack.runtime.store.createRefund(
    orderId,
    { refundId, lines: { '1': 1 }, paymentId: 'p1', amount, route: 'reversal', source: { kind: 'ap21_return', ref: refundId } },
    now,
    { actor: 'ap21' },
  );
  await dispatcher.processOrder(orderId);
  const refund = (await stack.runtime.store.getOrder(orderId))!.refunds[refundId]!;
  expect(refund).toMatchObject({ state: 'reversal_submitted' });
  return { orderId, refundId, refund };
}

const refundOf = async (orderId: string, refundId: string) => (await stack.runtime.store.getOrder(orderId))!.refunds[refundId]!;
const post = (url: string, body: string, contentType = 'application/json') => fetch(url, { method: 'POST', headers: { 'content-type': contentType }, body });
const refundCallback = (refundReference: string | undefined, status = 'SUCCESSFUL') =>
  JSON.stringify({
    event: 'REFUND_CALLBACK',
    status,
    transactionId: 'tx-1',
    ...(refundReference !== undefined && { refundReference }),
    merchantReference: 'whatever',
    extra: { nested: true },
  });
const addonPaymentsXml = (merchantTransactionId: string, status = 'SUCCESS') =>
  `<response operation-size="1"><operations><operation sorted-order="1"><amount>30.0</amount><currency>AUD</currency><merchantTransactionId>${merchantTransactionId}</merchantTransactionId><operationType>REFUND</operationType><status>${status}</status><transactionId>7900123</transactionId></operation></operations><status>${status}</status></response>`;
const inboxOf = async (partition: string) =>
  (await tableSnapshot(stack.dynamo.endpoint)).filter((item) => (item as { PK: string }).PK === partition && (item as { SK: string }).SK.startsWith('INBOX#'));

describe('POST /providers/optty/notifications', () => {
  it("settles a refund once Optty's own transaction details confirm the callback", async () => {
    const { orderId, refundId } = await pendingRefund('optty');
    sims.optty.settle(refundId, 'SUCCESSFUL');
    const body = refundCallback(refundId);
    const response = await post(opttyUrl, body);
    expect([response.status, await response.json()]).toEqual([200, { received: true }]);
    const order = (await stack.runtime.store.getOrder(orderId))!;
    expect(order.refunds[refundId]).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(order.timeline.at(-1)).toMatchObject({ event: 'reversal_succeeded', actor: 'optty' });
    expect(await keptRaw(stack.runtime.store, orderId, order.timeline.at(-1))).toBe(body);
    expect(await inboxOf(`ORDER#${orderId}`)).toEqual([expect.objectContaining({ source: 'optty', raw: body })]);
    expect(sims.optty.api.payouts().get(refundId)).toBe(1);
  });

  it('does not believe a callback Optty contradicts: the follow-up comes forward, one lease after the last change, once', async () => {
    const { orderId, refundId, refund } = await pendingRefund('optty');
    expect((await post(opttyUrl, refundCallback(refundId))).status).toBe(200);
    const hinted = await refundOf(orderId, refundId);
    expect(hinted.state).toBe('reversal_submitted');
    expect(hinted.nextAttemptAt! < refund.nextAttemptAt!).toBe(true);
    expect(Date.parse(hinted.nextAttemptAt!)).toBe(Math.max(Date.parse(refund.updatedAt) + LEASE_MS, Date.parse(hinted.updatedAt)));

    expect((await post(opttyUrl, refundCallback(refundId, 'DECLINED'))).status).toBe(200);
    expect(await refundOf(orderId, refundId)).toEqual(hinted);
    expect(await inboxOf(`ORDER#${orderId}`)).toHaveLength(2);
    expect(sims.optty.api.payouts().get(refundId)).toBeUndefined();
  });

  it('never cuts into the lease of a dispatcher that has just claimed the call', async () => {
    const { orderId, refundId } = await pendingRefund('optty');
    const { store, claimWindowMs } = stack.runtime;
    // A dispatcher claims the follow-up once it is due (a claim is refused before).
    const waiting = await refundOf(orderId, refundId);
    const now = new Date(Math.max(Date.now(), Date.parse(waiting.nextAttemptAt ?? '') || 0));
    const claim = await store.applyEvent(
      orderId,
      refundId,
      'attempt_started',
      { now: now.toISOString(), claimWindowMs, nextAttemptAt: new Date(now.getTime() + LEASE_MS).toISOString() },
      { actor: 'dispatcher' },
    );
    expect(claim.applied).toBe(true);
    const claimed = await refundOf(orderId, refundId);
    expect((await post(opttyUrl, refundCallback(refundId))).status).toBe(200);
    expect(await refundOf(orderId, refundId)).toEqual(claimed);
  });

  it('keeps a notification that names no refund of ours, unmatched', async () => {
    const body = refundCallback(undefined);
    expect((await post(opttyUrl, body)).status).toBe(200);
    expect(await inboxOf('INBOX#UNMATCHED#optty')).toContainEqual(expect.objectContaining({ raw: body }));
  });

  it.each<[string, () => string, number, string]>([
    ['no token', () => opttyUrl.replace(/\?token=.*$/, ''), 401, 'missing_token'],
    ['a wrong token', () => opttyUrl.replace(/token=.*$/, 'token=not-the-notification-secret'), 401, 'invalid_token'],
    ['the token twice', () => `${opttyUrl}&token=${String(stack.secrets.optty.notificationSecret)}`, 400, 'repeated_parameter'],
  ])('refuses %s and writes nothing', async (_, url, status, code) => {
    const before = await tableSnapshot(stack.dynamo.endpoint);
    const response = await post(url(), refundCallback('anything'));
    expect([response.status, ((await response.json()) as { error: { code: string } }).error.code]).toEqual([status, code]);
    expect(await tableSnapshot(stack.dynamo.endpoint)).toEqual(before);
  });
});

describe('POST /providers/addon-payments/status', () => {
  it('changes no money state on an unsigned SUCCESS: keeps it and brings the follow-up forward', async () => {
    const { orderId, refundId, refund } = await pendingRefund('addon_payments');
    const body = addonPaymentsXml(refundId);
    const response = await post(addonPaymentsUrl(), body, 'text/xml');
    expect([response.status, await response.json()]).toEqual([200, { received: true }]);
    const hinted = await refundOf(orderId, refundId);
    expect(hinted).toMatchObject({ state: 'reversal_submitted', channel: 'reversal', attempts: refund.attempts });
    expect(hinted.nextAttemptAt! < refund.nextAttemptAt!).toBe(true);
    expect((await stack.runtime.store.getOrder(orderId))!.lines['1']).toMatchObject({ reserved: 1, refunded: 0 });
    expect(await inboxOf(`ORDER#${orderId}`)).toEqual([
      expect.objectContaining({ source: 'addon_payments', note: 'EPG status SUCCESS (unverified hint)', raw: body }),
    ]);
  });

  it('reads the JSON form too, and the same claim twice is kept once', async () => {
    const { orderId, refundId } = await pendingRefund('addon_payments');
    const json = JSON.stringify({
      response: { status: 'SUCCESS', operationsArray: [{ status: 'SUCCESS', merchantTransactionId: refundId, transactionId: '7900123' }] },
    });
    for (const body of [json, json, addonPaymentsXml(refundId)]) expect((await post(addonPaymentsUrl(), body)).status).toBe(body === json ? 200 : 400);
    expect((await post(addonPaymentsUrl(), addonPaymentsXml(refundId), 'application/xml')).status).toBe(200);
    expect(await inboxOf(`ORDER#${orderId}`)).toHaveLength(1);
  });

  it("refuses a notification that is not one of EPG's with 422 invalid_notification, and stores nothing", async () => {
    const before = await tableSnapshot(stack.dynamo.endpoint);
    const response = await post(addonPaymentsUrl(), '<response><status>SUCCESS</status></response>', 'text/xml');
    expect([response.status, ((await response.json()) as { error: { code: string } }).error.code]).toEqual([422, 'invalid_notification']);
    expect(await tableSnapshot(stack.dynamo.endpoint)).toEqual(before);
  });

  it('answers 200 for a refund it does not know and stores nothing: nothing vouches for the sender', async () => {
    const before = await tableSnapshot(stack.dynamo.endpoint);
    for (const id of ['no-such-refund', 'x'.repeat(45), 'toString'])
      expect((await post(addonPaymentsUrl(), addonPaymentsXml(id), 'text/xml')).status).toBe(200);
    expect(await tableSnapshot(stack.dynamo.endpoint)).toEqual(before);
  });
});

describe('the refund-id link the dispatcher writes before a provider hears the id', () => {
  it('sends a refund whose id already names another order’s refund to manual review, before any provider hears it', async () => {
    const first = await pendingRefund('addon_payments');
    const orderId = `hint-clash-${++sequence}`;
    const now = new Date().toISOString();
    sims.addonPayments.seed({ transactionId: `ref-${orderId}`, amount: { minor: 3000, currency: 'AUD' } });
    await stack.runtime.store.putOrder(
      openOrder(
        {
          orderId,
          currency: 'AUD',
          lines: [{ lineId: '1', quantity: 1, valueMinor: 3000 }],
          payments: [{ paymentId: 'p1', capturedMinor: 3000, provider: 'addon_payments', transactionId: `ref-${orderId}` }],
        },
        now,
      ),
    );
    await stack.runtime.store.createRefund(
      orderId,
      {
        refundId: first.refundId,
        lines: { '1': 1 },
        paymentId: 'p1',
        amount: { minor: 3000, currency: 'AUD' },
        route: 'reversal',
        source: { kind: 'ap21_return', ref: 'clash' },
      },
      now,
      { actor: 'ap21' },
    );
    const rebatesBefore = sims.addonPayments.receivedRequests().length;
    await dispatcher.processOrder(orderId);
    expect(await refundOf(orderId, first.refundId)).toMatchObject({
      state: 'manual_review',
      reason: expect.stringContaining(`already names a refund of order ${first.orderId}`),
    });
    expect(sims.addonPayments.receivedRequests()).toHaveLength(rebatesBefore);
    expect(await stack.runtime.store.findReference('refund', first.refundId)).toEqual({ orderId: first.orderId });
  });
});
