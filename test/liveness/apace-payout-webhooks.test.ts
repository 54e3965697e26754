import type { RefundEvent } from '../../lambdas/domain/refund';
import { MAXIMUM_TRIALS } from '../../simulators/apace/simulator';
import { eventually, flakyGate, pendingOffer, sleep, startApaceWorld, type ApaceWorld, type PendingOffer } from '../support/harness/relay-with-apace';

let world: ApaceWorld;
beforeAll(async () => {
  world = await startApaceWorld();
});
afterAll(() => world.close());

const refundOf = async (orderId: string, refundId: string) => (await world.stack.runtime.store.getOrder(orderId))!.refunds[refundId]!;
const deliveriesOf = (apaceRefundId: string, event: 'pending' | 'processed') =>
  world.simulator.webhookDeliveries().filter((delivery) => delivery.apaceRefundId === apaceRefundId && delivery.event === event);

/** Creates the Apace offer through the client and records it on the refund, as the dispatcher does. */
async function offered(pending: PendingOffer): Promise<string> {
  const created = await world.client.createOffer(pending.request);
  if (created.kind !== 'created') throw new Error(`offer not created: ${created.reason}`);
  await apply(pending, 'offer_created', { apaceRefundId: created.apaceRefundId });
  return created.apaceRefundId;
}

async function apply(pending: PendingOffer, event: RefundEvent, refs: Record<string, string> = {}) {
  // A claim window of 0 lets the test leave the Apace route right after Apace's last verification.
  await sleep(2);
  const outcome = await world.stack.runtime.store.applyEvent(
    pending.orderId,
    pending.refundId,
    event,
    { now: new Date().toISOString(), claimWindowMs: 0, refs },
    { actor: 'dispatcher' },
  );
  if (!outcome.applied) throw new Error(`${event} not applied: ${outcome.why}`);
}

async function acceptOverHttp(apaceRefundId: string, cardLastFour: string): Promise<unknown> {
  const response = await fetch(`${world.host.baseUrl('apace')}/_customer/${apaceRefundId}/accept`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ card_last_four: cardLastFour }),
  });
  return response.json();
}

describe('Apace payout through the real callbacks', () => {
  it('pays the customer once: our refund is paid at the pending webhook, confirmed at processed, and no longer cancellable', async () => {
    const pending = await pendingOffer(world, 'p-paid');
    const apaceRefundId = await offered(pending);

    expect(await acceptOverHttp(apaceRefundId, '1234')).toEqual({ outcome: 'card_mismatch' });
    expect(await acceptOverHttp(apaceRefundId, '7001')).toEqual({ outcome: 'paid' });
    expect(await world.client.cancel(apaceRefundId)).toEqual({ kind: 'refused', apaceStatus: 'pending' });

    const paid = await eventually(async () => {
      const refund = await refundOf(pending.orderId, pending.refundId);
      return refund.state === 'paid' ? refund : undefined;
    });
    expect(paid).toMatchObject({ channel: 'apace' });
    const confirmed = await eventually(async () => (await refundOf(pending.orderId, pending.refundId)).confirmedAt);
    expect(confirmed >= paid.paidAt!).toBe(true);

    expect(await world.simulator.customerAccepts(apaceRefundId, '7001')).toBe('unavailable');
    expect(world.host.payouts().apace).toMatchObject({ [pending.refundId]: 1 });
    expect(world.simulator.payoutsByOffer().get(apaceRefundId)).toBe(1);
    expect(world.simulator.verificationCalls().filter((call) => call.merchantRefundId === pending.refundId)).toEqual([
      { phase: 'create', merchantRefundId: pending.refundId, answer: { allow_refund: true } },
      { phase: 'payout', merchantRefundId: pending.refundId, answer: { allow_refund: true } },
    ]);
    // Our endpoint books the webhook before the simulator records its delivery: wait for the record.
    await eventually(() => (deliveriesOf(apaceRefundId, 'processed').length ? true : undefined));
    expect([...deliveriesOf(apaceRefundId, 'pending'), ...deliveriesOf(apaceRefundId, 'processed')]).toEqual([
      { apaceRefundId, event: 'pending', trial: 1, status: 200 },
      { apaceRefundId, event: 'processed', trial: 1, status: 200 },
    ]);
    expect(await world.client.cancel(apaceRefundId)).toEqual({ kind: 'refused', apaceStatus: 'processed' });
  });

  it('retries a webhook our endpoint refused, and the refund still ends paid and confirmed', async () => {
    const pending = await pendingOffer(world, 'p-retry');
    const gate = await flakyGate(world.stack.url, 2);
    try {
      const notificationUrl = pending.request.notificationUrl.replace(world.stack.url, gate.origin);
      const apaceRefundId = await offered({ ...pending, request: { ...pending.request, notificationUrl } });
      expect(await world.simulator.customerAccepts(apaceRefundId, '7001')).toBe('paid');
      await eventually(async () => (await refundOf(pending.orderId, pending.refundId)).confirmedAt);
      await eventually(() => (deliveriesOf(apaceRefundId, 'processed').length ? true : undefined));
      expect(deliveriesOf(apaceRefundId, 'pending').map((delivery) => delivery.status)).toEqual([503, 503, 200]);
      expect(deliveriesOf(apaceRefundId, 'processed').map((delivery) => delivery.status)).toEqual([200]);
      expect(await refundOf(pending.orderId, pending.refundId)).toMatchObject({ state: 'paid', channel: 'apace' });
    } finally {
      await gate.close();
    }
  });

  it(`stops after ${MAXIMUM_TRIALS} trials per webhook when our endpoint keeps failing`, async () => {
    const pending = await pendingOffer(world, 'p-giveup');
    const gate = await flakyGate(world.stack.url, Number.MAX_SAFE_INTEGER);
    try {
      const notificationUrl = pending.request.notificationUrl.replace(world.stack.url, gate.origin);
      const apaceRefundId = await offered({ ...pending, request: { ...pending.request, notificationUrl } });
      expect(await world.simulator.customerAccepts(apaceRefundId, '7001')).toBe('paid');
      await eventually(() => (deliveriesOf(apaceRefundId, 'processed').length === MAXIMUM_TRIALS ? true : undefined));
      await sleep(150);
      expect(gate.requests()).toBe(2 * MAXIMUM_TRIALS);
      expect(deliveriesOf(apaceRefundId, 'pending').map((delivery) => delivery.trial)).toEqual([1, 2, 3, 4]);
      // Apace paid but we never heard: the refund is still offered, and only a status sync can tell.
      expect(await refundOf(pending.orderId, pending.refundId)).toMatchObject({ state: 'offered' });
      expect(await world.client.get(apaceRefundId)).toMatchObject({ kind: 'found', offer: { status: 'processed' } });
    } finally {
      await gate.close();
    }
  });
});

describe('Apace payout after the refund left the Apace route', () => {
  it('pays nothing to a customer who accepts once the refund is offer_cancelling, and then lets the cancel through', async () => {
    const pending = await pendingOffer(world, 'p-switch');
    const apaceRefundId = await offered(pending);
    await apply(pending, 'offer_cancel_started');

    expect(await world.simulator.customerAccepts(apaceRefundId, '7001')).toBe('declined');
    expect(
      world.simulator
        .verificationCalls()
        .filter((call) => call.merchantRefundId === pending.refundId)
        .at(-1),
    ).toEqual({
      phase: 'payout',
      merchantRefundId: pending.refundId,
      answer: { allow_refund: false },
    });
    expect(await world.client.cancel(apaceRefundId)).toEqual({ kind: 'cancelled' });
    await apply(pending, 'offer_cancelled');
    expect(await world.simulator.customerAccepts(apaceRefundId, '7001')).toBe('unavailable');
    expect(world.simulator.payouts().get(pending.refundId)).toBeUndefined();
    expect(await refundOf(pending.orderId, pending.refundId)).toMatchObject({ state: 'reversal_pending', channel: 'reversal' });
  });

  it('closes the offer as refunded by the vendor, unpaid, when the card reversal went out though the cancel never reached Apace', async () => {
    const pending = await pendingOffer(world, 'p-reversed');
    const apaceRefundId = await offered(pending);
    for (const event of ['offer_cancel_started', 'offer_cancelled', 'reversal_submitted'] as const) await apply(pending, event);

    expect(await world.simulator.customerAccepts(apaceRefundId, '7001')).toBe('refunded_by_vendor');
    expect(await world.client.get(apaceRefundId)).toMatchObject({ kind: 'found', offer: { status: 'refundByVendor' } });
    expect(world.simulator.payouts().get(pending.refundId)).toBeUndefined();
    expect(world.simulator.webhookDeliveries().filter((delivery) => delivery.apaceRefundId === apaceRefundId)).toEqual([]);
  });
});
