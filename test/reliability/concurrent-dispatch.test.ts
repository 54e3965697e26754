import { openOrder, type NewOrder } from '../../lambdas/domain/order';
import type { Channel } from '../../lambdas/domain/refund';
import { createDispatcher } from '../../lambdas/functions/dispatch-runtime';
import type { Dispatcher } from '../../lambdas/services/dispatcher';
import { startProviderSimulators, type ProviderSimulators } from '../../local/simulators';
import { startTestStack, type TestStack } from '../support/stack';

let stack: TestStack;
let sims: ProviderSimulators;
beforeAll(async () => {
  stack = await startTestStack();
  sims = await startProviderSimulators(stack.secrets, { apaceProcessedDelayMs: 20, apaceWebhookRetryGapMs: 50 });
  Object.assign(process.env, sims.env);
});
afterAll(async () => {
  await sims.close();
  await stack.close();
});
afterEach(() => {
  for (const prefix of ['apace', 'addon-payments', 'optty']) sims.host.setFaults(prefix, { latencyMs: 0, failureRate: 0 });
});

const policy = { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 20, leaseMs: 60_000, syncDelayMs: 100 };

function dispatcher(now?: () => number): Dispatcher {
  return createDispatcher(stack.runtime, process.env, { claimWindowMs: 1_000, policy, ...(now && { now }) });
}

async function order(orderId: string, payment: NewOrder['payments'][number], quantity = 1): Promise<void> {
  await stack.runtime.store.putOrder(
    openOrder({ orderId, currency: 'AUD', lines: [{ lineId: '1', quantity, valueMinor: 5000 * quantity }], payments: [payment] }, new Date().toISOString()),
  );
}

async function refund(orderId: string, refundId: string, route: Channel, now = new Date()): Promise<void> {
  await stack.runtime.store.createRefund(
    orderId,
    {
      refundId,
      lines: { '1': 1 },
      paymentId: 'p1',
      amount: { minor: 5000, currency: 'AUD' },
      route,
      source: { kind: 'manual', ref: refundId },
      ...(route === 'apace' && { offerExpiresAt: new Date(now.getTime() + 86_400_000).toISOString() }),
    },
    now.toISOString(),
    { actor: 'seed' },
  );
}

const stateOf = async (orderId: string, refundId: string) => (await stack.runtime.store.getOrder(orderId))!.refunds[refundId]!;

describe('two dispatchers working the same order at once (SQS redelivery, the sweeper ringing again)', () => {
  it('create the Apace offer once', async () => {
    sims.addonPayments.seed({ transactionId: 'cd-apace', amount: { minor: 5000, currency: 'AUD' } });
    await order('cd-apace', { paymentId: 'p1', capturedMinor: 5000, provider: 'addon_payments', transactionId: 'cd-apace', cardLastFour: '4242' });
    await refund('cd-apace', 'cd-apace-r1', 'apace');
    sims.host.setFaults('apace', { latencyMs: 150 });
    await Promise.all([dispatcher().processOrder('cd-apace'), dispatcher().processOrder('cd-apace')]);
    expect(sims.apace.offers().filter((offer) => offer.orderId === 'cd-apace')).toHaveLength(1);
    expect(await stateOf('cd-apace', 'cd-apace-r1')).toMatchObject({ state: 'offered', attempts: 1 });
  });

  it('follow up a submitted reversal once', async () => {
    sims.addonPayments.seed({ transactionId: 'cd-rev', amount: { minor: 5000, currency: 'AUD' } });
    await order('cd-rev', { paymentId: 'p1', capturedMinor: 5000, provider: 'addon_payments', transactionId: 'cd-rev' });
    await refund('cd-rev', 'cd-rev-r1', 'reversal');
    // Submitted by a dispatcher that died before calling EPG; its lease has run out.
    await stack.runtime.store.applyEvent(
      'cd-rev',
      'cd-rev-r1',
      'reversal_submitted',
      { now: new Date().toISOString(), claimWindowMs: 0 },
      { actor: 'dispatcher' },
    );
    sims.host.setFaults('addon-payments', { latencyMs: 150 });
    await Promise.all([dispatcher().processOrder('cd-rev'), dispatcher().processOrder('cd-rev')]);
    expect(sims.addonPayments.receivedRequests().filter((fields) => fields.merchantTransactionId === 'cd-rev-r1')).toHaveLength(1);
    expect(await stateOf('cd-rev', 'cd-rev-r1')).toMatchObject({ state: 'paid', attempts: 2 });
  });

  it('cannot both claim from the same snapshot: the second is refused', async () => {
    await order('cd-snap', { paymentId: 'p1', capturedMinor: 5000, provider: 'addon_payments', transactionId: 'cd-snap', cardLastFour: '4242' });
    await refund('cd-snap', 'cd-snap-r1', 'apace');
    const snapshot = await stateOf('cd-snap', 'cd-snap-r1');
    const ctx = { now: new Date().toISOString(), claimWindowMs: 0, nextAttemptAt: new Date(Date.now() + 60_000).toISOString() };
    const claim = () => stack.runtime.store.applyEvent('cd-snap', 'cd-snap-r1', 'attempt_started', ctx, { actor: 'dispatcher' }, snapshot);
    expect((await claim()).applied).toBe(true);
    expect(await claim()).toMatchObject({ applied: false, why: 'superseded', refund: { attempts: 1 } });
    expect(await stack.runtime.store.applyEvent('cd-snap', 'cd-snap-r1', 'attempt_started', ctx, { actor: 'dispatcher' })).toMatchObject({
      applied: false,
      why: 'not_due',
    });
  });
});

describe('following up a reversal whose first attempt never reached the provider', () => {
  it('does not take another refund of the same amount on the order as ours', async () => {
    sims.optty.api.seed?.({ reference: 'cd-optty', captured: { minor: 10000, currency: 'AUD' } });
    await order('cd-optty', { paymentId: 'p1', capturedMinor: 10000, provider: 'optty', transactionId: 'cd-optty' }, 2);
    await refund('cd-optty', 'cd-optty-r1', 'reversal');
    await dispatcher().processOrder('cd-optty');
    expect(await stateOf('cd-optty', 'cd-optty-r1')).toMatchObject({ state: 'paid' });
    // The second refund of the same amount was claimed, then the dispatcher died before its POST.
    await refund('cd-optty', 'cd-optty-r2', 'reversal');
    await stack.runtime.store.applyEvent(
      'cd-optty',
      'cd-optty-r2',
      'reversal_submitted',
      { now: new Date().toISOString(), claimWindowMs: 0 },
      { actor: 'dispatcher' },
    );
    await dispatcher().processOrder('cd-optty');
    const payouts = sims.optty.api.payouts();
    expect(await stateOf('cd-optty', 'cd-optty-r2')).toMatchObject({ state: 'paid' });
    expect([payouts.get('cd-optty-r1'), payouts.get('cd-optty-r2')]).toEqual([1, 1]);
  });
});

describe('Apace down past its attempt budget', () => {
  it('falls back to card reversal through the cancel-first path, with a fresh budget, not to manual review', async () => {
    sims.addonPayments.seed({ transactionId: 'cd-down', amount: { minor: 5000, currency: 'AUD' } });
    await order('cd-down', { paymentId: 'p1', capturedMinor: 5000, provider: 'addon_payments', transactionId: 'cd-down', cardLastFour: '4242' });
    await refund('cd-down', 'cd-down-r1', 'apace');
    sims.host.setFaults('apace', { failureRate: 1 });
    let clock = Date.now();
    const run = dispatcher(() => clock);
    for (let i = 0; i < policy.maxAttempts + 1 && (await stateOf('cd-down', 'cd-down-r1')).state === 'offer_pending'; i++) {
      clock += 60_000;
      await run.processOrder('cd-down');
    }
    expect(await stateOf('cd-down', 'cd-down-r1')).toMatchObject({ state: 'offer_cancelling' });
    // Apace is back: the cancel finds nothing to cancel, and the card is refunded.
    sims.host.setFaults('apace', { failureRate: 0 });
    clock += 60_000;
    await run.processOrder('cd-down');
    expect(await stateOf('cd-down', 'cd-down-r1')).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(sims.addonPayments.payouts().get('cd-down-r1')).toBe(1);
  });
});
