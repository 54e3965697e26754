import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../lambdas/commons/clients/dynamodb';
import { openOrder, type PaymentProvider } from '../lambdas/domain/order';
import { createDispatcher } from '../lambdas/functions/dispatch-runtime';
import type { Runtime } from '../lambdas/functions/runtime';
import { LocalQueue } from '../lambdas/services/local-queue';
import { sweep } from '../lambdas/services/sweeper';
import { TABLE } from '../lambdas/store/table';
import type { ProviderSimulators } from '../local/simulators';
import { withStdoutDiscarded, type CountedDynalite } from './support';

const RETURNS = 240;
const CONCURRENCY = 4;
const BARE_WINDOW_MS = 2_500;
const DEADLINE_MS = 60_000;
const PROVIDERS: readonly PaymentProvider[] = ['addon_payments', 'paypro', 'optty'];

/** One customer return: the order (already known from Ap21) and the refund it asks for. */
export interface BenchReturn {
  readonly orderId: string;
  readonly refundId: string;
  readonly amountMinor: number;
}

/**
 * The ingestion step: stores a return as a refund to pay. Until the Ap21 ingestion lands this is its
 * store write alone (`createRefund`, the reserve); swap in the ingestion's own entry point here.
 */
export type IngestReturn = (rt: Runtime, item: BenchReturn) => Promise<void>;

export const createRefundAsIngestionWould: IngestReturn = async (rt, item) => {
  const now = new Date().toISOString();
  await rt.store.createRefund(
    item.orderId,
    { refundId: item.refundId, lines: { '1': 1 }, paymentId: 'p1', amount: { minor: item.amountMinor, currency: 'AUD' }, route: 'reversal', source: { kind: 'ap21_return', ref: item.refundId } },
    now,
    { actor: 'ap21' },
  );
};

export interface PipelineResult {
  readonly returns: number;
  readonly seconds: number;
  readonly returnsPerSecond: number;
  readonly bareWritesPerSecond: number;
  readonly lost: number;
  readonly duplicatePayouts: number;
  /** DynamoDB requests per return while the pipeline ran, by operation. */
  readonly dynamoCallsPerReturn: Readonly<Record<string, number>>;
}

/** Orders as Ap21 order sync leaves them, and the original payments at each provider's simulator. */
async function seedOrders(rt: Runtime, sims: ProviderSimulators, runId: string): Promise<BenchReturn[]> {
  const returns: BenchReturn[] = [];
  for (let i = 0; i < RETURNS; i++) {
    const provider = PROVIDERS[i % PROVIDERS.length]!;
    const orderId = `bench-${runId}-${i}`;
    const amountMinor = 1000 + i;
    const transactionId = provider === 'paypro' ? String(700_000 + i) : `${runId}-tx-${i}`;
    const amount = { minor: amountMinor, currency: 'AUD' };
    if (provider === 'addon_payments') sims.addonPayments.seed({ transactionId, amount });
    if (provider === 'paypro') sims.paypro.seed?.({ orderId: Number(transactionId), email: `customer${i}@example.com`, amount });
    if (provider === 'optty') sims.optty.api.seed?.({ reference: transactionId, captured: amount });
    await rt.store.putOrder(
      openOrder(
        { orderId, currency: 'AUD', lines: [{ lineId: '1', quantity: 1, valueMinor: amountMinor, title: 'Shirt' }], payments: [{ paymentId: 'p1', capturedMinor: amountMinor, provider, transactionId }] },
        new Date().toISOString(),
      ),
    );
    returns.push({ orderId, refundId: `${orderId}-r1`, amountMinor });
  }
  return returns;
}

/** Conditional writes per second on order items, `CONCURRENCY` writers at once, as the pipeline runs them. */
async function bareWritesPerSecond(rt: Runtime, orderIds: readonly string[]): Promise<number> {
  const client = createDocumentClient(rt.config.DYNAMODB_ENDPOINT);
  let writes = 0;
  const until = performance.now() + BARE_WINDOW_MS;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, worker) => {
      for (let i = worker; performance.now() < until; i += CONCURRENCY) {
        await client.send(
          new UpdateCommand({
            TableName: rt.config.TABLE_NAME,
            Key: { [TABLE.partitionKey]: `ORDER#${orderIds[i % orderIds.length]!}`, [TABLE.sortKey]: 'ORDER' },
            UpdateExpression: 'SET #count = if_not_exists(#count, :zero) + :one',
            ConditionExpression: 'attribute_exists(#pk)',
            ExpressionAttributeNames: { '#count': 'benchWrites', '#pk': TABLE.partitionKey },
            ExpressionAttributeValues: { ':zero': 0, ':one': 1 },
          }),
        );
        writes++;
      }
    }),
  );
  const rate = writes / ((performance.now() - started) / 1000);
  client.destroy();
  return rate;
}

/**
 * Returns through the local stack: ingested (the refund's reserve), dispatched through the real
 * Dispatcher and LocalQueue to the provider simulators (EPG, PayPro, Optty; no faults) and paid.
 * Beside it, bare conditional writes on the same dynalite, before and after, at the same concurrency.
 */
export async function benchPipeline(
  rt: Runtime,
  sims: ProviderSimulators,
  dynamo: CountedDynalite,
  env: NodeJS.ProcessEnv,
  ingest: IngestReturn = createRefundAsIngestionWould,
): Promise<PipelineResult> {
  const returns = await seedOrders(rt, sims, Date.now().toString(36));
  const orderIds = returns.map((item) => item.orderId);
  return withStdoutDiscarded(async () => {
    const bareBefore = await bareWritesPerSecond(rt, orderIds);
    const dispatcher = createDispatcher(rt, env);
    const paid = new Set<string>();
    const queue = new LocalQueue(async (orderId) => {
      const steps = await dispatcher.processOrder(orderId);
      if (steps.some((step) => step.action === 'reversed on the card')) paid.add(orderId);
    }, CONCURRENCY);

    dynamo.reset();
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < returns.length) {
          const item = returns[next++]!;
          await ingest(rt, item);
          await queue.ring([item.orderId]);
        }
      }),
    );
    const deadline = started + DEADLINE_MS;
    while (paid.size < returns.length && performance.now() < deadline) {
      await queue.drained();
      // Whatever a first dispatch did not finish, the sweeper hands back, as in the local runtime.
      if (paid.size < returns.length) await sweep(rt.store, queue, Date.now(), RETURNS);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const seconds = (performance.now() - started) / 1000;
    await queue.stop();
    const dynamoCallsPerReturn = Object.fromEntries([...dynamo.calls].map(([operation, count]) => [operation, Number((count / returns.length).toFixed(2))]));
    const bareAfter = await bareWritesPerSecond(rt, orderIds);

    let lost = 0;
    for (const item of returns) {
      const refund = (await rt.store.getOrder(item.orderId))?.refunds[item.refundId];
      if (refund?.state !== 'paid') lost++;
    }
    const duplicatePayouts = [...sims.payoutsByReference().values()].filter((count) => count > 1).length;
    return {
      returns: returns.length,
      seconds,
      returnsPerSecond: returns.length / seconds,
      bareWritesPerSecond: (bareBefore + bareAfter) / 2,
      lost,
      duplicatePayouts,
      dynamoCallsPerReturn,
    };
  });
}
