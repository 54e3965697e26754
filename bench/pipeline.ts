import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../lambdas/commons/clients/dynamodb';
import { openOrder, type PaymentProvider } from '../lambdas/domain/order';
import { createDispatcher } from '../lambdas/functions/dispatch-runtime';
import type { Runtime } from '../lambdas/functions/runtime';
import { createReturnIntake } from '../lambdas/functions/ap21-runtime';
import type { Ap21Order, Ap21Return } from '../lambdas/providers/ap21/schemas';
import { ledgerOrderId, returnRefundId } from '../lambdas/services/ap21-ledger';
import { LocalQueue } from '../lambdas/services/local-queue';
import { sweep } from '../lambdas/services/sweeper';
import { TABLE } from '../lambdas/store/table';
import type { RemoteSimulators } from './simulator-process';
import { withStdoutDiscarded, type CountedDynalite } from './support';

const RETURNS = 240;
const CONCURRENCY = 4;
const BARE_WINDOW_MS = 2_500;
const DEADLINE_MS = 60_000;
const PROVIDERS: readonly PaymentProvider[] = ['addon_payments', 'paypro', 'optty'];

/** One customer return as Ap21 reports it, and where refund-relay books it. */
export interface BenchReturn {
  readonly order: Ap21Order;
  readonly ret: Ap21Return;
  readonly ledgerOrderId: string;
  readonly refundId: string;
}

/** Which reversal provider refunds each bench payment (the stage's AP21_PAYMENT_PROVIDERS). */
const PAYMENT_PROVIDERS = 'CardType:EPG=addon_payments,CardType:PAYPRO=paypro,CardType:OPTTY=optty';
const CARD_TYPE: Record<PaymentProvider, string> = { addon_payments: 'EPG', paypro: 'PAYPRO', optty: 'OPTTY', refundid: 'Refundid', other: 'OTHER' };

export interface PipelineResult {
  readonly returns: number;
  readonly seconds: number;
  readonly returnsPerSecond: number;
  readonly bareWritesPerSecond: number;
  /**
   * The same requests a return makes (a conditional put, a consistent read, three conditional
   * updates) on minimal items, and one loopback round trip to the provider simulators' process,
   * with no refund-relay code: the most returns per second any five-request pipeline reaches here.
   */
  readonly floorReturnsPerSecond: number;
  readonly lost: number;
  readonly duplicatePayouts: number;
  /** DynamoDB requests per return while the pipeline ran, by operation. */
  readonly dynamoCallsPerReturn: Readonly<Record<string, number>>;
}

/**
 * Returns as Ap21 reports them (an order of one unit and its return), and the original payments at
 * each provider's simulator. The Ap21 HTTP read is the poller's; the pipeline starts at the intake.
 */
async function seedReturns(sims: RemoteSimulators, runId: string): Promise<BenchReturn[]> {
  const returns: BenchReturn[] = [];
  const seeds: Promise<void>[] = [];
  for (let i = 0; i < RETURNS; i++) {
    const provider = PROVIDERS[i % PROVIDERS.length]!;
    const amount = { minor: 1000 + i, currency: 'AUD' };
    const transactionId = provider === 'paypro' ? String(700_000 + i) : `bench-${runId}-tx-${i}`;
    if (provider === 'addon_payments') seeds.push(sims.seed('addon-payments', { transactionId, amount }));
    if (provider === 'paypro') seeds.push(sims.seed('paypro', { orderId: Number(transactionId), email: `customer${i}@example.com`, amount }));
    if (provider === 'optty') seeds.push(sims.seed('optty', { reference: transactionId, captured: amount }));
    const ap21OrderId = `${runId}${String(i).padStart(4, '0')}`;
    const order: Ap21Order = {
      orderId: ap21OrderId,
      orderNumber: `W${ap21OrderId}`,
      personId: `P${i}`,
      currency: 'AUD',
      email: `customer${i}@example.com`,
      lines: [{ lineId: '1', skuId: 'SKU-1', quantity: 1, value: amount, productName: 'Shirt' }],
      payments: [{ origin: 'CreditCard', cardType: CARD_TYPE[provider], stan: transactionId, amount }],
      paymentsVisible: true,
    };
    const ret: Ap21Return = {
      returnId: `R${ap21OrderId}`,
      orderNumber: `W${ap21OrderId}R`,
      origOrderNumber: order.orderNumber,
      personId: order.personId,
      currency: 'AUD',
      lines: [{ skuId: 'SKU-1', quantity: -1 }],
      payments: [],
      paymentsVisible: true,
    };
    returns.push({ order, ret, ledgerOrderId: ledgerOrderId(ap21OrderId), refundId: returnRefundId(ret.returnId) });
  }
  await Promise.all(seeds);
  return returns;
}

/** Order items for the bare-write baseline: the pipeline's own orders do not exist before it runs. */
async function baselineOrders(rt: Runtime, runId: string): Promise<string[]> {
  const orderIds = Array.from({ length: 40 }, (_, i) => `bench-${runId}-baseline-${i}`);
  for (const orderId of orderIds) {
    await rt.store.putOrder(
      openOrder(
        {
          orderId,
          currency: 'AUD',
          lines: [{ lineId: '1', quantity: 1, valueMinor: 1000 }],
          payments: [{ paymentId: 'p1', capturedMinor: 1000, provider: 'other' }],
        },
        new Date().toISOString(),
      ),
    );
  }
  return orderIds;
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
 * A return's requests with nothing of ours around them, `CONCURRENCY` at once: put a new order item,
 * read it back, link a reference item, claim and settle with conditional updates, and one loopback
 * HTTP round trip to the simulators' process (a request they answer without work) between claim and settle.
 */
async function floorReturnsPerSecond(rt: Runtime, sims: RemoteSimulators, runId: string): Promise<number> {
  const client = createDocumentClient(rt.config.DYNAMODB_ENDPOINT);
  const TableName = rt.config.TABLE_NAME;
  const names = { '#pk': TABLE.partitionKey, '#state': 'state' };
  let done = 0;
  const until = performance.now() + BARE_WINDOW_MS;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, worker) => {
      for (let i = 0; performance.now() < until; i++) {
        const Key = { [TABLE.partitionKey]: `ORDER#bench-${runId}-floor-${worker}-${i}`, [TABLE.sortKey]: 'ORDER' };
        const claim = (from: string, to: string) =>
          client.send(
            new UpdateCommand({
              TableName,
              Key,
              UpdateExpression: 'SET #state = :to',
              ConditionExpression: 'attribute_exists(#pk) AND #state = :from',
              ExpressionAttributeNames: names,
              ExpressionAttributeValues: { ':from': from, ':to': to },
            }),
          );
        await client.send(
          new PutCommand({
            TableName,
            Item: { ...Key, state: 'ready' },
            ConditionExpression: 'attribute_not_exists(#pk)',
            ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
          }),
        );
        await client.send(new GetCommand({ TableName, Key, ConsistentRead: true }));
        await client.send(
          new UpdateCommand({
            TableName,
            Key: { [TABLE.partitionKey]: `REF#bench-${runId}-floor-${worker}-${i}`, [TABLE.sortKey]: 'REF' },
            UpdateExpression: 'SET #order = if_not_exists(#order, :order)',
            ExpressionAttributeNames: { '#order': 'orderId' },
            ExpressionAttributeValues: { ':order': Key[TABLE.partitionKey] },
            ReturnValues: 'ALL_NEW',
          }),
        );
        await claim('ready', 'submitted');
        await sims.ping();
        await claim('submitted', 'paid');
        done++;
      }
    }),
  );
  const rate = done / ((performance.now() - started) / 1000);
  client.destroy();
  return rate;
}

/**
 * Returns through the local stack: ingested by the Ap21 return intake (the order's ledger opened,
 * the refund booked), dispatched through the real
 * Dispatcher and LocalQueue to the provider simulators (EPG, PayPro, Optty; no faults; in a process
 * of their own, as the providers are on machines of their own) and paid.
 * Beside it, bare conditional writes on the same dynalite, before and after, at the same concurrency.
 */
export async function benchPipeline(rt: Runtime, sims: RemoteSimulators, dynamo: CountedDynalite, env: NodeJS.ProcessEnv): Promise<PipelineResult> {
  const runId = Date.now().toString(36);
  const returns = await seedReturns(sims, runId);
  const orderIds = await baselineOrders(rt, runId);
  const intake = createReturnIntake(rt, { ...env, AP21_PAYMENT_PROVIDERS: PAYMENT_PROVIDERS });
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
          // The intake opens the order's ledger from Ap21's order and books the return as a refund.
          await intake.ingest(item.order, item.ret);
          await queue.ring([item.ledgerOrderId]);
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
    const floor = await floorReturnsPerSecond(rt, sims, runId);

    let lost = 0;
    for (const item of returns) {
      const refund = (await rt.store.getOrder(item.ledgerOrderId))?.refunds[item.refundId];
      if (refund?.state !== 'paid') lost++;
    }
    const duplicatePayouts = [...(await sims.payoutsByReference()).values()].filter((count) => count > 1).length;
    return {
      returns: returns.length,
      seconds,
      returnsPerSecond: returns.length / seconds,
      bareWritesPerSecond: (bareBefore + bareAfter) / 2,
      floorReturnsPerSecond: floor,
      lost,
      duplicatePayouts,
      dynamoCallsPerReturn,
    };
  });
}
