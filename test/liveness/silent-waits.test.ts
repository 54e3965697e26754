import * as metrics from '../../lambdas/commons/metrics';
import { openOrder } from '../../lambdas/domain/order';
import { REFUNDID_OVERDUE_REASON, REFUNDID_REMINDER_MS, REFUNDID_RESULT_WAIT_MS } from '../../lambdas/domain/refund';
import { refundidRefundId } from '../../lambdas/providers/refundid/statuses';
import type { RmaPush } from '../../lambdas/providers/refundid/schemas';
import { Dispatcher } from '../../lambdas/services/dispatcher';
import { applyRmaPush } from '../../lambdas/services/refundid-rma';
import type { RetryPolicy } from '../../lambdas/services/retry-policy';
import { sweep, type Doorbell } from '../../lambdas/services/sweeper';
import type { DynamoOrderStore } from '../../lambdas/store/dynamodb-order-store';
import { OUTBOX_OVERDUE_SECONDS } from '../../lib/alarms';
import { manualReview, showRefund } from '../../tools/ops/commands';
import type { OpsTarget } from '../../tools/ops/target';
import { startTestStore, type TestDynamo } from '../support/dynamo';
import { DAY_MS, demoOrder, demoOrderWithRefund } from '../support/fixtures';

/**
 * The waits the wait table (docs/design.md §2.5) found silent, driven past their bound over dynalite:
 * each raises its metric, and an operator sees why. A Refundid RMA Refundid never answers; work that
 * stays due in the outbox.
 */
const NOW = Date.UTC(2026, 5, 1, 10, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();
const POLICY: RetryPolicy = { maxAttempts: 3, baseDelayMs: 1_000, maxDelayMs: 60_000, leaseMs: 30_000, syncDelayMs: 5_000 };
const rung: string[] = [];
const doorbell: Doorbell = { ring: (orderIds) => Promise.resolve(void rung.push(...orderIds)) };

let dynamo: TestDynamo;
let store: DynamoOrderStore;
beforeAll(async () => ({ dynamo, store } = await startTestStore('silent-waits')));
afterAll(() => dynamo.close());
afterEach(() => jest.restoreAllMocks());

const dispatcherAt = (nowMs: number) =>
  new Dispatcher({ store, reversals: {}, policy: POLICY, claimWindowMs: 0, callbackUrls: () => Promise.reject(new Error('no Apace here')), now: () => nowMs });
const emittedOf = (spy: jest.SpyInstance, name: string) => spy.mock.calls.filter(([metric]) => metric === name).map(([, value]) => value as number);
const dueAt = async (nowMs: number) => (await store.findDue(iso(nowMs), 500)).map((entry) => entry.orderId);

describe('a Refundid RMA Refundid never answers (refundid_pending)', () => {
  const orderId = 'rma-silent';
  const push = (status: RmaPush['status']): RmaPush => ({
    refundid_id: 'RID-77',
    status,
    line_items: [{ merchant_order_ref: orderId, line_item_ref: '1', quantity: 1 }],
  });
  const refundId = refundidRefundId(push('refunding'));
  const refund = async () => (await store.getOrder(orderId))!.refunds[refundId]!;

  it('is found due once its wait is over, noted with the reason and RefundidResultsOverdue, reminded daily, and still paid by a late answer', async () => {
    const pushedAt = NOW - REFUNDID_RESULT_WAIT_MS - 60_000;
    await store.putOrder(openOrder(demoOrder(orderId), iso(pushedAt)));
    await applyRmaPush(store, push('refunding'), JSON.stringify(push('refunding')), { now: iso(pushedAt), claimWindowMs: 0 });
    expect(await refund()).toMatchObject({ state: 'refundid_pending', channel: 'refundid' });

    // In the outbox at once, like any new refund with a due time: the dispatcher's first pass gives the order the RMA's.
    expect(await dueAt(pushedAt)).toContain(orderId);
    expect(await dispatcherAt(pushedAt).processOrder(orderId)).toEqual([]);
    // Not due while Refundid may still answer; due once the wait is over.
    expect(await dueAt(pushedAt + REFUNDID_RESULT_WAIT_MS - 1)).not.toContain(orderId);
    const emitted = jest.spyOn(metrics, 'emitMetric');
    expect(await sweep(store, doorbell, NOW)).toContain(orderId);

    const steps = await dispatcherAt(NOW).processOrder(orderId);
    expect(steps).toEqual([{ refundId, action: expect.stringContaining('Refundid outcome overdue') }]);
    const noted = await refund();
    // Refundid pays the customer itself: nothing is decided here, the refund keeps its units and waits on, with the reason.
    expect(noted).toMatchObject({ state: 'refundid_pending', nextAttemptAt: iso(NOW + REFUNDID_REMINDER_MS) });
    expect(noted.reason).toMatch(new RegExp(`^${REFUNDID_OVERDUE_REASON} for RMA RID-77 since ${iso(pushedAt).replace(/\./g, '\\.')}`));
    expect(emittedOf(emitted, 'RefundidResultsOverdue')).toEqual([1]);
    const target = { name: 'test', tableName: 'silent-waits', store, claimWindowMs: 0, reversals: {} } as unknown as OpsTarget;
    expect((await showRefund(target, refundId)).text).toContain(REFUNDID_OVERDUE_REASON);
    // In the operator's queue with the reason, beside the refunds in manual review.
    const queued = (await manualReview(target)).json as { kind: string; refundId: string; reason: string }[];
    expect(queued.filter((entry) => entry.kind === 'refundid_unanswered')).toEqual([
      expect.objectContaining({ refundId, rma: 'RID-77', reason: noted.reason }),
    ]);

    // Quiet until the next reminder; then told again.
    expect(await dueAt(NOW + REFUNDID_REMINDER_MS - 1)).not.toContain(orderId);
    expect(await dispatcherAt(NOW + 1_000).processOrder(orderId)).toEqual([]);
    expect(await dueAt(NOW + REFUNDID_REMINDER_MS)).toContain(orderId);
    await dispatcherAt(NOW + REFUNDID_REMINDER_MS).processOrder(orderId);
    expect(emittedOf(emitted, 'RefundidResultsOverdue')).toEqual([1, 1]);

    // Refundid answers at last: paid as it would have been, the reason gone, nothing due any more.
    await applyRmaPush(store, push('refundid'), JSON.stringify(push('refundid')), { now: iso(NOW + REFUNDID_REMINDER_MS + 1_000), claimWindowMs: 0 });
    const paid = await refund();
    expect(paid).toMatchObject({ state: 'paid', channel: 'refundid' });
    expect(paid.reason).toBeUndefined();
    expect(((await manualReview(target)).json as { refundId: string }[]).map((entry) => entry.refundId)).not.toContain(refundId);
    await dispatcherAt(NOW + 2 * REFUNDID_REMINDER_MS).processOrder(orderId);
    expect(await dueAt(NOW + 30 * DAY_MS)).not.toContain(orderId);
  });
});

describe('work that stays due in the outbox', () => {
  it('reports how long the longest-due order has waited on every sweep, past the OutboxOverdue threshold, and 0 once it is done', async () => {
    const emitted = jest.spyOn(metrics, 'emitMetric');
    // A card reversal due 20 minutes ago that no dispatcher has done (a lost doorbell, a dispatcher that keeps failing).
    const dueSince = NOW - 20 * 60_000;
    const { orderId } = await demoOrderWithRefund(store, 'outbox-silent', {}, { now: iso(dueSince) });
    expect(await sweep(store, doorbell, NOW)).toEqual([orderId]);
    const [overdue] = emittedOf(emitted, 'OutboxOverdueSeconds');
    expect(overdue).toBe(20 * 60);
    expect(overdue).toBeGreaterThanOrEqual(OUTBOX_OVERDUE_SECONDS);

    // The dispatcher acts (no connector for the card: an operator is told), and the outbox is empty again.
    await dispatcherAt(NOW).processOrder(orderId);
    expect((await store.getOrder(orderId))!.refunds[`${orderId}-r1`]).toMatchObject({ state: 'manual_review' });
    emitted.mockClear();
    expect(await sweep(store, doorbell, NOW)).toEqual([]);
    expect(emittedOf(emitted, 'OutboxOverdueSeconds')).toEqual([0]);
  });
});
