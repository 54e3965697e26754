import { apaceInboxKey } from '../../lambdas/services/apace-callbacks';
import { endRefund } from '../../lambdas/services/operator-actions';
import { INBOX_REPLAY_AFTER_MS } from '../../lambdas/services/sweeper';
import { eventually } from '../support/harness/relay-with-apace';
import { apaceWebhook } from '../support/fixtures';
import { startApaceLivenessWorld, type ApaceLivenessWorld } from '../support/harness/relay-with-apace-and-epg';

let world: ApaceLivenessWorld;
beforeAll(async () => {
  world = await startApaceLivenessWorld();
});
afterAll(() => world.close());

/** Every refund ends paid exactly once (money counted at the simulators) or in manual review with a reason. */
async function expectPaidOnceByCard(orderId: string, refundId: string) {
  const refund = await world.refund(orderId, refundId);
  expect(refund).toMatchObject({ state: 'paid', channel: 'reversal' });
  expect(world.epg.payouts().get(refundId) ?? 0).toBe(1);
  const order = (await world.stack.runtime.store.getOrder(orderId))!;
  expect(order.lines['1']).toMatchObject({ reserved: 0, refunded: 1 });
  expect(order.payments['pay-1']).toMatchObject({ reservedMinor: 0, refundedMinor: 5990 });
}

async function pendingInbox(orderId: string) {
  const records = await world.stack.runtime.store.findPendingInbound('apace', new Date(Date.now() + 3_600_000).toISOString(), 100);
  return records.filter((record) => record.orderId === orderId);
}

describe('Apace payouts that fail end on the card, without an operator', () => {
  it('pending → failed → pending again: the repeated pending books nothing, and the card reversal pays once', async () => {
    const { refundId, apaceRefundId } = await world.offeredRefund('lv-apace-1');
    expect(await world.apace.customerAccepts(apaceRefundId!, '7001')).toBe('paid');
    expect(await world.apace.payoutFails(apaceRefundId!)).toBe(true);
    // Apace's retry of the pending it thought undelivered, after the failure.
    await world.apace.redeliver(apaceRefundId!, 'pending');
    await world.runSweeper();

    await expectPaidOnceByCard('lv-apace-1', refundId);
    expect(await pendingInbox('lv-apace-1')).toEqual([]);
    const { timeline } = (await world.stack.runtime.store.getOrder('lv-apace-1'))!;
    expect(timeline.map((entry) => entry.event)).toEqual(expect.arrayContaining(['apace_paid', 'apace_payout_failed', 'reversal_succeeded']));
    expect(timeline.filter((entry) => entry.event === 'apace_paid_after_review' || entry.event === 'review_required')).toEqual([]);
  });

  it('failed first (the pending lost on the way), then the pending retried: card reversal, paid once', async () => {
    const { refundId, apaceRefundId } = await world.offeredRefund('lv-apace-2');
    world.refuseDeliveries(1);
    expect(await world.apace.customerAccepts(apaceRefundId!, '7001')).toBe('paid');
    expect(await world.apace.payoutFails(apaceRefundId!)).toBe(true);
    expect(await world.refund('lv-apace-2', refundId)).toMatchObject({ state: 'reversal_pending', channel: 'reversal', refs: { apacePayout: 'failed' } });
    await world.apace.redeliver(apaceRefundId!, 'pending');
    await world.runSweeper();

    await expectPaidOnceByCard('lv-apace-2', refundId);
    expect(await pendingInbox('lv-apace-2')).toEqual([]);
  });

  it('a notification stored but not applied (a crash between the two) is applied by the sweeper, once', async () => {
    const { refundId, apaceRefundId } = await world.offeredRefund('lv-apace-3');
    const { store } = world.stack.runtime;
    const raw = apaceWebhook('lv-apace-3', 'pending', { refund_id: apaceRefundId });
    // What the notification handler wrote before the process died.
    await store.recordPendingInbound(
      'lv-apace-3',
      { source: 'apace', key: apaceInboxKey(raw), raw, note: 'pending', attributes: { refundId } },
      new Date().toISOString(),
    );
    await world.runSweeper({ rounds: 1 });
    expect((await world.refund('lv-apace-3', refundId)).state).toBe('offered');

    await world.runSweeper({ rounds: 1, nowOffsetMs: INBOX_REPLAY_AFTER_MS + 1_000 });
    const paid = await world.refund('lv-apace-3', refundId);
    expect(paid).toMatchObject({ state: 'paid', channel: 'apace' });
    const version = (await store.getOrder('lv-apace-3'))!.version;
    await world.runSweeper({ rounds: 2, nowOffsetMs: INBOX_REPLAY_AFTER_MS + 1_000 });
    expect((await store.getOrder('lv-apace-3'))!.version).toBe(version);
    expect(await pendingInbox('lv-apace-3')).toEqual([]);
  });

  it('paid at pending, processed never delivered: followed up with Apace until confirmed', async () => {
    const { refundId, apaceRefundId } = await world.offeredRefund('lv-apace-4');
    expect(await world.apace.customerAccepts(apaceRefundId!, '7001')).toBe('paid');
    const paid = await eventually(async () => {
      const refund = await world.refund('lv-apace-4', refundId);
      return refund.state === 'paid' ? refund : undefined;
    });
    expect(paid).toMatchObject({ channel: 'apace' });
    expect(paid.nextAttemptAt).toBeDefined();
    // The payout completes but its processed webhook is lost; APACE_PROCESSED_WITHIN_SECONDS (1 s here) passes.
    world.refuseDeliveries(1);
    expect(await world.apace.payoutProcessed(apaceRefundId!)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await world.runSweeper({ rounds: 2 });
    const confirmed = await world.refund('lv-apace-4', refundId);
    expect(confirmed.confirmedAt).toBeDefined();
    expect(confirmed.nextAttemptAt).toBeUndefined();
    expect(world.apace.payouts().get(refundId)).toBe(1);
  });

  it('paid at pending, the failed webhook lost: the follow-up finds the payout failed and the card pays', async () => {
    const { refundId, apaceRefundId } = await world.offeredRefund('lv-apace-5');
    expect(await world.apace.customerAccepts(apaceRefundId!, '7001')).toBe('paid');
    await eventually(async () => ((await world.refund('lv-apace-5', refundId)).state === 'paid' ? true : undefined));
    world.refuseDeliveries(1);
    expect(await world.apace.payoutFails(apaceRefundId!)).toBe(true);
    expect((await world.refund('lv-apace-5', refundId)).channel).toBe('apace');
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await world.runSweeper();
    await expectPaidOnceByCard('lv-apace-5', refundId);
  });

  it('an operator re-routes an Apace refund in review whose payout failed: no loop, the card pays', async () => {
    const { refundId, apaceRefundId } = await world.offeredRefund('lv-apace-6');
    // Neither webhook reaches us; the refund waits in review on the Apace channel.
    world.refuseDeliveries(2);
    expect(await world.apace.customerAccepts(apaceRefundId!, '7001')).toBe('paid');
    expect(await world.apace.payoutFails(apaceRefundId!)).toBe(true);
    const { store } = world.stack.runtime;
    const ctx = { now: new Date().toISOString(), claimWindowMs: 0 };
    await store.applyEvent('lv-apace-6', refundId, 'offer_cancel_started', ctx, { actor: 'dispatcher' });
    await store.applyEvent('lv-apace-6', refundId, 'review_required', { ...ctx, reason: 'Apace refused the cancel' }, { actor: 'dispatcher' });
    const refund = await world.refund('lv-apace-6', refundId);
    const outcome = await endRefund(store, 'reroute', { orderId: 'lv-apace-6', refund, reason: 'customer still unpaid', operator: 'oncall', ...ctx });
    expect(outcome.done).toBe(true);
    await world.runSweeper();
    await expectPaidOnceByCard('lv-apace-6', refundId);
  });

  it("a pending for an offer we took off Apace is checked with Apace's record and, Apace paying, booked once via Apace", async () => {
    const { refundId, apaceRefundId } = await world.offeredRefund('lv-apace-7');
    world.refuseDeliveries(1);
    expect(await world.apace.customerAccepts(apaceRefundId!, '7001')).toBe('paid');
    // We did not hear it, and believed the offer gone (its cancel answered, then lost): on to the card.
    const { store } = world.stack.runtime;
    const ctx = { now: new Date().toISOString(), claimWindowMs: 0, nextAttemptAt: '2099-01-01T00:00:00.000Z' };
    await store.applyEvent('lv-apace-7', refundId, 'offer_cancel_started', ctx, { actor: 'dispatcher' });
    await store.applyEvent('lv-apace-7', refundId, 'offer_cancelled', ctx, { actor: 'dispatcher' });
    await world.apace.redeliver(apaceRefundId!, 'pending');
    expect((await world.refund('lv-apace-7', refundId)).state).toBe('reversal_pending');
    await world.runSweeper({ rounds: 1 });
    expect(await world.refund('lv-apace-7', refundId)).toMatchObject({ state: 'paid', channel: 'apace' });
    expect(world.epg.payouts().get(refundId) ?? 0).toBe(0);
    expect(await pendingInbox('lv-apace-7')).toEqual([]);
    // Booked on Apace's own record, not on the webhook's word.
    const { timeline } = (await store.getOrder('lv-apace-7'))!;
    expect(timeline.find((entry) => entry.to === 'paid')).toMatchObject({ event: 'apace_paid', note: expect.stringContaining("Apace's record says pending") });
  });
});
