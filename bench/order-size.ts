import { DynamoDBClient, GetItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { openOrder } from '../lambdas/domain/order';
import type { Refund, RefundEvent } from '../lambdas/domain/refund';
import { orderKey } from '../lambdas/store/keys';
import type { Audit, OrderStore, TransitionOutcome } from '../lambdas/store/order-store';

/** DynamoDB's 400 KB item limit. */
export const ITEM_LIMIT_BYTES = 400 * 1024;

/**
 * An item's size as DynamoDB counts it (attribute names plus values; numbers by significant digits,
 * 3 bytes per list or map plus 1 per element): what the 400 KB limit is measured in.
 */
export function dynamoItemBytes(item: Record<string, AttributeValue>): number {
  const value = (v: AttributeValue): number => {
    if (v.S !== undefined) return Buffer.byteLength(v.S);
    if (v.N !== undefined) return Math.ceil(v.N.replace(/^-|\.|^0+|e.*$/gi, '').length / 2) + 1;
    if (v.BOOL !== undefined || v.NULL !== undefined) return 1;
    if (v.B !== undefined) return v.B.length;
    if (v.L !== undefined) return 3 + v.L.reduce((sum, element) => sum + 1 + value(element), 0);
    if (v.M !== undefined) return 3 + Object.entries(v.M).reduce((sum, [name, element]) => sum + 1 + Buffer.byteLength(name) + value(element), 0);
    if (v.SS !== undefined) return v.SS.reduce((sum, s) => sum + Buffer.byteLength(s), 0);
    if (v.NS !== undefined) return v.NS.reduce((sum, n) => sum + n.length, 0);
    return 0;
  };
  return Object.entries(item).reduce((sum, [name, v]) => sum + Buffer.byteLength(name) + value(v), 0);
}

/**
 * The order item's size as stored, read back from DynamoDB (dynalite or DynamoDB Local); with
 * `withoutTimeline`, less its timeline window (bounded, and full or not depending on when the last
 * move to an audit item happened, which would blur a small difference between two orders).
 */
export async function orderItemBytes(endpoint: string, tableName: string, orderId: string, withoutTimeline = false): Promise<number> {
  const client = new DynamoDBClient({ endpoint, region: 'ap-southeast-2', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  try {
    const { Item } = await client.send(
      new GetItemCommand({ TableName: tableName, Key: { PK: { S: orderKey(orderId).PK! }, SK: { S: orderKey(orderId).SK! } }, ConsistentRead: true }),
    );
    if (!Item) throw new Error(`order ${orderId} not found`);
    if (withoutTimeline) delete Item.timeline;
    return dynamoItemBytes(Item);
  } finally {
    client.destroy();
  }
}

/** An order big enough for `refunds` one-unit refunds. */
export function roomyOrder(orderId: string, refunds: number, now: string) {
  return openOrder(
    {
      orderId,
      currency: 'AUD',
      lines: [{ lineId: '1', quantity: refunds, valueMinor: refunds * 5990, sku: 'SKU-21503', title: 'Linen shirt' }],
      payments: [{ paymentId: 'pay-1', capturedMinor: refunds * 5990, provider: 'addon_payments', transactionId: '7831830', cardLastFour: '7001' }],
    },
    now,
  );
}

/** A webhook body of Apace's size (its notification with the customer's details), distinct per refund and kind. */
function webhook(refundId: string, status: string): string {
  return JSON.stringify({ refund_id: `apace-${refundId}`, status, order_reference: refundId, customer: { note: 'x'.repeat(1500) } });
}

export interface DriveOptions {
  readonly retries: number;
  /** Refunds driven at once (each its own chain of writes on the one order item). */
  readonly concurrency?: number;
  /** Stop at the first refund the order refuses for size instead of throwing. */
  readonly untilFull?: boolean;
}

/**
 * Drives refunds through the Apace channel on one order as the dispatcher and Apace would: created,
 * `retries` claimed attempts that fail and are rescheduled, the offer created, and both webhooks
 * (`pending`, then `processed`) with their raw bodies. Answers how many refunds were created.
 */
export async function driveRefunds(store: OrderStore, orderId: string, first: number, count: number, options: DriveOptions): Promise<number> {
  let created = 0;
  let next = first;
  let full = false;
  const T = (i: number) => new Date(Date.UTC(2026, 2, 1, 10, 0, 0) + i * 1000).toISOString();
  const one = async (i: number) => {
    const refundId = `r${i}`;
    const step = async (refund: Refund, event: RefundEvent, at: string, audit: Audit, extra: Record<string, unknown> = {}): Promise<Refund> => {
      const outcome: TransitionOutcome = await store.applyEvent(orderId, refundId, event, { now: at, claimWindowMs: 0, ...extra }, audit, refund);
      if (!outcome.applied) throw new Error(`${refundId}: ${event} not applied (${outcome.why})`);
      return outcome.refund;
    };
    let refund: Refund;
    try {
      ({ refund } = await store.createRefund(
        orderId,
        {
          refundId,
          lines: { '1': 1 },
          paymentId: 'pay-1',
          amount: { minor: 5990, currency: 'AUD' },
          route: 'apace',
          offerExpiresAt: T(i + 864_000),
          source: { kind: 'ap21_return', ref: `R${i}` },
          refs: { ap21ReturnId: `R${i}` },
        },
        T(i),
        { actor: 'ap21', note: `Ap21 return W${i}R (R${i})` },
      ));
    } catch (error) {
      if (options.untilFull && (error as Error).name === 'OrderItemTooLargeError') {
        full = true;
        return;
      }
      throw error;
    }
    try {
      for (let attempt = 0; attempt < options.retries; attempt++) {
        refund = await step(refund, 'attempt_started', T(i), { actor: 'dispatcher' }, { nextAttemptAt: T(i + 120) });
        refund = await step(refund, 'rescheduled', T(i), { actor: 'dispatcher', note: 'Apace answered 503: retry' }, { nextAttemptAt: T(i) });
      }
      refund = await step(refund, 'offer_created', T(i), { actor: 'dispatcher' }, { refs: { apaceRefundId: `apace-${refundId}` } });
      refund = await step(refund, 'apace_paid', T(i + 1), {
        actor: 'apace',
        note: `Apace refund apace-${refundId}: pending`,
        raw: webhook(refundId, 'pending'),
      });
      await step(refund, 'apace_confirmed', T(i + 2), {
        actor: 'apace',
        note: `Apace refund apace-${refundId}: processed`,
        raw: webhook(refundId, 'processed'),
      });
      created++;
    } catch (error) {
      // At the limit a change is refused for size (the refund goes to manual review): it did not fit.
      if (!options.untilFull) throw error;
      full = true;
    }
  };
  await Promise.all(
    Array.from({ length: options.concurrency ?? 4 }, async () => {
      while (next < first + count && !full) await one(next++);
    }),
  );
  return created;
}

export interface OrderSizeResult {
  /** Growth of the order item per refund driven to paid with retries and both webhooks. */
  readonly bytesPerRefund: number;
  /** Growth of the order item per extra retry (claim + reschedule) of a refund, its bounded timeline window aside. */
  readonly bytesPerRetry: number;
  /** Refunds that went into one order before it refused the next for size. */
  readonly maxRefunds: number;
  readonly refundsMeasured: number;
}

/**
 * Order item size on a real item: the same refunds driven on two orders, one with more retries per
 * refund, and one order filled until DynamoDB refuses the next refund for size.
 */
export async function benchOrderSize(store: OrderStore, endpoint: string, tableName: string, runId: string): Promise<OrderSizeResult> {
  const N = 100;
  const EXTRA_RETRIES = 3;
  const now = new Date().toISOString();
  const sizes: number[] = [];
  const states: number[] = [];
  for (const [label, retries] of [
    ['few', 1],
    ['many', 1 + EXTRA_RETRIES],
  ] as const) {
    const orderId = `bench-${runId}-size-${label}`;
    await store.putOrder(roomyOrder(orderId, N, now));
    const empty = await orderItemBytes(endpoint, tableName, orderId);
    const emptyState = await orderItemBytes(endpoint, tableName, orderId, true);
    await driveRefunds(store, orderId, 0, N, { retries });
    sizes.push((await orderItemBytes(endpoint, tableName, orderId)) - empty);
    states.push((await orderItemBytes(endpoint, tableName, orderId, true)) - emptyState);
  }
  const full = `bench-${runId}-size-full`;
  await store.putOrder(roomyOrder(full, 5000, now));
  const maxRefunds = await driveRefunds(store, full, 0, 5000, { retries: 1, untilFull: true });
  return { bytesPerRefund: sizes[0]! / N, bytesPerRetry: (states[1]! - states[0]!) / (N * EXTRA_RETRIES), maxRefunds, refundsMeasured: N };
}
