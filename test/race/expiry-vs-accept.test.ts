import { createDispatcher } from '../../lambdas/functions/dispatch-runtime';
import { startProviderSimulators, type ProviderSimulators } from '../../local/simulators';
import { orderWithRefund } from '../support/fixtures';
import { startTestStack, type TestStack } from '../support/stack';

let stack: TestStack;
let sims: ProviderSimulators;
beforeAll(async () => {
  stack = await startTestStack();
  // The pessimistic Apace: 250 ms from our "yes" to its payout, and a cancel in between is ignored.
  sims = await startProviderSimulators(stack.secrets, {
    apaceProcessedDelayMs: 30,
    apaceWebhookRetryGapMs: 50,
    apacePayoutDelayMs: 250,
    apaceHonoursLateCancel: false,
  });
  Object.assign(process.env, sims.env);
});
afterAll(async () => {
  await sims.close();
  await stack.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/**
 * The offer expires at T. The customer opens the link around T (Apace asks our verification URL,
 * then pays 250 ms later); the dispatcher notices the expiry around T and falls back to reversing
 * the card, cancelling at Apace first. Whoever is first, exactly one of them may pay.
 */
async function round(name: string, customerOffsetMs: number, dispatchOffsetMs: number, claimWindowMs: number) {
  const orderId = `expiry-${name}`;
  const refundId = `${orderId}-r1`;
  const transactionId = `tx-${orderId}`;
  sims.addonPayments.seed({ transactionId, amount: { minor: 5000, currency: 'AUD' } });
  const { store } = stack.runtime;
  const created = new Date();
  const expiresAt = created.getTime() + 1_500;
  await orderWithRefund(
    store,
    orderId,
    { provider: 'addon_payments', transactionId, cardLastFour: '4242' },
    {
      refundId,
      route: 'apace',
      offerExpiresAt: new Date(expiresAt).toISOString(),
      now: created.toISOString(),
      actor: 'ap21',
      source: { kind: 'ap21_return', ref: refundId },
    },
  );
  const dispatcher = createDispatcher(stack.runtime, process.env, {
    claimWindowMs,
    policy: { maxAttempts: 8, baseDelayMs: 10, maxDelayMs: 50, leaseMs: 2_000, syncDelayMs: 100 },
  });
  await dispatcher.processOrder(orderId);
  const apaceRefundId = (await store.getOrder(orderId))!.refunds[refundId]!.refs.apaceRefundId!;
  expect(apaceRefundId).toBeDefined();

  const customer = sleep(expiresAt + customerOffsetMs - Date.now()).then(() => sims.apace.customerAccepts(apaceRefundId, '4242'));
  const expiry = sleep(expiresAt + dispatchOffsetMs - Date.now()).then(() => dispatcher.processOrder(orderId));
  await Promise.all([customer, expiry]);

  // Let both sides finish: Apace's webhooks, the claim window, the cancel and the card reversal.
  const deadline = Date.now() + 10_000;
  let refund = (await store.getOrder(orderId))!.refunds[refundId]!;
  while (refund.state !== 'paid' && refund.state !== 'manual_review' && Date.now() < deadline) {
    await sleep(100);
    await dispatcher.processOrder(orderId);
    refund = (await store.getOrder(orderId))!.refunds[refundId]!;
  }
  await sleep(400);
  return {
    refund,
    payouts: (sims.apace.payouts().get(refundId) ?? 0) + (sims.addonPayments.payouts().get(refundId) ?? 0),
    apacePaid: (sims.apace.payouts().get(refundId) ?? 0) > 0,
  };
}

describe('offer expiry falling back to card reversal, racing the customer accepting the offer', () => {
  const winners: string[] = [];
  afterAll(() => {
    // Both sides must have won some rounds, or the race was not really run.
    expect(new Set(winners)).toEqual(new Set(['apace', 'reversal']));
  });

  const rounds = Array.from({ length: 8 }, (_, i) => ({ round: i, customer: i % 2 ? -120 : 60, dispatch: (i * 37) % 90 }));
  it.each(rounds)(
    'round $round (customer at expiry $customer ms, expiry handled at +$dispatch ms): exactly one payout',
    async ({ round: i, customer, dispatch }) => {
      const { refund, payouts, apacePaid } = await round(String(i), customer, dispatch, 800);
      expect(payouts).toBe(1);
      expect(refund).toMatchObject({ state: 'paid', channel: apacePaid ? 'apace' : 'reversal' });
      winners.push(refund.channel);
    },
    20_000,
  );

  it('pays twice without the claim-window guard, so the guard is what keeps it to once', async () => {
    const { payouts } = await round('unguarded', -120, 40, 0);
    expect(payouts).toBe(2);
  }, 20_000);
});
