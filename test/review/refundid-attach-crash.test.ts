/**
 * Found by review on 2026-12-03 and fixed in refundid-rma.ts (`attach`, `linkTo`); each case failed before.
 * Review 2026-12-03: a Refundid push that attaches to a refund the poller recorded from Ap21
 * (lambdas/services/refundid-rma.ts `attach`) writes two things: the RMA reference
 * (`linkReference`) and then the refund's `refundidId` ref (`external_ref_recorded`). A crash (or a
 * store error answered 5xx) between the two leaves the reference without the ref. Refundid then
 * delivers the push again: `locate` finds the reference and returns the recorded refund's id, so
 * `existing` is that refund, `recordedFromAp21` is skipped, and the `ours` check (refs.refundidId
 * must equal the RMA) fails: every retry is answered 409 refund_conflict, forever, for a push that
 * is ours and should have been answered 200 as on the first delivery.
 */
import { Ap21Client } from '../../lambdas/providers/ap21/client';
import { loadAp21Config } from '../../lambdas/providers/ap21/config';
import { loadAp21LedgerSettings } from '../../lambdas/services/ap21-ledger';
import { ReturnIntake } from '../../lambdas/services/return-intake';
import type { Rma, RefundidSimulator } from '../../simulators/refundid/simulator';
import { createRefundidSimulator } from '../../simulators/refundid/simulator';
import { refundidRefundId } from '../../lambdas/providers/refundid/statuses';
import { startAp21ForStack, type Ap21ForStack } from '../support/ap21-orders';
import { startTestStack, type TestStack } from '../support/stack';

let stack: TestStack;
let ap21: Ap21ForStack;
let portal: RefundidSimulator;

beforeAll(async () => {
  stack = await startTestStack({ REFUNDID_ALLOWED_IPS: '127.0.0.1' });
  ap21 = await startAp21ForStack(stack);
  Object.assign(process.env, ap21.env);
  portal = createRefundidSimulator({ baseUrl: stack.url, bearerToken: String(stack.secrets.refundid.bearerToken) });
});
afterAll(async () => {
  await ap21.host.close();
  await stack.close();
});

const SHIRT = { skuId: '21503', quantity: 3, priceMinor: 5990, productName: 'LINEN SHIRT' };
const BELT = { skuId: '880', quantity: 1, priceMinor: 4500, productName: 'BELT' };

const rma = (orderId: string, refundidId: string, lines: Record<string, number>): Rma => ({
  refundid_id: refundidId,
  line_items: Object.entries(lines).map(([lineId, quantity]) => ({ merchant_order_ref: orderId, line_item_ref: lineId, quantity })),
});

/** An order whose shirt Refundid refunded and wrote into Ap21 as a return (Stan `stan`), ingested as the poller does. */
async function polledRefundidReturn(stan: string) {
  const order = ap21.sim.addOrder({ email: 'dave@example.com', lines: [SHIRT, BELT] });
  const ret = ap21.sim.addRefundidReturn(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }], stan });
  const reader = new Ap21Client(loadAp21Config({ ...ap21.env }), { get: async () => stack.secrets.ap21, refresh: async () => undefined });
  const intake = new ReturnIntake({
    store: stack.runtime.store,
    ledger: loadAp21LedgerSettings({}),
    routing: { policy: 'apace_first', apaceEnabled: false, offerDays: 10 },
  });
  const outcome = await intake.ingest(
    await reader.getOrder(order.personId, order.orderId),
    await reader.getReturn(order.personId, order.orderId, ret.returnId),
  );
  expect(outcome.kind).toBe('created');
  return { orderId: `ap21-${order.orderId}`, refundId: `ap21-${ret.returnId}`, shirt: order.lines[0]!.lineId };
}

describe('review: a Refundid push attaching to a refund recorded from Ap21, retried after a crash', () => {
  it('answers the retried push 200 with the recorded refund when the first delivery crashed after linking the RMA', async () => {
    const placed = await polledRefundidReturn('rid-crash-1');
    const push = rma(placed.orderId, 'rid-crash-1', { [placed.shirt]: 1 });
    // What `attach` had written when the first delivery crashed: the RMA's reference, not yet the refund's ref.
    await stack.runtime.store.linkReference('refundid_rma', 'rid-crash-1', { orderId: placed.orderId, refundId: placed.refundId }, new Date().toISOString());
    // Refundid delivers the push again: on main this is 409 refund_conflict on every retry.
    expect(await portal.push('refundid', push)).toEqual({ status: 200, body: { received: true, refund_id: placed.refundId, state: 'paid' } });
    const order = (await stack.runtime.store.getOrder(placed.orderId))!;
    expect(order.refunds[placed.refundId]).toMatchObject({ state: 'paid', refs: { refundidId: 'rid-crash-1' } });
  });

  // The same block from the other write order: `create` (a `refunding` push racing the poller) links
  // the RMA to its own refund id first, then its createRefund is refused because the poller's
  // record took the units (or it crashes). The link stays, naming a refund that does not exist.
  // The `refundid` push that follows finds the recorded refund, but `attach`'s linkReference answers
  // the stale target, so it throws RefundConflictError: 409 on every retry, the RMA never attached.
  it('answers a push 200 with the recorded refund when an earlier push linked the RMA to a refund it never created', async () => {
    const placed = await polledRefundidReturn('rid-crash-3');
    const linkedAt = (agoMs: number) => new Date(Date.now() - agoMs).toISOString();
    const stale = { orderId: placed.orderId, refundId: refundidRefundId({ refundid_id: 'rid-crash-3' }) };
    await stack.runtime.store.linkReference('refundid_rma', 'rid-crash-3', stale, linkedAt(5_000));
    // A link this young may belong to a create still under way: answered 503, Refundid retries.
    expect(await portal.push('refundid', rma(placed.orderId, 'rid-crash-3', { [placed.shirt]: 1 }))).toMatchObject({ status: 503 });
    // Older than any invocation, it is stale: moved to the recorded refund, which the push attaches to.
    await stack.runtime.store.relinkReference('refundid_rma', 'rid-crash-3', stale, stale, linkedAt(120_000));
    expect(await portal.push('refundid', rma(placed.orderId, 'rid-crash-3', { [placed.shirt]: 1 }))).toEqual({
      status: 200,
      body: { received: true, refund_id: placed.refundId, state: 'paid' },
    });
  });

  it('control: without the crash the same push attaches and answers 200', async () => {
    const placed = await polledRefundidReturn('rid-crash-2');
    const push = rma(placed.orderId, 'rid-crash-2', { [placed.shirt]: 1 });
    expect(await portal.push('refundid', push)).toEqual({ status: 200, body: { received: true, refund_id: placed.refundId, state: 'paid' } });
  });
});

describe('review: two Refundid RMAs attaching at once to refunds recorded from Ap21 with the same units', () => {
  /** Two Refundid returns of one shirt each on one order, both ingested as the poller does; Stans that name no RMA. */
  async function twoPolledReturns() {
    const order = ap21.sim.addOrder({ email: 'erin@example.com', lines: [SHIRT, BELT] });
    const reader = new Ap21Client(loadAp21Config({ ...ap21.env }), { get: async () => stack.secrets.ap21, refresh: async () => undefined });
    const intake = new ReturnIntake({
      store: stack.runtime.store,
      ledger: loadAp21LedgerSettings({}),
      routing: { policy: 'apace_first', apaceEnabled: false, offerDays: 10 },
    });
    const ids: string[] = [];
    for (const stan of ['0001', '0002']) {
      const ret = ap21.sim.addRefundidReturn(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }], stan });
      const outcome = await intake.ingest(
        await reader.getOrder(order.personId, order.orderId),
        await reader.getReturn(order.personId, order.orderId, ret.returnId),
      );
      expect(outcome.kind).toBe('created');
      ids.push(`ap21-${ret.returnId}`);
    }
    return { orderId: `ap21-${order.orderId}`, refundIds: ids, shirt: order.lines[0]!.lineId };
  }

  // Each push picks the oldest unattached recorded refund, links its RMA to it, then writes the RMA
  // ref with the refund as a snapshot. The loser's write is superseded, `attach` ignores that and
  // answers 200 naming the refund the winner attached; its RMA stays linked to that refund, so each
  // later push of it is 409 refund_conflict, and the second recorded refund is never attached.
  // (Two pushes over HTTP at once: each reads the order before either writes; reproduced in 8 of 8 runs; the case tries three rounds.)
  it('attaches each RMA to its own recorded refund and answers each with it', async () => {
    // Up to three rounds on fresh orders, so that one round whose pushes happen not to overlap cannot hide the defect.
    for (let round = 0; round < 3; round++) {
      const placed = await twoPolledReturns();
      const ids = [`rid-race-${round}a`, `rid-race-${round}b`];
      const answers = await Promise.all(ids.map((id) => portal.push('refundid', rma(placed.orderId, id, { [placed.shirt]: 1 }))));
      const answered = answers.map((answer) => (answer.body as { refund_id?: string }).refund_id).sort();
      expect(answered).toEqual([...placed.refundIds].sort());
      for (const id of ids) expect(await portal.push('refundid', rma(placed.orderId, id, { [placed.shirt]: 1 }))).toMatchObject({ status: 200 });
    }
  });

  it('control: the same two RMAs one after the other attach one each', async () => {
    const placed = await twoPolledReturns();
    const a = await portal.push('refundid', rma(placed.orderId, 'rid-seq-a', { [placed.shirt]: 1 }));
    const b = await portal.push('refundid', rma(placed.orderId, 'rid-seq-b', { [placed.shirt]: 1 }));
    const answered = [a, b].map((answer) => (answer.body as { refund_id?: string }).refund_id).sort();
    expect(answered).toEqual([...placed.refundIds].sort());
    expect(await portal.push('refundid', rma(placed.orderId, 'rid-seq-b', { [placed.shirt]: 1 }))).toMatchObject({ status: 200 });
  });
});
