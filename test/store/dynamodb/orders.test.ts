import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../../../lambdas/commons/clients/dynamodb';
import type { DynamoOrderStore } from '../../../lambdas/store/dynamodb-order-store';
import { TIMELINE_SLACK, TIMELINE_WINDOW } from '../../../lambdas/store/dynamodb/orders';
import { orderKey } from '../../../lambdas/store/keys';
import { ITEM_LIMIT_BYTES, driveRefunds, orderItemBytes, roomyOrder } from '../../../bench/order-size';
import { startTestStore, testEngine, type TestDynamo } from '../../support/dynamo';
import { demoOrderWithRefund } from '../../support/fixtures';

let dynamo: TestDynamo;
let store: DynamoOrderStore;
const db = () => createDocumentClient(dynamo.endpoint);

beforeAll(async () => {
  ({ dynamo, store } = await startTestStore('order-size-test'));
});
afterAll(() => dynamo.close(), 60_000);

const REFUNDS = 500;
const T = (seconds: number) => new Date(Date.UTC(2026, 2, 1, 10, 0, seconds)).toISOString();

/** Grows the order item with filler until DynamoDB's limit is `room` bytes away. */
async function fillTo(orderId: string, room: number): Promise<void> {
  const size = await orderItemBytes(dynamo.endpoint, dynamo.tableName, orderId);
  await db().send(
    new UpdateCommand({
      TableName: dynamo.tableName,
      Key: orderKey(orderId),
      UpdateExpression: 'SET #pad = :pad',
      ExpressionAttributeNames: { '#pad': 'pad' },
      ExpressionAttributeValues: { ':pad': 'x'.repeat(ITEM_LIMIT_BYTES - size - room - 'pad'.length) },
    }),
  );
}

describe('an order item of bounded size (docs/design.md §2.1)', () => {
  // About 4,000 writes on one growing item: tens of seconds on a loaded machine. Against DynamoDB Local
  // (npm run test:dynamodb-local) only the smaller cases below run, to keep that run short.
  const big = testEngine() === 'dynalite' ? it : it.skip;
  big(
    'holds 500 refunds, each with a retry and both webhooks, under the limit, and reads back a complete timeline',
    async () => {
      await store.putOrder(roomyOrder('big', REFUNDS, T(0)));
      expect(await driveRefunds(store, 'big', 0, REFUNDS, { retries: 1, concurrency: 2 })).toBe(REFUNDS);

      const bytes = await orderItemBytes(dynamo.endpoint, dynamo.tableName, 'big');
      expect(bytes).toBeLessThan(ITEM_LIMIT_BYTES);
      const order = (await store.getOrder('big'))!;
      expect(Object.values(order.refunds).filter((refund) => refund.state === 'paid' && refund.confirmedAt)).toHaveLength(REFUNDS);
      expect(order.lines['1']).toMatchObject({ refunded: REFUNDS, reserved: 0, available: 0 });
      expect(order.timeline.length).toBeLessThanOrEqual(TIMELINE_WINDOW + TIMELINE_SLACK);

      // Every change, in the order each refund made it: opened, created, claim, retry, offer, both webhooks.
      const timeline = await store.readTimeline('big');
      expect(timeline).toHaveLength(1 + REFUNDS * 6);
      expect(timeline[0]).toMatchObject({ event: 'order_opened' });
      const perRefund = new Map<string, string[]>();
      for (const entry of timeline.slice(1)) perRefund.set(entry.refundId!, [...(perRefund.get(entry.refundId!) ?? []), entry.event]);
      const expected = ['refund_created', 'attempt_started', 'rescheduled', 'offer_created', 'apace_paid', 'apace_confirmed'];
      for (let i = 0; i < REFUNDS; i++) expect(perRefund.get(`r${i}`)).toEqual(expected);

      // No raw message on the order: each webhook's entry points at its inbox item, which holds it.
      expect(JSON.stringify(order)).not.toContain('xxxxxxxxxx');
      const paid = timeline.find((entry) => entry.refundId === 'r7' && entry.event === 'apace_paid')!;
      expect(paid.inbox).toMatch(/^INBOX#apace#[0-9a-f]{64}$/);
      const inbound = await store.listInbound('big');
      expect(inbound.filter((record) => record.raw?.includes('"order_reference":"r7"'))).toHaveLength(2);
    },
    300_000,
  );

  it('keeps only a bounded window of the timeline on the order; the rest moves to audit items and reads back in order', async () => {
    await store.putOrder(roomyOrder('window', 20, T(0)));
    await driveRefunds(store, 'window', 0, 20, { retries: 1, concurrency: 1 });
    const order = (await store.getOrder('window'))!;
    // 40 entries kept, moved once 20 more have come (docs/design.md §2.1): never more than 60 of the 121.
    expect(order.timeline.length).toBeGreaterThanOrEqual(40);
    expect(order.timeline.length).toBeLessThanOrEqual(60);
    const timeline = await store.readTimeline('window');
    expect(timeline).toHaveLength(1 + 20 * 6);
    expect(timeline.slice(-order.timeline.length)).toEqual(order.timeline);
    expect(timeline.map((entry) => entry.refundId ?? '')).toEqual([
      '',
      ...Array.from({ length: 20 }, (_, i) => Array.from({ length: 6 }, () => `r${i}`)).flat(),
    ]);
  });

  it('is compacted when it nears the limit, before a write fails, and its timeline still reads complete', async () => {
    await demoOrderWithRefund(store, 'near', { refundId: 'n1', source: { kind: 'ap21_return', ref: 'n1' } }, { openedAt: T(0), now: T(1), actor: 'ap21' });
    await fillTo('near', 30_000);
    const outcome = await store.applyEvent('near', 'n1', 'reversal_submitted', { now: T(2), claimWindowMs: 0 }, { actor: 'dispatcher' });
    expect(outcome.applied).toBe(true);
    expect((await store.getOrder('near'))!.timeline).toEqual([]);
    expect((await store.readTimeline('near')).map((entry) => entry.event)).toEqual(['order_opened', 'refund_created', 'reversal_submitted']);
  });

  it('sends a refund whose write is refused for size to manual review with that reason, instead of failing every retry', async () => {
    await demoOrderWithRefund(store, 'full', { refundId: 'f1', source: { kind: 'ap21_return', ref: 'f1' } }, { openedAt: T(0), now: T(1), actor: 'ap21' });
    const submitted = await store.applyEvent('full', 'f1', 'reversal_submitted', { now: T(2), claimWindowMs: 0 }, { actor: 'dispatcher' });
    await fillTo('full', 1_000);
    // The provider paid and answers with a reference too big for what is left of the item.
    const outcome = await store.applyEvent(
      'full',
      'f1',
      'reversal_succeeded',
      { now: T(3), claimWindowMs: 0, refs: { providerRef: 'p'.repeat(4_000) } },
      { actor: 'dispatcher' },
      submitted.refund,
    );
    expect(outcome).toMatchObject({ applied: false, refund: { state: 'manual_review' } });
    const refund = (await store.getOrder('full'))!.refunds['f1']!;
    expect(refund).toMatchObject({ state: 'manual_review', reason: expect.stringContaining('400 KB item limit: reversal_succeeded') });
    expect((await store.readTimeline('full')).at(-1)).toMatchObject({ event: 'review_required', to: 'manual_review' });
  });
});
