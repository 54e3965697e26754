import type { OrderStore } from '../store/order-store';

/** Tells the dispatcher an order has work: SQS in AWS, an in-process queue locally. */
export interface Doorbell {
  ring(orderIds: readonly string[]): Promise<void>;
}

/**
 * The backstop of the outbox (docs/design.md §2.4): orders whose due time has come — work whose doorbell was
 * lost, leases of crashed dispatchers, offers that expired, reversals a provider left pending — are
 * handed to the dispatcher again. The dispatcher decides what each refund needs.
 */
export async function sweep(store: OrderStore, doorbell: Doorbell, nowMs: number, limit = 200): Promise<string[]> {
  const due = await store.findDueOrders(new Date(nowMs).toISOString(), limit);
  if (due.length) await doorbell.ring(due);
  return due;
}
