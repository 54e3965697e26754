import type { Context, SQSEvent } from 'aws-lambda';
import { createDispatcher, dispatchHandler } from '../../lambdas/functions/dispatch-runtime';
import { startProviderSimulators, type ProviderSimulators } from '../../local/simulators';
import { orderWithRefund } from '../support/fixtures';
import { startTestStack, type TestStack } from '../support/stack';

/**
 * docs/design.md §2.5, "work that fits the time it has": the SQS consumer, run as Lambda runs it
 * (a batch and a context whose remaining time runs down), against the EPG simulator over HTTP and
 * dynalite. The simulated EPG answers after 1–3 s, within its 4 s timeout.
 */
let stack: TestStack;
let sims: ProviderSimulators;
const env = (): NodeJS.ProcessEnv => ({ ...process.env, ...sims.env, ADDON_PAYMENTS_TIMEOUT_MS: '4000' });

beforeAll(async () => {
  stack = await startTestStack();
  sims = await startProviderSimulators(stack.secrets);
  sims.host.setFaults('addon-payments', { latencyMs: 2_000 });
});
afterAll(async () => {
  await sims.close();
  await stack.close();
});

/** A Lambda context whose invocation ends `remainingMs` from now. */
function contextEnding(remainingMs: number): Context {
  const endsAt = Date.now() + remainingMs;
  return { functionName: 'dispatcher', awsRequestId: `test-${remainingMs}`, getRemainingTimeInMillis: () => endsAt - Date.now() } as unknown as Context;
}

const doorbell = (orderId: string, messageId: string): SQSEvent => ({ Records: [{ messageId, body: JSON.stringify({ orderId }) }] }) as unknown as SQSEvent;

async function reversalDue(orderId: string): Promise<string> {
  const refundId = `${orderId}-r1`;
  const transactionId = `tx-${orderId}`;
  sims.addonPayments.seed({ transactionId, amount: { minor: 4200, currency: 'AUD' } });
  await orderWithRefund(
    stack.runtime.store,
    orderId,
    { provider: 'addon_payments', transactionId },
    { valueMinor: 4200, refundId, actor: 'ap21', source: { kind: 'ap21_return', ref: refundId } },
  );
  return refundId;
}

const refundOf = async (orderId: string, refundId: string) => (await stack.runtime.store.getOrder(orderId))!.refunds[refundId]!;

describe('a provider slower than the invocation has left', () => {
  it('is not called: the refund is handed back untouched, and a later invocation with time pays it exactly once', async () => {
    const orderId = 'budget-1';
    const refundId = await reversalDue(orderId);
    const handler = dispatchHandler(createDispatcher(stack.runtime, env()));

    // 2.5 s left: enough to send the request, but an EPG call may take its 4 s timeout plus the 3 s
    // margin to record it.
    const short = await handler(doorbell(orderId, 'm1'), contextEnding(2_500));
    expect(short.batchItemFailures).toEqual([{ itemIdentifier: 'm1' }]);
    expect(await refundOf(orderId, refundId)).toMatchObject({ state: 'reversal_pending', attempts: 0 });
    expect(sims.payoutsByReference().get(refundId)).toBeUndefined();

    // SQS delivers it again (or the sweeper rings) to an invocation with its full 30 s.
    const full = await handler(doorbell(orderId, 'm2'), contextEnding(30_000));
    expect(full.batchItemFailures).toEqual([]);
    expect(await refundOf(orderId, refundId)).toMatchObject({ state: 'paid', channel: 'reversal', attempts: 1 });
    expect(sims.payoutsByReference().get(refundId)).toBe(1);
  });

  it('CONTROL: without the check, the call starts and the invocation ends mid-call, the money moved and nothing recorded', async () => {
    const orderId = 'budget-control';
    const refundId = await reversalDue(orderId);
    // The same dispatcher with no call budget, run without a deadline: as the code was. 0.8 s left,
    // less than any EPG answer takes.
    const dispatcher = createDispatcher(stack.runtime, env(), { callBudget: undefined });
    const remainingMs = 800;
    const work = dispatcher.processOrder(orderId);
    const endOfInvocation = new Promise<'timed out'>((resolve) => setTimeout(() => resolve('timed out'), remainingMs));

    // Lambda stops the invocation here, whatever it is doing.
    expect(await Promise.race([work.then(() => 'finished' as const), endOfInvocation])).toBe('timed out');
    const frozen = await refundOf(orderId, refundId);
    expect(frozen).toMatchObject({ state: 'reversal_submitted', attempts: 1 });
    expect(sims.payoutsByReference().get(refundId)).toBeUndefined();

    // The provider still answers (EPG acted on the request), but in Lambda no one was left to record
    // it: the refund waits out its lease in reversal_submitted while the money has gone.
    await work;
    expect(sims.payoutsByReference().get(refundId)).toBe(1);
    expect(frozen.state).not.toBe('paid');
  });
});
